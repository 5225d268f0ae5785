/**
 * Which files of a published model repository a model needs: what an install downloads when the
 * client names no files. Repositories carry more than a model runs: READMEs and sample images,
 * PyTorch or Flax weights beside the ONNX graphs, and the same graph in several precisions
 * (`onnx/decoder_model.onnx`, `onnx/decoder_model_fp16.onnx`, `…_quantized.onnx`). Each pipeline
 * names the folders of its layouts (its `installFiles`); within them, and for repositories no
 * pipeline claims, the rules below apply.
 */

/** Weights in formats no Kiln pipeline runs, which ONNX exports often ship beside their graphs. */
const FOREIGN_WEIGHTS = /\.(bin|pt|pth|ckpt|msgpack|h5|tflite|gguf|safetensors|npz)$/i;
/** Files that describe a repository rather than make up a model. */
const DOCUMENTS = /(^|\/)(README[^/]*|LICEN[CS]E[^/]*|NOTICE[^/]*|[^/]*\.(md|png|jpe?g|gif|webp|svg|mp4|ipynb))$/i;
/** `<graph>_<variant>.onnx` and its external data: the same graph in another precision or quantisation. */
const VARIANT = /^(.*)_(fp16|fp32|bf16|int8|uint8|q4|q4f16|q8|bnb4|quantized)\.onnx(_data|\.data)?$/;

/** A repository in a pipeline's layout that the pipeline cannot run, told from its file names alone. */
export class LayoutRefusal extends Error {
  override name = 'LayoutRefusal';
}

/** Whether a repository file can be part of a model at all (not a document, not weights Kiln does not run). */
export const isModelFile = (p: string) => !DOCUMENTS.test(p) && !FOREIGN_WEIGHTS.test(p);

/**
 * One precision of each graph: where `<graph>.onnx` is there, its variants (`<graph>_fp16.onnx`,
 * `<graph>_quantized.onnx`, … and their data files) are left out. A graph published only in
 * variants keeps them all: which one to take is then the client's choice.
 */
export function oneVariant(paths: string[]): string[] {
  const present = new Set(paths);
  return paths.filter((p) => {
    const m = VARIANT.exec(p);
    return !m || !present.has(`${m[1]}.onnx`);
  });
}

/** The model files under these folders (`unet`, `transformer.opt/fp16`), one variant of each graph. */
export function inFolders(paths: string[], folders: readonly string[]): string[] {
  return oneVariant(paths.filter((p) => isModelFile(p) && folders.some((f) => p.startsWith(`${f}/`))));
}

/** Whether any file lies under the folder. */
export const hasFolder = (paths: string[], folder: string) => paths.some((p) => p.startsWith(`${folder}/`));

/** For repositories no pipeline claims: every model file, one variant of each graph. */
export const anyLayoutFiles = (paths: string[]): string[] => oneVariant(paths.filter(isModelFile));
