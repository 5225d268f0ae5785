import type { GenerateInput } from '../api/operations';
import type { Generation } from '../kinds/image-kind';

/** The input that makes this generation again: same model, LoRA, parameters and seed. */
export function parametersOf(g: Generation): GenerateInput {
  return {
    prompt: g.prompt,
    negativePrompt: g.negativePrompt,
    modelId: g.model.id,
    loraId: g.lora?.id ?? null,
    loraWeight: g.lora ? g.loraWeight : null,
    numImages: g.numImages,
    steps: g.steps,
    guidanceScale: g.guidanceScale,
    width: g.width,
    height: g.height,
    seed: g.seed,
    scheduler: g.scheduler,
    priority: g.priority,
    previews: g.previews,
    originalSize: g.originalSize,
    cropsCoordsTopLeft: g.cropsCoordsTopLeft,
    targetSize: g.targetSize,
  };
}

/** The input without its unset fields, as text to paste into GraphiQL or a script. */
export const parametersText = (input: GenerateInput) =>
  JSON.stringify(Object.fromEntries(Object.entries(input).filter(([, v]) => v !== null && v !== undefined)), null, 2);
