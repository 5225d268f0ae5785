/**
 * The subscribers of bench:fanout, in a process of their own so that the server's process does
 * only the server's work: N sockets to `url`, graphql-ws clients subscribed to a job's progress
 * (`kiln`) or bare `ws` clients (`raw`). Says `ready` once every one is listening, then, when all
 * have their `expect` messages, prints the delays (arrival less the time the message says its
 * event happened) as one JSON line and exits.
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [mode, url, count, expected, jobId] = process.argv.slice(2) as ['kiln' | 'raw', string, string, string, string | undefined];
const n = Number(count);
const delays: number[] = [];
const samples: string[] = [];
let ready = 0;
let finished = 0;
const opened = () => ++ready === n && process.stdout.write('ready\n');
const finish = () => {
  if (++finished < n) return;
  // Exits once the line is out: a pipe takes a long line in several writes.
  process.stdout.write(`${JSON.stringify({ delays, samples })}\n`, () => process.exit(0));
};

const PROGRESS = `subscription($id: ID!) { generationProgress(id: $id) { cursor step stepIndex stepCount progress etaSeconds message at } }`;

for (let c = 0; c < n; c++) {
  if (mode === 'kiln') {
    const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
    let first = true;
    client.subscribe<{ generationProgress: { at: string; step: string } }>(
      { query: PROGRESS, variables: { id: jobId } },
      {
        next: (v) => {
          const arrived = Date.now();
          const e = v.data!.generationProgress;
          if (first) {
            first = false;
            opened();
          }
          // QUEUED happened before anyone subscribed: replayed, not delivered live.
          if (e.step !== 'QUEUED') delays.push(arrived - Date.parse(e.at));
          if (c === 0) samples.push(JSON.stringify({ at: e.at, message: { type: 'next', id: '1', payload: v } }));
        },
        error: (err) => {
          console.error(err);
          process.exit(1);
        },
        complete: finish,
      },
    );
  } else {
    const ws = new WebSocket(url);
    let got = 0;
    ws.on('open', opened);
    ws.on('message', (data) => {
      delays.push(Date.now() - (JSON.parse(String(data)) as { sentAt: number }).sentAt);
      if (++got === Number(expected)) finish();
    });
  }
}
