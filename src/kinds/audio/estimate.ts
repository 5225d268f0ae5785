import type { EntityManager } from 'typeorm';
import { BUILTIN_MUSIC_PIPELINE } from '../../pipelines/builtin-music/model-files.js';
import { audioDecoderSteps, type ModelDefaults } from '../../pipelines/capabilities.js';
import { MUSICGEN_PIPELINE } from '../../pipelines/musicgen/model-folder.js';
import type { AudioParams } from './params.js';

/**
 * Used until a model has finished generations to learn from: 1 s of fixed cost per job, and
 * decoder steps per second by pipeline. The built-in model's figure is below what it runs on a
 * shared CPU core (thousands of frames a second); MusicGen's is a cautious guess for
 * musicgen-small's decoder on a CPU with guidance, not a measurement, replaced by the model's
 * own rate after its first run.
 */
export const FALLBACK = { overheadMs: 1000, decoderStepsPerSecond: { [BUILTIN_MUSIC_PIPELINE]: 1000, [MUSICGEN_PIPELINE]: 10 } as Record<string, number> };

/** Recent runs of a model that its rate is learnt from. */
const RECENT_RUNS = 50;

/**
 * Seconds these generations take one after another, from each model's last 50 completed runs:
 * their fixed cost (loading, encoding, saving: total time less generation time) and their
 * decoder steps per second (the steps their durations took, over their generation time),
 * applied to each input's steps. Queue wait is not included.
 */
export async function estimateAudioSeconds(em: EntityManager, params: AudioParams[]): Promise<number> {
  const modelIds = [...new Set(params.map((p) => p.modelId))];
  const models: { id: string; pipeline: string; defaults: ModelDefaults }[] = await em.query('SELECT id, pipeline, defaults FROM models WHERE id = ANY($1)', [modelIds]);
  const runs: { model_id: string; total_ms: number; generate_ms: number; duration: number }[] = await em.query(
    `SELECT model_id, total_ms, generate_ms, duration FROM (
       SELECT m.model_id, (j.timing->>'totalMs')::float AS total_ms, (j.timing->>'generateMs')::float AS generate_ms,
              (j.params->>'durationSeconds')::float AS duration,
              row_number() OVER (PARTITION BY m.model_id ORDER BY j.completed_at DESC) AS n
       FROM jobs j JOIN job_models m ON m.job_id = j.id AND m.role = 'model'
       WHERE j.kind = 'audio' AND j.status = 'COMPLETED' AND m.model_id = ANY($1) AND j.timing ? 'generateMs' AND j.timing ? 'totalMs'
     ) recent
     WHERE n <= $2`,
    [modelIds, RECENT_RUNS],
  );
  const rates = new Map(
    models.map((model) => {
      const own = runs.filter((r) => r.model_id === model.id);
      const generateMs = own.reduce((s, r) => s + r.generate_ms, 0);
      const steps = own.reduce((s, r) => s + audioDecoderSteps(model.defaults, r.duration), 0);
      const measured = own.length > 0 && generateMs > 0;
      return [
        model.id,
        {
          defaults: model.defaults,
          overheadMs: measured ? own.reduce((s, r) => s + (r.total_ms - r.generate_ms), 0) / own.length : FALLBACK.overheadMs,
          stepsPerSecond: measured ? steps / (generateMs / 1000) : (FALLBACK.decoderStepsPerSecond[model.pipeline] ?? FALLBACK.decoderStepsPerSecond[MUSICGEN_PIPELINE]!),
        },
      ];
    }),
  );
  const ms = params.reduce((sum, p) => {
    const r = rates.get(p.modelId)!;
    return sum + r.overheadMs + (audioDecoderSteps(r.defaults, p.durationSeconds) / r.stepsPerSecond) * 1000;
  }, 0);
  return Math.round(ms / 10) / 100;
}
