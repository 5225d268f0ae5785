import fs from 'node:fs/promises';
import path from 'node:path';
import type { GraphPatch } from '../../src/pipelines/pipeline.js';

/** A graph patch that rewrites the whole graph's bytes (the graph's external data stays beside it). */
export const bytesPatch = (file: string, apply: (bytes: Uint8Array) => Uint8Array): GraphPatch => ({
  file,
  async open(graphPath) {
    return { bytes: apply(new Uint8Array(await fs.readFile(graphPath))), externalDataFolder: path.dirname(graphPath), dispose: async () => undefined };
  },
});
