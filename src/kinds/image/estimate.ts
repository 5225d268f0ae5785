import type { EntityManager } from 'typeorm';
import type { ImageParams } from './params.js';

/** Used until a model has finished generations to learn from: per image, 1 s + 0.1 s per step at 512². */
export const FALLBACK = { overheadMs: 1000, msPerStepMegapixel: 100 / 0.262144 };

/**
 * Seconds these generations take one after another, from each model's last 50 completed runs:
 * their fixed cost (loading, encoding, saving) plus their denoising time per step and megapixel,
 * scaled to each input. Queue wait is not included.
 */
export async function estimateImageSeconds(em: EntityManager, params: ImageParams[]): Promise<number> {
  const modelIds = [...new Set(params.map((p) => p.modelId))];
  const rows: { model_id: string; overhead_ms: number | null; ms_per_step_mp: number | null }[] = await em.query(
    `SELECT model_id,
            avg((timing->>'totalMs')::float - (timing->>'generateMs')::float) AS overhead_ms,
            sum((timing->>'generateMs')::float) / NULLIF(sum(
              (params->>'steps')::float * (params->>'width')::float * (params->>'height')::float * (params->>'numImages')::float / 1e6), 0) AS ms_per_step_mp
     FROM (
       SELECT j.timing, j.params, m.model_id, row_number() OVER (PARTITION BY m.model_id ORDER BY j.completed_at DESC) AS n
       FROM jobs j JOIN job_models m ON m.job_id = j.id AND m.role = 'model'
       WHERE j.kind = 'image' AND j.status = 'COMPLETED' AND m.model_id = ANY($1) AND j.timing ? 'generateMs'
     ) recent
     WHERE n <= 50 GROUP BY model_id`,
    [modelIds],
  );
  const rates = new Map(rows.map((r) => [r.model_id, r]));
  const ms = params.reduce((sum, p) => {
    const r = rates.get(p.modelId);
    const overhead = r?.overhead_ms ?? FALLBACK.overheadMs;
    const perStep = r?.ms_per_step_mp ?? FALLBACK.msPerStepMegapixel;
    return sum + overhead + perStep * p.steps * ((p.width * p.height) / 1e6) * p.numImages;
  }, 0);
  return Math.round(ms / 10) / 100;
}
