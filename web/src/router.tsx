import { type AnchorHTMLAttributes, type MouseEvent, useSyncExternalStore } from 'react';

/** The app's routes: Kiln serves index.html for each of these paths (src/server/web-app.ts). */
export const ROUTES = {
  generate: '/',
  queue: '/queue',
  gallery: '/gallery',
  job: '/gallery/:id',
  train: '/train',
  training: '/train/:id',
  models: '/models',
  health: '/status',
} as const;

const listeners = new Set<() => void>();
const notify = () => listeners.forEach((l) => l());
window.addEventListener('popstate', notify);

function subscribe(listener: () => void) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const current = () => location.pathname + location.search;

/** The path and query string, re-rendering on navigation. */
export const useLocation = () => useSyncExternalStore(subscribe, current);

/** What the page that navigated here handed over (e.g. "generate again"'s parameters). */
export const navigationState = <T,>(): T | undefined => (history.state as T | null) ?? undefined;

export function navigate(to: string, state?: unknown) {
  history.pushState(state ?? null, '', to);
  notify();
  window.scrollTo(0, 0);
}

/** The route's parameters when `path` matches `pattern` (`/gallery/:id`), else undefined. */
export function match(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split('/');
  const got = path.split('?')[0]!.split('/');
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i]!.startsWith(':')) params[want[i]!.slice(1)] = decodeURIComponent(got[i]!);
    else if (want[i] !== got[i]) return undefined;
  }
  return params;
}

type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & { to: string };

/** A real link (it opens in a new tab, it is reachable by keyboard) that navigates in place. */
export function Link({ to, onClick, ...rest }: LinkProps) {
  const here = useLocation().split('?')[0];
  const follow = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={to} aria-current={here === to ? 'page' : undefined} onClick={follow} {...rest} />;
}
