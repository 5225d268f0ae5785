import { type DragEvent, type FormEvent, useEffect, useState } from 'react';
import { useClient } from 'urql';
import { useApiKey } from '../api/api-key';
import { createDatasetDirect, createDatasetMultipart, type DatasetResult, fileIndexOf } from '../api/dataset-upload';
import type { Problem } from '../api/errors';
import type { Dataset } from '../api/training-operations';
import { settings } from '../settings';
import { formatBytes } from '../ui/format';
import { Problems } from '../ui/problems';
import { SendMethodField, type SendMethod, UploadProgress, type UploadProgressState } from '../ui/upload-fields';


const IMAGE = /\.(jpe?g|png|webp)$/i;
const stem = (name: string) => name.replace(/\.[^./]+$/, '');
const ext = (name: string) => /\.[^./]+$/.exec(name)?.[0].toLowerCase() ?? '';

/** What a file is to Kiln, as far as its name tells (Kiln checks the content). */
function describe(file: File, all: File[]): string {
  const e = ext(file.name);
  if (IMAGE.test(file.name)) {
    const caption = all.find((f) => ext(f.name) === '.txt' && stem(f.name) === stem(file.name));
    return caption ? `image, caption ${caption.name}` : 'image, no caption (an empty one)';
  }
  if (e === '.txt') return all.some((f) => IMAGE.test(f.name) && stem(f.name) === stem(file.name)) ? 'caption' : 'caption without an image of its name';
  if (e === '.zip') return 'zip of images and captions';
  return 'not an image, caption or zip';
}

/** A small picture of an image about to be sent, from the browser's own copy of it. */
function Thumb({ file }: { file: File }) {
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    const u = URL.createObjectURL(file);
    setUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [file]);
  return url ? <img className="file-thumb" src={url} alt="" width={40} height={40} /> : <span className="file-thumb" />;
}

/**
 * A new dataset from files dropped here or chosen: images with their captions (.txt of the same
 * name), zips of them, or both. Sent in one multipart request while it fits
 * KILN_MAX_MULTIPART_MB, by direct upload beyond (or when asked). Kiln checks everything before
 * it keeps anything, and names each file it refuses (`files.<i>`), all in one answer: each
 * refusal is shown on its file, which can be removed or replaced before sending again.
 */
