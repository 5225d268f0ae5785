import fs from 'node:fs/promises';
import path from 'node:path';
import { JobFailure } from '../../errors.js';
import type { BaseModelSpec, StableDiffusionArchitecture } from '../trainer.js';

export interface TrainingBase {
  /** What the tool loads: the spec's training weights, else the model folder. */
  weights: string;
  architecture: StableDiffusionArchitecture;
  /** The scheduler predicts velocity (SD 2.x 768-v and the like). */
  vPrediction: boolean;
}

/**
 * Which Stable Diffusion family the external tool trains, from the spec or else from the
 * UNet's `config.json` (cross-attention width 768: SD 1.x, 1024: SD 2.x, 2048 or SDXL's
 * text-time embedding: SDXL), and whether it predicts velocity (`scheduler_config.json`).
 */
export async function trainingBase(base: BaseModelSpec): Promise<TrainingBase> {
  const weights = base.trainingWeights ?? base.dir;
  const folders = [...new Set([weights, base.dir])];
  const unet = await firstJson(folders.map((f) => path.join(f, 'unet', 'config.json')));
  const scheduler = await firstJson(folders.map((f) => path.join(f, 'scheduler', 'scheduler_config.json')));
  const architecture = base.architecture ?? (unet ? architectureOf(unet) : null);
  if (!architecture) {
    throw new JobFailure('TRAINING_INVALID', 'the base model does not say which Stable Diffusion family it is (no unet/config.json with a known cross_attention_dim), so external trainers cannot train it', false);
  }
  return { weights, architecture, vPrediction: scheduler?.prediction_type === 'v_prediction' };
}

function architectureOf(config: Record<string, unknown>): StableDiffusionArchitecture | null {
  if (config.addition_embed_type === 'text_time') return 'sdxl';
  const width = config.cross_attention_dim;
  return width === 768 ? 'sd1' : width === 1024 ? 'sd2' : width === 2048 ? 'sdxl' : null;
}

async function firstJson(files: string[]): Promise<Record<string, unknown> | null> {
  for (const file of files) {
    const text = await fs.readFile(file, 'utf8').catch(() => null);
    if (text === null) continue;
    try {
      const json: unknown = JSON.parse(text);
      if (json && typeof json === 'object' && !Array.isArray(json)) return json as Record<string, unknown>;
    } catch {
      // Not JSON: look at the next one.
    }
  }
  return null;
}
