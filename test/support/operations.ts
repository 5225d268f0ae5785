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
      timing { modelLoadMs encodeMs generateMs saveMs totalMs }
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
