import { useSyncExternalStore } from 'react';

const STORAGE_KEY = 'kiln.apiKey';

export interface KeyState {
  /** The key the app sends, kept in this browser's localStorage. */
  key: string | null;
  /** Kiln answered UNAUTHENTICATED (HTTP 401, or graphql-ws close 4401) to the last request. */
  rejected: boolean;
}

function stored(): string | null {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

let state: KeyState = { key: stored(), rejected: false };
const listeners = new Set<() => void>();

function update(next: KeyState) {
  state = next;
  listeners.forEach((l) => l());
}

/** The API key this browser sends on HTTP (Authorization) and WebSocket (connection_init). */
export const apiKey = {
  get: () => state.key,
  set(key: string) {
    localStorage.setItem(STORAGE_KEY, key);
    update({ key, rejected: false });
  },
  forget() {
    localStorage.removeItem(STORAGE_KEY);
    update({ key: null, rejected: false });
  },
  /** Kiln refused the request for want of a valid key. */
  reject() {
    if (!state.rejected) update({ ...state, rejected: true });
  },
  subscribe(listener: () => void) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  snapshot: () => state,
};

export const useApiKey = () => useSyncExternalStore(apiKey.subscribe, apiKey.snapshot);

export const authHeaders = (key: string | null): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {});
