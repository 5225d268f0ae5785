import { useEffect } from 'react';
import { useQuery } from 'urql';
import { HEALTH, type HealthData } from '../api/operations';
import { formatSeconds } from '../ui/format';
import { Problems } from '../ui/problems';

const REFRESH_MS = 5000;

const detailText = (v: unknown) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

/** Each of the API process's checks with its status and message, refreshed every few seconds. */
export function HealthPage() {
  const [result, refetch] = useQuery<HealthData>({ query: HEALTH });
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: 'network-only' }), REFRESH_MS);
    return () => clearInterval(t);
  }, [refetch]);
  const h = result.data?.health;
  return (
    <div>
      <h1 tabIndex={-1}>Health</h1>
      <Problems error={result.error} />
      {h && (
        <>
          <p>
            <span className={`badge health-${h.status}`}>{h.status}</span> Kiln {h.version}, role {h.role}, up {formatSeconds(h.uptimeSeconds)}
          </p>
          <ul className="checks">
            {Object.entries(h.checks).map(([name, c]) => (
              <li key={name} className="card check" aria-label={`${name}: ${c.status}`}>
                <div className="check-head">
                  <strong>{name}</strong> <span className={`badge health-${c.status}`}>{c.status}</span>
                </div>
                <p>{c.message}</p>
                {c.details && Object.keys(c.details).length > 0 && (
                  <dl className="details">
                    {Object.entries(c.details).map(([k, v]) => (
                      <div key={k}>
                        <dt>{k}</dt>
                        <dd>{detailText(v)}</dd>
                      </div>
                    ))}
                  </dl>
                )}
              </li>
            ))}
          </ul>
        </>
      )}
      <button type="button" onClick={() => refetch({ requestPolicy: 'network-only' })}>
        Check again
      </button>
    </div>
  );
}
