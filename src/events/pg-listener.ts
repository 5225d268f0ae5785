import pg from 'pg';
import type { Logger } from '../log.js';
import { Channel } from './channels.js';

type Handler = (payload: string) => void;

const HEARTBEAT_MS = 10_000;
const HEARTBEAT_TIMEOUT_MS = 5_000;

/**
 * One LISTEN connection per process for all of Kiln's channels. NOTIFY is lost while the
 * connection is down, so after every reconnect the `onReconnect` handlers run: streams read what
 * they missed from the tables, workers look for jobs.
 */
export class PgListener {
  private client: pg.Client | undefined;
  private handlers = new Map<string, Set<Handler>>();
  private reconnectHandlers = new Set<() => void>();
  private stopped = false;
  private reconnecting: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.client = await this.connect();
    this.heartbeat = setInterval(() => void this.checkAlive(), HEARTBEAT_MS).unref();
  }

  on(channel: Channel, handler: Handler): () => void {
    let set = this.handlers.get(channel);
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  onReconnect(handler: () => void): () => void {
    this.reconnectHandlers.add(handler);
    return () => this.reconnectHandlers.delete(handler);
  }

  /** Whether the connection is up (for health). */
  get connected(): boolean {
    return this.client !== undefined && !this.reconnecting;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.url,
      application_name: 'kiln-listener',
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
    });
    client.on('notification', (msg) => {
      for (const handler of this.handlers.get(msg.channel) ?? []) {
        try {
          handler(msg.payload ?? '');
        } catch (err) {
          this.log.error({ err, channel: msg.channel }, 'notification handler failed');
        }
      }
    });
    const lost = (err?: Error) => {
      if (this.stopped || this.client !== client) return;
      this.log.warn({ err }, 'lost the LISTEN connection; reconnecting');
      void this.reconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      for (const channel of Object.values(Channel)) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return client;
  }

  private reconnect(): Promise<void> {
    this.reconnecting ??= (async () => {
      const old = this.client;
      this.client = undefined;
      await old?.end().catch(() => undefined);
      for (let delay = 100; !this.stopped; delay = Math.min(delay * 2, 5_000)) {
        try {
          this.client = await this.connect();
          break;
        } catch (err) {
          this.log.warn({ err, retryInMs: delay }, 'LISTEN connection failed');
          await new Promise((r) => setTimeout(r, delay));
        }
      }
      this.reconnecting = undefined;
      if (this.stopped) return;
      this.log.info('LISTEN connection restored');
      for (const handler of this.reconnectHandlers) handler();
    })();
    return this.reconnecting;
  }

  /** A silently dropped connection (no FIN, no error) is only found by asking it something. */
  private async checkAlive() {
    const client = this.client;
    if (!client || this.reconnecting) return;
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('heartbeat timed out')), HEARTBEAT_TIMEOUT_MS).unref());
    try {
      await Promise.race([client.query('SELECT 1'), timeout]);
    } catch (err) {
      if (this.client === client) {
        this.log.warn({ err }, 'LISTEN connection heartbeat failed');
        void this.reconnect();
      }
    }
  }
}
