import type { AudioCapabilities, Capabilities, ImageCapabilities, Range, SizeRange } from '../pipelines/capabilities.js';
import { builder } from './builder.js';

const RangeRef = builder.objectRef<Range>('Range').implement({
  description: 'Inclusive bounds and the value used when a request leaves it out.',
  fields: (t) => ({ min: t.exposeFloat('min'), max: t.exposeFloat('max'), default: t.exposeFloat('default') }),
});

const SizeRangeRef = builder.objectRef<SizeRange>('SizeRange').implement({
  fields: (t) => ({ min: t.exposeInt('min'), max: t.exposeInt('max'), default: t.exposeInt('default'), multipleOf: t.exposeInt('multipleOf') }),
});

/** What a model accepts, as its pipeline declares it: enough to build a form from. */
export const CapabilitiesRef = builder.unionType('ModelCapabilities', {
  description: 'What a model accepts, by modality; requests outside it are refused at submit with BAD_USER_INPUT.',
  types: () => [ImageCapabilitiesRef, AudioCapabilitiesRef],
  resolveType: (c: Capabilities) => (c.modality === 'image' ? 'ImageCapabilities' : 'AudioCapabilities'),
});

const ImageCapabilitiesRef = builder.objectRef<ImageCapabilities>('ImageCapabilities').implement({
  fields: (t) => ({
    schedulers: t.stringList({ description: 'Samplers it offers, lower-case (GenerateInput.scheduler takes them in upper case); empty: it has its own.', resolve: (c) => c.schedulers }),
    defaultScheduler: t.exposeString('defaultScheduler', { nullable: true }),
    steps: t.field({ type: RangeRef, resolve: (c) => c.steps }),
    guidanceScale: t.field({ type: RangeRef, resolve: (c) => c.guidanceScale }),
    width: t.field({ type: SizeRangeRef, resolve: (c) => c.width }),
    height: t.field({ type: SizeRangeRef, resolve: (c) => c.height }),
    maxImages: t.exposeInt('maxImages'),
    negativePrompt: t.exposeBoolean('negativePrompt', { description: 'Whether it takes a negative prompt.' }),
    sizeConditioning: t.exposeBoolean('sizeConditioning', { description: 'Whether it takes originalSize, cropsCoordsTopLeft and targetSize (SDXL).' }),
    lora: t.exposeBoolean('lora', { description: 'Whether it takes LoRA adapters.' }),
  }),
});

const AudioCapabilitiesRef = builder.objectRef<AudioCapabilities>('AudioCapabilities').implement({
  fields: (t) => ({
    durationSeconds: t.field({ type: RangeRef, resolve: (c) => c.durationSeconds }),
    guidanceScale: t.field({ type: RangeRef, resolve: (c) => c.guidanceScale }),
    topK: t.field({ type: RangeRef, resolve: (c) => c.topK }),
    temperature: t.field({ type: RangeRef, resolve: (c) => c.temperature }),
    sampleRate: t.exposeInt('sampleRate'),
    channels: t.exposeInt('channels'),
    lora: t.exposeBoolean('lora'),
  }),
});
