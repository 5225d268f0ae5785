import { type FormEvent, useEffect, useRef, useState } from 'react';
import { inputFieldOf, type Problem } from '../api/errors';
import { GENERATE, GENERATE_BATCH, type GenerateInput, type ImageCapabilities, type Scheduler } from '../api/operations';
import { settings } from '../settings';
import { Problems } from '../ui/problems';
import { CONTRACT, type FormCapabilities, formCapabilitiesOf, type Range, schedulerLabel } from './capabilities';
import type { FormProps } from './forms';
import { NumberField } from './number-field';
import { GenerateButton, QueueOptions } from './queue-options';
import { SeedField, type SeedMode } from './seed-field';
import { type Submissions, useSubmitJobs } from './submit-jobs';

const SUBMISSIONS: Submissions = { single: { query: GENERATE, field: 'generate' }, batch: { query: GENERATE_BATCH, field: 'generateBatch' } };

/** The form's fields as typed: empty means "the model's default" (or "random" for the seed). */
interface Fields {
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
  originalHeight: string;
  originalWidth: string;
  cropTop: string;
  cropLeft: string;
  targetHeight: string;
  targetWidth: string;
  seedMode: SeedMode;
  seed: string;
  batch: string;
  priority: string;
  deadlineSeconds: string;
  previews: boolean;
}

const str = (v: number | string | null | undefined) => (v === null || v === undefined ? '' : String(v));

export function fieldsFrom(input: GenerateInput | undefined): Fields {
  return {
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
    originalHeight: str(input?.originalSize?.[0]),
    originalWidth: str(input?.originalSize?.[1]),
    cropTop: str(input?.cropsCoordsTopLeft?.[0]),
    cropLeft: str(input?.cropsCoordsTopLeft?.[1]),
    targetHeight: str(input?.targetSize?.[0]),
    targetWidth: str(input?.targetSize?.[1]),
    seedMode: input?.seed !== undefined && input?.seed !== null ? 'fixed' : 'random',
    seed: str(input?.seed),
    batch: '1',
    priority: str(input?.priority ?? 0),
    deadlineSeconds: str(input?.deadlineSeconds),
    previews: input?.previews ?? true,
  };
}

const num = (s: string) => (s.trim() === '' ? null : Number(s));

/** Both numbers of an SDXL pair, or none (the form requires the second once one is typed). */
const pairOf = (a: string, b: string) => (num(a) === null || num(b) === null ? null : [num(a)!, num(b)!]);

/**
 * The inputs one submission sends: `batch` of them, seeds counting up from a fixed seed. Fields
 * the model does not take (a negative prompt, SDXL's sizes, a LoRA) are left out whatever they hold.
 */
export function inputsOf(f: Fields, modelId: string, caps: FormCapabilities, loraId: string | null): GenerateInput[] {
  const numImages = num(f.numImages) ?? 1;
  const base: GenerateInput = {
    prompt: f.prompt,
    negativePrompt: caps.negativePrompt ? f.negativePrompt.trim() || null : null,
    modelId,
    loraId,
    loraWeight: loraId ? num(f.loraWeight) : null,
    numImages,
    steps: num(f.steps),
    guidanceScale: caps.guidanceScale.min === caps.guidanceScale.max ? null : num(f.guidanceScale),
    width: num(f.width),
    height: num(f.height),
    scheduler: caps.schedulers.includes(f.scheduler as Scheduler) ? (f.scheduler as Scheduler) : null,
    originalSize: caps.sizeConditioning ? pairOf(f.originalHeight, f.originalWidth) : null,
    cropsCoordsTopLeft: caps.sizeConditioning ? pairOf(f.cropTop, f.cropLeft) : null,
    targetSize: caps.sizeConditioning ? pairOf(f.targetHeight, f.targetWidth) : null,
    priority: num(f.priority),
    deadlineSeconds: num(f.deadlineSeconds),
    previews: f.previews,
  };
  const seed = f.seedMode === 'fixed' ? num(f.seed) : null;
  const batch = Math.max(1, num(f.batch) ?? 1);
  // Image i of a generation uses seed + i: the next input starts after this one's images.
  return Array.from({ length: batch }, (_, i) => ({ ...base, seed: seed === null ? null : (seed + i * numImages) % 2 ** 32 }));
}

