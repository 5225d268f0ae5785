import { useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { JOB_ERROR_MEANINGS } from '../api/errors';
import { DELETE_JOB, JOB, type JobData, type JobDetail } from '../api/job-operations';
import { kindView } from '../kinds/registry';
import { jobFileName, OutputItem } from '../outputs/output-views';
import { Link, navigate } from '../router';
import { ConfirmButton } from '../ui/confirm-button';
import { formatDate, formatSeconds, STEP_LABELS } from '../ui/format';
import { Problems } from '../ui/problems';
import { StatusBadge } from '../ui/status-badge';

async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  // Plain-http origins other than localhost have no clipboard API.
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

const ms = (v: number | null | undefined) => (v === null || v === undefined ? '–' : formatSeconds(v / 1000));

/** What every job has, after its kind's own parameters. */
function lifecycleRows(job: JobDetail, runLabel: string): [string, string][] {
  return [
    ['Kind', job.kind],
    ['Step', STEP_LABELS[job.currentStep] ?? job.currentStep],
    ['Retries', String(job.retryCount)],
    ['Created', formatDate(job.createdAt)],
    ['Started', formatDate(job.startedAt)],
    ['Finished', formatDate(job.completedAt)],
    ...(job.deadlineAt ? ([['Deadline', formatDate(job.deadlineAt)]] as [string, string][]) : []),
    ...(job.timing
      ? ([
          ['Model load', ms(job.timing.modelLoadMs)],
          ['LoRA load', ms(job.timing.loraLoadMs)],
          ['Prompt encoding', ms(job.timing.encodeMs)],
          [runLabel, ms(job.timing.generateMs)],
          ['Saving', ms(job.timing.saveMs)],
          ['Total', ms(job.timing.totalMs)],
        ] as [string, string][])
      : []),
  ];
}

/** One job of any kind: its outputs at full size, every parameter, and what can be done with it. */
export function JobPage({ id }: { id: string }) {
  const [result] = useQuery<JobData>({ query: JOB, variables: { id } });
  const [removal, remove] = useMutation(DELETE_JOB);
  const [copied, setCopied] = useState<string | undefined>();
  const job = result.data?.job;

  if (result.fetching && !job) return <p className="muted">Loading…</p>;
  if (!job) {
    return (
      <div>
        <h1 tabIndex={-1}>Not found</h1>
        <Problems error={result.error} />
        {!result.error && <p>There is no job {id}; it may have been deleted.</p>}
        <Link to="/gallery">Back to the gallery</Link>
      </div>
    );
  }

  const view = kindView(job.kind);
  const title = view.title(job);
  const copy = async () => {
    try {
      await copyText(view.copyText(job));
      setCopied('Parameters copied.');
    } catch {
      setCopied('The browser did not allow copying.');
    }
  };
  const destroy = async () => {
    const r = await remove({ id: job.id });
    if (!r.error) navigate('/gallery');
  };

  return (
    <article className="generation">
      <p>
        <Link to="/gallery">← Gallery</Link>
      </p>
      <h1 tabIndex={-1} className="generation-title">
        {title}
      </h1>
      <p>
        <StatusBadge status={job.status} /> <span className="muted">{job.id}</span>
      </p>
      {job.error && (
        <p className="problems" role="alert">
          <strong>{JOB_ERROR_MEANINGS[job.error.code] ?? job.error.code}</strong>: {job.error.message}
        </p>
      )}
      <div className="actions">
        <button type="button" onClick={() => void copy()}>
          Copy parameters
        </button>
        {view.Actions && <view.Actions job={job} />}
        <ConfirmButton label="Delete" confirmLabel="Delete this job and its outputs?" onConfirm={() => void destroy()} disabled={removal.fetching} />
        <span role="status" className="muted">
          {copied}
        </span>
      </div>
      <Problems error={removal.error} />
      <div className="images">
        {job.outputs.map((o) => (
          <OutputItem key={o.index} output={o} of={title} fileName={jobFileName(job.id, o)} />
        ))}
      </div>
      <h2>Parameters</h2>
      <dl className="parameters">
        {[...view.parameters(job), ...lifecycleRows(job, view.runLabel ?? 'Running')].map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      {job.attempts.length > 0 && (
        <>
          <h2>Attempts</h2>
          <ol className="attempts">
            {job.attempts.map((a) => (
              <li key={a.attempt}>
                {formatDate(a.startedAt)} on {a.worker}: {a.outcome ?? 'running'}
                {a.error ? ` (${a.error.code}: ${a.error.message})` : ''}
              </li>
            ))}
          </ol>
        </>
      )}
    </article>
  );
}
