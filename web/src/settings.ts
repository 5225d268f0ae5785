/** This Kiln's settings that the API does not say, filled into index.html by the server (src/server/web-app.ts). */
export interface Settings {
  maxBatch: number;
  maxMultipartBytes: number;
  maxUploadBytes: number;
  /** Every request needs an API key. */
  apiKeys: boolean;
  graphiql: boolean;
}

const MiB = 1024 * 1024;

// Kiln's defaults, for the dev server, whose index.html no Kiln has filled in.
const defaults: Settings = { maxBatch: 10, maxMultipartBytes: 256 * MiB, maxUploadBytes: 20480 * MiB, apiKeys: false, graphiql: true };

function read(): Settings {
  try {
    return { ...defaults, ...JSON.parse(document.getElementById('kiln-settings')?.textContent || '{}') };
  } catch {
    return defaults;
  }
}

export const settings: Settings = read();
