import crypto from 'node:crypto';

/**
 * The affinity (pg-boss group) of jobs that would reuse one loaded session: derived from the
 * session cache key the runner keeps it under, so that a worker can tell from what its runner
 * has loaded which waiting jobs are warm for it.
 */
export const affinityOf = (sessionKey: string) => crypto.createHash('sha256').update(sessionKey).digest('hex').slice(0, 32);
