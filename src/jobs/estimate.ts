import type { EntityManager } from 'typeorm';
import type { GenerationParams } from './generate-input.js';

/** Used until a model has finished generations to learn from: per image, 1 s + 0.1 s per step at 512². */
export const FALLBACK = { overheadMs: 1000, msPerStepMegapixel: 100 / 0.262144 };

/**
 * Seconds these generations will take to run one after another, from the model's last 50
 * completed runs: their fixed cost (loading, encoding, saving) plus their denoising time per
 * step and megapixel, scaled to each input. Queue wait is not included.
 */
export async function estimateSeconds(em: EntityManager, params: GenerationParams[]): Promise<number> {
  const modelIds = [...new Set(params.map((p) => p.modelId))];
  const rows: { model_id: string; overhead_ms: number | null; ms_per_step_mp: number | null }[] = await em.query(
    `SELECT model_id,
            avg((timing->>'totalMs')::float - (timing->>'generateMs')::float) AS overhead_ms,
            sum((timing->>'generateMs')::float) / NULLIF(sum(steps * width * height * num_images / 1e6), 0) AS ms_per_step_mp
     FROM (
       SELECT *, row_number() OVER (PARTITION BY model_id ORDER BY completed_at DESC) AS n
       FROM generations WHERE status = 'COMPLETED' AND model_id = ANY($1) AND timing ? 'generateMs'
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
