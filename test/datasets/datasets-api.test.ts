import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { expireDatasetUploads } from '../../src/datasets/dataset-expiry.js';
import { createLogger } from '../../src/log.js';
import { readDatasetFolder } from '../../src/trainers/dataset-folder.js';
import { createDatasetDirect, createDatasetMultipart, DATASET_FIELDS, type SentFile } from '../support/dataset-uploads.js';
import { ok } from '../support/graphql.js';
import { startTestKiln, type TestKiln } from '../support/kiln.js';
import { zipOf } from '../support/zip-files.js';

/** A picture of its own colour (no two alike), in the format its name asks for. */
async function picture(name: string, i: number, width = 32, height = 32, options: { orientation?: number } = {}): Promise<SentFile> {
  const img = sharp({ create: { width, height, channels: 3, background: { r: (i * 53) % 256, g: (i * 97) % 256, b: (i * 31) % 256 } } });
  const ext = path.extname(name).toLowerCase();
  const encoded = ext === '.webp' ? img.webp() : ext === '.jpg' || ext === '.jpeg' ? img.jpeg() : ext === '.gif' ? img.gif() : img.png();
  return { name, bytes: await (options.orientation ? encoded.withMetadata({ orientation: options.orientation }) : encoded).toBuffer() };
}
const pictures = (n: number, from = 0) => Promise.all(Array.from({ length: n }, (_, i) => picture(`p${from + i}.png`, from + i)));
const noisePng = async (name: string, side: number): Promise<SentFile> => {
  const raw = Buffer.alloc(side * side * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
  return { name, bytes: await sharp(raw, { raw: { width: side, height: side, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer() };
};

describe('datasets through the API', () => {
  let k: TestKiln;
  let scratch: string;
  let storage: string;

  beforeAll(async () => {
    // Intake's scratch folders go here, so the tests can see that none is left behind.
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-datasets-test-'));
    process.env.TMPDIR = scratch;
    k = await startTestKiln({
      KILN_DATASET_MIN_IMAGES: '3',
      KILN_DATASET_MAX_IMAGES: '6',
      KILN_DATASET_MAX_FILE_MB: '0.5',
      KILN_DATASET_MAX_MB: '1.5',
      KILN_DATASET_MAX_MEGAPIXELS: '1',
      KILN_RECONCILE_INTERVAL_S: '1',
      // Trainings stay pending: no worker here takes them.
      KILN_WORKER_KINDS: 'image',
    });
    storage = path.join(k.dataDir, 'storage');
  });
  afterAll(async () => {
    await k?.stop();
    delete process.env.TMPDIR;
    await fs.rm(scratch, { recursive: true, force: true });
  });

  const stored = async (prefix: string) =>
    (await fs.readdir(path.join(storage, prefix), { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile()).map((e) => e.name);
  const leftovers = async () => (await fs.readdir(scratch)).filter((n) => n.startsWith('kiln-dataset-'));
  const datasetRows = async () => (await k.kiln.ds.query('SELECT id FROM datasets')).map((r: { id: string }) => r.id);

  /** The request is refused with this code and field, and leaves no row, no stored file and no scratch file. */
  async function refused(files: SentFile[], code: string, field: string, message: RegExp | string, input: Record<string, unknown> = { name: 'refused' }) {
    const rowsBefore = await datasetRows();
    const filesBefore = [...(await stored('datasets')), ...(await stored('dataset-uploads'))];
    const res = await createDatasetMultipart(k.url, files, input);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code, field });
    expect(res.errors![0]!.message).toMatch(message);
    expect(res.status).toBeLessThan(500);
    expect(await datasetRows()).toEqual(rowsBefore);
    expect([...(await stored('datasets')), ...(await stored('dataset-uploads'))]).toEqual(filesBefore);
    expect(await leftovers()).toEqual([]);
  }

  it('takes a zip of images and captions (folders, EXIF orientation, JPEG, WebP, a byte-order mark) and stores them canonically', async () => {
    const rotated = await picture('photos/b-rotated.jpg', 2, 40, 24, { orientation: 6 });
    const zip = zipOf([
      { name: 'photos/', data: '' },
      { name: 'photos/a.png', data: (await picture('a.png', 1)).bytes },
      { name: 'photos/a.txt', data: 'a red thing' },
      { name: rotated.name, data: rotated.bytes },
      { name: 'photos/b-rotated.txt', data: '\ufeffturned upright\n' },
      { name: 'photos/c.webp', data: (await picture('c.webp', 3)).bytes },
      { name: '__MACOSX/photos/._a.png', data: 'resource fork' },
      { name: 'photos/.DS_Store', data: 'finder' },
    ]);
    const res = await createDatasetMultipart(k.url, [{ name: 'photos.zip', bytes: zip }], { name: 'zipped' });
    const dataset = (await ok(Promise.resolve(res))).createDataset;
    expect(dataset).toMatchObject({ name: 'zipped', status: 'READY', imageCount: 3, smallestSide: 24 });
    expect(dataset.images.map((i: any) => [i.file, i.name, i.width, i.height, i.caption])).toEqual([
      ['001.png', 'photos/a.png', 32, 32, 'a red thing'],
      // Orientation 6: a 40×24 picture stored sideways is 24×40 upright.
      ['002.png', 'photos/b-rotated.jpg', 24, 40, 'turned upright'],
      ['003.png', 'photos/c.webp', 32, 32, ''],
    ]);
    const folder = await readDatasetFolder(path.join(storage, 'datasets', dataset.id));
    expect(folder.sha256).toBe(dataset.sha256);
    expect(folder.items.map((i) => i.caption)).toEqual(['a red thing', 'turned upright', '']);
    expect((await stored(`datasets/${dataset.id}`)).sort()).toEqual(['001.png', '001.txt', '002.png', '002.txt', '003.png', 'manifest.json']);
    const png = Buffer.from(await (await fetch(dataset.images[1].url)).arrayBuffer());
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 24, height: 40 });
    expect(await leftovers()).toEqual([]);
  });

  it('takes loose files by direct upload, and the same pictures give the same dataset hash', async () => {
    const files = [...(await pictures(3)), { name: 'p1.txt', bytes: 'second' }];
    const direct = (await ok(createDatasetDirect(k.gql, files, { name: 'direct', resolution: 32 }))).completeDatasetUpload;
    expect(direct).toMatchObject({ status: 'READY', imageCount: 3, resolution: 32 });
    expect(direct.images.map((i: any) => i.caption)).toEqual(['', 'second', '']);
    const again = (await ok(Promise.resolve(await createDatasetMultipart(k.url, files, { name: 'multipart' })))).createDataset;
    expect(again.sha256).toBe(direct.sha256);
    expect(await stored(`dataset-uploads/${direct.id}`)).toEqual([]);
  });

  it('refuses files that are not images or captions, images that are not JPEG, PNG or WebP, and damaged ones', async () => {
    const three = await pictures(3);
    await refused([...three, { name: 'notes.pdf', bytes: '%PDF' }], 'BAD_USER_INPUT', 'files.3', 'notes.pdf is neither a .jpg, .jpeg, .png or .webp image nor a .txt caption');
    const gif = await picture('x.gif', 9);
    await refused([...three, { name: 'fake.png', bytes: gif.bytes }], 'BAD_USER_INPUT', 'files.3', 'fake.png is a GIF image; only JPEG, PNG and WebP are taken');
    const jpeg = await sharp((await noisePng('n.png', 200)).bytes as Buffer).jpeg().toBuffer();
    await refused([{ name: 'cut.jpg', bytes: jpeg.subarray(0, jpeg.length - 200) }, ...three], 'BAD_USER_INPUT', 'files.0', /cut\.jpg cannot be decoded/);
    await refused([...three, { name: 'text.png', bytes: 'not an image at all' }], 'BAD_USER_INPUT', 'files.3', 'text.png is not an image Kiln can read');
  });

  it('checks every file before refusing, and names each refused one in an error of its own', async () => {
    const three = await pictures(3);
    const files = [
      ...three,
      { name: 'notes.pdf', bytes: '%PDF' },
      await picture('small.png', 7, 64, 24),
      { name: 'ghost.txt', bytes: 'nobody' },
      { name: 'copy.png', bytes: three[1]!.bytes },
      await picture('fine.png', 8),
    ];
    await refused(files, 'BAD_USER_INPUT', 'files.3', 'notes.pdf is neither', { name: 'r', resolution: 32 });
    const res = await createDatasetMultipart(k.url, files, { name: 'r', resolution: 32 });
    // Each refusal is its own error, in the order the checks found them; the files not refused are not named.
    expect(res.errors!.map((e) => [e.extensions?.code, e.extensions?.field, e.message])).toEqual([
      ['BAD_USER_INPUT', 'files.3', expect.stringContaining('notes.pdf is neither a .jpg, .jpeg, .png or .webp image nor a .txt caption')],
      ['BAD_USER_INPUT', 'files.5', expect.stringContaining('ghost.txt is a caption without an image of the same name')],
      ['BAD_USER_INPUT', 'files.1', expect.stringMatching(/p1\.png is the same picture as copy\.png/)],
      ['BAD_USER_INPUT', 'files.4', expect.stringContaining('small.png is 64×24; images must be at least 32 pixels')],
    ]);
  });

  it('refuses a decompression bomb by its pixel count before decoding it', async () => {
    const bomb = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: 'black' } }).png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(50_000);
    await refused([...(await pictures(3)), { name: 'bomb.png', bytes: bomb }], 'BAD_USER_INPUT', 'files.3', 'bomb.png is 2000×2000 (4 megapixels); at most 1 are taken');
  });

  it('refuses an image smaller than the training resolution on its short side, naming it', async () => {
    await refused([...(await pictures(3)), await picture('small.png', 7, 64, 24)], 'BAD_USER_INPUT', 'files.3', 'small.png is 64×24; images must be at least 32 pixels on their short side', { name: 'r', resolution: 32 });
  });

  it('refuses a file over KILN_DATASET_MAX_FILE_MB and a dataset over KILN_DATASET_MAX_MB', async () => {
    await refused([...(await pictures(3)), await noisePng('huge.png', 450)], 'PAYLOAD_TOO_LARGE', 'files.3', /huge\.png is 0\.\d+ MiB; a file may be at most 0\.5 MiB/);
    const big = await Promise.all([0, 1, 2, 3].map((i) => noisePng(`n${i}.png`, 400 - i)));
    await refused(big, 'PAYLOAD_TOO_LARGE', 'files', /add up to 1\.\d+ MiB; a dataset takes at most 1\.5 MiB/);
  });

  it('refuses too few and too many images', async () => {
    await refused(await pictures(2), 'BAD_USER_INPUT', 'files', 'files hold 2 image(s); a dataset has 3 to 6');
    await refused(await pictures(7), 'BAD_USER_INPUT', 'files', 'files hold 7 image(s); a dataset has 3 to 6');
  });

  it('refuses duplicate pictures by content, whatever their names and encodings', async () => {
    const [a, b, c] = await pictures(3);
    const sameAsB = { name: 'copy.png', bytes: await sharp(b!.bytes as Buffer).png({ compressionLevel: 1 }).toBuffer() };
    expect(Buffer.compare(sameAsB.bytes, b!.bytes as Buffer)).not.toBe(0);
    await refused([a!, b!, c!, sameAsB], 'BAD_USER_INPUT', 'files.1', /p1\.png is the same picture as copy\.png \(sha256 [0-9a-f]{12}…\)/);
  });

  it('refuses captions that are not UTF-8 text, captions without an image, and two images of one name', async () => {
    const three = await pictures(3);
    await refused([...three, { name: 'p0.txt', bytes: Buffer.from([0x63, 0x61, 0x66, 0xe9]) }], 'BAD_USER_INPUT', 'files.3', 'p0.txt is not UTF-8 text');
    await refused([...three, { name: 'p0.txt', bytes: 'bell\u0007' }], 'BAD_USER_INPUT', 'files.3', 'p0.txt holds control characters');
    await refused([...three, { name: 'ghost.txt', bytes: 'nobody' }], 'BAD_USER_INPUT', 'files.3', 'ghost.txt is a caption without an image of the same name');
    await refused([...three, await picture('p0.jpg', 9)], 'BAD_USER_INPUT', 'files.3', 'p0.jpg: p0.png has the same name but for its extension');
  });

  it('refuses zip entries with absolute paths, .., links, nested zips, too many entries, too much unpacked, and a size that lies', async () => {
    const entries = async () => (await pictures(3)).map((p) => ({ name: p.name, data: p.bytes }));
    const zip = async (extra: Parameters<typeof zipOf>[0]) => [{ name: 'set.zip', bytes: zipOf([...(await entries()), ...extra]) }];
    await refused(await zip([{ name: '/etc/x.png', data: 'x' }]), 'BAD_USER_INPUT', 'files.0', '/etc/x.png in set.zip has an absolute path');
    await refused(await zip([{ name: 'a/../../x.png', data: 'x' }]), 'BAD_USER_INPUT', 'files.0', 'a/../../x.png in set.zip has a path that leaves the archive (..)');
    await refused(await zip([{ name: 'link.png', data: '/etc/passwd', symlink: true }]), 'BAD_USER_INPUT', 'files.0', 'link.png in set.zip is a symbolic link');
    await refused(await zip([{ name: 'inner.zip', data: zipOf([]) }]), 'BAD_USER_INPUT', 'files.0', 'inner.zip in set.zip is a zip inside a zip');
    const many = Array.from({ length: 110 }, (_, i) => ({ name: `d${i}/`, data: '' }));
    await refused(await zip(many), 'BAD_USER_INPUT', 'files.0', 'set.zip cannot be taken: it holds 113 entries; at most 112 are taken');
    const zeros = [0, 1, 2, 3].map((i) => ({ name: `z${i}.png`, data: Buffer.alloc(500_000) }));
    await refused(await zip(zeros), 'PAYLOAD_TOO_LARGE', 'files.0', 'set.zip unpacks to more than 1.5 MiB');
    await refused(await zip([{ name: 'liar.png', data: Buffer.alloc(3_000_000), declaredSize: 100 }]), 'BAD_USER_INPUT', 'files.0', 'liar.png in set.zip cannot be unpacked: liar.png holds more than the 100 bytes it declares');
  });

  it('refuses at announcement what a direct upload cannot be, and removes an upload whose files are refused at completion', async () => {
    const announce = (files: { name: string; sizeBytes: number }[]) =>
      k.gql(`mutation($files: [DatasetFileInput!]!) { createDatasetUpload(input: { name: "d" }, files: $files) { id } }`, { files });
    expect((await announce([{ name: 'a.png', sizeBytes: 10 }, { name: '../b.png', sizeBytes: 10 }])).errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'files.1.name' });
    expect((await announce([{ name: 'a.exe', sizeBytes: 10 }])).errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'files.0.name' });
    expect((await announce([{ name: 'a.png', sizeBytes: 600_000 }])).errors?.[0]?.extensions).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', field: 'files.0.sizeBytes' });
    const rowsBefore = await datasetRows();

    const [a, b] = await pictures(2);
    const res = await createDatasetDirect(k.gql, [a!, b!, { name: 'again.png', bytes: a!.bytes }], { name: 'dupes' });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'files.0' });
    expect(await datasetRows()).toEqual(rowsBefore);
    expect(await stored('dataset-uploads')).toEqual([]);
  });

  it('keeps an upload open while a file has not fully arrived, and adds files to it', async () => {
    const [a, b, c] = await pictures(3);
    const { createDatasetUpload: upload } = await ok(
      k.gql(`mutation($files: [DatasetFileInput!]!) { createDatasetUpload(input: { name: "slow" }, files: $files) { id files { url method headers } } }`, {
        files: [a, b].map((f) => ({ name: f!.name, sizeBytes: f!.bytes.length })),
      }),
    );
    await fetch(upload.files[0].url, { method: 'PUT', headers: upload.files[0].headers, body: Buffer.from(a!.bytes) });
    const early = await k.gql(`mutation($id: ID!) { completeDatasetUpload(id: $id) { id } }`, { id: upload.id });
    expect(early.errors?.[0]).toMatchObject({ message: 'files.1 p1.png has not fully arrived (0 of ' + b!.bytes.length + ' bytes)', extensions: { code: 'BAD_USER_INPUT', field: 'files.1' } });
    const { dataset } = await ok(k.gql(`query($id: ID!) { dataset(id: $id) { status pendingFiles { name sizeBytes } } }`, { id: upload.id }));
    expect(dataset).toEqual({ status: 'UPLOADING', pendingFiles: [{ name: 'p0.png', sizeBytes: a!.bytes.length }, { name: 'p1.png', sizeBytes: b!.bytes.length }] });

    const { addDatasetUploadFiles: more } = await ok(
      k.gql(`mutation($id: ID!, $files: [DatasetFileInput!]!) { addDatasetUploadFiles(id: $id, files: $files) { files { name url method headers } } }`, {
        id: upload.id,
        files: [{ name: c!.name, sizeBytes: c!.bytes.length }],
      }),
    );
    await fetch(upload.files[1].url, { method: 'PUT', headers: upload.files[1].headers, body: Buffer.from(b!.bytes) });
    await fetch(more.files[0].url, { method: 'PUT', headers: more.files[0].headers, body: Buffer.from(c!.bytes) });
    const done = await ok(k.gql(`mutation($id: ID!) { completeDatasetUpload(id: $id) { ${DATASET_FIELDS} } }`, { id: upload.id }));
    expect(done.completeDatasetUpload).toMatchObject({ status: 'READY', imageCount: 3 });
  });

  it('removes an upload nobody completed once KILN_FILE_RETENTION_DAYS have passed', async () => {
    const [a] = await pictures(1);
    const { createDatasetUpload: upload } = await ok(
      k.gql(`mutation($files: [DatasetFileInput!]!) { createDatasetUpload(input: { name: "abandoned" }, files: $files) { id files { url method headers } } }`, {
        files: [{ name: a!.name, sizeBytes: a!.bytes.length }],
      }),
    );
    await fetch(upload.files[0].url, { method: 'PUT', headers: upload.files[0].headers, body: Buffer.from(a!.bytes) });
    expect(await stored(`dataset-uploads/${upload.id}`)).toEqual(['0']);
    await k.kiln.ds.query(`UPDATE datasets SET created_at = now() - interval '6 days' WHERE id = $1`, [upload.id]);
    await expireDatasetUploads({ ds: k.kiln.ds, storage: k.kiln.storage, log: createLogger('silent') }, 7 * 86_400_000);
    expect(await datasetRows()).toContain(upload.id);
    await k.kiln.ds.query(`UPDATE datasets SET created_at = now() - interval '8 days' WHERE id = $1`, [upload.id]);
    await vi.waitFor(async () => expect(await datasetRows()).not.toContain(upload.id), { timeout: 10_000, interval: 200 });
    expect(await stored(`dataset-uploads/${upload.id}`)).toEqual([]);
  });

  it('deletes a dataset and its files at once, but not while a pending training uses it', async () => {
    const created = (await ok(Promise.resolve(await createDatasetMultipart(k.url, await pictures(3, 20), { name: 'in use' })))).createDataset;
    const { trainLora } = await ok(k.gql(`mutation($d: ID!) { trainLora(input: { datasetId: $d, name: "t", triggerWord: "kilnstyle", steps: 2 }) { id status } }`, { d: created.id }));
    const refusedDelete = await k.gql(`mutation($id: ID!) { deleteDataset(id: $id) }`, { id: created.id });
    expect(refusedDelete.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(refusedDelete.errors?.[0]?.message).toBe(`dataset "in use" is in use by trainings: ${trainLora.id} (pending)`);
    await ok(k.gql(`mutation($id: ID!) { cancelJob(id: $id) { id } }`, { id: trainLora.id }));
    expect(await ok(k.gql(`mutation($id: ID!) { deleteDataset(id: $id) }`, { id: created.id }))).toEqual({ deleteDataset: created.id });
    expect(await stored(`datasets/${created.id}`)).toEqual([]);
    expect((await ok(k.gql(`query($id: ID!) { dataset(id: $id) { id } }`, { id: created.id }))).dataset).toBeNull();
    expect((await k.gql(`mutation($id: ID!) { deleteDataset(id: $id) }`, { id: created.id })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
