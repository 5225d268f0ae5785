import { BUILTIN_FILES } from '../pipelines/builtin/model-files.js';

/**
 * Which graph files of a model take which parts of a LoRA adapter, per pipeline. An adapter's
 * part is the component its keys name (lora-adapter.ts): `unet` for `lora_unet_…` and `unet.…`,
 * `transformer`, `diffusion_model`, `text_encoder` for `lora_te_`/`lora_te1_`/`text_encoder.`,
 * `text_encoder_2` for `lora_te2_`/`text_encoder_2.`, or none (bare PEFT saves, XLabs).
 */

export interface LoraGraphTarget {
  /** The graph, relative to the model's folder: the first of these that the folder has. */
  files: string[];
  /** What the graph is, in messages and reports. */
  component: string;
  /** The adapter components it takes. */
  prefixes: string[];
  /** Whether it takes modules whose keys name no component: the denoiser does. */
  unprefixed: boolean;
}

const denoiser = (files: string[], component: string, prefixes: string[]): LoraGraphTarget => ({ files, component, prefixes, unprefixed: true });
const textEncoder = (folder: string): LoraGraphTarget => ({ files: [`${folder}/model.onnx`], component: folder, prefixes: [folder], unprefixed: false });

// kohya names a FLUX transformer `lora_unet_`, ComfyUI `diffusion_model.`.
const UNET = denoiser(['unet/model.onnx', 'unet/model_layernorm.onnx'], 'unet', ['unet', 'diffusion_model']);

/** The model families' graphs, for pipelines to be wired to by name. */
export const LORA_GRAPHS = {
  builtin: [denoiser([BUILTIN_FILES.denoiser], 'denoiser', ['denoiser'])],
  'stable-diffusion': [UNET, { ...textEncoder('text_encoder'), files: ['text_encoder/model.onnx', 'text_encoder/model_layernorm.onnx'] }],
  'stable-diffusion-xl': [UNET, textEncoder('text_encoder'), textEncoder('text_encoder_2')],
  flux: [
    // Optimum's layout, then the BFL export's precision folders.
    denoiser(['transformer/model.onnx', 'transformer.opt/fp16/model.onnx', 'transformer.opt/fp32/model.onnx'], 'transformer', ['transformer', 'unet', 'diffusion_model']),
    textEncoder('text_encoder'),
  ],
} as const satisfies Record<string, readonly LoraGraphTarget[]>;

/** The pipelines that take LoRA adapters, by the name they are registered under. */
export const pipelineLoraGraphs: Record<string, readonly LoraGraphTarget[]> = {
  builtin: LORA_GRAPHS.builtin,
  'stable-diffusion-onnx': LORA_GRAPHS['stable-diffusion'],
  'stable-diffusion-xl-onnx': LORA_GRAPHS['stable-diffusion-xl'],
  'flux-onnx': LORA_GRAPHS.flux,
};
