import type { ModelKind } from '../../db/entities/model.js';
import { JobFailure } from '../../errors.js';
import { isModelPath, MODEL_PATH } from '../../models/intake.js';
import { PIPELINES } from '../../pipelines/catalog.js';
import { anyLayoutFiles, LayoutRefusal } from '../../pipelines/install-files.js';

/**
 * `*` within a name, `**` across folders, `?` one character of a name; the pattern matches the
 * whole path.
 */
export function globPattern(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const list = (paths: string[], most = 8) => paths.slice(0, most).join(', ') + (paths.length > most ? `, … (${paths.length} in all)` : '');

/**
 * The files of a repository or archive to install. With patterns, the files they match (those
 * starting with `!` leaving files out); without, what the model's layout needs: the first
 * pipeline that knows the layout says, any other repository gives all its model files (one
 * variant of each graph), and a LoRA is its one .safetensors file. Throws a JobFailure saying
 * why nothing or no single choice fits.
 */
export function chooseFiles(paths: string[], kind: ModelKind, patterns: string[] | null): string[] {
  const include = (patterns ?? []).filter((p) => !p.startsWith('!')).map(globPattern);
  const exclude = (patterns ?? []).filter((p) => p.startsWith('!')).map((p) => globPattern(p.slice(1)));
  const kept = (ps: string[]) => ps.filter((p) => !exclude.some((re) => re.test(p)));

  let chosen: string[];
  if (include.length) {
    chosen = kept(paths.filter((p) => include.some((re) => re.test(p))));
    if (!chosen.length) throw new JobFailure('NO_MATCHING_FILES', `no file matches ${patterns!.join(', ')}; there are ${list(paths)}`, false);
    const odd = chosen.filter((p) => !isModelPath(p));
    if (odd.length) throw new JobFailure('NO_MATCHING_FILES', `${list(odd)} cannot be a model file: a model file's path must be ${MODEL_PATH}`, false);
  } else {
    const candidates = kept(paths.filter(isModelPath));
    chosen = kind === 'LORA' ? candidates.filter((p) => p.endsWith('.safetensors')) : layoutFiles(candidates);
    if (!chosen.length) throw new JobFailure('NO_MODEL_FILES', `there is no ${kind === 'LORA' ? '.safetensors file' : 'model file'} among ${list(paths)}`, false);
  }
  if (kind === 'LORA' && (chosen.length !== 1 || !chosen[0]!.endsWith('.safetensors'))) {
    throw new JobFailure('NO_MATCHING_FILES', `a LoRA adapter is one .safetensors file; choose one of ${list(chosen)} with files`, false);
  }
  return chosen.sort();
}

/** The first pipeline that claims the layout decides; a refusal stands only when none claims it. */
function layoutFiles(paths: string[]): string[] {
  let refusal: JobFailure | undefined;
  for (const pipeline of PIPELINES) {
    try {
      const files = pipeline.installFiles?.(paths);
      if (files) return files;
    } catch (err) {
      if (!(err instanceof LayoutRefusal)) throw err;
      refusal ??= new JobFailure('UNSUPPORTED_MODEL', `${pipeline.name}: ${err.message}`, false);
    }
  }
  if (refusal) throw refusal;
  return anyLayoutFiles(paths);
}
