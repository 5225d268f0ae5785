import type { ComponentType } from 'react';

/** What every output has (the `Output` interface), whatever its media type. */
export interface Output {
  /** The GraphQL type: `Image`, `Audio`, … */
  __typename: string;
  /** Its place among its job's outputs, from 0. */
  index: number;
  url: string;
  mimeType: string;
  bytes: number;
  sha256: string;
}

export interface OutputProps<O extends Output = Output> {
  output: O;
  /** What made it, for its label ("Image 1 of "a kiln at dusk""). */
  of: string;
  /** The name a download gets, without its extension. */
  fileName: string;
}

/**
 * How the app shows one media type: the fields it reads beside the interface's, a small form
 * (job cards, the gallery) and a full one (a job's page). `Thumb` gets `to`, the job's page,
 * where it can be a link; one with controls of its own (a player) stays out of a link.
 */
export interface OutputView<O extends Output = Output> {
  typename: string;
  fields: string;
  Thumb: ComponentType<OutputProps<O> & { to: string }>;
  Full: ComponentType<OutputProps<O>>;
}

/** Declares a media type's view; the registry hands each only outputs of its own type. */
export const defineOutput = <O extends Output>(view: OutputView<O>) => view as unknown as OutputView;

const EXTENSIONS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'audio/wave': 'wav',
  'audio/mpeg': 'mp3',
  'audio/flac': 'flac',
  'audio/ogg': 'ogg',
};

/** `kiln-<job>-<n>.<ext>`: the extension from the file's media type. */
export const downloadName = (o: Output, fileName: string) => `${fileName}.${EXTENSIONS[o.mimeType] ?? o.mimeType.split('/')[1] ?? 'bin'}`;
