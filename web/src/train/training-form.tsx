import { type FormEvent, useState } from 'react';
import { useMutation } from 'urql';
import { idempotencyKey } from '../api/client';
import { inputFieldOf, type Problem, problemsOf } from '../api/errors';
import type { Model } from '../api/operations';
import { type Dataset, TRAIN_LORA, type Trainer, type TrainLoraData, type TrainLoraInput } from '../api/training-operations';
import { CONTRACT } from '../generate/capabilities';
import { NumberField } from '../generate/number-field';
import { type Training, trainerLabel } from '../kinds/training-kind';
import { Problems } from '../ui/problems';
import { defaultTrainerFor, TRAINERS, TRAINING_CONTRACT } from './trainers';

/** The form's fields as typed: empty means the trainer's default (or a random seed). */
interface Fields {
  datasetId: string;
  baseModelId: string;
  trainer: '' | Trainer;
  name: string;
  triggerWord: string;
  steps: string;
  rank: string;
  alpha: string;
  learningRate: string;
  resolution: string;
  batchSize: string;
  seed: string;
  checkpointEvery: string;
  sampleEvery: string;
  trainingWeights: string;
  priority: string;
  deadlineSeconds: string;
}

const EMPTY: Fields = {
  datasetId: '',
  baseModelId: '',
  trainer: '',
  name: '',
  triggerWord: '',
  steps: '',
  rank: '',
  alpha: '',
  learningRate: '',
  resolution: '',
  batchSize: '',
  seed: '',
  checkpointEvery: '',
  sampleEvery: '',
  trainingWeights: '',
  priority: '0',
  deadlineSeconds: '',
};

const num = (s: string) => (s.trim() === '' ? null : Number(s));

/**
 * trainLora's form: a ready dataset, a base model that takes LoRAs, the trainer, and the
 * training's parameters with the trainer's defaults as placeholders (an empty field takes it).
 */
