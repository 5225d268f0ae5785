import { useMutation } from 'urql';
import { idempotencyKey } from '../api/client';
import { type Problem, problemsOf } from '../api/errors';
import type { Job } from '../api/job-operations';

/** A kind's two submissions: its mutation for one input and its atomic batch mutation, each with the field it answers in. */
export interface Submissions {
  single: { query: string; field: string };
  batch: { query: string; field: string };
}

type BatchAnswer = { estimatedTotalSeconds: number; generations: Job[] };

/**
 * A generate form's submit: one input goes through the single mutation, several through the
 * batch one (all or none, with the estimated total), under a fresh idempotency key; a refusal
 * becomes the form's problems.
 */
export function useSubmitJobs(submissions: Submissions, onSubmitted: (jobs: Job[], estimatedSeconds: number | undefined) => void, setProblems: (p: Problem[]) => void) {
  const [single, submitOne] = useMutation<Record<string, Job>>(submissions.single.query);
  const [batch, submitMany] = useMutation<Record<string, BatchAnswer>>(submissions.batch.query);
  async function submit(inputs: object[]) {
    setProblems([]);
    const key = idempotencyKey();
    if (inputs.length === 1) {
      const r = await submitOne({ input: inputs[0], key });
      if (r.error) return setProblems(problemsOf(r.error));
      if (r.data) onSubmitted([r.data[submissions.single.field]!], undefined);
    } else {
      const r = await submitMany({ inputs, key });
      if (r.error) return setProblems(problemsOf(r.error));
      const answer = r.data?.[submissions.batch.field];
      if (answer) onSubmitted(answer.generations, answer.estimatedTotalSeconds);
    }
  }
  return { submit, busy: single.fetching || batch.fetching };
}
