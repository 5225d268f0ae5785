import { hasFolder, inFolders, LayoutRefusal } from '../install-files.js';
import { BFL_PARTS, OPTIMUM_PARTS, PRECISION_ORDER } from './model-folder.js';

const TRANSFORMERS = 'transformer.opt';

/**
 * The files a FLUX.1 model needs of a repository in one of its layouts (see model-folder.ts).
 * Optimum: model_index.json and the part folders. BFL: the part folders with one transformer
 * precision, fp16 before fp32, since the others (bf16, fp8, fp4) are made for TensorRT and
 * onnxruntime cannot run them; a repository with none of the two, or without the tokenizers Kiln
 * needs offline, is refused before anything is downloaded.
 */
export function fluxInstallFiles(paths: string[]): string[] | undefined {
  if (hasFolder(paths, TRANSFORMERS)) {
    const precisions = [...new Set(paths.filter((p) => p.startsWith(`${TRANSFORMERS}/`) && p.split('/').length > 2).map((p) => p.split('/')[1]!))];
    // A graph directly in transformer.opt/ is the one the folder runs (as model-folder.ts reads it).
    const direct = paths.includes(`${TRANSFORMERS}/model.onnx`);
    const chosen = direct ? undefined : PRECISION_ORDER.find((p) => precisions.includes(p));
    if (!direct && !chosen) {
      throw new LayoutRefusal(
        `${TRANSFORMERS}/ holds ${precisions.join(', ')} transformers, none of which onnxruntime runs; Kiln runs ${PRECISION_ORDER.map((p) => `${TRANSFORMERS}/${p}/`).join(' or ')} (name files to take another anyway)`,
      );
    }
    const missing = ['tokenizer', 'tokenizer_2'].filter((f) => !hasFolder(paths, f));
    if (missing.length) {
      throw new LayoutRefusal(`The repository has no ${missing.join(' or ')} folder: the BFL export ships no tokenizers, and Kiln runs offline, so they must be in the model (from the FLUX.1 repository).`);
    }
    const transformer = direct ? paths.filter((p) => p.startsWith(`${TRANSFORMERS}/`) && p.split('/').length === 2) : inFolders(paths, [`${TRANSFORMERS}/${chosen}`]);
    return [...inFolders(paths, BFL_PARTS.filter((f) => f !== TRANSFORMERS)), ...transformer];
  }
  if (paths.includes('model_index.json') && hasFolder(paths, 'transformer')) return ['model_index.json', ...inFolders(paths, OPTIMUM_PARTS)];
  return undefined;
}
