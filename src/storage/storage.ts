import type { Readable } from 'node:stream';

/** Where and how a client sends one object's bytes itself (direct upload). */
export interface UploadTarget {
  url: string;
  method: 'PUT';
  /** Headers the client must send with the bytes, exactly as given. */
  headers: Record<string, string>;
  expiresAt: Date;
}

export interface UrlOptions {
  /** Origin the URL is served from when the driver serves files through the API. */
  baseUrl: string;
  /** Serve as an attachment with this file name instead of inline. */
  downloadAs?: string;
}

/** Where Kiln keeps images and model files: local disk or an S3-compatible bucket. */
export interface Storage {
  readonly kind: 'local' | 's3';
  /** Writes the whole object or nothing: readers never see a partial file. */
  put(key: string, body: Uint8Array | Readable, contentType?: string): Promise<void>;
  read(key: string): Promise<Readable>;
  /** Size of the object, or undefined when there is none. */
  stat(key: string): Promise<{ size: number } | undefined>;
  delete(key: string): Promise<void>;
  deletePrefix(prefix: string): Promise<void>;
  /** A URL anyone holding it can GET until it expires. */
  signedUrl(key: string, options: UrlOptions): Promise<string>;
  /** A short-lived URL that accepts one PUT of exactly `sizeBytes` bytes to `key`. */
  uploadUrl(key: string, options: { baseUrl: string; sizeBytes: number; ttlSeconds: number }): Promise<UploadTarget>;
  /** The object's path on this machine when the driver keeps it on local disk. */
  localPath(key: string): string | undefined;
  /** Checks that the store answers (for health). */
  ping(): Promise<void>;
  /** Lets go of connections (at shutdown). */
  close(): void;
}

export class StorageKeyError extends Error {}

const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/** Keys are made by Kiln; this refuses anything that could leave the store's root. */
export function assertKey(key: string): string {
  if (!KEY.test(key) || key.split('/').some((part) => part === '.' || part === '..') || key.length > 512) {
    throw new StorageKeyError(`invalid storage key ${JSON.stringify(key)}`);
  }
  return key;
}

export function contentTypeOf(key: string): string {
  const ext = key.slice(key.lastIndexOf('.') + 1).toLowerCase();
  return (
    { png: 'image/png', jpg: 'image/jpeg', webp: 'image/webp', wav: 'audio/wav', json: 'application/json', txt: 'text/plain; charset=utf-8' }[ext] ??
    'application/octet-stream'
  );
}
