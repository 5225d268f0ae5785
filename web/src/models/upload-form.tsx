import { type FormEvent, useState } from 'react';
import { useClient } from 'urql';
import { useApiKey } from '../api/api-key';
import type { Problem } from '../api/errors';
import type { Model, ModelKind } from '../api/operations';
import { type UploadFile, type UploadResult, uploadDirect, uploadMultipart } from '../api/upload';
import { settings } from '../settings';
import { formatBytes } from '../ui/format';
import { Problems } from '../ui/problems';
import { SendMethodField, type SendMethod, UploadProgress, type UploadProgressState } from '../ui/upload-fields';


/** A base model's folder as picked: each file's path inside it, without the folder's own name. */
const folderFiles = (list: FileList): UploadFile[] =>
  Array.from(list, (file) => ({ file, path: (file.webkitRelativePath || file.name).split('/').slice(1).join('/') || file.name }));

/**
 * Uploads a LoRA adapter (one .safetensors file) or a base model (a folder, file by file). A LoRA
 * small enough goes in one multipart request; anything else, or when asked, goes by direct upload.
 */
export function UploadForm({ bases, onUploaded }: { bases: Model[]; onUploaded: (model: Model) => void }) {
  const client = useClient();
  const { key } = useApiKey();
  const [kind, setKind] = useState<ModelKind>('LORA');
  const [name, setName] = useState('');
  const [baseModelId, setBaseModelId] = useState('');
  const [triggerWord, setTriggerWord] = useState('');
  const [files, setFiles] = useState<UploadFile[]>([]);
  const [method, setMethod] = useState<SendMethod>('auto');
  const [progress, setProgress] = useState<UploadProgressState | undefined>();
  const [problems, setProblems] = useState<Problem[]>([]);
  const [done, setDone] = useState<string | undefined>();

  const base = bases.find((b) => b.id === baseModelId) ?? bases.find((b) => b.isDefault) ?? bases[0];
  const size = files.reduce((n, f) => n + f.file.size, 0);
  const multipart = kind === 'LORA' && files.length === 1 && (method === 'multipart' || (method === 'auto' && size <= settings.maxMultipartBytes));

  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblems([]);
    setDone(undefined);
    const input = { name: name.trim(), kind, ...(kind === 'LORA' ? { baseModelId: base?.id ?? null, triggerWord: triggerWord.trim() || null } : {}) };
    const onProgress = (sent: number, total: number) => setProgress({ sent, total });
    setProgress({ sent: 0, total: size });
    let result: UploadResult;
    try {
      result = multipart ? await uploadMultipart(key, files[0]!.file, input, onProgress) : await uploadDirect(client, kind === 'LORA' ? [{ file: files[0]!.file }] : files, input, onProgress);
    } catch (err) {
      result = { problems: [{ code: 'NETWORK', meaning: 'Kiln could not be reached', message: (err as Error).message }] };
    }
    setProgress(undefined);
    if ('problems' in result) return setProblems(result.problems);
    setDone(`Uploaded ${result.model.name}.`);
    onUploaded(result.model);
  }

  return (
    <form className="card upload-form" onSubmit={(e) => void submit(e)} aria-label="Upload a model">
      <h2>Upload</h2>
      <fieldset className="row">
        <legend>Kind</legend>
        <label className="inline">
          <input type="radio" name="kind" checked={kind === 'LORA'} onChange={() => (setKind('LORA'), setFiles([]))} /> LoRA adapter (.safetensors)
        </label>
        <label className="inline">
          <input type="radio" name="kind" checked={kind === 'BASE'} onChange={() => (setKind('BASE'), setFiles([]))} /> Base model (an ONNX folder)
        </label>
      </fieldset>
      <div className="grid">
        <div className="field">
          <label htmlFor="upload-name">Name</label>
          <input id="upload-name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        {kind === 'LORA' && (
          <>
            <div className="field">
              <label htmlFor="upload-base">For base model</label>
              <select id="upload-base" value={base?.id ?? ''} onChange={(e) => setBaseModelId(e.target.value)}>
                {bases.map((b) => (
                  <option key={b.id} value={b.id}>
                    {b.name}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor="upload-trigger">Trigger word</label>
              <input id="upload-trigger" maxLength={200} value={triggerWord} onChange={(e) => setTriggerWord(e.target.value)} />
            </div>
          </>
        )}
        <div className="field wide">
          <label htmlFor="upload-file">{kind === 'LORA' ? 'File' : 'Folder'}</label>
          {kind === 'LORA' ? (
            <input id="upload-file" type="file" required accept=".safetensors" onChange={(e) => setFiles(e.target.files?.[0] ? [{ file: e.target.files[0] }] : [])} />
          ) : (
            <input id="upload-file" type="file" required {...{ webkitdirectory: '', directory: '' }} onChange={(e) => setFiles(e.target.files ? folderFiles(e.target.files) : [])} />
          )}
          <small className="muted">
            {files.length ? `${files.length} file${files.length > 1 ? 's' : ''}, ${formatBytes(size)} · ` : ''}
            multipart up to {formatBytes(settings.maxMultipartBytes)}, direct upload up to {formatBytes(settings.maxUploadBytes)}
          </small>
        </div>
      </div>
      {kind === 'LORA' && <SendMethodField name="method" method={method} onChange={setMethod} autoLabel="by size" />}
      <UploadProgress progress={progress} multipart={multipart} label="Upload progress" then="Kiln checks the file when it has arrived." />
      <Problems problems={problems} />
      {done && (
        <p role="status" className="ok">
          {done}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary" disabled={progress !== undefined || files.length === 0}>
          {progress ? 'Uploading…' : 'Upload'}
        </button>
      </div>
    </form>
  );
}
