/** Music operations the tests send, as a client would write them. */

export const GENERATE_AUDIO = /* GraphQL */ `
  mutation GenerateAudio($input: GenerateAudioInput!, $key: String) {
    generateAudio(input: $input, idempotencyKey: $key) { id status currentStep prompt durationSeconds guidanceScale seed topK temperature model { id name } }
  }
`;

export const GENERATE_AUDIO_BATCH = /* GraphQL */ `
  mutation GenerateAudioBatch($inputs: [GenerateAudioInput!]!, $key: String) {
    generateAudioBatch(inputs: $inputs, idempotencyKey: $key) { estimatedTotalSeconds generations { id status seed durationSeconds } }
  }
`;

export const AUDIO_GENERATION = /* GraphQL */ `
  query AudioGeneration($id: ID!) {
    audioGeneration(id: $id) {
      id kind status currentStep progress prompt durationSeconds guidanceScale seed topK temperature
      model { id name }
      error { code message retryable }
      timing { modelLoadMs encodeMs generateMs saveMs totalMs }
      audio { index url mimeType bytes sha256 durationSeconds sampleRate channels seed }
    }
  }
`;

export const PROGRESS_AT = /* GraphQL */ `
  subscription Progress($id: ID!) {
    generationProgress(id: $id) { cursor step status stepIndex stepCount progress message etaSeconds at }
  }
`;

export interface AudioEvent {
  cursor: string;
  step: string;
  status: string;
  stepIndex: number | null;
  stepCount: number | null;
  progress: number;
  message: string | null;
  etaSeconds: number | null;
  at: string;
}

export const CANCEL_JOB = /* GraphQL */ `
  mutation CancelJob($id: ID!) { cancelJob(id: $id) { id status cancelRequested } }
`;

export const MODELS_WITH_CAPABILITIES = /* GraphQL */ `
  {
    models(kind: BASE) {
      edges { node { id name pipeline modality isDefault builtin capabilities { __typename
        ... on AudioCapabilities { durationSeconds { min max default } guidanceScale { min max default } topK { min max default } temperature { min max default } sampleRate channels lora }
      } } }
    }
  }
`;
