import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryProblem, openZipEntry, readZipDirectory, type ZipEntry } from '../../src/archives/zip-reader.js';
import { zipOf } from '../support/zip-files.js';

const run = promisify(execFile);
let dir: string;
let n = 0;
const write = async (bytes: Buffer) => {
  const file = path.join(dir, `${++n}.zip`);
  await fs.writeFile(file, bytes);
  return file;
};
const contents = async (file: string, entry: ZipEntry) => {
  const chunks: Buffer[] = [];
  for await (const c of await openZipEntry(file, entry)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};
const noise = (size: number) => crypto.createHash('sha512').update(String(size)).digest().toString('hex').repeat(Math.ceil(size / 128)).slice(0, size);

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-zip-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('the zip reader', () => {
  it('reads what Python and Info-ZIP write: stored, deflated, folders, UTF-8 names, Zip64 records', async () => {
    const py = `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('a.txt', 'a caption', compress_type=zipfile.ZIP_STORED)
    z.writestr('pics/', '')
    z.writestr('pics/été.txt', 'x' * 5000, compress_type=zipfile.ZIP_DEFLATED)
    with z.open('big.txt', 'w', force_zip64=True) as f:
        f.write(b'y' * 70000)
# More entries than the classic end record counts: Python writes the Zip64 end record.
with zipfile.ZipFile(sys.argv[2], 'w') as z:
    for i in range(65600):
        z.writestr(f'{i}.txt', '')
`;
    const pyZip = path.join(dir, 'python.zip');
    const manyZip = path.join(dir, 'many.zip');
    try {
      await run('python3', ['-c', py, pyZip, manyZip]);
    } catch {
      console.warn('python3 is not here: skipping the archive Python writes');
    }
    if (await fs.stat(pyZip).catch(() => null)) {
      const entries = await readZipDirectory(pyZip, 10);
      expect(entries.map((e) => [e.name, e.directory, e.method, e.size])).toEqual([
        ['a.txt', false, 0, 9],
        ['pics/', true, 0, 0],
        ['pics/été.txt', false, 8, 5000],
        ['big.txt', false, 0, 70000],
      ]);
      expect((await contents(pyZip, entries[2]!)).toString()).toBe('x'.repeat(5000));
      expect((await contents(pyZip, entries[3]!)).length).toBe(70000);
      const many = await readZipDirectory(manyZip, 70_000);
      expect([many.length, many.at(-1)!.name]).toEqual([65600, '65599.txt']);
    }
    const src = path.join(dir, 'src');
    await fs.mkdir(path.join(src, 'sub'), { recursive: true });
    await fs.writeFile(path.join(src, 'sub', 'one.txt'), noise(3000));
    await fs.symlink('one.txt', path.join(src, 'sub', 'link.txt'));
    const infoZip = path.join(dir, 'infozip.zip');
    try {
      // -y keeps the link as a link, as a zip made on a Unix machine may.
      await run('zip', ['-r', '-y', '-q', infoZip, 'sub'], { cwd: src });
    } catch {
      console.warn('zip is not here: skipping the archive Info-ZIP writes');
    }
    if (await fs.stat(infoZip).catch(() => null)) {
      const entries = await readZipDirectory(infoZip, 10);
      const byName = new Map(entries.map((e) => [e.name, e]));
      expect((await contents(infoZip, byName.get('sub/one.txt')!)).toString()).toBe(noise(3000));
      expect(byName.get('sub/link.txt')!.symlink).toBe(true);
      expect(entryProblem(byName.get('sub/link.txt')!)).toBe('is a symbolic link');
    }
  });

  it('says why an entry cannot be taken: absolute paths, drive letters, .., links', async () => {
    const file = await write(
      zipOf([
        { name: '/etc/passwd.txt', data: 'x' },
        { name: 'C:/x.txt', data: 'x' },
        { name: 'a/../../x.txt', data: 'x' },
        { name: 'a\\..\\x.txt', data: 'x' },
        { name: 'link.png', data: '/etc/passwd', symlink: true },
        { name: 'fine/ok.txt', data: 'x' },
      ]),
    );
    const problems = (await readZipDirectory(file, 10)).map(entryProblem);
    expect(problems).toEqual([
      'has an absolute path',
      'has an absolute path',
      'has a path that leaves the archive (..)',
      'has a path that leaves the archive (..)',
      'is a symbolic link',
      null,
    ]);
  });

  it('refuses more entries than allowed before reading them', async () => {
    const file = await write(zipOf(Array.from({ length: 30 }, (_, i) => ({ name: `${i}.txt`, data: 'x' }))));
    await expect(readZipDirectory(file, 29)).rejects.toThrow('it holds 30 entries; at most 29 are taken');
    expect(await readZipDirectory(file, 30)).toHaveLength(30);
  });

  it('stops an entry that inflates past the size it declares (a zip bomb), and one whose CRC does not match', async () => {
    const file = await write(
      zipOf([
        { name: 'bomb.txt', data: Buffer.alloc(5_000_000), declaredSize: 1000 },
        { name: 'short.txt', data: 'abc', declaredSize: 10 },
        { name: 'crc.txt', data: 'abc', crc32: 1234 },
      ]),
    );
    const [bomb, short, crc] = await readZipDirectory(file, 10);
    await expect(contents(file, bomb!)).rejects.toThrow('bomb.txt holds more than the 1000 bytes it declares');
    await expect(contents(file, short!)).rejects.toThrow('short.txt holds 3 bytes, not the 10 it declares');
    await expect(contents(file, crc!)).rejects.toThrow('crc.txt is damaged (its CRC-32 does not match)');
  });

  it('refuses what is not a zip archive', async () => {
    const file = await write(Buffer.from('PK but not really a zip, just some text'));
    await expect(readZipDirectory(file, 10)).rejects.toThrow('it is not a zip archive');
  });
});
