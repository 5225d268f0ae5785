import { hasFolder, inFolders, LayoutRefusal } from '../install-files.js';
import { PART_FOLDERS } from './model-folder.js';

/**
 * The files an SDXL model needs of a repository in Optimum's layout (see model-folder.ts):
 * model_index.json and its part folders, without the VAE encoder or PyTorch weights that exports
 * carry. Told from Stable Diffusion 1.x/2.x by the second text encoder beside the UNet.
 */
export function stableDiffusionXLInstallFiles(paths: string[]): string[] | undefined {
  const has = (folder: string) => hasFolder(paths, folder);
  if (!has('unet') || !has('text_encoder_2') || has('transformer')) return undefined;
  if (!paths.includes('model_index.json')) throw new LayoutRefusal('This SDXL export has no model_index.json, which says which pipeline its parts make up.');
  const missing = ['tokenizer', 'tokenizer_2'].filter((f) => !has(f));
  if (missing.length) throw new LayoutRefusal(`The repository has no ${missing.join(' or ')} folder; Kiln runs offline, so the CLIP tokenizer files must be in the model.`);
  return ['model_index.json', ...inFolders(paths, PART_FOLDERS)];
}
