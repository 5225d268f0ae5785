import type { Job } from '../api/job-operations';
import type { Scheduler } from '../api/operations';
import { schedulerLabel } from '../generate/capabilities';
import { parametersOf, parametersText } from '../generate/parameters';
import { openGenerate } from '../generate/prefill';
import { defineKind } from './kind-view';

/** An image generation (kind "image"), as the `Generation` type has it. */
export interface Generation extends Job {
  __typename: 'Generation';
  prompt: string;
  negativePrompt: string | null;
  model: { id: string; name: string; pipeline: string };
  lora: { id: string; name: string } | null;
  loraWeight: number | null;
  numImages: number;
  steps: number;
  guidanceScale: number;
  width: number;
  height: number;
  seed: number;
  scheduler: Scheduler | null;
  previews: boolean;
  originalSize: number[] | null;
  cropsCoordsTopLeft: number[] | null;
  targetSize: number[] | null;
}

const pair = (v: number[] | null, sep: string) => (v ? v.join(sep) : null);

export const imageKind = defineKind<Generation>({
  kind: 'image',
  label: 'Images',
  typename: 'Generation',
  fields:
    'prompt negativePrompt model { id name pipeline } lora { id name } loraWeight numImages steps guidanceScale width height seed scheduler previews originalSize cropsCoordsTopLeft targetSize',
  title: (g) => g.prompt,
  summary: (g) => `${g.model.name} · ${g.width}×${g.height} · ${g.steps} steps${g.priority ? ` · priority ${g.priority}` : ''}`,
  runLabel: 'Denoising',
  previewSize: (g) => ({ width: g.width, height: g.height }),
  parameters: (g) => {
    const rows: [string, string | null][] = [
      ['Prompt', g.prompt],
      ['Negative prompt', g.negativePrompt ?? '–'],
      ['Model', g.model.name],
      ['LoRA', g.lora ? `${g.lora.name} at weight ${g.loraWeight}` : '–'],
      ['Size', `${g.width}×${g.height}`],
      ['Images', String(g.numImages)],
      ['Steps', String(g.steps)],
      ['Guidance', String(g.guidanceScale)],
      ['Scheduler', g.scheduler ? schedulerLabel(g.scheduler) : 'the model\u2019s own'],
      ['Seed', String(g.seed)],
      ['Original size', pair(g.originalSize, '×')],
      ['Crop top-left', pair(g.cropsCoordsTopLeft, ', ')],
      ['Target size', pair(g.targetSize, '×')],
      ['Priority', String(g.priority)],
      ['Previews', g.previews ? 'on' : 'off'],
    ];
    return rows.filter((r): r is [string, string] => r[1] !== null);
  },
  copyText: (g) => parametersText(parametersOf(g)),
  Actions: ({ job }) => (
    <button type="button" className="primary" onClick={() => openGenerate(parametersOf(job))}>
      Generate again
    </button>
  ),
});
