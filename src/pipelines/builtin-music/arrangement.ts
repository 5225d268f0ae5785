import { BUILTIN_MUSIC } from './model-files.js';

/**
 * What the built-in music model takes from the (guided) prompt vector beyond its timbre: the
 * tempo, the scale and its root. Fixed functions of the vector, so a prompt always plays in
 * the same key and tempo, and different prompts mostly do not.
 */
export interface Arrangement {
  bpm: number;
  /** Semitones above the root of the scale's seven notes. */
  scale: readonly number[];
  scaleName: string;
  /** MIDI note of the scale's first degree in the melody's lower octave. */
  root: number;
}

const SCALES: [string, number[]][] = [
  ['major', [0, 2, 4, 5, 7, 9, 11]],
  ['natural minor', [0, 2, 3, 5, 7, 8, 10]],
  ['dorian', [0, 2, 3, 5, 7, 9, 10]],
  ['mixolydian', [0, 2, 4, 5, 7, 9, 10]],
  ['harmonic minor', [0, 2, 3, 5, 7, 8, 11]],
];

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export function arrangementFor(prompt: Float32Array): Arrangement {
  let best = 0;
  for (let i = 1; i < SCALES.length; i++) if (prompt[1 + i]! > prompt[1 + best]!) best = i;
  const [scaleName, scale] = SCALES[best]!;
  return {
    bpm: Math.round(80 + 60 * sigmoid(2 * prompt[0]!)),
    scale,
    scaleName,
    root: 52 + Math.min(11, Math.floor(12 * sigmoid(2 * prompt[6]!))),
  };
}

/** MIDI note of melody degree d (0 … degrees − 1, seven per octave). */
export function melodyNote(a: Arrangement, degree: number): number {
  return a.root + 12 * Math.floor(degree / 7) + a.scale[degree % 7]!;
}

// The chord a melody note is harmonised with, by its scale degree: I, V, I, IV, I, IV, V.
const CHORD_ROOT = [0, 4, 0, 3, 0, 3, 4];

/** The bass under melody degree d: the root of its chord, an octave below the melody's lower octave. */
export function bassNote(a: Arrangement, degree: number): number {
  return a.root - 12 + a.scale[CHORD_ROOT[degree % 7]!]!;
}

export const hz = (midi: number) => 440 * 2 ** ((midi - 69) / 12);

/** Frames per eighth note at this tempo (notes start on frame boundaries). */
export function framesPerNote(a: Arrangement): number {
  return Math.max(1, Math.round((30 / a.bpm) * BUILTIN_MUSIC.frameRate));
}
