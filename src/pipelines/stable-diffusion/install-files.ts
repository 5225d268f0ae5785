import { hasFolder, inFolders, LayoutRefusal } from '../install-files.js';
import { PART_FOLDERS } from './model-folder.js';

/**
 * The files a Stable Diffusion model needs of a repository in one of its layouts (see
 * model-folder.ts): model_index.json (optimum) and its part folders, without the VAE encoder,
 * safety checker or feature extractor that exports often carry. Undefined for repositories in
 * other layouts (FLUX.1's transformer, SDXL's second text encoder).
 */
export function stableDiffusionInstallFiles(paths: string[]): string[] | undefined {
  const has = (folder: string) => hasFolder(paths, folder);
  if (!has('unet') || has('transformer') || has('text_encoder_2')) return undefined;
  const index = paths.includes('model_index.json');
  if (!index && !(has('text_encoder') && has('vae_decoder'))) return undefined;
  if (!has('tokenizer')) throw new LayoutRefusal('The repository has no tokenizer/ folder; Kiln runs offline, so the CLIP tokenizer files must be in the model.');
  return [...(index ? ['model_index.json'] : []), ...inFolders(paths, PART_FOLDERS)];
}
