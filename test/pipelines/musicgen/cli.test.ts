import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWav } from '../../../src/media/wav.js';
import { writeBuiltinMusicModel } from '../../../src/pipelines/builtin-music/model-files.js';
import { hasMusicgenReference, MUSICGEN_MODEL, readMusicgenReference, referenceFloats, referenceTitle, snrDb } from '../../support/musicgen-reference.js';

/** `npm run generate` for music models, run as the npm script runs it, as a process of its own. */
const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/generate.ts', ...args], { cwd: ROOT }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
const floats = async (file: string) => {
  const bytes = await fs.readFile(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

let out: string;
beforeAll(async () => {
  out = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-generate-audio-'));
});
afterAll(() => fs.rm(out, { recursive: true, force: true }));

describe('npm run generate for music models', () => {
  it('prints the music form among the usages for --help, and exits 0', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--max-new-tokens N');
    expect(stdout).toContain('--greedy | --seed S --top-k K --temperature T');
    expect(stdout).toContain('--codes FILE.json');
  });

  it('runs the built-in music model, writing a WAV whose INFO says prompt, seed and model', async () => {
    const model = await writeBuiltinMusicModel(path.join(out, 'builtin'));
    const wav = path.join(out, 'builtin.wav');
    const args = ['--model', model, '--prompt', 'a kiln humming', '--guidance', '3', '--max-new-tokens', '50', '--seed', '7', '--top-k', '5', '--temperature', '0.8', '--out', wav, '--codes', path.join(out, 'builtin.json')];
    const { code, stderr } = await run(args);
    expect(code, stderr).toBe(0);
    const parsed = parseWav(await fs.readFile(wav));
    expect([parsed.sampleRate, parsed.channels, parsed.pcm.length]).toEqual([32000, 1, 50 * 640]);
    expect(parsed.metadata).toEqual({ prompt: 'a kiln humming', seed: 7, model, software: 'Kiln' });
    const codes = JSON.parse(await fs.readFile(path.join(out, 'builtin.json'), 'utf8')) as number[][];
    expect(codes.map((row) => row.length)).toEqual([50, 50]);
  });

  it.skipIf(!hasMusicgenReference)(referenceTitle("writes transformers' greedy codes and waveform for the reference model"), async () => {
    const c = readMusicgenReference().greedy[2]!;
    const [wav, raw, codes] = ['case2.wav', 'case2.f32', 'case2.json'].map((f) => path.join(out, f)) as [string, string, string];
    const args = ['--model', MUSICGEN_MODEL, '--prompt', c.prompt, '--guidance', String(c.guidance_scale), '--max-new-tokens', String(c.max_new_tokens), '--greedy', '--out', wav, '--raw', raw, '--codes', codes];
    const { code, stderr, stdout } = await run(args);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('(1.00 s, 32000 Hz, 1 channel');
    expect(JSON.parse(await fs.readFile(codes, 'utf8'))).toEqual(c.codes);
    expect(snrDb(referenceFloats(c.audio_f32), await floats(raw))).toBeGreaterThanOrEqual(40);
    expect(parseWav(await fs.readFile(wav)).pcm.length).toBe(c.num_samples);
  });

  it('says what is wrong with a MusicGen folder and exits non-zero', async () => {
    const broken = path.join(out, 'broken');
    await fs.mkdir(broken);
    await fs.writeFile(path.join(broken, 'config.json'), JSON.stringify({ model_type: 'musicgen' }));
    const { code, stderr } = await run(['--model', broken, '--prompt', 'x', '--out', path.join(out, 'x.wav')]);
    expect(code).toBe(1);
    expect(stderr).toContain('not a usable MusicGen ONNX folder: missing tokenizer.json');
  });
});
