import type { DataSource, EntityManager } from 'typeorm';

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
