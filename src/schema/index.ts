import { builder } from './builder.js';
import './scalars.js';
import './model.js';
import './generation-event.js';
import './generation.js';

/** The whole schema; each type lives in its own file, imported above for its side effects. */
export const schema = builder.toSchema();
