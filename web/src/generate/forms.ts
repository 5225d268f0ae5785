import type { ComponentType, ReactNode } from 'react';
import type { Job } from '../api/job-operations';
import type { Model } from '../api/operations';
import { AudioForm } from './audio-form';
import { ImageForm } from './image-form';
import type { Prefill } from './prefill';

export interface FormProps {
  /** The base model chosen, of this form's modality. */
  model: Model;
  /** Its LoRA adapters. */
  loras: Model[];
  /** The model picker, which the form shows first. */
  picker: ReactNode;
  /** What "Generate again" or "Generate with this LoRA" handed over (for this model: its modelId chose it). */
  initial: Prefill | undefined;
  lastSeed: number | undefined;
  onSubmitted: (jobs: Job[], estimatedSeconds: number | undefined) => void;
  /** A seed a job card asked to reuse (a new object each time). */
  seedRequest: { seed: number } | undefined;
}

/**
 * A form per modality of model (`Model.modality`), and how the model picker groups its models:
 * a new one is a component and a line here. The first is the one the page opens on.
 */
export const FORMS: Readonly<Record<string, { label: string; Form: ComponentType<FormProps> }>> = {
  image: { label: 'Images', Form: ImageForm },
  audio: { label: 'Music', Form: AudioForm },
};