export function DatasetUpload({ onCreated }: { onCreated: (dataset: Dataset) => void }) {
  const client = useClient();
  const { key } = useApiKey();
  const [name, setName] = useState('');
  const [resolution, setResolution] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const [method, setMethod] = useState<SendMethod>('auto');
  const [over, setOver] = useState(false);
  const [progress, setProgress] = useState<UploadProgressState | undefined>();
  const [refusals, setRefusals] = useState<Map<string, Problem[]>>(new Map());
  const [problems, setProblems] = useState<Problem[]>([]);
  const [done, setDone] = useState<string>();

  const size = files.reduce((n, f) => n + f.size, 0);
  const multipart = method === 'multipart' || (method === 'auto' && size <= settings.maxMultipartBytes);

  /** Adds files by name: one of a name already listed replaces it (and its refusal). */
  const add = (list: FileList | null) => {
    // A dropped folder arrives as an entry of no type and no size, which cannot be read.
    const added = Array.from(list ?? []).filter((f) => f.size > 0 || f.type !== '');
    if (!added.length) return;
    const names = new Set(added.map((f) => f.name));
    setFiles((prev) => [...prev.filter((f) => !names.has(f.name)), ...added].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
    setRefusals((prev) => new Map([...prev].filter(([n]) => !names.has(n))));
    setDone(undefined);
  };
  const remove = (file: File) => {
    setFiles((prev) => prev.filter((f) => f !== file));
    setRefusals((prev) => new Map([...prev].filter(([n]) => n !== file.name)));
  };
  // Taking the drag over is what lets the page have the drop (rather than the browser open the file).
  const dragging = (e: DragEvent) => {
    e.preventDefault();
    setOver(true);
  };
  const drop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    add(e.dataTransfer.files);
  };

  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblems([]);
    setRefusals(new Map());
    setDone(undefined);
    const sent = files;
    const input = { name: name.trim(), resolution: resolution.trim() ? Number(resolution) : null };
    const onProgress = (s: number, total: number) => setProgress({ sent: s, total });
    setProgress({ sent: 0, total: size });
    let result: DatasetResult;
    try {
      result = multipart ? await createDatasetMultipart(key, sent, input, onProgress) : await createDatasetDirect(client, sent, input, onProgress);
    } catch (err) {
      result = { problems: [{ code: 'NETWORK', meaning: 'Kiln could not be reached', message: (err as Error).message }] };
    }
    setProgress(undefined);
    if ('problems' in result) {
      // A refusal naming a file goes beside it; the others (counts, totals) above the button.
      const byFile = new Map<string, Problem[]>();
      const rest: Problem[] = [];
      for (const p of result.problems) {
        const file = sent[fileIndexOf(p) ?? -1];
        if (file) byFile.set(file.name, [...(byFile.get(file.name) ?? []), p]);
        else rest.push(p);
      }
      setRefusals(byFile);
      setProblems(rest);
      return;
    }
    const d = result.dataset;
    setDone(`Created dataset “${d.name}”: ${d.imageCount} images${d.smallestSide ? `, the smallest ${d.smallestSide} px on its short side` : ''}.`);
    setFiles([]);
    setName('');
    setResolution('');
    onCreated(d);
  }

  const refused = files.filter((f) => refusals.has(f.name));
  return (
    <form className="card dataset-upload" onSubmit={(e) => void submit(e)} aria-label="New dataset">
      <h3>New dataset</h3>
      <div className="grid">
        <div className="field span-2">
          <label htmlFor="dataset-name">Name</label>
          <input id="dataset-name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="dataset-resolution">Check at resolution</label>
          <input id="dataset-resolution" type="number" min={8} max={2048} step={1} placeholder="at training" value={resolution} onChange={(e) => setResolution(e.target.value)} aria-describedby="dataset-resolution-hint" />
          <small id="dataset-resolution-hint" className="muted">
            images smaller on their short side are refused now
          </small>
        </div>
      </div>
      <div
        className={`drop-zone${over ? ' over' : ''}`}
        onDragEnter={dragging}
        onDragOver={dragging}
        onDragLeave={() => setOver(false)}
        onDrop={drop}
      >
        <p>Drop images (.jpg, .png, .webp) with their captions (.txt of the same name), or a .zip of them, here.</p>
        <label htmlFor="dataset-files">Or choose files</label>
        <input id="dataset-files" type="file" multiple accept=".jpg,.jpeg,.png,.webp,.txt,.zip" onChange={(e) => {
            add(e.target.files);
            // The same file chosen again (after a fix) must fire a change again.
            e.target.value = '';
          }} />
      </div>
      {files.length > 0 && (
        <>
          <p className="muted">
            {files.length} file{files.length > 1 ? 's' : ''}, {formatBytes(size)}
            {refused.length ? ` · ${refused.length} refused: remove or replace ${refused.length > 1 ? 'them' : 'it'} and send again` : ''}
          </p>
          <ul className="file-list" aria-label="Files to send">
            {files.map((f) => {
              const why = refusals.get(f.name);
              return (
                <li key={f.name} className={why ? 'refused' : undefined} aria-label={f.name}>
                  <div className="file-row">
                    {IMAGE.test(f.name) ? <Thumb file={f} /> : <span className="file-thumb file-kind">{ext(f.name).slice(1) || '?'}</span>}
                    <span className="file-name">{f.name}</span>
                    <span className="muted">
                      {formatBytes(f.size)} · {describe(f, files)}
                    </span>
                    <button type="button" className="quiet" onClick={() => remove(f)} aria-label={`Remove ${f.name}`} disabled={progress !== undefined}>
                      Remove
                    </button>
                  </div>
                  {why && <Problems problems={why} />}
                </li>
              );
            })}
          </ul>
        </>
      )}
      <SendMethodField name="dataset-method" method={method} onChange={setMethod} autoLabel={`by size (one request up to ${formatBytes(settings.maxMultipartBytes)})`} />
      <UploadProgress progress={progress} multipart={multipart} label="Dataset upload progress" then="Kiln checks every file once they have arrived." />
      <Problems problems={problems} />
      {done && (
        <p role="status" className="ok">
          {done}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary" disabled={progress !== undefined || files.length === 0}>
          {progress ? 'Sending…' : 'Create dataset'}
        </button>
      </div>
    </form>
  );
}
