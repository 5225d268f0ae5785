import { type FormEvent, useEffect, useState } from 'react';
import { inputFieldOf, type Problem } from '../api/errors';
import { type AudioCapabilities, GENERATE_AUDIO, GENERATE_AUDIO_BATCH, type GenerateAudioInput } from '../api/operations';
import { settings } from '../settings';
import { Problems } from '../ui/problems';
import { CONTRACT, type ModelRange } from './capabilities';
import type { FormProps } from './forms';
import { NumberField } from './number-field';
import { GenerateButton, QueueOptions } from './queue-options';
import { SeedField, type SeedMode } from './seed-field';
import { type Submissions, useSubmitJobs } from './submit-jobs';

const SUBMISSIONS: Submissions = { single: { query: GENERATE_AUDIO, field: 'generateAudio' }, batch: { query: GENERATE_AUDIO_BATCH, field: 'generateAudioBatch' } };

/** The form's fields as typed: empty means "the model's default" (or "random" for the seed). */
interface Fields {
  prompt: string;
  durationSeconds: string;
  guidanceScale: string;
  topK: string;
  temperature: string;
  seedMode: SeedMode;
  seed: string;
  batch: string;
  priority: string;
  deadlineSeconds: string;
}

const str = (v: number | string | null | undefined) => (v === null || v === undefined ? '' : String(v));
const num = (s: string) => (s.trim() === '' ? null : Number(s));

function fieldsFrom(input: GenerateAudioInput | undefined): Fields {
  return {
    prompt: input?.prompt ?? '',
    durationSeconds: str(input?.durationSeconds),
    guidanceScale: str(input?.guidanceScale),
    topK: str(input?.topK),
    temperature: str(input?.temperature),
    seedMode: input?.seed !== undefined && input?.seed !== null ? 'fixed' : 'random',
    seed: str(input?.seed),
    batch: '1',
    priority: str(input?.priority ?? 0),
    deadlineSeconds: str(input?.deadlineSeconds),
  };
}

/** The inputs one submission sends: `batch` of them, seeds counting up from a fixed seed (each makes one piece). */
function inputsOf(f: Fields, modelId: string): GenerateAudioInput[] {
  const base: GenerateAudioInput = {
    prompt: f.prompt,
    modelId,
    durationSeconds: num(f.durationSeconds),
    guidanceScale: num(f.guidanceScale),
    topK: num(f.topK),
    temperature: num(f.temperature),
    priority: num(f.priority),
    deadlineSeconds: num(f.deadlineSeconds),
  };
  const seed = f.seedMode === 'fixed' ? num(f.seed) : null;
  const batch = Math.max(1, num(f.batch) ?? 1);
  return Array.from({ length: batch }, (_, i) => ({ ...base, seed: seed === null ? null : (seed + i) % 2 ** 32 }));
}

/** A music model's form: the prompt, the duration and sampling its capabilities declare, a seed and a batch size. */
export function AudioForm({ model, picker, initial, lastSeed, onSubmitted, seedRequest }: FormProps) {
  const [f, setF] = useState<Fields>(() => fieldsFrom(initial));
  const set = <K extends keyof Fields>(key: K) => (value: Fields[K]) => setF((prev) => ({ ...prev, [key]: value }));
  const [problems, setProblems] = useState<Problem[]>([]);
  const { submit, busy } = useSubmitJobs(SUBMISSIONS, onSubmitted, setProblems);
  const caps = model.capabilities as AudioCapabilities;

  useEffect(() => setProblems([]), [model.id]);
  useEffect(() => {
    if (seedRequest) setF((prev) => ({ ...prev, seedMode: 'fixed', seed: String(seedRequest.seed) }));
  }, [seedRequest]);

  const fieldError = (name: string) => problems.find((x) => inputFieldOf(x) === name)?.message;

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    void submit(inputsOf(f, model.id));
  }

  const ranged = (r: ModelRange, extra = '') => `${r.min}..${r.max}${extra}; empty: ${r.default}, the model\u2019s default`;
  const any = (r: AudioCapabilities['durationSeconds']): ModelRange => ({ ...r, step: 'any' });

  return (
    <form className="card generate-form" onSubmit={onSubmit} aria-label="Generate">
      {picker}

      <div className={`field wide${fieldError('prompt') ? ' invalid' : ''}`}>
        <label htmlFor="prompt">Prompt</label>
        <textarea id="prompt" required rows={3} maxLength={CONTRACT.prompt.maxLength} value={f.prompt} onChange={(e) => set('prompt')(e.target.value)} aria-describedby="prompt-hint" />
        <small id="prompt-hint" className={fieldError('prompt') ? 'error' : 'muted'}>
          {fieldError('prompt') ?? `${f.prompt.trim().length}/${CONTRACT.prompt.maxLength} characters · ${caps.sampleRate} Hz ${caps.channels === 1 ? 'mono' : 'stereo'}`}
        </small>
      </div>

      <div className="grid">
        <NumberField id="durationSeconds" label="Duration (s)" value={f.durationSeconds} range={any(caps.durationSeconds)} onChange={set('durationSeconds')} placeholder={String(caps.durationSeconds.default)} hint={ranged(any(caps.durationSeconds), ' s')} error={fieldError('durationSeconds')} />
        <NumberField id="guidanceScale" label="Guidance" value={f.guidanceScale} range={any(caps.guidanceScale)} onChange={set('guidanceScale')} placeholder={String(caps.guidanceScale.default)} hint={ranged(any(caps.guidanceScale))} error={fieldError('guidanceScale')} />
        <NumberField id="topK" label="Top-k" value={f.topK} range={{ ...caps.topK, step: 1 }} onChange={set('topK')} placeholder={String(caps.topK.default)} hint={ranged({ ...caps.topK, step: 1 }, ', 0 = all')} error={fieldError('topK')} />
        <NumberField id="temperature" label="Temperature" value={f.temperature} range={any(caps.temperature)} onChange={set('temperature')} placeholder={String(caps.temperature.default)} hint={ranged(any(caps.temperature), ', 0 = greedy')} error={fieldError('temperature')} />
        <NumberField id="batch" label="Jobs (batch)" value={f.batch} range={{ min: 1, max: settings.maxBatch, step: 1 }} onChange={set('batch')} hint={`1..${settings.maxBatch}, each its own job`} error={fieldError('inputs')} />
      </div>

      <SeedField mode={f.seedMode} seed={f.seed} lastSeed={lastSeed} error={fieldError('seed')} onMode={set('seedMode')} onSeed={set('seed')} />

      <QueueOptions fields={f} onChange={set} fieldError={fieldError} />

      <Problems problems={problems} />
      <GenerateButton busy={busy} batch={f.batch} />
    </form>
  );
}
