import type { DatasetFolder } from './dataset-folder.js';
import type { TrainerName, TrainingSpec } from './trainer.js';

/**
 * What Kiln records in every adapter it trains, whichever trainer made it: the training's
 * parameters, the dataset's hash and the trigger word, under `kiln.*` beside the trainer's own
 * keys (kohya's `ss_*`, ai-toolkit's `training_info`, …).
 */
export function kilnTrainingMetadata(trainer: TrainerName, spec: TrainingSpec, dataset: DatasetFolder): Record<string, string> {
  return {
    'kiln.trainer': trainer,
    'kiln.pipeline': spec.baseModel.pipeline,
    'kiln.trigger_word': spec.triggerWord,
    'kiln.dataset_sha256': dataset.sha256,
    'kiln.dataset_images': String(dataset.items.length),
    'kiln.steps': String(spec.steps),
    'kiln.rank': String(spec.rank),
    'kiln.alpha': String(spec.alpha),
    'kiln.learning_rate': String(spec.learningRate),
    'kiln.resolution': String(spec.resolution),
    'kiln.batch_size': String(spec.batchSize),
    'kiln.seed': String(spec.seed),
  };
}

/**
 * kohya's `ss_tag_frequency`: per dataset folder (named `<repeats>_<trigger>` as kohya's are),
 * how many captions hold each comma-separated tag. UIs such as AUTOMATIC1111 list them.
 */
export function tagFrequency(captions: string[], folder: string): string {
  const counts: Record<string, number> = {};
  for (const caption of captions) {
    for (const tag of new Set(caption.split(',').map((t) => t.trim()).filter(Boolean))) counts[tag] = (counts[tag] ?? 0) + 1;
  }
  return JSON.stringify({ [folder]: counts });
}