/** An image model's form: the prompt and parameters its capabilities declare, a LoRA, a seed and a batch size. */
export function ImageForm({ model, loras, picker, initial, lastSeed, onSubmitted, seedRequest }: FormProps) {
  const [f, setF] = useState<Fields>(() => fieldsFrom(initial));
  const set = <K extends keyof Fields>(key: K) => (value: Fields[K]) => setF((prev) => ({ ...prev, [key]: value }));
  const [problems, setProblems] = useState<Problem[]>([]);
  const { submit, busy } = useSubmitJobs(SUBMISSIONS, onSubmitted, setProblems);

  const caps = formCapabilitiesOf(model.capabilities as ImageCapabilities);
  const loraChoices = caps.lora ? loras : [];
  const lora = loraChoices.find((l) => l.id === f.loraId);

  // Another model offers other schedulers and adapters: a choice made for the last one goes.
  const shownModel = useRef(model.id);
  useEffect(() => {
    if (shownModel.current === model.id) return;
    shownModel.current = model.id;
    setF((prev) => ({ ...prev, loraId: '', scheduler: '' }));
    setProblems([]);
  }, [model.id]);

  useEffect(() => {
    if (seedRequest) setF((prev) => ({ ...prev, seedMode: 'fixed', seed: String(seedRequest.seed) }));
  }, [seedRequest]);

  // `originalSize.1` is the pair's second number: the pair's fields show it.
  const fieldError = (name: string) => problems.find((x) => inputFieldOf(x)?.split('.')[0] === name)?.message;

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    void submit(inputsOf(f, model.id, caps, lora?.id ?? null));
  }

  const emptyIs = (v: number) => `empty: ${v}, the model\u2019s default`;
  const sized = (r: Range & { default: number }) => `${r.min}..${r.max}, multiple of ${r.step}; ${emptyIs(r.default)}`;
  const guidanceFixed = caps.guidanceScale.min === caps.guidanceScale.max;
  // SDXL's pairs: once one number of a pair is typed, the other is needed.
  const pairRequired = (a: string, b: string) => a.trim() !== '' || b.trim() !== '';
  const imageHeight = f.height || String(caps.height.default);
  const imageWidth = f.width || String(caps.width.default);

  return (
    <form className="card generate-form" onSubmit={onSubmit} aria-label="Generate">
      {picker}

      <div className={`field wide${fieldError('prompt') ? ' invalid' : ''}`}>
        <label htmlFor="prompt">Prompt</label>
        <textarea id="prompt" required rows={3} maxLength={CONTRACT.prompt.maxLength} value={f.prompt} onChange={(e) => set('prompt')(e.target.value)} aria-describedby="prompt-hint" />
        <small id="prompt-hint" className={fieldError('prompt') ? 'error' : 'muted'}>
          {fieldError('prompt') ?? `${f.prompt.trim().length}/${CONTRACT.prompt.maxLength} characters`}
          {lora?.triggerWord ? ` · trigger word: ${lora.triggerWord}` : ''}
        </small>
      </div>
      {caps.negativePrompt && (
        <div className={`field wide${fieldError('negativePrompt') ? ' invalid' : ''}`}>
          <label htmlFor="negativePrompt">Negative prompt</label>
          <textarea id="negativePrompt" rows={2} maxLength={CONTRACT.prompt.maxLength} value={f.negativePrompt} onChange={(e) => set('negativePrompt')(e.target.value)} />
          {fieldError('negativePrompt') && <small className="error">{fieldError('negativePrompt')}</small>}
        </div>
      )}

      {caps.lora && (
        <fieldset className="row">
          <legend>LoRA adapter</legend>
          <div className={`field${fieldError('loraId') ? ' invalid' : ''}`}>
            <label htmlFor="loraId">Adapter</label>
            <select id="loraId" value={lora ? f.loraId : ''} onChange={(e) => set('loraId')(e.target.value)}>
              <option value="">none</option>
              {loraChoices.map((l) => (
                <option key={l.id} value={l.id}>
                  {l.name}
                </option>
              ))}
            </select>
            <small className={fieldError('loraId') ? 'error' : 'muted'}>
              {fieldError('loraId') ?? (loraChoices.length ? `${loraChoices.length} for this model` : 'none for this model (upload one under Models)')}
            </small>
          </div>
          <div className={`field${fieldError('loraWeight') ? ' invalid' : ''}`}>
            <label htmlFor="loraWeight">Weight: {f.loraWeight || '1'}</label>
            <input
              id="loraWeight"
              type="range"
              min={CONTRACT.loraWeight.min}
              max={CONTRACT.loraWeight.max}
              step={CONTRACT.loraWeight.step}
              value={f.loraWeight || '1'}
              disabled={!lora}
              onChange={(e) => set('loraWeight')(e.target.value)}
            />
            <small className={fieldError('loraWeight') ? 'error' : 'muted'}>{fieldError('loraWeight') ?? `${CONTRACT.loraWeight.min}..${CONTRACT.loraWeight.max} (0.8 is common)`}</small>
          </div>
        </fieldset>
      )}

      <div className="grid">
        <NumberField id="steps" label="Steps" value={f.steps} range={caps.steps} onChange={set('steps')} placeholder={String(caps.steps.default)} hint={`${caps.steps.min}..${caps.steps.max}; ${emptyIs(caps.steps.default)}`} error={fieldError('steps')} />
        <NumberField
          id="guidanceScale"
          label="Guidance"
          value={guidanceFixed ? '' : f.guidanceScale}
          range={caps.guidanceScale}
          onChange={set('guidanceScale')}
          placeholder={String(caps.guidanceScale.default)}
          hint={guidanceFixed ? `fixed at ${caps.guidanceScale.default} for this model` : `${caps.guidanceScale.min}..${caps.guidanceScale.max}; ${emptyIs(caps.guidanceScale.default)}`}
          error={fieldError('guidanceScale')}
          disabled={guidanceFixed}
        />
        <NumberField id="width" label="Width" value={f.width} range={caps.width} onChange={set('width')} placeholder={String(caps.width.default)} hint={sized(caps.width)} error={fieldError('width')} />
        <NumberField id="height" label="Height" value={f.height} range={caps.height} onChange={set('height')} placeholder={String(caps.height.default)} hint={sized(caps.height)} error={fieldError('height')} />
        <NumberField id="numImages" label="Images per job" value={f.numImages} range={caps.numImages} onChange={set('numImages')} hint={`1..${caps.numImages.max} for this model`} error={fieldError('numImages')} />
        <NumberField id="batch" label="Jobs (batch)" value={f.batch} range={{ min: 1, max: settings.maxBatch, step: 1 }} onChange={set('batch')} hint={`1..${settings.maxBatch}, each its own job`} error={fieldError('inputs')} />
        {caps.schedulers.length > 0 && (
          <div className={`field span-2${fieldError('scheduler') ? ' invalid' : ''}`}>
            <label htmlFor="scheduler">Scheduler</label>
            <select id="scheduler" value={f.scheduler} onChange={(e) => set('scheduler')(e.target.value)}>
              <option value="">the model's own{caps.defaultScheduler ? ` (${schedulerLabel(caps.defaultScheduler)})` : ''}</option>
              {caps.schedulers.map((s) => (
                <option key={s} value={s}>
                  {schedulerLabel(s)}
                </option>
              ))}
            </select>
            {fieldError('scheduler') && <small className="error">{fieldError('scheduler')}</small>}
          </div>
        )}
      </div>

      {caps.sizeConditioning && (
        <fieldset className="grid size-conditioning">
          <legend>Size conditioning (SDXL)</legend>
          <NumberField id="originalHeight" label="Original height" value={f.originalHeight} range={CONTRACT.conditioningSize} onChange={set('originalHeight')} placeholder={imageHeight} hint="empty: the image's" required={pairRequired(f.originalHeight, f.originalWidth)} error={fieldError('originalSize')} />
          <NumberField id="originalWidth" label="Original width" value={f.originalWidth} range={CONTRACT.conditioningSize} onChange={set('originalWidth')} placeholder={imageWidth} hint="empty: the image's" required={pairRequired(f.originalHeight, f.originalWidth)} />
          <NumberField id="cropTop" label="Crop top" value={f.cropTop} range={CONTRACT.cropCoordinate} onChange={set('cropTop')} placeholder="0" hint="empty: 0" required={pairRequired(f.cropTop, f.cropLeft)} error={fieldError('cropsCoordsTopLeft')} />
          <NumberField id="cropLeft" label="Crop left" value={f.cropLeft} range={CONTRACT.cropCoordinate} onChange={set('cropLeft')} placeholder="0" hint="empty: 0" required={pairRequired(f.cropTop, f.cropLeft)} />
          <NumberField id="targetHeight" label="Target height" value={f.targetHeight} range={CONTRACT.conditioningSize} onChange={set('targetHeight')} placeholder={imageHeight} hint="empty: the image's" required={pairRequired(f.targetHeight, f.targetWidth)} error={fieldError('targetSize')} />
          <NumberField id="targetWidth" label="Target width" value={f.targetWidth} range={CONTRACT.conditioningSize} onChange={set('targetWidth')} placeholder={imageWidth} hint="empty: the image's" required={pairRequired(f.targetHeight, f.targetWidth)} />
        </fieldset>
      )}

      <SeedField mode={f.seedMode} seed={f.seed} lastSeed={lastSeed} error={fieldError('seed')} onMode={set('seedMode')} onSeed={set('seed')} />

      <QueueOptions fields={f} onChange={set} fieldError={fieldError}>
        <label className="inline">
          <input type="checkbox" checked={f.previews} onChange={(e) => set('previews')(e.target.checked)} /> Live previews
        </label>
      </QueueOptions>

      <Problems problems={problems} />
      <GenerateButton busy={busy} batch={f.batch} />
    </form>
  );
}
