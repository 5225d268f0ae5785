import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBuiltinLora } from '../../src/models/builtin-lora.js';
import { parseLoraAdapter } from '../../src/models/lora-adapter.js';
import { loraPatcher, mergeLora } from '../../src/models/lora-merge.js';
import { parseSafetensors } from '../../src/models/safetensors.js';
import { BUILTIN_FILES, buildBuiltinModel, builtinLoraTargets } from '../../src/pipelines/builtin/model-files.js';
import { loadBuiltinPipeline } from '../../src/pipelines/builtin/pipeline.js';
import type { GenerateRequest, GraphPatch } from '../../src/pipelines/pipeline.js';

const REQUEST: GenerateRequest = { prompt: 'a kiln at night', negativePrompt: null, steps: 4, guidanceScale: 7.5, width: 64, height: 48, seed: 3, numImages: 1 };
const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
const meanAbsDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;

describe('LoRAs for the built-in model', () => {
  let dir: string;
  const denoiser = buildBuiltinModel().find((f) => f.path === BUILTIN_FILES.denoiser)!.bytes;

  /** One image through loadBuiltinPipeline, with the graph patched as given. */
  const image = async (graphPatch?: GraphPatch) => {
    const pipeline = await loadBuiltinPipeline(dir, { executionProviders: ['cpu'], ...(graphPatch && { graphPatches: [graphPatch] }) });
    try {
      return (await pipeline.generate(REQUEST, { signal: new AbortController().signal, onStep() {} })).images[0]!.data;
    } finally {
      await pipeline.release();
    }
  };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-builtin-lora-'));
    for (const f of buildBuiltinModel()) await fs.writeFile(path.join(dir, f.path), f.bytes);
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('makes the same adapter for the same seed, another for another seed, in Kiln’s key format', () => {
    const a = makeBuiltinLora({ seed: 1 });
    expect(sha(makeBuiltinLora({ seed: 1 }))).toBe(sha(a));
    expect(sha(makeBuiltinLora({ seed: 2 }))).not.toBe(sha(a));
    const header = parseSafetensors(makeBuiltinLora({ rank: 3 }));
    expect(header.metadata['kiln.pipeline']).toBe('builtin');
    expect(header.tensors.map((t) => [t.name, t.shape])).toContainEqual(['denoiser.layer2.lora_A.weight', [3, 32]]);
    const modules = parseLoraAdapter(a).modules;
    expect(modules.map((m) => [m.component, m.path, m.up.shape[0], m.down.shape[1]])).toEqual(Object.entries(builtinLoraTargets).map(([m, [out, inner]]) => ['denoiser', m, out, inner]));
  });

  it('changes the generated image visibly, and loading the base again gives the base image byte for byte', async () => {
    const base = await image();
    const patcher = loraPatcher(parseLoraAdapter(makeBuiltinLora()), 1, { file: BUILTIN_FILES.denoiser });
    const withLora = await image(patcher);
    expect(patcher.report().matched.map((m) => m.initializer)).toEqual(Object.keys(builtinLoraTargets).map((m) => `${m}.weight`));
    // Pixels are 0..255 and the same request is bit-identical, so the noise floor is 0.
    expect(meanAbsDiff(base, withLora)).toBeGreaterThan(20);
    const half = await image(loraPatcher(parseLoraAdapter(makeBuiltinLora()), 0.25, { file: BUILTIN_FILES.denoiser }));
    expect(meanAbsDiff(base, half)).toBeGreaterThan(5);
    expect(meanAbsDiff(base, half)).toBeLessThan(meanAbsDiff(base, withLora));
    expect(sha(await image())).toBe(sha(base));
    expect(sha(await image(loraPatcher(parseLoraAdapter(makeBuiltinLora()), 0, { file: BUILTIN_FILES.denoiser })))).toBe(sha(base));
  });

  it('never stacks: weight 0 is the base, a merge after another equals it alone, the same merge twice is the same bytes', () => {
    const a = parseLoraAdapter(makeBuiltinLora({ seed: 1 }));
    const b = parseLoraAdapter(makeBuiltinLora({ seed: 2 }));
    const options = { component: 'denoiser' };
    expect(sha(mergeLora(denoiser, a, 0, options).bytes)).toBe(sha(denoiser));
    const bAlone = sha(mergeLora(denoiser, b, 0.8, options).bytes);
    const patcherA = loraPatcher(a, 1, { file: BUILTIN_FILES.denoiser });
    const patcherB = loraPatcher(b, 0.8, { file: BUILTIN_FILES.denoiser });
    expect(sha(patcherA.apply(denoiser))).not.toBe(bAlone);
    expect(sha(patcherB.apply(denoiser))).toBe(bAlone);
    expect(sha(mergeLora(denoiser, a, 1, options).bytes)).toBe(sha(mergeLora(denoiser, a, 1, options).bytes));
    expect(sha(denoiser)).toBe(sha(buildBuiltinModel().find((f) => f.path === BUILTIN_FILES.denoiser)!.bytes));
  });

  it('is made by scripts/make-builtin-lora.ts, the same file as the function makes', async () => {
    const out = path.join(dir, 'style.safetensors');
    await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/make-builtin-lora.ts', '--out', out, '--rank', '2', '--seed', '7', '--strength', '0.5']);
    expect(sha(new Uint8Array(await fs.readFile(out)))).toBe(sha(makeBuiltinLora({ rank: 2, seed: 7, strength: 0.5 })));
  });
});
