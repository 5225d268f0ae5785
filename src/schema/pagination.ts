import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { badInput } from '../errors.js';

/** A row's place in a newest-first listing. */
export interface Key {
  createdAt: Date;
  id: string;
}

export interface PageArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface PageQuery {
  /** Rows strictly older than this key (forward paging). */
  olderThan?: Key;
  /** Rows strictly newer than this key (backward paging). */
  newerThan?: Key;
  /** Oldest first instead of newest first (backward paging reads from the other end). */
  ascending: boolean;
  limit: number;
}

const DEFAULT_PAGE = 20;
const MAX_PAGE = 100;

export const encodeCursor = (k: Key) => Buffer.from(JSON.stringify([k.createdAt.toISOString(), k.id])).toString('base64url');

function decodeCursor(cursor: string, field: string): Key {
  try {
    const [iso, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [string, string];
    const createdAt = new Date(iso);
    if (typeof id !== 'string' || Number.isNaN(createdAt.getTime())) throw new Error();
    return { createdAt, id };
  } catch {
    throw badInput(field, 'is not a cursor from this list');
  }
}

/**
 * Relay cursor paging over a newest-first list keyed by (createdAt, id): `fetch` reads at most
 * `limit` rows for the query; one extra row tells whether another page follows.
 */
export async function keysetConnection<T extends Key>(args: PageArgs, fetch: (q: PageQuery) => Promise<T[]>) {
  const backward = args.last != null || args.before != null;
  const size = backward ? (args.last ?? DEFAULT_PAGE) : (args.first ?? DEFAULT_PAGE);
  const sizeField = backward ? 'last' : 'first';
  if (size < 0 || size > MAX_PAGE) throw badInput(sizeField, `must be between 0 and ${MAX_PAGE}`);
  const query: PageQuery = backward
    ? { ...(args.before ? { newerThan: decodeCursor(args.before, 'before') } : {}), ascending: true, limit: size + 1 }
    : { ...(args.after ? { olderThan: decodeCursor(args.after, 'after') } : {}), ascending: false, limit: size + 1 };
  const rows = await fetch(query);
  const more = rows.length > size;
  const page = rows.slice(0, size);
  if (backward) page.reverse();
  const edges = page.map((node) => ({ cursor: encodeCursor(node), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: backward ? false : more,
      hasPreviousPage: backward ? more : false,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

/** Narrows and orders a query builder to one page (entities with createdAt and id). */
export function applyKeyset<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, q: PageQuery): SelectQueryBuilder<T> {
  const a = qb.alias;
  const dir = q.ascending ? 'ASC' : 'DESC';
  const key = q.olderThan ?? q.newerThan;
  if (key) {
    qb.andWhere(`(${a}.createdAt, ${a}.id) ${q.olderThan ? '<' : '>'} (:keyCreatedAt, :keyId)`, { keyCreatedAt: key.createdAt, keyId: key.id });
  }
  return qb.orderBy(`${a}.createdAt`, dir).addOrderBy(`${a}.id`, dir).limit(q.limit);
}
