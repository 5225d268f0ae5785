import type { Job } from '../api/job-operations';
import type { GenerateAudioInput } from '../api/operations';
import { openGenerate } from '../generate/prefill';
import { formatSeconds } from '../ui/format';
import { defineKind } from './kind-view';

/** A music generation (kind "audio"), as the `AudioGeneration` type has it. */
export interface AudioGeneration extends Job {
  __typename: 'AudioGeneration';
  prompt: string;
  model: { id: string; name: string; pipeline: string };
  durationSeconds: number;
  guidanceScale: number;
  seed: number;
  topK: number;
  temperature: number;
}

/** The input that makes this music again: same model, settings and seed. */
export const audioInputOf = (g: AudioGeneration): GenerateAudioInput => ({
  prompt: g.prompt,
  modelId: g.model.id,
  durationSeconds: g.durationSeconds,
  guidanceScale: g.guidanceScale,
  topK: g.topK,
  temperature: g.temperature,
  seed: g.seed,
  priority: g.priority,
});

export const audioKind = defineKind<AudioGeneration>({
  kind: 'audio',
  label: 'Music',
  typename: 'AudioGeneration',
  fields: 'prompt model { id name pipeline } durationSeconds guidanceScale seed topK temperature',
  title: (g) => g.prompt,
  summary: (g) => `${g.model.name} · ${formatSeconds(g.durationSeconds)} of music${g.priority ? ` · priority ${g.priority}` : ''}`,
  unit: 'frame',
  runLabel: 'Generating',
  previewSize: () => undefined,
  parameters: (g) => [
    ['Prompt', g.prompt],
    ['Model', g.model.name],
    ['Duration', formatSeconds(g.durationSeconds)],
    ['Guidance', String(g.guidanceScale)],
    ['Top-k', g.topK === 0 ? '0 (all tokens)' : String(g.topK)],
    ['Temperature', g.temperature === 0 ? '0 (greedy)' : String(g.temperature)],
    ['Seed', String(g.seed)],
    ['Priority', String(g.priority)],
  ],
  copyText: (g) => JSON.stringify(audioInputOf(g), null, 2),
  Actions: ({ job }) => (
    <button type="button" className="primary" onClick={() => openGenerate(audioInputOf(job))}>
      Generate again
    </button>
  ),
});
