import type { CombinedError } from 'urql';
import { type Problem, problemsOf } from '../api/errors';

/** Refusals shown by their code's meaning, then Kiln's own message. */
export function Problems({ problems, error }: { problems?: Problem[]; error?: CombinedError | undefined }) {
  const list = problems ?? problemsOf(error);
  if (!list.length) return null;
  return (
    <div role="alert" className="problems">
      {list.map((p, i) => (
        <p key={i}>
          <strong>{p.meaning}</strong>
          {p.field ? ` (${p.field})` : ''}: {p.message}
          {p.retryAfterSeconds !== undefined ? ` Try again in ${Math.ceil(p.retryAfterSeconds)} s.` : ''}
          <span className="code"> {p.code}</span>
        </p>
      ))}
    </div>
  );
}
