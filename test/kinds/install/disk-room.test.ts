import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { checkRoom } from '../../../src/kinds/install/disk-room.js';
import { LocalStorage } from '../../../src/storage/local.js';
import type { Storage } from '../../../src/storage/storage.js';
import { UrlSigner } from '../../../src/storage/url-signer.js';

describe('the room an install needs, checked before it starts', () => {
  let dir: string;
  let local: Storage;
  const GiB = 1024 ** 3;
  const config = (env: Record<string, string>) => loadConfig({ KILN_DATA_DIR: dir, ...env }, []);
  const s3 = { kind: 's3', localPath: () => undefined } as unknown as Storage;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-room-'));
    local = new LocalStorage(path.join(dir, 'storage'), new UrlSigner('0123456789abcdef0123456789abcdef', 60));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('lets an install through that fits, keeping the free disk floor', async () => {
    await expect(checkRoom({ dir: path.join(dir, 'work'), incomingBytes: 1024, modelBytes: 1024, config: config({ KILN_MIN_FREE_DISK_GB: '0' }), storage: local })).resolves.toBeUndefined();
  });

  it('refuses one that would leave less than KILN_MIN_FREE_DISK_GB free, with the figures', async () => {
    const room = checkRoom({ dir: path.join(dir, 'work'), incomingBytes: GiB, modelBytes: GiB, config: config({ KILN_MIN_FREE_DISK_GB: '1000000' }), storage: local });
    await expect(room).rejects.toMatchObject({ code: 'DISK_FULL', retryable: false, message: expect.stringMatching(/needs 1\.0 GiB on the disk of .*, which has .* free and keeps 976\.6 TiB free \(KILN_MIN_FREE_DISK_GB\)/) });
  });

  it('refuses a model larger than a model may be, or, with S3, than the workers’ model cache', async () => {
    await expect(checkRoom({ dir, incomingBytes: 0, modelBytes: 3 * 1024 ** 2, config: config({ KILN_MAX_UPLOAD_MB: '2' }), storage: local })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await expect(checkRoom({ dir, incomingBytes: 0, modelBytes: 2 * GiB, config: config({ KILN_MODEL_CACHE_MAX_GB: '1', KILN_MIN_FREE_DISK_GB: '0' }), storage: s3 })).rejects.toMatchObject({
      code: 'DISK_FULL',
      message: expect.stringMatching(/more than the workers' model cache holds \(KILN_MODEL_CACHE_MAX_GB, 1\.0 GiB\)/),
    });
    await expect(checkRoom({ dir, incomingBytes: 0, modelBytes: 2 * GiB, config: config({ KILN_MODEL_CACHE_MAX_GB: '1', KILN_MIN_FREE_DISK_GB: '0' }), storage: local })).resolves.toBeUndefined();
  });
});
