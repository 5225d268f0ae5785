import type { KindDefinition } from '../jobs/kind.js';
import { audioKind } from './audio/kind.js';
import { imageKind } from './image/kind.js';
import { installKind } from './install/kind.js';
import { trainingKind } from './training/kind.js';

/** Every kind of work Kiln runs: a kind is a folder beside this file and one line here. */
export const KINDS: readonly KindDefinition[] = [imageKind, audioKind, trainingKind, installKind];
