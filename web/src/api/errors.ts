import type { CombinedError } from 'urql';

/** What each of the contract's error codes means, in words a user reads. */
export const CODE_MEANINGS: Record<string, string> = {
  BAD_USER_INPUT: 'Kiln refused the input',
  NOT_FOUND: 'It does not exist (any more)',
  CONFLICT: 'Not possible in its current state',
  RATE_LIMITED: 'Too many requests for now',
  UNAUTHENTICATED: 'An API key is needed, or the one sent was refused',
  FORBIDDEN: 'Not allowed',
  PAYLOAD_TOO_LARGE: 'Too large for this Kiln',
  UNAVAILABLE: 'A service Kiln depends on is down',
  INTERNAL_SERVER_ERROR: 'Kiln failed unexpectedly (the details are in its log)',
  NETWORK: 'Kiln could not be reached',
};

/** Why a generation failed or stopped (GenerationError.code). */
export const JOB_ERROR_MEANINGS: Record<string, string> = {
  TIMEOUT: 'It ran past the time limit',
  DEADLINE_EXCEEDED: 'It did not start before its deadline',
  CANCELLED: 'It was cancelled',
  WORKER_LOST: 'The worker running it stopped answering',
  MODEL_LOAD_FAILED: 'The model could not be loaded',
  LORA_LOAD_FAILED: 'The LoRA adapter could not be applied',
  INFERENCE_FAILED: 'The model failed while running',
  INVALID_REQUEST: 'The model cannot run these parameters',
  MODEL_NOT_FOUND: 'Its model no longer exists',
  STORAGE_ERROR: 'The storage failed',
  DATASET_INVALID: 'Its dataset is not as Kiln stored it',
  TRAINING_INVALID: 'The trainer cannot train these parameters',
  TRAINING_DIVERGED: 'The training diverged (its loss is no longer a number)',
  TRAINER_UNAVAILABLE: 'The trainer could not be started',
  TRAINER_FAILED: 'The trainer failed',
  TRAINER_OUTPUT_INVALID: 'The trainer made something that is not the adapter asked for',
};

/** One refusal, as the app shows it. */
export interface Problem {
  code: string;
  meaning: string;
  message: string;
  /** BAD_USER_INPUT: the input path (`input.steps`, `inputs.2.prompt`). */
  field?: string;
  retryAfterSeconds?: number;
}

interface GraphQLErrorLike {
  message: string;
  extensions?: Record<string, unknown>;
}

export function problemOf(e: GraphQLErrorLike): Problem {
  const code = typeof e.extensions?.code === 'string' ? e.extensions.code : 'INTERNAL_SERVER_ERROR';
  const field = typeof e.extensions?.field === 'string' ? e.extensions.field : undefined;
  const retry = typeof e.extensions?.retryAfterSeconds === 'number' ? e.extensions.retryAfterSeconds : undefined;
  return {
    code,
    meaning: CODE_MEANINGS[code] ?? code,
    message: e.message,
    ...(field ? { field } : {}),
    ...(retry !== undefined ? { retryAfterSeconds: retry } : {}),
  };
}

/** The problems an urql result carries: its GraphQL errors, or the network failure. */
export function problemsOf(error: CombinedError | undefined): Problem[] {
  if (!error) return [];
  if (error.graphQLErrors.length) return error.graphQLErrors.map(problemOf);
  const status = (error.response as Response | undefined)?.status;
  if (status === 401) return [problemOf({ message: 'the API key was refused', extensions: { code: 'UNAUTHENTICATED' } })];
  return [{ code: 'NETWORK', meaning: CODE_MEANINGS.NETWORK!, message: error.networkError?.message ?? error.message }];
}

/** Problems from a plain fetch of a GraphQL response body (multipart uploads). */
export function problemsOfBody(body: { errors?: GraphQLErrorLike[] } | undefined, status: number): Problem[] {
  if (body?.errors?.length) return body.errors.map(problemOf);
  return [{ code: status === 413 ? 'PAYLOAD_TOO_LARGE' : 'NETWORK', meaning: CODE_MEANINGS[status === 413 ? 'PAYLOAD_TOO_LARGE' : 'NETWORK']!, message: `HTTP ${status}` }];
}

/** The GenerateInput field a BAD_USER_INPUT names, without its input's path (`inputs.2.steps` → `steps`). */
export const inputFieldOf = (p: Problem) => p.field?.replace(/^inputs?\.(\d+\.)?/, '');

export const isUnauthenticated = (error: CombinedError) =>
  error.graphQLErrors.some((e) => e.extensions?.code === 'UNAUTHENTICATED') || (error.response as Response | undefined)?.status === 401;
