/**
 * A real S3-compatible server for tests: s3rver (from npm, no network) in a child process, on a
 * free loopback port, keeping its objects in a temporary folder.
 *
 * What s3rver 3.7.1 checks and what it does not (so what a test against it proves):
 * - it checks that a presigned URL has not expired, and that the access key exists;
 * - it does not check SigV4 signatures at all (any signature, and no signature, is accepted),
 *   so nothing bound into a signature (key, Content-Length, response headers) is enforced;
 *   put `startS3Proxy` with `presignedSignatureError` in front of it where a test needs that;
 * - it does not implement AbortMultipartUpload (answers 405) or the 5 MiB minimum part size.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TestS3Server {
  /** `http://127.0.0.1:<port>`; use path-style addressing (`forcePathStyle`). */
  endpoint: string;
  bucket: string;
  region: string;
  forcePathStyle: true;
  /** The only key pair s3rver knows. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Stops the server, keeping its objects: an outage. */
  pause(): Promise<void>;
  /** Starts it again on the same port with the same objects (nothing when it runs). */
  resume(): Promise<void>;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

const launcher = fileURLToPath(new URL('./s3-server-process.cjs', import.meta.url));

/** Starts s3rver with one empty bucket. */
export async function startS3Server({ bucket = 'kiln-test' }: { bucket?: string } = {}): Promise<TestS3Server> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'kiln-s3rver-'));
  let child: ChildProcess | undefined;
  let exited = Promise.resolve();
  const halt = async () => {
    const running = child;
    child = undefined;
    if (running?.pid !== undefined && running.exitCode === null && running.signalCode === null) {
      running.kill('SIGTERM');
      await exited;
    }
  };
  const run = async (port: number) => {
    // stdin: the child exits when it closes, so it cannot outlive this process.
    child = spawn(process.execPath, ['--openssl-legacy-provider', launcher, directory, bucket, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const started = child;
    exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    try {
      return await listeningPort(started);
    } catch (err) {
      await halt();
      throw err;
    }
  };
  const port = await run(0).catch(async (err: unknown) => {
    await fs.rm(directory, { recursive: true, force: true });
    throw err;
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    pause: halt,
    async resume() {
      if (!child) await run(port);
    },
    async stop() {
      await halt();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}

/** The port the child prints once it listens. */
function listeningPort(child: ChildProcess) {
  return new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`s3rver exited (${signal ?? code}) before listening; its stderr is above`)));
  });
}
