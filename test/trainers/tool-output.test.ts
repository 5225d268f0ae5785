import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTqdmLine, postfixNumber } from '../../src/trainers/external/tqdm-line.js';
import { toYaml } from '../../src/trainers/external/yaml-writer.js';
import { readWithPython } from '../support/external-trainers.js';

describe('tqdm progress lines', () => {
  it('reads the count, total, times and postfix of both trainers’ bars', () => {
    expect(parseTqdmLine('steps:  40%|████      | 4/10 [00:08<00:12,  2.01s/it, avr_loss=0.0912]')).toEqual({
      desc: 'steps',
      n: 4,
      total: 10,
      elapsedSeconds: 8,
      remainingSeconds: 12,
      postfix: 'avr_loss=0.0912',
    });
    expect(parseTqdmLine('my_lora:  25%|██▌       | 250/1000 [1:02:05<3:06:15,  2.00it/s, lr: 1.0e-04 loss: 4.123e-01]')).toMatchObject({
      desc: 'my_lora',
      n: 250,
      elapsedSeconds: 3725,
      remainingSeconds: 11175,
      postfix: 'lr: 1.0e-04 loss: 4.123e-01',
    });
    expect(parseTqdmLine('steps:   0%|          | 0/10 [00:00<?, ?it/s]')).toMatchObject({ n: 0, remainingSeconds: null, postfix: '' });
    expect(parseTqdmLine('Caching latents to disk: 100%|██████████| 3/3 [00:00<00:00, 10.00it/s]')).toMatchObject({ desc: 'Caching latents to disk', n: 3 });
    for (const other of ['epoch 1/1', 'Saving at step 5', 'saving checkpoint: /w/out/a-step00000004.safetensors', '']) expect(parseTqdmLine(other)).toBeNull();
  });

  it('takes numbers from postfixes by name, in both spellings', () => {
    expect(postfixNumber('lr: 1.0e-04 loss: 4.123e-01', 'lr')).toBe(1e-4);
    expect(postfixNumber('lr: 1.0e-04 loss: 4.123e-01', 'loss')).toBe(0.4123);
    expect(postfixNumber('Keys Scaled=0, avr_loss=0.0912', 'avr_loss')).toBe(0.0912);
    expect(postfixNumber('avr_loss=0.0912', 'loss')).toBeNull();
  });
});

describe('the YAML writer', () => {
  it('writes block YAML that PyYAML reads back to the same data, fractions as floats', async () => {
    const data = {
      job: 'extension',
      numbers: { lr: 1e-4, tiny: 1e-7, half: 0.5, big: 1e21, steps: 2000, negative: -3.25e-5 },
      text: { colon: 'a: b', quotes: 'say "hi"\n', unicode: 'kiln ✓ ünïcode', empty: '' },
      flags: [true, false, null],
      nothing: { list: [], map: {} },
      process: [{ type: 'sd_trainer', datasets: [{ folder_path: '/data', resolution: [512, 768] }] }, 'plain'],
      nested: [[1, 2], [3]],
    };
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-yaml-')), 'config.yaml');
    await fs.writeFile(file, toYaml(data));
    const parsed = await readWithPython('yaml', file);
    await fs.rm(path.dirname(file), { recursive: true });
    if (parsed) expect(parsed).toEqual(data);
  });
});
