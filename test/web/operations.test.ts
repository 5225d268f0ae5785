import fs from 'node:fs';
import path from 'node:path';
import { buildSchema, parse, validate } from 'graphql';
import { describe, expect, it, vi } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const API = path.join(ROOT, 'web/src/api');

describe("the web app's GraphQL operations", () => {
  it("are valid against schema.graphql, every kind's fields selected together on each kind's own mutations", async () => {
    // The app's modules look at the page when they load (its history, its settings element).
    vi.stubGlobal('window', { addEventListener() {} });
    vi.stubGlobal('document', { getElementById: () => null });
    const schema = buildSchema(fs.readFileSync(path.join(ROOT, 'schema.graphql'), 'utf8'));
    const operations: [string, string][] = [];
    for (const file of fs.readdirSync(API).filter((f) => f.endsWith('.ts'))) {
      const module = (await import(path.join(API, file))) as Record<string, unknown>;
      for (const [name, value] of Object.entries(module)) {
        if (typeof value === 'string' && /^\s*(query|mutation|subscription)\b/.test(value)) operations.push([name, value]);
      }
    }
    vi.unstubAllGlobals();
    expect(operations.map(([name]) => name)).toEqual(expect.arrayContaining(['GENERATE', 'GENERATE_AUDIO_BATCH', 'JOB', 'TRAIN_LORA', 'TRAINING_PROGRESS', 'CREATE_DATASET', 'COMPLETE_DATASET_UPLOAD']));
    const invalid = operations.map(([name, doc]) => [name, validate(schema, parse(doc)).map((e) => e.message)] as const).filter(([, messages]) => messages.length);
    expect(invalid).toEqual([]);
  });
});
