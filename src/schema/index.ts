import { KINDS } from '../kinds/registry.js';
import { builder } from './builder.js';
import './scalars.js';
import './model.js';
import './model-upload.js';
import './job-event.js';
import './scheduler.js';
import './job-details.js';
import './outputs.js';
import './job.js';
import './lifecycle.js';
import './queue.js';
import './workers.js';
import './health.js';
import './webhook-delivery.js';
import './webhook.js';

// Each kind's own types and operations, beside the generic ones above.
for (const kind of KINDS) await kind.graphql?.();

/** The whole schema; each type lives in its own file, imported above for its side effects. */
export const schema = builder.toSchema();
