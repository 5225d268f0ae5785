import crypto from 'node:crypto';
import type { GraphiQLOptions, Plugin } from 'graphql-yoga';
import { assetResponse, IMMUTABLE, makeAsset, notFoundResponse, type StaticAsset } from './static-files.js';

/** What GraphiQL opens with on a first visit (later visits keep the user's own tabs). */
export const KILN_EXAMPLE_OPERATION = `# Kiln's GraphQL API (the web app is at /).
# Run "Generate", put the id it returns in the variables
# ({"id": "…"}), then run "Progress" to watch its steps
# stream over the WebSocket, and "Generation" for the images.

mutation Generate {
  generate(input: { prompt: "a kiln glowing in the night", width: 256, height: 256, steps: 8, seed: 1234 }) {
    id
    status
  }
}

subscription Progress($id: ID!) {
  generationProgress(id: $id) { step stepIndex stepCount progress etaSeconds message }
}

query Generation($id: ID!) {
  generation(id: $id) {
    status
    images { url width height seed }
    timing { totalMs }
  }
}
`;

const PREFIX = '/graphiql/';

interface Bundle {
  /** Part of every asset's path: a new package version gets new URLs. */
  version: string;
  assets: Map<string, StaticAsset>;
}

let loading: Promise<Bundle> | undefined;

/**
 * GraphiQL's code comes from the installed @graphql-yoga/render-graphiql package (one bundle of
 * strings, 9 MB, imported on first use); Kiln serves it as cached files instead of the CDN that
 * yoga's default page loads from, so GraphiQL works on a machine without internet.
 */
function bundle(): Promise<Bundle> {
  loading ??= (async () => {
    const g = await import('@graphql-yoga/render-graphiql/graphiql');
    const version = crypto.createHash('sha256').update(g.js).update(g.css).digest('hex').slice(0, 12);
    const favicon = Buffer.from(g.favicon.slice(g.favicon.indexOf(',') + 1), 'base64');
    const files: [string, string | Uint8Array, string][] = [
      ['graphiql.js', g.js, 'text/javascript; charset=utf-8'],
      ['graphiql.css', g.css, 'text/css; charset=utf-8'],
      ['editor.worker.js', g.editorWorkerService, 'text/javascript; charset=utf-8'],
      ['json.worker.js', g.jsonWorker, 'text/javascript; charset=utf-8'],
      ['graphql.worker.js', g.graphqlWorker, 'text/javascript; charset=utf-8'],
      ['favicon.ico', favicon, 'image/x-icon'],
    ];
    const assets = new Map(await Promise.all(files.map(async ([name, body, type]) => [name, await makeAsset(body, type, IMMUTABLE)] as const)));
    return { version, assets };
  })();
  return loading;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** yoga's `renderGraphiQL`: the page, pointing at Kiln's own copies of GraphiQL's files. */
export async function renderKilnGraphiQL(opts: GraphiQLOptions = {}): Promise<string> {
  const { version } = await bundle();
  const base = `${PREFIX}${version}/`;
  const options = JSON.stringify({ defaultQuery: KILN_EXAMPLE_OPERATION, ...opts }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${escapeHtml(opts.title ?? 'GraphiQL')}</title>
    <link rel="icon" href="${base}favicon.ico" />
    <link rel="stylesheet" href="${base}graphiql.css" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>GraphiQL needs JavaScript.</noscript>
    <div id="root"></div>
    <script>
      const workers = { editorWorkerService: 'editor.worker.js', json: 'json.worker.js', graphql: 'graphql.worker.js' };
      self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (_id, label) => '${base}' + workers[label] };
    </script>
    <script src="${base}graphiql.js"></script>
    <script>YogaGraphiQL.renderYogaGraphiQL(document.querySelector('#root'), ${options});</script>
  </body>
</html>
`;
}

/** Serves `/graphiql/<version>/<file>`, GraphiQL's code, when GraphiQL is on. */
export function useGraphiQLAssets(enabled: boolean): Plugin {
  return {
    async onRequest({ url, request, endResponse, fetchAPI }) {
      if (!url.pathname.startsWith(PREFIX)) return;
      if (!enabled || (request.method !== 'GET' && request.method !== 'HEAD')) return endResponse(notFoundResponse(fetchAPI));
      const { version, assets } = await bundle();
      const [given, name, ...rest] = url.pathname.slice(PREFIX.length).split('/');
      const asset = given === version && rest.length === 0 ? assets.get(name ?? '') : undefined;
      endResponse(asset ? assetResponse(fetchAPI, request, asset) : notFoundResponse(fetchAPI));
    },
  };
}
