import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';

/** Which parts a process runs: the API, the worker, or both (the default, one machine). */
export const roles = ['all', 'api', 'worker'] as const;
export type Role = (typeof roles)[number];

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z
  .string()
  .transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'must be names of lower-case letters, digits and dashes')).min(1));

/**
 * Every setting Kiln reads, with its default. This schema is the only reader of process.env;
 * the parsed object is passed down from main.
 */
const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Postgres to use; without it Kiln starts its own embedded server under the data folder. */
  DATABASE_URL: z.string().url().optional(),
  KILN_DATA_DIR: z.string().min(1).default('./data'),
  KILN_EMBEDDED_PG_PORT: int(1, 65535).default(54329),
  KILN_DB_POOL_MAX: int(2, 200).default(10),
  KILN_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Base URL that signed links point at; by default the Host of the request that asked. */
  KILN_PUBLIC_URL: z.string().url().optional(),
  /** HMAC key for signed file URLs; by default a random key kept in the data folder. */
  KILN_URL_SECRET: z.string().min(16).optional(),
  KILN_URL_TTL_S: int(10, 7 * 24 * 3600).default(3600),
  KILN_STORAGE_DIR: z.string().min(1).optional(),
  /** Setting a bucket switches storage from local disk to S3 (AWS, R2, MinIO, …). */
  KILN_S3_BUCKET: z.string().min(3).optional(),
  KILN_S3_ENDPOINT: z.string().url().optional(),
  KILN_S3_PUBLIC_ENDPOINT: z.string().url().optional(),
  KILN_S3_REGION: z.string().min(1).optional(),
  AWS_REGION: z.string().min(1).optional(),
  KILN_S3_FORCE_PATH_STYLE: bool.default(false),
  KILN_S3_PREFIX: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/).optional(),
  KILN_MODEL_CACHE_DIR: z.string().min(1).optional(),
  KILN_MODEL_CACHE_MAX_GB: z.coerce.number().positive().default(50),
  KILN_MIN_FREE_DISK_GB: z.coerce.number().min(0).default(15),
  KILN_MAX_MULTIPART_MB: z.coerce.number().positive().max(4096).default(256),
  KILN_MAX_UPLOAD_MB: z.coerce.number().positive().default(65536),
  KILN_UPLOAD_URL_TTL_S: int(60, 7 * 24 * 3600).default(3600),
  KILN_WORKER_CONCURRENCY: int(1, 64).default(1),
  /** How often an idle worker looks for jobs when no wake-up notification arrives. */
  KILN_WORKER_POLL_MS: int(50, 60_000).default(1000),
  /** Kinds of job a worker takes (comma-separated; all by default). */
  KILN_WORKER_KINDS: list.optional(),
  /** Pipelines a worker runs, of those its execution providers allow (comma-separated; all by default). */
  KILN_WORKER_PIPELINES: list.optional(),
  /** How long a job waits for a worker that has its model loaded before any worker takes it; 0: no affinity. */
  KILN_AFFINITY_WAIT_S: int(0, 3600).default(30),
  KILN_DEBUG_ERRORS: bool.default(false),
  KILN_MAX_RETRIES: int(0, 100).default(3),
  /** First retry delay; it doubles (with jitter) for each later retry. Whole seconds in effect. */
  KILN_RETRY_DELAY_MS: int(0, 3_600_000).default(1000),
  KILN_JOB_SOFT_TIMEOUT_S: int(1, 86_400).default(570),
  KILN_JOB_TIMEOUT_S: int(1, 86_400).default(600),
  /** A worker silent this long loses its job to another (pg-boss heartbeat; at least 10). */
  KILN_HEARTBEAT_S: int(10, 3600).default(10),
  KILN_EXECUTION_PROVIDERS: z
    .string()
    .default('cpu')
    .transform((v) => v.split(',').map((p) => p.trim()).filter(Boolean))
    .pipe(z.array(z.enum(['cpu', 'webgpu', 'cuda'])).min(1)),
  KILN_SESSION_CACHE_MB: z.coerce.number().positive().max(1_048_576).default(8192),
  KILN_MODEL_KEEP_ALIVE_MIN: z.coerce.number().min(0).default(30),
  KILN_PREVIEW_INTERVAL_MS: int(0, 60_000).default(250),
  /** On SIGTERM, how long running jobs may take to finish before they go back to the queue. */
  KILN_SHUTDOWN_GRACE_S: int(0, 3600).default(30),
  KILN_MAX_BATCH: int(1, 1000).default(10),
  KILN_IDEMPOTENCY_TTL_H: int(1, 24 * 365).default(24),
  KILN_RECONCILE_INTERVAL_S: int(1, 3600).default(5),
  /** GraphiQL at GET /graphql; off by default when NODE_ENV=production. */
  KILN_GRAPHIQL: bool.optional(),
  /** Schema introspection; by default as GraphiQL. */
  KILN_INTROSPECTION: bool.optional(),
  /** Comma-separated API keys (`name:key` names a key in logs); none: no authentication. */
  KILN_API_KEYS: z.string().optional(),
  /** generate/generateBatch inputs a client may submit per minute; 0 turns the limit off. */
  KILN_RATE_LIMIT_PER_MINUTE: z.coerce.number().min(0).default(10),
  KILN_RATE_LIMIT_BURST: int(1, 1_000_000).optional(),
  /** Clients never rate limited: IP addresses, or `loopback`. */
  KILN_RATE_LIMIT_ALLOW: z.string().default('loopback'),
  /** Take the client's address from X-Forwarded-For (behind a reverse proxy). */
  KILN_TRUST_PROXY: bool.default(false),
  KILN_MAX_DEPTH: int(1, 100).default(12),
  KILN_MAX_ALIASES: int(1, 1000).default(15),
  KILN_MAX_TOKENS: int(10, 1_000_000).default(2000),
  KILN_MAX_COST: int(10, 10_000_000).default(20000),
  KILN_WS_MAX_SUBSCRIPTIONS: int(1, 10_000).default(20),
  KILN_WS_KEEPALIVE_S: int(0, 3600).default(12),
  /** The queue is reported degraded once its oldest pending job has waited this long. */
  KILN_QUEUE_STALL_S: int(1, 86_400).default(600),
  /** Outages in a row of an external dependency (storage) that open its circuit breaker. */
  KILN_BREAKER_FAILURES: int(1, 1000).default(5),
  /** How long an open circuit fails calls at once before one probes the dependency again. */
  KILN_BREAKER_OPEN_S: int(1, 3600).default(30),
  /** Command that runs ai-toolkit's run.py on this host (words split on spaces); unset: no ai-toolkit here. */
  KILN_TRAINER_AI_TOOLKIT: z.string().trim().min(1).optional(),
  /** Command that runs sd-scripts' train_network.py on this host (words split on spaces); unset: no sd-scripts here. */
  KILN_TRAINER_SD_SCRIPTS: z.string().trim().min(1).optional(),
  /**
   * Where webhooks may go although the address is private, loopback or link-local
   * (comma-separated): host names, IP addresses, CIDR ranges, `loopback`, `private`, `link-local`.
   */
  KILN_WEBHOOK_ALLOW: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(z.string().refine(isAllowEntry, 'must be host names, IP addresses, CIDR ranges, loopback, private or link-local'))),
  /** One delivery attempt, connection to the end of the response. */
  KILN_WEBHOOK_TIMEOUT_MS: int(100, 300_000).default(10_000),
  /** Delay before the first retry of a delivery; it doubles (with jitter) for each later one. */
  KILN_WEBHOOK_RETRY_DELAY_MS: int(1, 3_600_000).default(5_000),
  KILN_WEBHOOK_MAX_RETRY_DELAY_MS: int(1, 86_400_000).default(3_600_000),
  /** How long a delivery is retried before it is given up. */
  KILN_WEBHOOK_RETRY_FOR_S: int(1, 30 * 86_400).default(86_400),
  /** Failed attempts in a row after which a webhook (subscription) is disabled. */
  KILN_WEBHOOK_DISABLE_AFTER: int(1, 1_000_000).default(50),
  /** Deliveries one process sends at once. */
  KILN_WEBHOOK_CONCURRENCY: int(1, 256).default(8),
  /** How often a process looks for due deliveries when nothing woke it. */
  KILN_WEBHOOK_POLL_MS: int(50, 60_000).default(1000),
  /** After a secret rotation, how long deliveries are also signed with the old secret. */
  KILN_WEBHOOK_SECRET_OVERLAP_H: z.coerce.number().min(0).max(30 * 24).default(24),
  /** Finished deliveries (and their attempts) are kept this many days. */
  KILN_WEBHOOK_LOG_DAYS: int(1, 3650).default(7),
  /** The Hugging Face hub installs list and download from: a mirror or an air-gapped proxy of it. */
  KILN_HF_ENDPOINT: z.string().url().default('https://huggingface.co'),
  /** Sent to the hub (never elsewhere) for gated and private repos; any value is taken, so none is ever echoed. */
  KILN_HF_TOKEN: z.string().optional(),
  /** Where workers keep installs' downloads while they run, so that a retry resumes them. */
  KILN_INSTALL_DIR: z.string().min(1).optional(),
  /** An install's request that sends nothing for this long (no headers, or no bytes) fails. */
  KILN_INSTALL_TIMEOUT_S: int(1, 3600).default(60),
  /** Files of one install downloaded at once. */
  KILN_INSTALL_PARALLEL: int(1, 32).default(4),
  /** Let installs fetch plain http:// URLs (a mirror inside a private network); https:// only by default. */
  KILN_INSTALL_ALLOW_HTTP: bool.default(false),
  /** Hard time limit of one training attempt (its soft limit is 95% of it). */
  KILN_TRAINING_TIMEOUT_S: int(1, 30 * 86_400).default(7200),
  /** Where a worker keeps the folders of the trainings it runs (removed when each attempt ends). */
  KILN_TRAINING_DIR: z.string().min(1).optional(),
  /** Days a training's checkpoints and an unfinished dataset upload are kept after they end or stall. */
  KILN_FILE_RETENTION_DAYS: z.coerce.number().min(0).max(3650).default(7),
  KILN_DATASET_MAX_FILE_MB: z.coerce.number().positive().max(4096).default(100),
  KILN_DATASET_MAX_MB: z.coerce.number().positive().max(65_536).default(500),
  KILN_DATASET_MIN_IMAGES: int(1, 100_000).default(5),
  KILN_DATASET_MAX_IMAGES: int(1, 100_000).default(200),
  /** Largest image a dataset takes, in millions of pixels (decompression bombs are refused by this count before decoding). */
  KILN_DATASET_MAX_MEGAPIXELS: z.coerce.number().positive().max(1000).default(64),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  role: Role;
  http: { port: number; host: string; publicUrl: string | undefined };
  database: { url: string | undefined; embeddedDir: string; embeddedPort: number; poolMax: number };
  dataDir: string;
  logLevel: Env['KILN_LOG_LEVEL'];
  urls: { secret: string | undefined; ttlSeconds: number };
  storage:
    | { kind: 'local'; dir: string }
    | {
        kind: 's3';
        bucket: string;
        endpoint: string | undefined;
        publicEndpoint: string | undefined;
        region: string;
        forcePathStyle: boolean;
        prefix: string | undefined;
      };
  models: { cacheDir: string; cacheMaxBytes: number; minFreeDiskBytes: number };
  uploads: { maxMultipartBytes: number; maxUploadBytes: number; urlTtlSeconds: number };
  worker: {
    concurrency: number;
    pollMs: number;
    heartbeatSeconds: number;
    shutdownGraceMs: number;
    /** Kinds it takes; undefined: all. */
    kinds: string[] | undefined;
    /** Pipelines it runs; undefined: all its providers allow. */
    pipelines: string[] | undefined;
    affinityWaitSeconds: number;
  };
  jobs: {
    maxRetries: number;
    retryDelayMs: number;
    softTimeoutSeconds: number;
    hardTimeoutSeconds: number;
    maxBatch: number;
    idempotencyTtlHours: number;
    reconcileIntervalMs: number;
  };
  inference: { executionProviders: string[]; sessionCacheBytes: number; keepAliveMs: number; previewIntervalMs: number };
  debugErrors: boolean;
  graphql: {
    graphiql: boolean;
    introspection: boolean;
    maxDepth: number;
    maxAliases: number;
    maxTokens: number;
    maxCost: number;
    maxSubscriptionsPerSocket: number;
    keepAliveMs: number;
  };
  /** API keys by the name logs and limits use; empty: anyone may call. */
  apiKeys: Map<string, string>;
  rateLimit: { perMinute: number; burst: number; allow: string[]; trustProxy: boolean };
  health: { queueStallSeconds: number };
  /** Every external dependency's circuit breaker (storage now). */
  breaker: { failureThreshold: number; openMs: number };
  /** External LoRA trainers installed on this host: each one's command line as words. */
  trainers: { aiToolkit: string[] | undefined; sdScripts: string[] | undefined };
  webhooks: WebhookSettings;
  training: {
    /** Hard limit of one attempt. */
    timeoutSeconds: number;
    /** The worker's local folder for trainings' work. */
    workDir: string;
  };
  /** What a dataset upload may hold. */
  datasets: { maxFileBytes: number; maxBytes: number; minImages: number; maxImages: number; maxPixels: number };
  /** How long files left behind (finished trainings' checkpoints, unfinished dataset uploads) are kept. */
  fileRetentionMs: number;
  install: {
    /** Work folders of installs under way on this host, one per job. */
    dir: string;
    hubEndpoint: string;
    hubToken: string | undefined;
    requestTimeoutMs: number;
    parallelFiles: number;
    allowHttp: boolean;
  };
}

