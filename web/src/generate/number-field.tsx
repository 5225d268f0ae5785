import type { Range } from './capabilities';

/** A number input within a range, its hint (or Kiln's refusal) below it. */
export function NumberField({ id, label, value, range, onChange, placeholder, hint, error, required, disabled }: {
  id: string;
  label: string;
  value: string;
  range: Range;
  onChange: (v: string) => void;
  placeholder?: string | undefined;
  hint?: string;
  error?: string | undefined;
  required?: boolean;
  disabled?: boolean;
}) {
  return (
    <div className={`field${error ? ' invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={id}
        type="number"
        inputMode="decimal"
        min={range.min}
        max={range.max}
        step={range.step}
        value={value}
        placeholder={placeholder}
        required={required}
        disabled={disabled}
        aria-invalid={error ? true : undefined}
        aria-describedby={`${id}-hint`}
        onChange={(e) => onChange(e.target.value)}
      />
      <small id={`${id}-hint`} className={error ? 'error' : 'muted'}>
        {error ?? hint ?? `${range.min}..${range.max}`}
      </small>
    </div>
  );
}
