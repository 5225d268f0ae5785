import type { DataSource, EntityManager, EntityTarget } from 'typeorm';

/**
 * The rows a statement returns. TypeORM's `query()` answers UPDATE and DELETE with
 * [rows, rowCount] instead of the rows, so statements with RETURNING go through here.
 */
export async function queryRows<T = Record<string, any>>(db: DataSource | EntityManager, text: string, params: unknown[] = []): Promise<T[]> {
  const manager = 'manager' in db ? db.manager : db;
  const runner = manager.queryRunner ?? manager.connection.createQueryRunner();
  try {
    return (await runner.query(text, params, true)).records as T[];
  } finally {
    if (!manager.queryRunner) await runner.release();
  }
}

/** An entity from a raw row (snake_case columns), through the entity's own column mapping. */
export function entityFromRow<T>(db: DataSource | EntityManager, entity: EntityTarget<T>, row: Record<string, unknown>): T {
  const ds = 'manager' in db ? db : db.connection;
  const out: Record<string, unknown> = {};
  for (const column of ds.getMetadata(entity).columns) {
    let value = row[column.databaseName];
    for (const t of [column.transformer ?? []].flat()) value = t.from(value);
    out[column.propertyName] = value;
  }
  return out as T;
}
