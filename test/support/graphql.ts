import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';

export interface GraphQLResponse<T = any> {
  data?: T;
  errors?: { message: string; extensions?: Record<string, any>; path?: (string | number)[] }[];
}

export type GraphQLClient = <T = any>(query: string, variables?: Record<string, unknown>) => Promise<GraphQLResponse<T>>;

/** POSTs operations to a running Kiln, like any HTTP client would. */
export function httpClient(baseUrl: string, headers: Record<string, string> = {}): GraphQLClient {
  return async (query, variables) => {
    const res = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as GraphQLResponse;
  };
}

/** Asserts success and returns the data. */
export async function ok<T = any>(response: Promise<GraphQLResponse<T>>): Promise<T> {
  const r = await response;
  if (r.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
  return r.data as T;
}

/** A real graphql-ws client over a real socket. */
export function wsClient(baseUrl: string, options: Partial<Parameters<typeof createClient>[0]> = {}): Client {
  return createClient({ url: `${baseUrl.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, ...options });
}

/** Runs a subscription to its end and returns everything it sent. */
export function collect<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}, onNext?: (value: T) => void): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    client.subscribe<T>(
      { query, variables },
      {
        next: (v) => {
          if (v.errors?.length) return reject(new Error(JSON.stringify(v.errors)));
          out.push(v.data as T);
          onNext?.(v.data as T);
        },
        error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
        complete: () => resolve(out),
      },
    );
  });
}

/** Follows a subscription: what it sent so far, a promise of its end, and a way to await one value. */
export function follow<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}) {
  const values: T[] = [];
  const waiters = new Set<() => void>();
  const done = new Promise<T[]>((resolve, reject) => {
    client.subscribe<T>(
      { query, variables },
      {
        next: (v) => {
          if (v.errors?.length) return reject(new Error(JSON.stringify(v.errors)));
          values.push(v.data as T);
          waiters.forEach((w) => w());
        },
        error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
        complete: () => resolve(values),
      },
    );
  });
  done.catch(() => undefined);
  return {
    values,
    done,
    /** Resolves with the first value (already sent or still to come) that matches. */
    until(match: (value: T) => boolean): Promise<T> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = values.find(match);
          if (found) {
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        done.then(() => {
          check();
          reject(new Error('the subscription ended without a matching value'));
        }, reject);
        check();
      });
    },
  };
}

/** The id of the model of this name (the built-in image model by default), asked of the API as a client would. */
export async function modelIdNamed(gql: GraphQLClient, name = 'kiln-builtin'): Promise<string> {
  const { models } = await ok(gql<{ models: { edges: { node: { id: string; name: string } }[] } }>('{ models(first: 100) { edges { node { id name } } } }'));
  const found = models.edges.find((e) => e.node.name === name);
  if (!found) throw new Error(`no model named ${name}`);
  return found.node.id;
}
