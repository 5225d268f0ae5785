/** What the tests read of trainer-standin-common.mjs. */

/** The stand-ins' loss of (0-based) step s. */
export function lossAt(step: number): number;
