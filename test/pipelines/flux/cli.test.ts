import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLUX_REFERENCE, FLUX_TINY, writeFluxFixture } from '../../support/flux-fixtures.js';
import { type CaseReference, hasFluxReference, psnr, readFluxReference } from '../../support/flux-reference.js';
import { writeSdFixture } from '../../support/sd-fixtures.js';

/** `npm run generate -- …` from the repository root: its exit code and output. */
function generate(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '-s', 'generate', '--', ...args], { cwd: path.resolve(import.meta.dirname, '../../..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const readFloats = async (file: string) => {
  const bytes = await fs.readFile(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-flux-cli-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('npm run generate with a FLUX.1 folder', () => {
  it('prints both forms with --help and exits 0', async () => {
    const { code, stdout } = await generate(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('usage: generate --model DIR (--prompt TEXT | --prompt-embeds F --pooled-prompt-embeds F)');
    expect(stdout).toContain('usage (FLUX.1 folders): generate --model DIR (--prompt TEXT | --prompt-embeds F --pooled-prompt-embeds F)');
  });

  it.skipIf(!hasFluxReference())("reproduces a reference case from diffusers' embeddings and unpacked latents, as PNG and raw float32", async () => {
    const c = readFluxReference().cases.find((x) => x.width !== x.height) as CaseReference;
    const file = (name: string) => path.join(FLUX_REFERENCE, c.dir, c.files[name]!.file);
    const [png, raw] = [path.join(dir, 'case.png'), path.join(dir, 'case.f32')];
    const { code, stderr } = await generate([
      '--model', FLUX_TINY,
      '--prompt-embeds', file('prompt_embeds'),
      '--pooled-prompt-embeds', file('pooled_prompt_embeds'),
      '--latents', file('initial_latents_unpacked'),
      '--steps', String(c.num_inference_steps),
      '--guidance', String(c.guidance_scale),
      '--width', String(c.width),
      '--height', String(c.height),
      '--out', png,
      '--raw', raw,
    ]);
    expect(code, stderr).toBe(0);
    expect(await sharp(png).metadata()).toMatchObject({ width: c.width, height: c.height, channels: 3 });
    const pixels = await readFloats(raw);
    expect(pixels.length).toBe(c.width * c.height * 3);
    expect(psnr(pixels, await readFloats(file('image')))).toBeGreaterThanOrEqual(40);
  });

  it('generates from a prompt with the model defaults where options are left out', async () => {
    const model = await writeFluxFixture(path.join(dir, 'schnell'), { layout: 'optimum', variant: 'schnell' });
    const out = path.join(dir, 'prompt.png');
    const { code, stdout, stderr } = await generate(['--model', model, '--prompt', 'a red fox', '--width', '64', '--height', '32', '--seed', '5', '--out', out]);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`${out} (seed 5)`);
    expect(stderr).toContain('step 4/4');
    expect(await sharp(out).metadata()).toMatchObject({ width: 64, height: 32 });
  });

  it('refuses a half-given embedding pair with the usage (exit 2) and a model error with its message (exit 1)', async () => {
    const model = path.join(dir, 'schnell');
    const half = await generate(['--model', model, '--prompt-embeds', path.join(dir, 'x.f32'), '--out', path.join(dir, 'x.png')]);
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('give --prompt-embeds and --pooled-prompt-embeds together');
    const odd = await generate(['--model', model, '--prompt', 'a fox', '--width', '40', '--height', '32', '--out', path.join(dir, 'x.png')]);
    expect(odd.code).toBe(1);
    expect(odd.stderr).toContain('width must be a positive multiple of 16');
  });

  it('still runs Stable Diffusion folders with their own form', async () => {
    const model = await writeSdFixture(path.join(dir, 'sd'), { layout: 'optimum' });
    const out = path.join(dir, 'sd.png');
    const { code, stderr } = await generate(['--model', model, '--prompt', 'a red fox', '--steps', '2', '--seed', '1', '--out', out]);
    expect(code, stderr).toBe(0);
    expect(await sharp(out).metadata()).toMatchObject({ width: 64, height: 64 });
  });
});
