import type { MigrationInterface, QueryRunner } from 'typeorm';

export class RateLimits1795435832331 implements MigrationInterface {
  name = 'RateLimits1795435832331';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query("CREATE TABLE \"rate_limit_buckets\" (\"key\" text NOT NULL, \"tokens\" double precision NOT NULL, \"updated_at\" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT \"PK_9eb2f8a2ae370667b4ca83dd313\" PRIMARY KEY (\"key\"))");
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query("DROP TABLE \"rate_limit_buckets\"");
  }
}
