import { type FormEvent, useState } from 'react';
import { apiKey, authHeaders } from './api/api-key';
import { CODE_MEANINGS } from './api/errors';

/** Asks Kiln whether it takes the key: any operation does, an API key guards them all. */
async function accepted(key: string): Promise<boolean | string> {
  try {
    const res = await fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders(key) }, body: JSON.stringify({ query: '{ __typename }' }) });
    return res.status !== 401;
  } catch (err) {
    return `${CODE_MEANINGS.NETWORK}: ${(err as Error).message}`;
  }
}

/** Shown while this Kiln wants an API key the browser does not have, or refused the one it sent. */
export function KeyPrompt({ rejected }: { rejected: boolean }) {
  const [value, setValue] = useState('');
  const [message, setMessage] = useState<string | undefined>(rejected && apiKey.get() ? 'Kiln refused the stored API key: enter another.' : undefined);
  const [checking, setChecking] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setChecking(true);
    const verdict = await accepted(value.trim());
    setChecking(false);
    if (verdict === true) apiKey.set(value.trim());
    else setMessage(typeof verdict === 'string' ? verdict : `${CODE_MEANINGS.UNAUTHENTICATED}: Kiln refused this key.`);
  }

  return (
    <main id="main" className="key-prompt">
      <form className="card" onSubmit={(e) => void submit(e)} aria-labelledby="key-title">
        <h1 id="key-title">API key</h1>
        <p>This Kiln asks every client for an API key (KILN_API_KEYS). This browser keeps the key you enter and sends it with every request.</p>
        <div className="field">
          <label htmlFor="api-key">Key</label>
          <input id="api-key" type="password" autoComplete="current-password" required autoFocus value={value} onChange={(e) => setValue(e.target.value)} />
        </div>
        {message && (
          <p role="alert" className="problems">
            {message}
          </p>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={checking}>
            {checking ? 'Checking…' : 'Use this key'}
          </button>
        </div>
      </form>
    </main>
  );
}
