import type { DataSource } from 'typeorm';

/** Forgets deliveries finished more than `days` ago, with their attempts (a reconciler housekeeping task). */
export async function pruneDeliveries(ds: DataSource, days: number): Promise<void> {
  await ds.query(`DELETE FROM webhook_deliveries WHERE finished_at < now() - make_interval(days => $1)`, [days]);
}
