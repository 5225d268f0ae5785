import { builder } from './builder.js';
import './scalars.js';
import './model.js';
import './model-upload.js';
import './generation-event.js';
import './scheduler.js';
import './generation-details.js';
import './generation.js';
import './generate.js';
import './lifecycle.js';
import './queue.js';
import './health.js';

/** The whole schema; each type lives in its own file, imported above for its side effects. */
export const schema = builder.toSchema();
