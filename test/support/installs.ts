/** Operations and checks the install tests share. */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import { collect, ok } from './graphql.js';
import type { TestKiln } from './kiln.js';

export const INSTALL = /* GraphQL */ `
  mutation Install($input: InstallModelInput!) {
    installModel(input: $input) { id kind status currentStep source name modelKind }
  }
`;

export const MODEL_INSTALL = /* GraphQL */ `
  query Install($id: ID!) {
    modelInstall(id: $id) {
      id status retryCount source name modelKind revision files
      error { code message retryable }
      attempts { attempt outcome error { code message retryable } }
      transfer { bytesDone bytesTotal filesDone fileCount bytesPerSecond }
      model { id name kind pipeline sha256 sizeBytes files { path sizeBytes sha256 } baseModel { id } }
    }
  }
`;

export const EVENTS = /* GraphQL */ `
  subscription Events($id: ID!, $after: String) {
    generationProgress(id: $id, after: $after) { cursor step status attempt stepIndex stepCount progress message etaSeconds detail }
  }
`;

export interface InstallEvent {
  cursor: string;
  step: string;
  status: string;
  attempt: number;
  stepIndex: number | null;
  stepCount: number | null;
  progress: number;
  message: string | null;
  etaSeconds: number | null;
  detail: { bytesDone: number; bytesTotal: number; bytesPerSecond: number; file: string; filesDone: number; fileCount: number } | null;
}

/** Submits an install and follows it to its end: its events and the install as the API shows it then. */
export async function installAndWait(k: TestKiln, client: Client, input: Record<string, unknown>) {
  const { installModel } = await ok(k.gql(INSTALL, { input }));
  const events = (await collect<{ generationProgress: InstallEvent }>(client, EVENTS, { id: installModel.id })).map((e) => e.generationProgress);
  const { modelInstall } = await ok(k.gql(MODEL_INSTALL, { id: installModel.id }));
  return { id: installModel.id as string, events, install: modelInstall };
}

/** What installs left behind, to compare before and after one: model rows and files under models/ in local storage. */
export async function modelState(k: TestKiln) {
  const rows: { id: string }[] = await k.kiln.ds.query('SELECT id FROM models ORDER BY id');
  const root = path.join(k.dataDir, 'storage', 'models');
  const stored = (await fs.readdir(root, { recursive: true, withFileTypes: true }).catch(() => []))
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .sort();
  return { models: rows.map((r) => r.id), stored };
}

/** Whether the install's work folder (its downloads) is still on disk. */
export const workFolderLeft = (k: TestKiln, jobId: string) => fs.stat(path.join(k.dataDir, 'installs', jobId)).then(() => true, () => false);
