import type { MigrationInterface, QueryRunner } from 'typeorm';

export class GenerationScheduler1795435610315 implements MigrationInterface {
  name = 'GenerationScheduler1795435610315';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query("ALTER TABLE \"generations\" ADD \"scheduler\" text");
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query("ALTER TABLE \"generations\" DROP COLUMN \"scheduler\"");
  }
}
