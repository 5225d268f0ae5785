import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatOf, unpackArchive } from '../../../src/kinds/install/archive.js';
import { tarOf, zipOf } from '../../support/archives.js';

const sha = (b: string | Buffer) => crypto.createHash('sha256').update(b).digest('hex');

describe('unpacking a model archive', () => {
  let dir: string;
  const limits = { maxBytes: 1024 * 1024, signal: new AbortController().signal, room: async () => {} };
  const write = async (name: string, bytes: Buffer) => {
    const file = path.join(dir, name);
    await fs.writeFile(file, bytes);
    return file;
  };
  const contents = async (root: string) =>
    (await fs.readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.relative(root, path.join(e.parentPath, e.name))).sort();

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-archive-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const model = [
    { name: 'sd-tiny/model_index.json', bytes: '{"_class_name":"StableDiffusionPipeline"}' },
    { name: 'sd-tiny/unet/', bytes: '' },
    { name: 'sd-tiny/unet/model.onnx', bytes: crypto.randomBytes(70_000) },
  ];

  for (const [format, make] of [
    ['zip', () => zipOf(model)],
    ['tar', () => tarOf(model)],
    ['tar.gz', () => tarOf(model, { gzip: true })],
  ] as const) {
    it(`unpacks a ${format} holding one folder as that folder, with each file's sha256`, async () => {
      const file = await write(`model.${format}`, make());
      expect(await formatOf(file)).toBe(format);
      const out = await unpackArchive(file, format, path.join(dir, `out-${format}`), limits);
      expect(out.dir).toBe(path.join(dir, `out-${format}`, 'sd-tiny'));
      expect(out.files.map((f) => f.path).sort()).toEqual(['model_index.json', 'unet/model.onnx']);
      expect(out.files.find((f) => f.path === 'unet/model.onnx')!.sha256).toBe(sha(model[2]!.bytes as Buffer));
      expect(await contents(out.dir)).toEqual(['model_index.json', 'unet/model.onnx']);
    });
  }

  it('reads pax long names in a tar', async () => {
    const long = `${'a'.repeat(60)}/${'b'.repeat(60)}/weights.onnx`;
    const file = await write('long.tar', tarOf([{ name: long, bytes: 'x' }]));
    const out = await unpackArchive(file, 'tar', path.join(dir, 'out-long'), limits);
    expect(out.files.map((f) => f.path)).toEqual([long.split('/').slice(1).join('/')]);
  });

  const hostile: [string, Buffer, 'zip' | 'tar', RegExp][] = [
    ['a path climbing out with ..', zipOf([{ name: '../../escaped.onnx', bytes: 'x' }]), 'zip', /UNSAFE_ARCHIVE|climbs out/],
    ['an absolute path', tarOf([{ name: '/etc/kiln.onnx', bytes: 'x' }]), 'tar', /absolute path/],
    ['a symbolic link (zip)', zipOf([{ name: 'unet/model.onnx', linkTo: '/etc/passwd' }]), 'zip', /is a link/],
    ['a symbolic link (tar)', tarOf([{ name: 'model/a.onnx', bytes: 'x' }, { name: 'model/b.onnx', linkTo: '../../outside' }]), 'tar', /is a link/],
    ['a file that inflates past its declared size', zipOf([{ name: 'bomb.onnx', bytes: Buffer.alloc(100_000), declaredSize: 10 }]), 'zip', /more than the 10 bytes it declares/],
    ['the same file twice', tarOf([{ name: 'a.json', bytes: '{}' }, { name: 'a.json', bytes: '[]' }]), 'tar', /twice/],
  ];
  for (const [what, bytes, format, message] of hostile) {
    it(`refuses an archive with ${what}, and writes nothing outside its folder`, async () => {
      const file = await write(`hostile-${format}`, bytes);
      const dest = path.join(dir, 'jail', 'out');
      await expect(unpackArchive(file, format, dest, limits)).rejects.toThrow(message);
      await expect(fs.access(path.join(dir, 'escaped.onnx'))).rejects.toThrow();
      await expect(fs.access(path.join(dir, 'outside'))).rejects.toThrow();
    });
  }

  it('refuses an archive larger, unpacked, than a model may be, before writing a zip entry', async () => {
    const file = await write('big.zip', zipOf([{ name: 'a.onnx', bytes: Buffer.alloc(600_000) }, { name: 'b.onnx', bytes: Buffer.alloc(600_000) }]));
    const dest = path.join(dir, 'out-big');
    await expect(unpackArchive(file, 'zip', dest, limits)).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect(await contents(dest)).toEqual([]);
  });

  it('tells a safetensors file from an archive and from anything else', async () => {
    const header = Buffer.from(JSON.stringify({ __metadata__: {} }));
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(header.length));
    expect(await formatOf(await write('a.safetensors', Buffer.concat([size, header])))).toBe('safetensors');
    expect(await formatOf(await write('page.html', Buffer.from('<!doctype html><title>Sign in</title>')))).toBeUndefined();
  });
});
