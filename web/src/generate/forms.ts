import type { ComponentType, ReactNode } from 'react';
import type { Job } from '../api/job-operations';
import type { GenerateInput, Model } from '../api/operations';
import { ImageForm } from './image-form';

export interface FormProps {
  /** The base model chosen, of this form's modality. */
  model: Model;
  /** Its LoRA adapters. */
  loras: Model[];
  /** The model picker, which the form shows first. */
  picker: ReactNode;
  /** What "Generate again" handed over. */
  initial: GenerateInput | undefined;
  lastSeed: number | undefined;
  onSubmitted: (jobs: Job[], estimatedSeconds: number | undefined) => void;
  /** A seed a job card asked to reuse (a new object each time). */
  seedRequest: { seed: number } | undefined;
}

/** A form per modality of model (`Model.modality`): a new one is a component and a line here. */
export const FORMS: Readonly<Record<string, ComponentType<FormProps>>> = {
  image: ImageForm,
};
