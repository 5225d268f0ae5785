import fs from 'node:fs/promises';
import path from 'node:path';
import type { LossPoint } from '../trainer.js';

/**
 * The losses Kiln read from a tool's progress, kept in `kiln-losses.jsonl` in the work folder
 * so that a resumed training's curve still starts at step 1. A later line for a step replaces
 * an earlier one.
 */
export class LossRecord {
  private readonly file: string;
  private readonly losses = new Map<number, number>();
  private writes = Promise.resolve();

  private constructor(workDir: string) {
    this.file = path.join(workDir, 'kiln-losses.jsonl');
  }

  static async open(workDir: string): Promise<LossRecord> {
    const record = new LossRecord(workDir);
    const text = await fs.readFile(record.file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      try {
        const { step, loss } = JSON.parse(line) as LossPoint;
        if (Number.isInteger(step) && Number.isFinite(loss)) record.losses.set(step, loss);
      } catch {
        // A line cut short when the process died.
      }
    }
    return record;
  }

  set(step: number, loss: number): void {
    if (!Number.isFinite(loss) || this.losses.get(step) === loss) return;
    this.losses.set(step, loss);
    const line = `${JSON.stringify({ step, loss })}\n`;
    this.writes = this.writes.then(() => fs.appendFile(this.file, line));
  }

  /** Every step's loss, `exact` (the tool's own record) taking precedence over what was read. */
  async curve(exact: LossPoint[] = []): Promise<LossPoint[]> {
    await this.writes;
    const merged = new Map(this.losses);
    for (const p of exact) merged.set(p.step, p.loss);
    return [...merged].sort(([a], [b]) => a - b).map(([step, loss]) => ({ step, loss }));
  }
}
