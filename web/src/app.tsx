import { useEffect, useMemo, useRef } from 'react';
import { Provider } from 'urql';
import { apiKey, useApiKey } from './api/api-key';
import { createKilnClient } from './api/client';
import { GalleryPage } from './gallery/gallery-page';
import { JobPage } from './gallery/job-page';
import { GeneratePage } from './generate/generate-page';
import { HealthPage } from './health/health-page';
import { KeyPrompt } from './key-prompt';
import { ModelsPage } from './models/models-page';
import { QueuePage } from './queue/queue-page';
import { Link, match, ROUTES, useLocation } from './router';
import { settings } from './settings';
import { TrainPage } from './train/train-page';
import { TrainingPage } from './train/training-page';

const NAV: [string, string][] = [
  [ROUTES.generate, 'Generate'],
  [ROUTES.queue, 'Queue'],
  [ROUTES.gallery, 'Gallery'],
  [ROUTES.train, 'Train'],
  [ROUTES.models, 'Models'],
  [ROUTES.health, 'Health'],
];

function Page({ path }: { path: string }) {
  const job = match(ROUTES.job, path);
  if (job) return <JobPage key={job.id} id={job.id!} />;
  const training = match(ROUTES.training, path);
  if (training) return <TrainingPage key={training.id} id={training.id!} />;
  switch (path) {
    case ROUTES.generate:
      return <GeneratePage />;
    case ROUTES.queue:
      return <QueuePage />;
    case ROUTES.gallery:
      return <GalleryPage />;
    case ROUTES.train:
      return <TrainPage />;
    case ROUTES.models:
      return <ModelsPage />;
    case ROUTES.health:
      return <HealthPage />;
    default:
      return (
        <div>
          <h1 tabIndex={-1}>Not found</h1>
          <p>
            No page at {path}. <Link to="/">Generate</Link>
          </p>
        </div>
      );
  }
}

function Shell() {
  const path = useLocation().split('?')[0]!;
  const { key } = useApiKey();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  // After a navigation, focus goes to the new page's heading, as a page load would put it.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [path]);
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand" aria-label="Kiln home">
          <img src="/favicon.svg" alt="" width={24} height={24} /> Kiln
        </Link>
        <nav aria-label="Pages">
          {NAV.map(([to, label]) => (
            <Link key={to} to={to} className={(to === '/' ? path === '/' : path.startsWith(to)) ? 'active' : undefined}>
              {label}
            </Link>
          ))}
          {settings.graphiql && <a href="/graphql">GraphiQL</a>}
        </nav>
        {key && (
          <button type="button" className="quiet" onClick={() => apiKey.forget()}>
            Forget API key
          </button>
        )}
      </header>
      <main id="main" ref={main}>
        <Page path={path} />
      </main>
    </>
  );
}

/** The app: asks for an API key when Kiln wants one, then the pages on a client that sends it. */
export function App() {
  const { key, rejected } = useApiKey();
  const kiln = useMemo(() => createKilnClient(key), [key]);
  // The app lives as long as the page: only a replaced client (another key) is closed.
  const previous = useRef(kiln);
  useEffect(() => {
    if (previous.current !== kiln) previous.current.dispose();
    previous.current = kiln;
  }, [kiln]);
  if ((settings.apiKeys && !key) || rejected) return <KeyPrompt rejected={rejected} />;
  return (
    <Provider value={kiln.client}>
      <Shell />
    </Provider>
  );
}