export interface WebhookSettings {
  /** Entries of KILN_WEBHOOK_ALLOW, lower-cased. */
  allow: string[];
  timeoutMs: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  retryForSeconds: number;
  disableAfter: number;
  concurrency: number;
  pollMs: number;
  secretOverlapSeconds: number;
  logRetentionDays: number;
}

export class ConfigError extends Error {}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Parses argv (`--role`) and the environment once; throws ConfigError naming the bad setting. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv.slice(2)): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    // Secrets are named, never shown.
    const shown = /SECRET|TOKEN|KEYS/.test(name) ? '(hidden)' : JSON.stringify(env[name]);
    throw new ConfigError(`Invalid setting ${name}=${shown}: ${issue.message}`);
  }
  const e = parsed.data;
  if (e.KILN_DATASET_MIN_IMAGES > e.KILN_DATASET_MAX_IMAGES) {
    throw new ConfigError(`Invalid setting KILN_DATASET_MIN_IMAGES=${e.KILN_DATASET_MIN_IMAGES}: more than KILN_DATASET_MAX_IMAGES (${e.KILN_DATASET_MAX_IMAGES})`);
  }
  const dataDir = path.resolve(e.KILN_DATA_DIR);
  return {
    env: e.NODE_ENV,
    role: parseRole(argv),
    http: { port: e.PORT, host: e.HOST, publicUrl: e.KILN_PUBLIC_URL?.replace(/\/+$/, '') },
    database: {
      url: e.DATABASE_URL,
      embeddedDir: path.join(dataDir, 'postgres'),
      embeddedPort: e.KILN_EMBEDDED_PG_PORT,
      poolMax: e.KILN_DB_POOL_MAX,
    },
    dataDir,
    logLevel: e.KILN_LOG_LEVEL,
    urls: { secret: e.KILN_URL_SECRET, ttlSeconds: e.KILN_URL_TTL_S },
    storage: e.KILN_S3_BUCKET
      ? {
          kind: 's3',
          bucket: e.KILN_S3_BUCKET,
          endpoint: e.KILN_S3_ENDPOINT,
          publicEndpoint: e.KILN_S3_PUBLIC_ENDPOINT,
          region: e.KILN_S3_REGION ?? e.AWS_REGION ?? 'us-east-1',
          forcePathStyle: e.KILN_S3_FORCE_PATH_STYLE,
          prefix: e.KILN_S3_PREFIX,
        }
      : { kind: 'local', dir: path.resolve(e.KILN_STORAGE_DIR ?? path.join(dataDir, 'storage')) },
    models: {
      cacheDir: path.resolve(e.KILN_MODEL_CACHE_DIR ?? path.join(dataDir, 'model-cache')),
      cacheMaxBytes: e.KILN_MODEL_CACHE_MAX_GB * GiB,
      minFreeDiskBytes: e.KILN_MIN_FREE_DISK_GB * GiB,
    },
    uploads: {
      maxMultipartBytes: Math.floor(e.KILN_MAX_MULTIPART_MB * MiB),
      maxUploadBytes: Math.floor(e.KILN_MAX_UPLOAD_MB * MiB),
      urlTtlSeconds: e.KILN_UPLOAD_URL_TTL_S,
    },
    worker: {
      concurrency: e.KILN_WORKER_CONCURRENCY,
      pollMs: e.KILN_WORKER_POLL_MS,
      heartbeatSeconds: e.KILN_HEARTBEAT_S,
      shutdownGraceMs: e.KILN_SHUTDOWN_GRACE_S * 1000,
      kinds: e.KILN_WORKER_KINDS,
      pipelines: e.KILN_WORKER_PIPELINES,
      affinityWaitSeconds: e.KILN_AFFINITY_WAIT_S,
    },
    jobs: {
      maxRetries: e.KILN_MAX_RETRIES,
      retryDelayMs: e.KILN_RETRY_DELAY_MS,
      softTimeoutSeconds: Math.min(e.KILN_JOB_SOFT_TIMEOUT_S, e.KILN_JOB_TIMEOUT_S),
      hardTimeoutSeconds: e.KILN_JOB_TIMEOUT_S,
      maxBatch: e.KILN_MAX_BATCH,
      idempotencyTtlHours: e.KILN_IDEMPOTENCY_TTL_H,
      reconcileIntervalMs: e.KILN_RECONCILE_INTERVAL_S * 1000,
    },
    inference: {
      executionProviders: e.KILN_EXECUTION_PROVIDERS,
      sessionCacheBytes: e.KILN_SESSION_CACHE_MB * MiB,
      keepAliveMs: e.KILN_MODEL_KEEP_ALIVE_MIN * 60_000,
      previewIntervalMs: e.KILN_PREVIEW_INTERVAL_MS,
    },
    debugErrors: e.KILN_DEBUG_ERRORS,
    graphql: {
      graphiql: e.KILN_GRAPHIQL ?? e.NODE_ENV !== 'production',
      introspection: e.KILN_INTROSPECTION ?? e.KILN_GRAPHIQL ?? e.NODE_ENV !== 'production',
      maxDepth: e.KILN_MAX_DEPTH,
      maxAliases: e.KILN_MAX_ALIASES,
      maxTokens: e.KILN_MAX_TOKENS,
      maxCost: e.KILN_MAX_COST,
      maxSubscriptionsPerSocket: e.KILN_WS_MAX_SUBSCRIPTIONS,
      keepAliveMs: e.KILN_WS_KEEPALIVE_S * 1000,
    },
    apiKeys: parseApiKeys(e.KILN_API_KEYS),
    rateLimit: {
      perMinute: e.KILN_RATE_LIMIT_PER_MINUTE,
      burst: e.KILN_RATE_LIMIT_BURST ?? Math.max(1, Math.ceil(e.KILN_RATE_LIMIT_PER_MINUTE)),
      allow: e.KILN_RATE_LIMIT_ALLOW.split(',').map((a) => a.trim()).filter(Boolean),
      trustProxy: e.KILN_TRUST_PROXY,
    },
    health: { queueStallSeconds: e.KILN_QUEUE_STALL_S },
    breaker: { failureThreshold: e.KILN_BREAKER_FAILURES, openMs: e.KILN_BREAKER_OPEN_S * 1000 },
    trainers: { aiToolkit: e.KILN_TRAINER_AI_TOOLKIT?.split(/\s+/), sdScripts: e.KILN_TRAINER_SD_SCRIPTS?.split(/\s+/) },
    webhooks: {
      allow: e.KILN_WEBHOOK_ALLOW,
      timeoutMs: e.KILN_WEBHOOK_TIMEOUT_MS,
      retryDelayMs: e.KILN_WEBHOOK_RETRY_DELAY_MS,
      maxRetryDelayMs: Math.max(e.KILN_WEBHOOK_MAX_RETRY_DELAY_MS, e.KILN_WEBHOOK_RETRY_DELAY_MS),
      retryForSeconds: e.KILN_WEBHOOK_RETRY_FOR_S,
      disableAfter: e.KILN_WEBHOOK_DISABLE_AFTER,
      concurrency: e.KILN_WEBHOOK_CONCURRENCY,
      pollMs: e.KILN_WEBHOOK_POLL_MS,
      secretOverlapSeconds: Math.round(e.KILN_WEBHOOK_SECRET_OVERLAP_H * 3600),
      logRetentionDays: e.KILN_WEBHOOK_LOG_DAYS,
    },
    install: {
      dir: path.resolve(e.KILN_INSTALL_DIR ?? path.join(dataDir, 'installs')),
      hubEndpoint: e.KILN_HF_ENDPOINT.replace(/\/+$/, ''),
      hubToken: e.KILN_HF_TOKEN?.trim() || undefined,
      requestTimeoutMs: e.KILN_INSTALL_TIMEOUT_S * 1000,
      parallelFiles: e.KILN_INSTALL_PARALLEL,
      allowHttp: e.KILN_INSTALL_ALLOW_HTTP,
    },
    training: { timeoutSeconds: e.KILN_TRAINING_TIMEOUT_S, workDir: path.resolve(e.KILN_TRAINING_DIR ?? path.join(dataDir, 'training')) },
    datasets: {
      maxFileBytes: Math.floor(e.KILN_DATASET_MAX_FILE_MB * MiB),
      maxBytes: Math.floor(e.KILN_DATASET_MAX_MB * MiB),
      minImages: e.KILN_DATASET_MIN_IMAGES,
      maxImages: e.KILN_DATASET_MAX_IMAGES,
      maxPixels: Math.floor(e.KILN_DATASET_MAX_MEGAPIXELS * 1e6),
    },
    fileRetentionMs: e.KILN_FILE_RETENTION_DAYS * 86_400_000,
  };
}

