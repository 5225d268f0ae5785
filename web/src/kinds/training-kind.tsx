import type { Job } from '../api/job-operations';
import type { Trainer, TrainLoraInput } from '../api/training-operations';
import { openGenerate } from '../generate/prefill';
import { Link } from '../router';
import { defineKind } from './kind-view';

/** A LoRA training (kind "training"), as the `Training` type has it; `adapter` is its `model`. */
export interface Training extends Job {
  __typename: 'Training';
  name: string;
  triggerWord: string;
  trainer: Trainer;
  steps: number;
  rank: number;
  alpha: number;
  learningRate: number;
  resolution: number;
  batchSize: number;
  seed: number;
  checkpointEvery: number;
  sampleEvery: number;
  trainingWeights: string | null;
  dataset: { id: string; name: string; imageCount: number } | null;
  baseModel: { id: string; name: string; pipeline: string };
  adapter: { id: string; name: string; triggerWord: string | null } | null;
}

export const trainerLabel = (t: Trainer) => t.toLowerCase().replaceAll('_', '-');

/** The input that trains it again: same dataset, base model, trainer and parameters. */
export const trainingInputOf = (t: Training): TrainLoraInput => ({
  datasetId: t.dataset?.id ?? '',
  name: t.name,
  triggerWord: t.triggerWord,
  baseModelId: t.baseModel.id,
  trainer: t.trainer,
  steps: t.steps,
  rank: t.rank,
  alpha: t.alpha,
  learningRate: t.learningRate,
  resolution: t.resolution,
  batchSize: t.batchSize,
  seed: t.seed,
  checkpointEvery: t.checkpointEvery,
  sampleEvery: t.sampleEvery,
  trainingWeights: t.trainingWeights,
  priority: t.priority,
});

/** Opens the Generate page on the adapter's base model with the adapter chosen and its trigger word starting the prompt. */
export const generateWithLora = (t: Training) =>
  t.adapter && openGenerate({ prompt: `${t.adapter.triggerWord ?? t.triggerWord}, `, modelId: t.baseModel.id, loraId: t.adapter.id, loraWeight: 1 });

export function GenerateWithLora({ training }: { training: Training }) {
  if (training.status !== 'COMPLETED' || !training.adapter) return null;
  return (
    <button type="button" className="primary" onClick={() => generateWithLora(training)}>
      Generate with this LoRA
    </button>
  );
}

export const trainingKind = defineKind<Training>({
  kind: 'training',
  label: 'Trainings',
  typename: 'Training',
  fields:
    'name triggerWord trainer steps rank alpha learningRate resolution batchSize seed checkpointEvery sampleEvery trainingWeights dataset { id name imageCount } baseModel { id name pipeline } adapter: model { id name triggerWord }',
  title: (t) => `LoRA training: ${t.name}`,
  summary: (t) => `${t.baseModel.name} · ${trainerLabel(t.trainer)} · ${t.steps} steps at ${t.resolution}²${t.dataset ? ` · ${t.dataset.name}` : ''}`,
  runLabel: 'Training',
  previewSize: () => undefined,
  parameters: (t) => [
    ['Name', t.name],
    ['Trigger word', t.triggerWord],
    ['Dataset', t.dataset ? `${t.dataset.name} (${t.dataset.imageCount} images)` : 'deleted'],
    ['Base model', t.baseModel.name],
    ['Trainer', trainerLabel(t.trainer)],
    ['Steps', String(t.steps)],
    ['Rank', String(t.rank)],
    ['Alpha', String(t.alpha)],
    ['Learning rate', String(t.learningRate)],
    ['Resolution', `${t.resolution}×${t.resolution}`],
    ['Batch size', String(t.batchSize)],
    ['Seed', String(t.seed)],
    ['Checkpoint every', t.checkpointEvery ? `${t.checkpointEvery} steps` : 'never'],
    ['Samples every', t.sampleEvery ? `${t.sampleEvery} steps` : 'never'],
    ...(t.trainingWeights ? ([['Training weights', t.trainingWeights]] as [string, string][]) : []),
    ['Adapter', t.adapter ? t.adapter.name : '–'],
    ['Priority', String(t.priority)],
  ],
  copyText: (t) => JSON.stringify(Object.fromEntries(Object.entries(trainingInputOf(t)).filter(([, v]) => v !== null && v !== '')), null, 2),
  Actions: ({ job }) => (
    <>
      <Link to={`/train/${job.id}`}>Loss and samples</Link>
      <GenerateWithLora training={job} />
    </>
  ),
});
