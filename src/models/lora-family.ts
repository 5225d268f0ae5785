/**
 * The model family a LoRA says it was trained for, from the metadata trainers write into its
 * safetensors header: kohya's `ss_base_model_version` (`sd_v1`, `sdxl_base_v1-0`, `flux1`, …)
 * or the ModelSpec `modelspec.architecture` (`stable-diffusion-xl-v1-base/lora`,
 * `flux-1-dev/lora`, …). Null where neither is there or neither says a family Kiln knows.
 */

export type LoraFamily = 'sd1' | 'sd2' | 'sdxl' | 'sd3' | 'flux';

export interface LoraBaseFamily {
  family: LoraFamily;
  /** The metadata entry it was read from, and its value as written. */
  source: 'ss_base_model_version' | 'modelspec.architecture';
  value: string;
}

const FAMILIES: [RegExp, LoraFamily][] = [
  [/^flux|^flux-1/i, 'flux'],
  [/^sdxl|^stable-diffusion-xl|^ssd-1b|^playground-v2/i, 'sdxl'],
  [/^sd3|^stable-diffusion-3/i, 'sd3'],
  [/^sd_v2|^sd_2|^stable-diffusion-v2/i, 'sd2'],
  [/^sd_v1|^sd_1|^stable-diffusion-v1/i, 'sd1'],
];

export const FAMILY_NAMES: Record<LoraFamily, string> = { sd1: 'Stable Diffusion 1.x', sd2: 'Stable Diffusion 2.x', sdxl: 'SDXL', sd3: 'Stable Diffusion 3', flux: 'FLUX.1' };

export function loraBaseFamily(metadata: Record<string, string>): LoraBaseFamily | null {
  for (const source of ['ss_base_model_version', 'modelspec.architecture'] as const) {
    const value = metadata[source]?.trim();
    const family = value ? FAMILIES.find(([pattern]) => pattern.test(value))?.[1] : undefined;
    if (value && family) return { family, source, value };
  }
  return null;
}
