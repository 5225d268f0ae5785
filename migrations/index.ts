import type { MigrationInterface } from 'typeorm';
import { Init1795429515028 } from './1795429515028-init.js';
import { JobLifecycle1795430808677 } from './1795430808677-job-lifecycle.js';
import { ModelsAndUploads1795434810354 } from './1795434810354-models-and-uploads.js';
import { GenerationScheduler1795435610315 } from './1795435610315-generation-scheduler.js';
import { RateLimits1795435832331 } from './1795435832331-rate-limits.js';
import { JobKinds1796185500000 } from './1796185500000-job-kinds.js';
import { Webhooks1796188550539 } from './1796188550539-webhooks.js';
import { ModelModality1796190756984 } from './1796190756984-model-modality.js';
import { Training1796191109423 } from './1796191109423-training.js';

/** Every migration, oldest first. Listed rather than globbed so any runtime can load them. */
export const migrations: (new () => MigrationInterface)[] = [
  Init1795429515028,
  JobLifecycle1795430808677,
  ModelsAndUploads1795434810354,
  GenerationScheduler1795435610315,
  RateLimits1795435832331,
  JobKinds1796185500000,
  Webhooks1796188550539,
  ModelModality1796190756984,
  Training1796191109423,
];
