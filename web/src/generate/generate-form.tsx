import { type FormEvent, useEffect, useMemo, useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { idempotencyKey } from '../api/client';
import { inputFieldOf, type Problem, problemsOf } from '../api/errors';
import {
  GENERATE,
  GENERATE_BATCH,
  type GenerateBatchData,
  type GenerateData,
  type GenerateInput,
  type Generation,
  MODELS,
  type ModelsData,
  type Scheduler,
} from '../api/operations';
import { settings } from '../settings';
import { Problems } from '../ui/problems';
import { capabilitiesOf, type Range } from './capabilities';

/** The form's fields as typed: empty means "the model's default" (or "random" for the seed). */
interface Fields {
  modelId: string;
  prompt: string;
  negativePrompt: string;
  loraId: string;
  loraWeight: string;
  numImages: string;
  steps: string;
  guidanceScale: string;
  width: string;
  height: string;
  scheduler: string;
  seedMode: 'random' | 'fixed';
  seed: string;
  batch: string;
  priority: string;
  deadlineSeconds: string;
  previews: boolean;
}

const str = (v: number | string | null | undefined) => (v === null || v === undefined ? '' : String(v));

export function fieldsFrom(input: GenerateInput | undefined): Fields {
  return {
    modelId: str(input?.modelId),
    prompt: input?.prompt ?? '',
    negativePrompt: input?.negativePrompt ?? '',
    loraId: str(input?.loraId),
    loraWeight: str(input?.loraWeight ?? 1),
    numImages: str(input?.numImages ?? 1),
    steps: str(input?.steps),
    guidanceScale: str(input?.guidanceScale),
    width: str(input?.width),
    height: str(input?.height),
    scheduler: str(input?.scheduler),
    seedMode: input?.seed !== undefined && input?.seed !== null ? 'fixed' : 'random',
    seed: str(input?.seed),
    batch: '1',
    priority: str(input?.priority ?? 0),
    deadlineSeconds: str(input?.deadlineSeconds),
    previews: input?.previews ?? true,
  };
}

const num = (s: string) => (s.trim() === '' ? null : Number(s));

/** The inputs one submission sends: `batch` of them, seeds counting up from a fixed seed. */
export function inputsOf(f: Fields): GenerateInput[] {
  const numImages = num(f.numImages) ?? 1;
  const base: GenerateInput = {
    prompt: f.prompt,
    negativePrompt: f.negativePrompt.trim() || null,
    modelId: f.modelId || null,
    loraId: f.loraId || null,
    loraWeight: f.loraId ? num(f.loraWeight) : null,
    numImages,
    steps: num(f.steps),
    guidanceScale: num(f.guidanceScale),
    width: num(f.width),
    height: num(f.height),
    scheduler: (f.scheduler || null) as Scheduler | null,
    priority: num(f.priority),
    deadlineSeconds: num(f.deadlineSeconds),
    previews: f.previews,
  };
  const seed = f.seedMode === 'fixed' ? num(f.seed) : null;
  const batch = Math.max(1, num(f.batch) ?? 1);
  // Image i of a generation uses seed + i: the next input starts after this one's images.
  return Array.from({ length: batch }, (_, i) => ({ ...base, seed: seed === null ? null : (seed + i * numImages) % 2 ** 32 }));
}

function NumberField({ id, label, value, range, onChange, placeholder, hint, error }: {
  id: string;
  label: string;
  value: string;
  range: Range;
  onChange: (v: string) => void;
  placeholder?: string;
  hint?: string;
  error?: string | undefined;
}) {
  return (
    <div className={`field${error ? ' invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={id}
        type="number"
        inputMode="decimal"
        min={range.min}
        max={range.max}
        step={range.step}
        value={value}
        placeholder={placeholder}
        aria-invalid={error ? true : undefined}
        aria-describedby={`${id}-hint`}
        onChange={(e) => onChange(e.target.value)}
      />
      <small id={`${id}-hint`} className={error ? 'error' : 'muted'}>
        {error ?? hint ?? `${range.min}..${range.max}`}
      </small>
    </div>
  );
}

/** The Generate form: a model, its LoRA, the prompt and parameters, a seed and a batch size. */
export function GenerateForm({ initial, lastSeed, onSubmitted, seedRequest }: {
  initial: GenerateInput | undefined;
  lastSeed: number | undefined;
  onSubmitted: (generations: Generation[], estimatedSeconds: number | undefined) => void;
  /** A seed a job card asked to reuse (a new object each time). */
  seedRequest: { seed: number } | undefined;
}) {
  const [f, setF] = useState<Fields>(() => fieldsFrom(initial));
  const set = <K extends keyof Fields>(key: K) => (value: Fields[K]) => setF((prev) => ({ ...prev, [key]: value }));
  const [bases] = useQuery<ModelsData>({ query: MODELS, variables: { kind: 'BASE', first: 100 } });
  const [loras] = useQuery<ModelsData>({ query: MODELS, variables: { kind: 'LORA', first: 100 } });
  const [single, generate] = useMutation<GenerateData>(GENERATE);
  const [batch, generateBatch] = useMutation<GenerateBatchData>(GENERATE_BATCH);
  const [problems, setProblems] = useState<Problem[]>([]);

  // Music models have their own default and are not for this form.
  const models = useMemo(() => bases.data?.models.edges.map((e) => e.node).filter((m) => m.modality === 'image') ?? [], [bases.data]);
  const model = models.find((m) => m.id === f.modelId) ?? models.find((m) => m.isDefault) ?? models[0];
  const caps = capabilitiesOf(model);
  const loraChoices = (loras.data?.models.edges.map((e) => e.node) ?? []).filter((l) => l.baseModel?.id === model?.id);
  const lora = loraChoices.find((l) => l.id === f.loraId);

  useEffect(() => {
    if (seedRequest) setF((prev) => ({ ...prev, seedMode: 'fixed', seed: String(seedRequest.seed) }));
  }, [seedRequest]);

  const fieldError = (name: string) => {
    const p = problems.find((x) => inputFieldOf(x) === name);
    return p ? `${p.message}` : undefined;
  };

  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblems([]);
    const inputs = inputsOf({ ...f, modelId: model?.id ?? f.modelId, loraId: lora ? f.loraId : '' });
    const key = idempotencyKey();
    if (inputs.length === 1) {
      const r = await generate({ input: inputs[0], key });
      if (r.error) return setProblems(problemsOf(r.error));
      if (r.data) onSubmitted([r.data.generate], undefined);
    } else {
      const r = await generateBatch({ inputs, key });
      if (r.error) return setProblems(problemsOf(r.error));
      if (r.data) onSubmitted(r.data.generateBatch.generations, r.data.generateBatch.estimatedTotalSeconds);
    }
  }

  const busy = single.fetching || batch.fetching;
  const defaultHint = 'empty: the model\u2019s default';

  return (
    <form className="card generate-form" onSubmit={(e) => void submit(e)} aria-label="Generate">
      <div className="field">
        <label htmlFor="modelId">Model</label>
        <select id="modelId" value={model?.id ?? ''} onChange={(e) => setF((prev) => ({ ...prev, modelId: e.target.value, loraId: '', scheduler: '' }))}>
          {models.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name}
              {m.isDefault ? ' (default)' : ''}
            </option>
          ))}
        </select>
        <small className="muted">{model ? `pipeline: ${model.pipeline}` : bases.fetching ? 'loading models…' : 'no model'}</small>
      </div>
      <Problems error={bases.error} />

      <div className={`field wide${fieldError('prompt') ? ' invalid' : ''}`}>
        <label htmlFor="prompt">Prompt</label>
        <textarea id="prompt" required rows={3} maxLength={caps.prompt.maxLength} value={f.prompt} onChange={(e) => set('prompt')(e.target.value)} aria-describedby="prompt-hint" />
        <small id="prompt-hint" className={fieldError('prompt') ? 'error' : 'muted'}>
          {fieldError('prompt') ?? `${f.prompt.trim().length}/${caps.prompt.maxLength} characters`}
          {lora?.triggerWord ? ` · trigger word: ${lora.triggerWord}` : ''}
        </small>
      </div>
      <div className={`field wide${fieldError('negativePrompt') ? ' invalid' : ''}`}>
        <label htmlFor="negativePrompt">Negative prompt</label>
        <textarea id="negativePrompt" rows={2} maxLength={caps.prompt.maxLength} value={f.negativePrompt} onChange={(e) => set('negativePrompt')(e.target.value)} />
        {fieldError('negativePrompt') && <small className="error">{fieldError('negativePrompt')}</small>}
      </div>

      {caps.loras && (
        <fieldset className="row">
          <legend>LoRA adapter</legend>
          <div className="field">
            <label htmlFor="loraId">Adapter</label>
            <select id="loraId" value={lora ? f.loraId : ''} onChange={(e) => set('loraId')(e.target.value)}>
              <option value="">none</option>
              {loraChoices.map((l) => (
                <option key={l.id} value={l.id}>
                  {l.name}
                </option>
              ))}
            </select>
            <small className="muted">{loraChoices.length ? `${loraChoices.length} for this model` : 'none for this model (upload one under Models)'}</small>
          </div>
          <div className={`field${fieldError('loraWeight') ? ' invalid' : ''}`}>
            <label htmlFor="loraWeight">Weight: {f.loraWeight || '1'}</label>
            <input
              id="loraWeight"
              type="range"
              min={caps.loraWeight.min}
              max={caps.loraWeight.max}
              step={caps.loraWeight.step}
              value={f.loraWeight || '1'}
              disabled={!lora}
              onChange={(e) => set('loraWeight')(e.target.value)}
            />
            <small className={fieldError('loraWeight') ? 'error' : 'muted'}>{fieldError('loraWeight') ?? `${caps.loraWeight.min}..${caps.loraWeight.max} (0.8 is common)`}</small>
          </div>
        </fieldset>
      )}

      <div className="grid">
        <NumberField id="steps" label="Steps" value={f.steps} range={caps.steps} onChange={set('steps')} placeholder="default" hint={`${caps.steps.min}..${caps.steps.max}; ${defaultHint}`} error={fieldError('steps')} />
        <NumberField id="guidanceScale" label="Guidance" value={f.guidanceScale} range={caps.guidanceScale} onChange={set('guidanceScale')} placeholder="default" hint={`${caps.guidanceScale.min}..${caps.guidanceScale.max}; ${defaultHint}`} error={fieldError('guidanceScale')} />
        <NumberField id="width" label="Width" value={f.width} range={caps.size} onChange={set('width')} placeholder="default" hint={`${caps.size.min}..${caps.size.max}, multiple of ${caps.size.step}`} error={fieldError('width')} />
        <NumberField id="height" label="Height" value={f.height} range={caps.size} onChange={set('height')} placeholder="default" hint={`${caps.size.min}..${caps.size.max}, multiple of ${caps.size.step}`} error={fieldError('height')} />
        <NumberField id="numImages" label="Images per job" value={f.numImages} range={caps.numImages} onChange={set('numImages')} error={fieldError('numImages')} />
        <NumberField id="batch" label="Jobs (batch)" value={f.batch} range={{ min: 1, max: settings.maxBatch, step: 1 }} onChange={set('batch')} hint={`1..${settings.maxBatch}, each its own job`} error={fieldError('inputs')} />
        {caps.schedulers.length > 0 && (
          <div className={`field${fieldError('scheduler') ? ' invalid' : ''}`}>
            <label htmlFor="scheduler">Scheduler</label>
            <select id="scheduler" value={f.scheduler} onChange={(e) => set('scheduler')(e.target.value)}>
              <option value="">the model's own</option>
              {caps.schedulers.map((s) => (
                <option key={s} value={s}>
                  {s.toLowerCase().replace('_', ' ')}
                </option>
              ))}
            </select>
          </div>
        )}
      </div>

      <fieldset className="row seed">
        <legend>Seed</legend>
        <label className="inline">
          <input type="radio" name="seedMode" value="random" checked={f.seedMode === 'random'} onChange={() => set('seedMode')('random')} /> Random
        </label>
        <label className="inline">
          <input type="radio" name="seedMode" value="fixed" checked={f.seedMode === 'fixed'} onChange={() => set('seedMode')('fixed')} /> Fixed
        </label>
        <input
          aria-label="Seed"
          id="seed"
          type="number"
          min={caps.seed.min}
          max={caps.seed.max}
          step={1}
          value={f.seed}
          required={f.seedMode === 'fixed'}
          disabled={f.seedMode !== 'fixed'}
          aria-invalid={fieldError('seed') ? true : undefined}
          onChange={(e) => set('seed')(e.target.value)}
        />
        <button type="button" disabled={lastSeed === undefined} onClick={() => setF((prev) => ({ ...prev, seedMode: 'fixed', seed: String(lastSeed) }))}>
          Reuse last{lastSeed !== undefined ? ` (${lastSeed})` : ''}
        </button>
        {fieldError('seed') && <small className="error">{fieldError('seed')}</small>}
      </fieldset>

      <details>
        <summary>Queue options</summary>
        <div className="grid">
          <NumberField id="priority" label="Priority" value={f.priority} range={caps.priority} onChange={set('priority')} hint="higher runs first" error={fieldError('priority')} />
          <NumberField id="deadlineSeconds" label="Deadline (s)" value={f.deadlineSeconds} range={{ min: 1, max: 30 * 24 * 3600, step: 1 }} onChange={set('deadlineSeconds')} placeholder="none" hint="not started by then: cancelled" error={fieldError('deadlineSeconds')} />
          <label className="inline">
            <input type="checkbox" checked={f.previews} onChange={(e) => set('previews')(e.target.checked)} /> Live previews
          </label>
        </div>
      </details>

      <Problems problems={problems} />
      <div className="actions">
        <button type="submit" className="primary" disabled={busy || !model}>
          {busy ? 'Submitting…' : Number(f.batch) > 1 ? `Generate ${f.batch} jobs` : 'Generate'}
        </button>
      </div>
    </form>
  );
}
