/** Operations the tests send, as a client would write them. */

export const GENERATE = /* GraphQL */ `
  mutation Generate($input: GenerateInput!) {
    generate(input: $input) { id status currentStep seed width height steps model { id name } }
  }
`;

export const GENERATION = /* GraphQL */ `
  query Generation($id: ID!) {
    generation(id: $id) {
      id status currentStep progress seed retryCount
      error { code message retryable }
      timing { modelLoadMs loraLoadMs encodeMs generateMs saveMs totalMs }
      images { url width height bytes sha256 seed mimeType }
      events { cursor step status stepIndex stepCount progress }
    }
  }
`;

export const PROGRESS = /* GraphQL */ `
  subscription Progress($id: ID!, $after: String) {
    generationProgress(id: $id, after: $after) {
      cursor generationId step status stepIndex stepCount progress message etaSeconds preview attempt
    }
  }
`;

export interface ProgressEvent {
  cursor: string;
  generationId: string;
  step: string;
  status: string;
  stepIndex: number | null;
  stepCount: number | null;
  progress: number;
  message: string | null;
  etaSeconds: number | null;
  preview: string | null;
  attempt: number;
}

export const GENERATE_BATCH = /* GraphQL */ `
  mutation Batch($inputs: [GenerateInput!]!, $key: String) {
    generateBatch(inputs: $inputs, idempotencyKey: $key) { estimatedTotalSeconds generations { id status seed } }
  }
`;

export const GENERATE_WITH_KEY = /* GraphQL */ `
  mutation Generate($input: GenerateInput!, $key: String) {
    generate(input: $input, idempotencyKey: $key) { id status }
  }
`;

export const CANCEL = /* GraphQL */ `
  mutation Cancel($id: ID!) { cancelGeneration(id: $id) { id status cancelRequested } }
`;

export const DELETE = /* GraphQL */ `
  mutation Delete($id: ID!) { deleteGeneration(id: $id) }
`;

export const ATTEMPTS = /* GraphQL */ `
  query Attempts($id: ID!) {
    generation(id: $id) {
      status retryCount currentStep
      error { code message retryable }
      attempts { attempt worker outcome startedAt endedAt error { code message retryable } }
      images { url sha256 }
    }
  }
`;

/** The progress subscription's payload, unwrapped. */
export const progressOf = (v: { generationProgress: ProgressEvent }) => v.generationProgress;
export const stepLabel = (e: ProgressEvent) => (e.step === 'GENERATING' ? `GENERATING ${e.stepIndex}` : e.step);