export function TrainingForm({ datasets, bases, onSubmitted }: { datasets: Dataset[]; bases: Model[]; onSubmitted: (training: Training) => void }) {
  const [f, setF] = useState<Fields>(EMPTY);
  const set = <K extends keyof Fields>(key: K) => (value: Fields[K]) => setF((prev) => ({ ...prev, [key]: value }));
  const [train, runTrain] = useMutation<TrainLoraData>(TRAIN_LORA);
  const [problems, setProblems] = useState<Problem[]>([]);

  const ready = datasets.filter((d) => d.status === 'READY');
  const dataset = ready.find((d) => d.id === f.datasetId) ?? ready[0];
  const base = bases.find((b) => b.id === f.baseModelId) ?? bases.find((b) => b.isDefault) ?? bases[0];
  const modelTrainer = defaultTrainerFor(base?.pipeline);
  const trainer = TRAINERS.find((t) => t.value === f.trainer) ?? modelTrainer;
  const d = trainer?.defaults;
  const steps = num(f.steps) ?? d?.steps;
  const fieldError = (name: string) => problems.find((p) => inputFieldOf(p) === name)?.message;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblems([]);
    const input: TrainLoraInput = {
      datasetId: dataset?.id ?? '',
      baseModelId: base?.id ?? null,
      trainer: f.trainer || null,
      name: f.name.trim(),
      triggerWord: f.triggerWord.trim(),
      steps: num(f.steps),
      rank: num(f.rank),
      alpha: num(f.alpha),
      learningRate: num(f.learningRate),
      resolution: num(f.resolution),
      batchSize: num(f.batchSize),
      seed: num(f.seed),
      checkpointEvery: num(f.checkpointEvery),
      sampleEvery: num(f.sampleEvery),
      trainingWeights: trainer?.external ? f.trainingWeights.trim() || null : null,
      priority: num(f.priority),
      deadlineSeconds: num(f.deadlineSeconds),
    };
    const r = await runTrain({ input, key: idempotencyKey() });
    if (r.error) return setProblems(problemsOf(r.error));
    if (r.data) onSubmitted(r.data.trainLora);
  }

  const number = (key: keyof Fields, label: string, range: { min: number; max: number; step: number | 'any' }, placeholder: number | string | undefined, hint: string) => (
    <NumberField id={`train-${key}`} label={label} value={f[key]} range={range} onChange={set(key)} placeholder={placeholder === undefined ? undefined : String(placeholder)} hint={hint} error={fieldError(key)} />
  );
  const C = TRAINING_CONTRACT;
  const emptyIs = (v: number | string | undefined) => (v === undefined ? '' : `; empty: ${v}`);

  return (
    <form className="card training-form" onSubmit={(e) => void submit(e)} aria-label="Train a LoRA">
      <h3>Train a LoRA</h3>
      <div className="grid">
        <div className={`field span-2${fieldError('datasetId') ? ' invalid' : ''}`}>
          <label htmlFor="train-dataset">Dataset</label>
          <select id="train-dataset" required value={dataset?.id ?? ''} onChange={(e) => set('datasetId')(e.target.value)}>
            {ready.length === 0 && <option value="">none ready: create one first</option>}
            {ready.map((x) => (
              <option key={x.id} value={x.id}>
                {x.name} ({x.imageCount} images)
              </option>
            ))}
          </select>
          <small className={fieldError('datasetId') ? 'error' : 'muted'}>{fieldError('datasetId') ?? (dataset?.smallestSide ? `trains at up to ${dataset.smallestSide} px (its smallest side)` : ' ')}</small>
        </div>
        <div className={`field${fieldError('baseModelId') ? ' invalid' : ''}`}>
          <label htmlFor="train-base">Base model</label>
          <select id="train-base" value={base?.id ?? ''} onChange={(e) => setF((prev) => ({ ...prev, baseModelId: e.target.value, trainer: '' }))}>
            {bases.map((b) => (
              <option key={b.id} value={b.id}>
                {b.name}
                {b.isDefault ? ' (default)' : ''}
              </option>
            ))}
          </select>
          <small className={fieldError('baseModelId') ? 'error' : 'muted'}>{fieldError('baseModelId') ?? 'models that take LoRAs'}</small>
        </div>
        <div className={`field${fieldError('trainer') ? ' invalid' : ''}`}>
          <label htmlFor="train-trainer">Trainer</label>
          <select id="train-trainer" value={f.trainer} onChange={(e) => set('trainer')(e.target.value as Fields['trainer'])}>
            <option value="">{modelTrainer ? `the model’s (${trainerLabel(modelTrainer.value)})` : 'the model’s'}</option>
            {TRAINERS.map((t) => (
              <option key={t.value} value={t.value}>
                {t.label}
              </option>
            ))}
          </select>
          <small className={fieldError('trainer') ? 'error' : 'muted'}>{fieldError('trainer') ?? (trainer ? `trains ${trainer.pipelines.join(', ')} models` : `none trains ${base?.pipeline ?? 'this'} models`)}</small>
        </div>
        <div className={`field${fieldError('name') ? ' invalid' : ''}`}>
          <label htmlFor="train-name">Name</label>
          <input id="train-name" required maxLength={C.name.maxLength} value={f.name} onChange={(e) => set('name')(e.target.value)} />
          <small className={fieldError('name') ? 'error' : 'muted'}>{fieldError('name') ?? 'the adapter’s'}</small>
        </div>
        <div className={`field${fieldError('triggerWord') ? ' invalid' : ''}`}>
          <label htmlFor="train-trigger">Trigger word</label>
          <input id="train-trigger" required maxLength={C.triggerWord.maxLength} pattern="[^,]+" placeholder="e.g. kilnstyle" value={f.triggerWord} onChange={(e) => set('triggerWord')(e.target.value)} />
          <small className={fieldError('triggerWord') ? 'error' : 'muted'}>{fieldError('triggerWord') ?? 'put first in each caption; no commas'}</small>
        </div>
        {number('steps', 'Steps', C.steps, d?.steps, `${C.steps.min}..${C.steps.max}${emptyIs(d?.steps)}`)}
        {number('rank', 'Rank', C.rank, d?.rank, `${C.rank.min}..${C.rank.max}${emptyIs(d?.rank)}`)}
        {number('alpha', 'Alpha', C.alpha, f.rank || d?.rank, `scales by alpha / rank; empty: the rank`)}
        {number('learningRate', 'Learning rate', C.learningRate, d?.learningRate, `AdamW, constant${emptyIs(d?.learningRate)}`)}
        {number('resolution', 'Resolution', { ...C.resolution, max: trainer?.maxResolution ?? C.resolution.max }, d?.resolution, `multiple of 8, up to ${trainer?.maxResolution ?? C.resolution.max}${emptyIs(d?.resolution)}`)}
        {number('batchSize', 'Batch size', C.batchSize, d?.batchSize, `${C.batchSize.min}..${C.batchSize.max}${emptyIs(d?.batchSize)}`)}
        {number('checkpointEvery', 'Checkpoint every', C.every, steps ? Math.ceil(steps / 10) : undefined, 'steps; 0: none; empty: a tenth')}
        {number('sampleEvery', 'Samples every', C.every, steps ? Math.ceil(steps / 4) : undefined, 'steps; 0: none; empty: a quarter')}
        {number('seed', 'Seed', CONTRACT.seed, 'random', 'empty: random, recorded')}
      </div>
      {trainer?.external && (
        <div className={`field${fieldError('trainingWeights') ? ' invalid' : ''}`}>
          <label htmlFor="train-weights">Training weights</label>
          <input id="train-weights" maxLength={1000} placeholder="the base model’s folder" value={f.trainingWeights} onChange={(e) => set('trainingWeights')(e.target.value)} />
          <small className={fieldError('trainingWeights') ? 'error' : 'muted'}>{fieldError('trainingWeights') ?? 'what the tool loads: a diffusers folder or checkpoint on its host, or a Hugging Face id'}</small>
        </div>
      )}
      <details>
        <summary>Queue options</summary>
        <div className="grid">
          {number('priority', 'Priority', CONTRACT.priority, undefined, 'higher runs first')}
          {number('deadlineSeconds', 'Deadline (s)', CONTRACT.deadlineSeconds, 'none', 'not started by then: cancelled')}
        </div>
      </details>
      <Problems problems={problems} />
      <div className="actions">
        <button type="submit" className="primary" disabled={train.fetching || !dataset || !base}>
          {train.fetching ? 'Submitting…' : 'Train'}
        </button>
      </div>
    </form>
  );
}
