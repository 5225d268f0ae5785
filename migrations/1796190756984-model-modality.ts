import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Models say what their pipeline makes, and each modality has a default model of its own (the
 * built-in image model and the built-in music model). Every model before this was an image model.
 */
export class ModelModality1796190756984 implements MigrationInterface {
  name = 'ModelModality1796190756984';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query("DROP INDEX \"public\".\"models_one_default\"");
    await runner.query("ALTER TABLE \"models\" ADD \"modality\" text NOT NULL DEFAULT 'image'");
    await runner.query("CREATE UNIQUE INDEX \"models_one_default\" ON \"models\"  (\"modality\") WHERE is_default");
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query("DROP INDEX \"public\".\"models_one_default\"");
    // One default in all again: the image one.
    await runner.query("UPDATE \"models\" SET is_default = false WHERE modality <> 'image'");
    await runner.query("ALTER TABLE \"models\" DROP COLUMN \"modality\"");
    await runner.query("CREATE UNIQUE INDEX \"models_one_default\" ON \"models\" USING btree (\"is_default\") WHERE is_default");
  }
}
