import type { DataSource, EntityManager } from 'typeorm';

/**
 * SQLSTATEs of a transaction Postgres rolled back so that others could go on: 40P01
 * deadlock_detected, 40001 serialization_failure. Running it again is the remedy.
 */
const ROLLED_BACK_FOR_OTHERS = new Set(['40P01', '40001']);
const ATTEMPTS = 3;

/**
 * `ds.transaction(work)`, run again when Postgres made it a deadlock's victim. The API's job
 * transactions lock a job's row and then its pg-boss row; a worker's claim takes them the other
 * way round (pg-boss picks the job first), so a cancel or a delete racing a claim of the same job
 * can deadlock, and Postgres ends one of the two after `deadlock_timeout`. Everything `work` did
 * was rolled back, so it runs again from the start.
 */
export async function retriedTransaction<T>(ds: DataSource, work: (em: EntityManager) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ds.transaction(work);
    } catch (err) {
      if (attempt >= ATTEMPTS || !ROLLED_BACK_FOR_OTHERS.has(sqlStateOf(err))) throw err;
    }
  }
}

/** TypeORM's QueryFailedError carries pg's error as driverError, and copies its code. */
function sqlStateOf(err: unknown): string {
  const e = err as { code?: unknown; driverError?: { code?: unknown } } | null;
  return String(e?.driverError?.code ?? e?.code ?? '');
}
