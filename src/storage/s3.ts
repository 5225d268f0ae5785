import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { assertKey, contentTypeOf, type Storage, type UploadTarget, type UrlOptions } from './storage.js';

export interface S3StorageOptions {
  bucket: string;
  region: string;
  /** Base URL of an S3-compatible service (R2, MinIO); omitted for AWS S3. */
  endpoint?: string;
  /**
   * The endpoint that presigned URLs name, when clients reach the store at another address than
   * Kiln does (MinIO on a Docker network: `http://minio:9000` inside, `http://localhost:9000` out).
   */
  publicEndpoint?: string;
  /** `endpoint/bucket/key` URLs instead of `bucket.endpoint/key`; MinIO and s3rver need it. */
  forcePathStyle?: boolean;
  /** Omitted, the SDK's default chain finds them (AWS_ACCESS_KEY_ID…, AWS_PROFILE, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Put before every key, e.g. `kiln/`, so that one bucket can hold several installs. */
  keyPrefix?: string;
  /** Lifetime of `signedUrl` links (KILN_URL_TTL_S); S3 allows at most 7 days. */
  urlTtlSeconds: number;
  /** Tries per request, the first included; 5xx, throttling, timeouts and resets are retried with exponential backoff. */
  maxAttempts?: number;
  /** Longest wait for a TCP connection. */
  connectTimeoutMs?: number;
  /** Longest time from sending a request (its body included) to the response's headers. */
  requestTimeoutMs?: number;
  /** Longest silence on a socket, also while a response body streams. */
  socketTimeoutMs?: number;
  /** Streams and larger bodies go up in parts of this size (S3's minimum is 5 MiB). */
  partSizeBytes?: number;
  /** Parts in flight at once for one upload; memory used is about this times the part size. */
  partConcurrency?: number;
  /** Signed URLs kept for reuse; the oldest is dropped beyond this. */
  urlCacheSize?: number;
  /** Milliseconds since the epoch; tests move it instead of waiting. */
  now?: () => number;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_URL_TTL_S = 7 * 24 * 3600;
/** A cached URL is replaced once less than this share of its lifetime remains. */
const REISSUE_WHEN_LEFT = 0.2;
const DELETE_BATCH = 1000;

/** Objects in an S3-compatible bucket; links are presigned S3 URLs that bypass the API. */
export class S3Storage implements Storage {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  /** Signs URLs for clients: the same client unless a public endpoint is set. */
  private readonly presigner: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly urlTtlSeconds: number;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly urlCacheSize: number;
  private readonly now: () => number;
  /** Signed GET URLs by key and download name, oldest use first. */
  private readonly urls = new Map<string, { url: string; expiresAt: number }>();

  constructor(options: S3StorageOptions) {
    this.bucket = options.bucket;
    this.prefix = options.keyPrefix ? `${assertKey(options.keyPrefix.replace(/\/+$/, ''))}/` : '';
    this.urlTtlSeconds = options.urlTtlSeconds;
    this.partSize = options.partSizeBytes ?? 8 * 1024 * 1024;
    this.partConcurrency = options.partConcurrency ?? 4;
    this.urlCacheSize = options.urlCacheSize ?? 10_000;
    this.now = options.now ?? Date.now;
    if (!Number.isInteger(this.urlTtlSeconds) || this.urlTtlSeconds < 1 || this.urlTtlSeconds > MAX_URL_TTL_S) {
      throw new RangeError(`urlTtlSeconds must be a whole number of seconds from 1 to ${MAX_URL_TTL_S}`);
    }
    if (this.partSize < MIN_PART_SIZE) throw new RangeError(`partSizeBytes must be at least ${MIN_PART_SIZE}`);
    this.client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
      credentials: options.credentials,
      maxAttempts: options.maxAttempts ?? 4,
      retryMode: 'standard',
      // The SDK's defaults are no timeouts at all: a silent server would hold a request forever.
      requestHandler: new NodeHttpHandler({
        connectionTimeout: options.connectTimeoutMs ?? 5_000,
        requestTimeout: options.requestTimeoutMs ?? 60_000,
        // Without this a request timeout only logs a warning.
        throwOnRequestTimeout: true,
        socketTimeout: options.socketTimeoutMs ?? 30_000,
      }),
      // With the default (WHEN_SUPPORTED) a presigned PUT carries the CRC32 of an empty body, so
      // S3 refuses every real upload to it, and several S3-compatible services refuse the
      // checksum headers and trailers outright.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.presigner = options.publicEndpoint
      ? new S3Client({
          region: options.region,
          endpoint: options.publicEndpoint,
          forcePathStyle: options.forcePathStyle ?? false,
          credentials: options.credentials,
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        })
      : this.client;
  }

  private objectKey(key: string) {
    return this.prefix + assertKey(key);
  }

