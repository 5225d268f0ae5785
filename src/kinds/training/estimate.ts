import type { EntityManager } from 'typeorm';
import type { TrainerName } from '../../trainers/trainer.js';
import type { TrainingParams } from './params.js';

/**
 * Used until a trainer has finished trainings to learn from: milliseconds per step and trained
 * pixel (batch × resolution²), and per training beside its steps. builtin: 9.5 steps/s at 32² and
 * batch 4 on a 2-core machine; the GPU tools: about a second per step at 512², a minute to load.
 */
export const FALLBACK: Record<TrainerName, { overheadMs: number; msPerStepPixel: number }> = {
  builtin: { overheadMs: 3000, msPerStepPixel: 105 / 4096 },
  'ai-toolkit': { overheadMs: 60_000, msPerStepPixel: 1000 / 262_144 },
  'sd-scripts': { overheadMs: 60_000, msPerStepPixel: 1000 / 262_144 },
};

/**
 * Seconds these trainings take one after another, from each trainer's last 20 completed runs:
 * their fixed cost (dataset, model, saving) and their training time per step and trained pixel,
 * scaled to each input. Queue wait is not included.
 */
export async function estimateTrainingSeconds(em: EntityManager, params: TrainingParams[]): Promise<number> {
  const trainers = [...new Set(params.map((p) => p.trainer))];
  const rows: { trainer: TrainerName; overhead_ms: number | null; ms_per_step_pixel: number | null }[] = await em.query(
    `SELECT trainer,
            avg((timing->>'totalMs')::float - (timing->>'generateMs')::float) AS overhead_ms,
            sum((timing->>'generateMs')::float) / NULLIF(sum(
              (params->>'steps')::float * (params->>'batchSize')::float * (params->>'resolution')::float ^ 2), 0) AS ms_per_step_pixel
     FROM (
       SELECT timing, params, params->>'trainer' AS trainer, row_number() OVER (PARTITION BY params->>'trainer' ORDER BY completed_at DESC) AS n
       FROM jobs WHERE kind = 'training' AND status = 'COMPLETED' AND params->>'trainer' = ANY($1) AND timing ? 'generateMs'
     ) recent
     WHERE n <= 20 GROUP BY trainer`,
    [trainers],
  );
  const rates = new Map(rows.map((r) => [r.trainer, r]));
  const ms = params.reduce((sum, p) => {
    const r = rates.get(p.trainer);
    const overhead = r?.overhead_ms ?? FALLBACK[p.trainer].overheadMs;
    const perPixel = r?.ms_per_step_pixel ?? FALLBACK[p.trainer].msPerStepPixel;
    return sum + overhead + perPixel * p.steps * p.batchSize * p.resolution ** 2;
  }, 0);
  return Math.round(ms / 10) / 100;
}
