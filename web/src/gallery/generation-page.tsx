import { useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { JOB_ERROR_MEANINGS } from '../api/errors';
import { DELETE_GENERATION, GENERATION, type GenerationData, type GenerationDetail } from '../api/operations';
import { parametersOf, parametersText } from '../generate/parameters';
import { Link, navigate } from '../router';
import { ConfirmButton } from '../ui/confirm-button';
import { formatBytes, formatDate, formatSeconds, STEP_LABELS } from '../ui/format';
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

const extensionOf = (mime: string) => ({ 'image/jpeg': 'jpg', 'image/webp': 'webp' })[mime] ?? 'png';

const ms = (v: number | null | undefined) => (v === null || v === undefined ? '–' : formatSeconds(v / 1000));

function Parameters({ g }: { g: GenerationDetail }) {
  const rows: [string, string][] = [
    ['Prompt', g.prompt],
    ['Negative prompt', g.negativePrompt ?? '–'],
    ['Model', g.model.name],
    ['LoRA', g.lora ? `${g.lora.name} at weight ${g.loraWeight}` : '–'],
    ['Size', `${g.width}×${g.height}`],
    ['Images', String(g.numImages)],
    ['Steps', String(g.steps)],
    ['Guidance', String(g.guidanceScale)],
    ['Scheduler', g.scheduler ?? 'the model\u2019s own'],
    ['Seed', String(g.seed)],
    ['Priority', String(g.priority)],
    ['Previews', g.previews ? 'on' : 'off'],
    ['Step', STEP_LABELS[g.currentStep] ?? g.currentStep],
    ['Retries', String(g.retryCount)],
    ['Created', formatDate(g.createdAt)],
    ['Started', formatDate(g.startedAt)],
    ['Finished', formatDate(g.completedAt)],
    ...(g.deadlineAt ? ([['Deadline', formatDate(g.deadlineAt)]] as [string, string][]) : []),
    ...(g.timing
      ? ([
          ['Model load', ms(g.timing.modelLoadMs)],
          ['LoRA load', ms(g.timing.loraLoadMs)],
          ['Prompt encoding', ms(g.timing.encodeMs)],
          ['Denoising', ms(g.timing.generateMs)],
          ['Saving', ms(g.timing.saveMs)],
          ['Total', ms(g.timing.totalMs)],
        ] as [string, string][])
      : []),
  ];
  return (
    <dl className="parameters">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

/** One generation: its images at full size, every parameter, and what can be done with it. */
export function GenerationPage({ id }: { id: string }) {
  const [result] = useQuery<GenerationData>({ query: GENERATION, variables: { id } });
  const [removal, remove] = useMutation(DELETE_GENERATION);
  const [copied, setCopied] = useState<string | undefined>();
  const g = result.data?.generation;

  if (result.fetching && !g) return <p className="muted">Loading…</p>;
  if (!g) {
    return (
      <div>
        <h1 tabIndex={-1}>Not found</h1>
        <Problems error={result.error} />
        {!result.error && <p>There is no generation {id}; it may have been deleted.</p>}
        <Link to="/gallery">Back to the gallery</Link>
      </div>
    );
  }

  const params = parametersOf(g);
  const copy = async () => {
    try {
      await copyText(parametersText(params));
      setCopied('Parameters copied.');
    } catch {
      setCopied('The browser did not allow copying.');
    }
  };
  const destroy = async () => {
    const r = await remove({ id: g.id });
    if (!r.error) navigate('/gallery');
  };

  return (
    <article className="generation">
      <p>
        <Link to="/gallery">← Gallery</Link>
      </p>
      <h1 tabIndex={-1} className="generation-title">
        {g.prompt}
      </h1>
      <p>
        <StatusBadge status={g.status} /> <span className="muted">{g.id}</span>
      </p>
      {g.error && (
        <p className="problems" role="alert">
          <strong>{JOB_ERROR_MEANINGS[g.error.code] ?? g.error.code}</strong>: {g.error.message}
        </p>
      )}
      <div className="actions">
        <button type="button" onClick={() => void copy()}>
          Copy parameters
        </button>
        <button type="button" className="primary" onClick={() => navigate('/', { generateAgain: params })}>
          Generate again
        </button>
        <ConfirmButton label="Delete" confirmLabel="Delete this generation and its images?" onConfirm={() => void destroy()} disabled={removal.fetching} />
        <span role="status" className="muted">
          {copied}
        </span>
      </div>
      <Problems error={removal.error} />
      <div className="images">
        {g.images.map((img, i) => (
          <figure key={i}>
            <a href={img.url} target="_blank" rel="noreferrer">
              <img src={img.url} alt={`Image ${i + 1} of "${g.prompt}", seed ${img.seed}`} width={img.width} height={img.height} />
            </a>
            <figcaption>
              seed {img.seed} · {img.width}×{img.height} · {formatBytes(img.bytes)}{' '}
              <a href={img.url} download={`kiln-${g.id.slice(0, 8)}-${i + 1}.${extensionOf(img.mimeType)}`}>
                Download
              </a>
            </figcaption>
          </figure>
        ))}
      </div>
      <h2>Parameters</h2>
      <Parameters g={g} />
      {g.attempts.length > 0 && (
        <>
          <h2>Attempts</h2>
          <ol className="attempts">
            {g.attempts.map((a) => (
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