  async put(key: string, body: Uint8Array | Readable, contentType = contentTypeOf(key)): Promise<void> {
    const Key = this.objectKey(key);
    if (body instanceof Uint8Array && body.byteLength <= this.partSize) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, ContentType: contentType }));
      return;
    }
    // Parts are invisible until the upload completes, so a failure part-way leaves no object.
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: body, ContentType: contentType },
      partSize: this.partSize,
      queueSize: this.partConcurrency,
      // Aborted below instead, so that a failed abort cannot hide why the upload failed.
      leavePartsOnError: true,
    });
    try {
      await upload.done();
    } catch (err) {
      if (upload.uploadId) {
        // Should this fail too, the parts stay until the bucket's lifecycle rule for incomplete
        // multipart uploads removes them; they are never readable as an object.
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: upload.uploadId }))
          .catch(() => undefined);
      }
      throw err;
    }
  }

  async read(key: string): Promise<Readable> {
    const { Body } = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    if (!(Body instanceof Readable)) throw new Error(`S3 returned no readable body for ${key}`);
    return Body;
  }

  async stat(key: string) {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { size: head.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string) {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  /** Deletes every object under `prefix/` (not `prefixed-sibling`), a page of at most 1000 at a time. */
  async deletePrefix(prefix: string) {
    const Prefix = `${this.objectKey(prefix.replace(/\/+$/, ''))}/`;
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken, MaxKeys: DELETE_BATCH }),
      );
      const Objects = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
      if (Objects.length > 0) {
        const result = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects, Quiet: true } }),
        );
        const failed = result.Errors ?? [];
        if (failed.length > 0) {
          throw new Error(`S3 did not delete ${failed.length} objects under ${Prefix}, first ${failed[0]!.Key}: ${failed[0]!.Code}`);
        }
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  /** A presigned GET; the same URL is handed out again until less than a fifth of its lifetime is left. */
  async signedUrl(key: string, { downloadAs }: UrlOptions) {
    const Key = this.objectKey(key);
    const cacheKey = `${Key}\n${downloadAs ?? ''}`;
    const now = this.now();
    const cached = this.urls.get(cacheKey);
    this.urls.delete(cacheKey);
    if (cached && cached.expiresAt - now > this.urlTtlSeconds * 1000 * REISSUE_WHEN_LEFT) {
      this.urls.set(cacheKey, cached);
      return cached.url;
    }
    // Presigned URLs carry the signing time in whole seconds.
    const signedAt = Math.floor(now / 1000) * 1000;
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key,
      ...(downloadAs
        ? { ResponseContentDisposition: attachment(downloadAs), ResponseContentType: 'application/octet-stream' }
        : {}),
    });
    const url = await getSignedUrl(this.presigner, command, { expiresIn: this.urlTtlSeconds, signingDate: new Date(signedAt) });
    this.urls.set(cacheKey, { url, expiresAt: signedAt + this.urlTtlSeconds * 1000 });
    if (this.urls.size > this.urlCacheSize) this.urls.delete(this.urls.keys().next().value!);
    return url;
  }

  /** A presigned PUT whose signature covers Content-Length, so S3 takes exactly `sizeBytes` bytes. */
  async uploadUrl(key: string, { sizeBytes, ttlSeconds }: { baseUrl: string; sizeBytes: number; ttlSeconds: number }): Promise<UploadTarget> {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new RangeError(`invalid upload size ${sizeBytes}`);
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_URL_TTL_S) {
      throw new RangeError(`invalid upload URL lifetime ${ttlSeconds}`);
    }
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(sizeBytes) };
    const signedAt = Math.floor(this.now() / 1000) * 1000;
    const url = await getSignedUrl(
      this.presigner,
      new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), ContentLength: sizeBytes, ContentType: headers['content-type'] }),
      // The presigner leaves Content-Type unsigned unless asked; signing it makes the headers exact.
      { expiresIn: ttlSeconds, signingDate: new Date(signedAt), signableHeaders: new Set(Object.keys(headers)) },
    );
    return { url, method: 'PUT', headers, expiresAt: new Date(signedAt + ttlSeconds * 1000) };
  }

  localPath(): undefined {
    return undefined;
  }

  async ping() {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  /** Closes the client's pooled sockets. */
  close() {
    this.client.destroy();
    if (this.presigner !== this.client) this.presigner.destroy();
  }
}

function isNotFound(err: unknown) {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.$metadata?.httpStatusCode === 404 || e?.name === 'NotFound' || e?.name === 'NoSuchKey';
}

/** The same file name the local driver's `/files/` route sends, so both drivers name downloads alike. */
function attachment(name: string) {
  return `attachment; filename="${name.replace(/[^\w.-]/g, '_')}"`;
}
