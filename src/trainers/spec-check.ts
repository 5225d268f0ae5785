import { JobFailure } from '../errors.js';
import type { Trainer, TrainingSpec } from './trainer.js';

/** Refuses a spec the trainer cannot run, before anything is read or spawned. */
export function checkTrainingSpec(trainer: Trainer, spec: TrainingSpec): void {
  const refuse = (problem: string) => new JobFailure('TRAINING_INVALID', `the ${trainer.name} trainer ${problem}`, false);
  if (!trainer.requirements.pipelines.includes(spec.baseModel.pipeline)) {
    throw refuse(`trains LoRAs for ${trainer.requirements.pipelines.join(', ')} models, not for ${spec.baseModel.pipeline}`);
  }
  const integers: [string, number, number][] = [
    ['steps', spec.steps, 1],
    ['rank', spec.rank, 1],
    ['resolution', spec.resolution, 8],
    ['batchSize', spec.batchSize, 1],
    ['checkpointEvery', spec.checkpointEvery, 0],
    ['sampleEvery', spec.sampleEvery, 0],
  ];
  for (const [name, value, min] of integers) {
    if (!Number.isSafeInteger(value) || value < min) throw refuse(`needs ${name} to be an integer of at least ${min}, not ${value}`);
  }
  if (!Number.isSafeInteger(spec.seed) || spec.seed < 0 || spec.seed >= 2 ** 32) throw refuse(`needs a seed in 0…2³²−1, not ${spec.seed}`);
  if (!(spec.alpha > 0) || !Number.isFinite(spec.alpha)) throw refuse(`needs a positive alpha, not ${spec.alpha}`);
  if (!(spec.learningRate > 0) || !Number.isFinite(spec.learningRate)) throw refuse(`needs a positive learning rate, not ${spec.learningRate}`);
}
