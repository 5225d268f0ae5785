import type { GenerateAudioInput, GenerateInput } from '../api/operations';
import { navigate, navigationState, ROUTES } from '../router';

/**
 * What the Generate page opens with ("Generate again", "Generate with this LoRA"): an input of
 * one modality, whose `modelId` picks the model and so the form that reads it.
 */
export type Prefill = GenerateInput | GenerateAudioInput;

export const openGenerate = (input: Prefill) => navigate(ROUTES.generate, { prefill: input });

/** The input the page that navigated here handed over, if any. */
export const prefillOf = () => navigationState<{ prefill?: Prefill }>()?.prefill;
