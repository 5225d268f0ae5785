import type { ReactNode } from 'react';
import { CONTRACT } from './capabilities';
import { NumberField } from './number-field';

interface QueueFields {
  priority: string;
  deadlineSeconds: string;
}

/**
 * What every generate form asks of the queue, folded away: priority and deadline (the
 * contract's ranges), and any options of the form's own after them (`children`).
 */
export function QueueOptions({ fields, onChange, fieldError, children }: { fields: QueueFields; onChange: (key: keyof QueueFields) => (value: string) => void; fieldError: (name: string) => string | undefined; children?: ReactNode }) {
  return (
    <details>
      <summary>Queue options</summary>
      <div className="grid">
        <NumberField id="priority" label="Priority" value={fields.priority} range={CONTRACT.priority} onChange={onChange('priority')} hint="higher runs first" error={fieldError('priority')} />
        <NumberField id="deadlineSeconds" label="Deadline (s)" value={fields.deadlineSeconds} range={CONTRACT.deadlineSeconds} onChange={onChange('deadlineSeconds')} placeholder="none" hint="not started by then: cancelled" error={fieldError('deadlineSeconds')} />
        {children}
      </div>
    </details>
  );
}

/** The submit button: how many jobs it makes, and that it is busy while they are sent. */
export function GenerateButton({ busy, batch }: { busy: boolean; batch: string }) {
  return (
    <div className="actions">
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Submitting…' : Number(batch) > 1 ? `Generate ${batch} jobs` : 'Generate'}
      </button>
    </div>
  );
}
