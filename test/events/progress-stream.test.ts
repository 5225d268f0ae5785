import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataSource } from 'typeorm';
import { openDatabase } from '../../src/db/data-source.js';
import type { JobEvent } from '../../src/db/entities/job-event.js';
import { Channel } from '../../src/events/channels.js';
import { EventHub } from '../../src/events/event-hub.js';
import { appendEvent } from '../../src/events/event-log.js';
import { PgListener } from '../../src/events/pg-listener.js';
import { progressStream } from '../../src/events/progress-stream.js';
import { createLogger } from '../../src/log.js';
import { createTestDatabase } from '../support/database.js';

describe('a generation progress stream', () => {
  let ds: DataSource;
  let listener: PgListener;
  let hub: EventHub;
  let modelId: string;

  beforeAll(async () => {
    const url = await createTestDatabase();
    ds = await openDatabase({ url, poolMax: 6, applicationName: 'kiln-test' });
    listener = new PgListener(url, createLogger('silent'));
    await listener.start();
    hub = new EventHub(ds, listener, createLogger('silent'));
    [{ id: modelId }] = await ds.query(
      `INSERT INTO models (name, kind, pipeline, storage_key, files, size_bytes, sha256) VALUES ('m', 'BASE', 'builtin', 'k', '[]', 0, $1) RETURNING id`,
      [crypto.randomUUID()],
    );
  });
  afterAll(async () => {
    await listener?.stop();
    await ds?.destroy();
  });

  async function newGeneration(): Promise<string> {
    const id = crypto.randomUUID();
    await ds.query(
      `INSERT INTO jobs (id, kind, queue, status, current_step, params) VALUES ($1, 'image', 'image.builtin', 'PENDING', 'QUEUED', $2)`,
      [id, JSON.stringify({ prompt: 'p', modelId })],
    );
    return id;
  }
  const step = (id: string, i: number) => appendEvent(ds.manager, id, { step: 'GENERATING', status: 'RUNNING', attempt: 1, progress: 0.5, stepIndex: i });
  const finish = (id: string) => appendEvent(ds.manager, id, { step: 'COMPLETED', status: 'COMPLETED', attempt: 1, progress: 1 });
  async function drain(stream: AsyncIterable<JobEvent>) {
    const seqs: number[] = [];
    for await (const e of stream) seqs.push(e.seq);
    return seqs;
  }

  it('replays what is stored, then streams live, with no gap and no duplicate across the switch', async () => {
    const id = await newGeneration();
    for (let i = 1; i <= 5; i++) await step(id, i);
    // Writes keep landing while the stream reads its backlog and switches to live.
    const writer = (async () => {
      for (let i = 6; i <= 60; i++) await step(id, i);
      await finish(id);
    })();
    const seqs = await drain(progressStream(ds, hub, id, 2));
    await writer;
    expect(seqs).toEqual(Array.from({ length: 59 }, (_, i) => i + 3));
  });

  it('ends after the terminal event, and at once when nothing follows the cursor of a finished generation', async () => {
    const id = await newGeneration();
    await step(id, 1);
    await finish(id);
    expect(await drain(progressStream(ds, hub, id, 0))).toEqual([1, 2]);
    expect(await drain(progressStream(ds, hub, id, 2))).toEqual([]);
  });

  it('ends when the generation is deleted', async () => {
    const id = await newGeneration();
    const stream = drain(progressStream(ds, hub, id, 0));
    await expect.poll(() => hub.size).toBeGreaterThan(0);
    await ds.query('DELETE FROM jobs WHERE id = $1', [id]);
    await ds.query(`SELECT pg_notify('${Channel.deleted}', $1)`, [id]);
    expect(await stream).toEqual([]);
  });

  it('reads what it missed while its LISTEN connection was down', async () => {
    const id = await newGeneration();
    const received: number[] = [];
    const done = (async () => {
      for await (const e of progressStream(ds, hub, id, 0)) received.push(e.seq);
    })();
    await step(id, 1);
    await expect.poll(() => received).toEqual([1]);
    await ds.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'kiln-listener' AND datname = current_database()`);
    for (let i = 2; i <= 5; i++) await step(id, i);
    await finish(id);
    await done;
    expect(received).toEqual([1, 2, 3, 4, 5, 6]);
    expect(listener.connected).toBe(true);
  });
});
