import { audioKind } from './audio-kind';
import { genericKind } from './generic-kind';
import { imageKind } from './image-kind';
import type { KindView } from './kind-view';
import { trainingKind } from './training-kind';

/** The kinds the app has views of: a new one is a file beside this one and a line here. */
export const KIND_VIEWS: readonly KindView[] = [imageKind, audioKind, trainingKind];

const byKind = new Map(KIND_VIEWS.map((v) => [v.kind, v]));

/** The view of a kind: its own, or one made from what every job has. */
export const kindView = (kind: string): KindView => byKind.get(kind) ?? genericKind(kind);

/** The fields every kind's view reads, as inline fragments on their types. */
export const KIND_FIELDS = KIND_VIEWS.map((v) => `... on ${v.typename} { ${v.fields} }`).join(' ');
