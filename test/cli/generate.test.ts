import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSdFixture } from '../support/sd-fixtures.js';
import { hasSdxlReference, psnr, readSdxlReference, SDXL_REFERENCE, SDXL_TINY } from '../support/sdxl-fixtures.js';

/** `npm run generate` as a process: its exit code, stdout and stderr. */
async function generate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/generate.ts', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let out: string;
beforeAll(async () => {
  out = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-generate-cli-'));
});
afterAll(() => fs.rm(out, { recursive: true, force: true }));

const floats = async (file: string) => {
  const b = await fs.readFile(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

describe('npm run generate', () => {
  it('prints its usage and exits 0 on --help, and 2 on an unknown option', async () => {
    const help = await generate(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: generate --model DIR \(--prompt TEXT \| --prompt-embeds F --pooled-prompt-embeds F\)/);
    expect(help.stdout).toContain('[--original-size H,W] [--crops-coords-top-left T,L] [--target-size H,W]');
    const bad = await generate(['--nonsense']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Unknown option '--nonsense'[\s\S]*usage: generate/);
  });

  it.skipIf(!hasSdxlReference)("runs an SDXL reference case from diffusers' embeddings and latents, writing its PNG and raw image at 40 dB or more", async () => {
    const c = readSdxlReference().cases.find((x) => x.original_size[0] !== x.height)!;
    const file = (key: string) => path.join(SDXL_REFERENCE, c.dir, c.files[key]!.file);
    const [png, raw] = [path.join(out, 'sdxl.png'), path.join(out, 'sdxl.f32')];
    const result = await generate([
      ...['--model', SDXL_TINY, '--prompt-embeds', file('prompt_embeds'), '--pooled-prompt-embeds', file('pooled_prompt_embeds')],
      ...['--negative-prompt-embeds', file('negative_prompt_embeds'), '--negative-pooled-prompt-embeds', file('negative_pooled_prompt_embeds')],
      ...['--latents', file('initial_latents'), '--steps', String(c.num_inference_steps), '--guidance', String(c.guidance_scale)],
      ...['--width', String(c.width), '--height', String(c.height), '--original-size', c.original_size.join(','), '--crops-coords-top-left', c.crops_coords_top_left.join(',')],
      ...['--target-size', c.target_size.join(','), '--out', png, '--raw', raw],
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`stable-diffusion-xl-onnx: ${SDXL_TINY}`);
    expect(psnr(await floats(raw), await floats(file('image')))).toBeGreaterThanOrEqual(40);
    expect(await sharp(png).metadata()).toMatchObject({ width: c.width, height: c.height, format: 'png' });
  });

  it.skipIf(!hasSdxlReference)('refuses a text prompt for an SDXL model that has no text encoders, saying why', async () => {
    const text = await generate(['--model', SDXL_TINY, '--prompt', 'a red fox', '--steps', '2', '--out', path.join(out, 'text.png')]);
    expect(text.code).toBe(2);
    expect(text.stderr).toContain('this model has no text encoders: its prompts must come as embeddings');
  });

  it('still runs a Stable Diffusion folder from a prompt, and refuses it SDXL options', async () => {
    const sd = await writeSdFixture(path.join(out, 'sd'), { layout: 'optimum' });
    const png = path.join(out, 'sd.png');
    const result = await generate(['--model', sd, '--prompt', 'a red fox', '--steps', '2', '--seed', '3', '--out', png]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`stable-diffusion-onnx: ${sd}`);
    expect(result.stdout).toContain(`${png} (seed 3)`);
    const refused = await generate(['--model', sd, '--prompt', 'a red fox', '--target-size', '64,64', '--out', png]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('is a stable-diffusion-onnx model, which takes no prompt embeddings or size conditioning');
  });
});
