import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/models/safetensors.js';
import { createTestDatabase } from '../support/database.js';
import { modelIdNamed } from '../support/graphql.js';
import { freePort, type KilnProcess, spawnKiln } from '../support/processes.js';
import { uploadMultipart } from '../support/uploads.js';

const MiB = 1024 * 1024;
const kib = async (pid: number, field: 'VmHWM' | 'VmRSS') =>
  Number((await fs.readFile(`/proc/${pid}/status`, 'utf8')).match(new RegExp(`${field}:\\s+(\\d+) kB`))![1]) * 1024;

// yoga holds a multipart file in memory: this records what one near the limit costs.
describe.skipIf(process.platform !== 'linux')('a multipart upload near KILN_MAX_MULTIPART_MB', () => {
  let kiln: KilnProcess;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-multipart-'));
    kiln = await spawnKiln(
      { DATABASE_URL: await createTestDatabase(), KILN_DATA_DIR: dataDir, PORT: String(await freePort()), KILN_MAX_MULTIPART_MB: '64' },
      ['--role', 'api'],
    );
  });
  afterAll(async () => {
    await kiln?.kill('SIGTERM');
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('keeps the API process within a few copies of the file, and records its peak', async () => {
    const builtin = await modelIdNamed(kiln.gql);
    const file = writeSafetensors({ 'unrelated.weight': { dtype: 'F32', shape: [15 * MiB], data: new Float32Array(15 * MiB) } });
    expect(file.length).toBeGreaterThan(60 * MiB);
    const pid = kiln.child.pid!;
    const before = await kib(pid, 'VmRSS');
    const res = await uploadMultipart(kiln.url!, file, 'big.safetensors', { name: 'big', kind: 'LORA', baseModelId: builtin });
    expect(res.errors![0]!.extensions!.code, res.errors![0]!.message).toBe('BAD_USER_INPUT'); // read, checked, refused: not a LoRA
    const peak = await kib(pid, 'VmHWM');
    console.log(
      `multipart upload of ${(file.length / MiB).toFixed(0)} MiB (limit 64 MiB): RSS before ${(before / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB (+${((peak - before) / MiB).toFixed(0)} MiB)`,
    );
    expect(peak - before).toBeLessThan(6 * file.length);
  });
});
