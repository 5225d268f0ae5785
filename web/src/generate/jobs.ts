import { useSyncExternalStore } from 'react';
import type { Job } from '../api/job-operations';

const STORAGE_KEY = 'kiln.jobs';
/** Cards kept on the Generate page; older ones are in the gallery. */
const KEEP = 40;

function load(): Job[] {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? '[]') as Job[];
    // Cards an older version of the app stored lack what every card now reads.
    return stored.filter((j) => typeof j.kind === 'string' && typeof j.params === 'object' && j.params !== null);
  } catch {
    return [];
  }
}

let jobs: Job[] = load();
const listeners = new Set<() => void>();

function set(next: Job[]) {
  jobs = next.slice(0, KEEP);
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(jobs));
  } catch {
    // A full or blocked storage only costs the cards after a reload.
  }
  listeners.forEach((l) => l());
}

/** The jobs submitted from this tab, newest first, kept across reloads of the tab. */
export const submittedJobs = {
  add: (added: Job[]) => set([...added, ...jobs.filter((j) => !added.some((a) => a.id === j.id))]),
  /** Records what a card learnt (its final status), so a reload need not watch it again. */
  update: (id: string, patch: Partial<Job>) => set(jobs.map((j) => (j.id === id ? { ...j, ...patch } : j))),
  remove: (id: string) => set(jobs.filter((j) => j.id !== id)),
  clear: () => set([]),
  subscribe(listener: () => void) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

export const useSubmittedJobs = () => useSyncExternalStore(submittedJobs.subscribe, () => jobs);
