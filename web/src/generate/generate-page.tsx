import { useMemo, useState } from 'react';
import { useQuery } from 'urql';
import { type Job, TERMINAL } from '../api/job-operations';
import { MODELS, type Model, type ModelsData } from '../api/operations';
import { formatSeconds } from '../ui/format';
import { Problems } from '../ui/problems';
import { FORMS } from './forms';
import { JobCard } from './job-card';
import { submittedJobs, useSubmittedJobs } from './jobs';
import { prefillOf } from './prefill';

/**
 * Cards that watch at once. Each watch is a subscription on the app's one socket, which Kiln
 * caps (KILN_WS_MAX_SUBSCRIPTIONS, 20 by default); the oldest unfinished jobs run first, so they
 * are the ones watched, and the next card starts watching as one finishes.
 */
const WATCHED_AT_ONCE = 8;

const seedOf = (job: Job | undefined) => (typeof job?.params.seed === 'number' ? job.params.seed : undefined);

/** The models by modality (a group per form), each modality's default marked. */
function ModelPicker({ models, model, loading, onChange }: { models: Model[]; model: Model | undefined; loading: boolean; onChange: (id: string) => void }) {
  return (
    <div className="field">
      <label htmlFor="modelId">Model</label>
      <select id="modelId" value={model?.id ?? ''} onChange={(e) => onChange(e.target.value)}>
        {Object.entries(FORMS).map(([modality, { label }]) => {
          const group = models.filter((m) => m.modality === modality);
          return (
            group.length > 0 && (
              <optgroup key={modality} label={label}>
                {group.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.name}
                    {m.isDefault ? ' (default)' : ''}
                  </option>
                ))}
              </optgroup>
            )
          );
        })}
      </select>
      <small className="muted">{model ? `${FORMS[model.modality]?.label.toLowerCase()} · pipeline: ${model.pipeline}` : loading ? 'loading models…' : 'no model'}</small>
    </div>
  );
}

export function GeneratePage() {
  const jobs = useSubmittedJobs();
  const [initial] = useState(prefillOf);
  const [modelId, setModelId] = useState(initial?.modelId ?? '');
  const [estimate, setEstimate] = useState<number | undefined>();
  const [seedRequest, setSeedRequest] = useState<{ seed: number } | undefined>();
  const [bases] = useQuery<ModelsData>({ query: MODELS, variables: { kind: 'BASE', first: 100 } });
  const [loras] = useQuery<ModelsData>({ query: MODELS, variables: { kind: 'LORA', first: 100 } });

  // The models the app has a form for.
  const models = useMemo(() => (bases.data?.models.edges.map((e) => e.node) ?? []).filter((m) => m.capabilities && FORMS[m.modality]), [bases.data]);
  // The page opens on the first modality's default model (images), unless handed another.
  const first = Object.keys(FORMS)[0];
  const model = models.find((m) => m.id === modelId) ?? models.find((m) => m.isDefault && m.modality === first) ?? models[0];
  const Form = model ? FORMS[model.modality]?.Form : undefined;
  const modelLoras = (loras.data?.models.edges.map((e) => e.node) ?? []).filter((l) => l.baseModel?.id === model?.id);

  const watched = useMemo(() => {
    // Oldest first; a batch's jobs share a creation time and keep their order (a stable sort).
    const unfinished = jobs.filter((j) => !TERMINAL.has(j.status)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    return new Set(unfinished.slice(0, WATCHED_AT_ONCE).map((j) => j.id));
  }, [jobs]);

  const submitted = (added: Job[], estimatedSeconds: number | undefined) => {
    submittedJobs.add(added);
    setEstimate(estimatedSeconds);
    // On a narrow screen the cards are below the form: bring the new ones into view.
    if (matchMedia('(max-width: 760px)').matches) document.getElementById('jobs-title')?.scrollIntoView({ block: 'start' });
  };

  const picker = <ModelPicker models={models} model={model} loading={bases.fetching} onChange={setModelId} />;
  return (
    <div className="generate-page">
      <section aria-labelledby="generate-title">
        <h1 id="generate-title" tabIndex={-1}>
          Generate
        </h1>
        <Problems error={bases.error} />
        {model && Form ? (
          <Form model={model} loras={modelLoras} picker={picker} initial={initial} lastSeed={seedOf(jobs[0])} onSubmitted={submitted} seedRequest={seedRequest} />
        ) : (
          <div className="card generate-form">{picker}</div>
        )}
      </section>
      <section aria-labelledby="jobs-title" className="jobs">
        <div className="section-head">
          <h2 id="jobs-title">Jobs</h2>
          {estimate !== undefined && <span className="muted">batch: about {formatSeconds(estimate)} of work</span>}
          {jobs.some((j) => TERMINAL.has(j.status)) && (
            <button type="button" className="quiet" onClick={() => jobs.filter((j) => TERMINAL.has(j.status)).forEach((j) => submittedJobs.remove(j.id))}>
              Clear finished
            </button>
          )}
        </div>
        {jobs.length === 0 && <p className="muted">Submitted jobs appear here with their live progress.</p>}
        <div className="job-list">
          {jobs.map((job) => (
            <JobCard
              key={job.id}
              job={job}
              watch={watched.has(job.id)}
              onReuseSeed={(seed) => setSeedRequest({ seed })}
              onDismiss={() => submittedJobs.remove(job.id)}
            />
          ))}
        </div>
      </section>
    </div>
  );
}
