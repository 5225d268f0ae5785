import { parseLoraAdapter } from '../../models/lora-adapter.js';
import { loraPatcher } from '../../models/lora-merge.js';
import { BUILTIN_DEFAULTS, BUILTIN_FILES } from '../../pipelines/builtin/model-files.js';
import { loadBuiltinPipeline } from '../../pipelines/builtin/pipeline.js';
import type { RgbImage } from '../../pipelines/pipeline.js';

/** Denoising steps of a sample image: the built-in model's default. */
export const SAMPLE_STEPS = 8;

/**
 * Images of the adapter as it stands, through the real built-in pipeline with the adapter
 * merged at weight 1, exactly as a generation with it would make them: one per prompt, all
 * from the same seed so that samples at different steps compare.
 */
export async function renderBuiltinSamples(modelDir: string, adapter: Uint8Array, prompts: string[], size: number, seed: number): Promise<RgbImage[]> {
  const graphPatch = loraPatcher(parseLoraAdapter(adapter), 1, { file: BUILTIN_FILES.denoiser });
  const pipeline = await loadBuiltinPipeline(modelDir, { executionProviders: ['cpu'], intraOpThreads: 1, graphPatches: [graphPatch] });
  try {
    const images: RgbImage[] = [];
    for (const prompt of prompts) {
      const request = { prompt, negativePrompt: null, steps: SAMPLE_STEPS, guidanceScale: BUILTIN_DEFAULTS.guidanceScale, width: size, height: size, seed, numImages: 1 };
      const { images: [image] } = await pipeline.generate(request, { signal: new AbortController().signal, onStep() {} });
      images.push({ width: image!.width, height: image!.height, data: image!.data });
    }
    return images;
  } finally {
    await pipeline.release();
  }
}