/** A KILN_WEBHOOK_ALLOW entry: a word for a kind of address, an address, a range, or a host name. */
function isAllowEntry(entry: string): boolean {
  if (['loopback', 'private', 'link-local'].includes(entry)) return true;
  const [address, prefix, ...rest] = entry.split('/');
  const family = net.isIP(address!);
  if (family) return rest.length === 0 && (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)));
  return prefix === undefined && /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(address!);
}

/** `key` or `name:key`, comma-separated; unnamed keys are named by a short hash of themselves. */
function parseApiKeys(value: string | undefined): Map<string, string> {
  const keys = new Map<string, string>();
  for (const entry of (value ?? '').split(',').map((k) => k.trim()).filter(Boolean)) {
    const [name, key] = entry.includes(':') ? [entry.slice(0, entry.indexOf(':')), entry.slice(entry.indexOf(':') + 1)] : ['', entry];
    if (key.length < 16) throw new ConfigError('Invalid setting KILN_API_KEYS: every key must be at least 16 characters');
    keys.set(name || `key-${crypto.createHash('sha256').update(key).digest('hex').slice(0, 8)}`, key);
  }
  return keys;
}

function parseRole(argv: string[]): Role {
  const i = argv.findIndex((a) => a === '--role' || a.startsWith('--role='));
  if (i < 0) return 'all';
  const value = argv[i]!.includes('=') ? argv[i]!.split('=')[1] : argv[i + 1];
  if (!roles.includes(value as Role)) {
    throw new ConfigError(`Invalid --role ${JSON.stringify(value)}: expected one of ${roles.join(', ')}`);
  }
  return value as Role;
}
