import { CONTRACT } from './capabilities';

export type SeedMode = 'random' | 'fixed';

/** A random or fixed seed, with "Reuse last" (the newest job's). */
export function SeedField({ mode, seed, lastSeed, error, onMode, onSeed }: {
  mode: SeedMode;
  seed: string;
  lastSeed: number | undefined;
  error: string | undefined;
  onMode: (mode: SeedMode) => void;
  onSeed: (seed: string) => void;
}) {
  return (
    <fieldset className="row seed">
      <legend>Seed</legend>
      <label className="inline">
        <input type="radio" name="seedMode" value="random" checked={mode === 'random'} onChange={() => onMode('random')} /> Random
      </label>
      <label className="inline">
        <input type="radio" name="seedMode" value="fixed" checked={mode === 'fixed'} onChange={() => onMode('fixed')} /> Fixed
      </label>
      <input
        aria-label="Seed"
        id="seed"
        type="number"
        min={CONTRACT.seed.min}
        max={CONTRACT.seed.max}
        step={1}
        value={seed}
        required={mode === 'fixed'}
        disabled={mode !== 'fixed'}
        aria-invalid={error ? true : undefined}
        onChange={(e) => onSeed(e.target.value)}
      />
      <button
        type="button"
        disabled={lastSeed === undefined}
        onClick={() => {
          onMode('fixed');
          onSeed(String(lastSeed));
        }}
      >
        Reuse last{lastSeed !== undefined ? ` (${lastSeed})` : ''}
      </button>
      {error && <small className="error">{error}</small>}
    </fieldset>
  );
}
