import { useMemo, useState } from 'react';
import type { GenerateInput, Generation } from '../api/operations';
import { TERMINAL } from '../api/operations';
import { navigationState } from '../router';
import { formatSeconds } from '../ui/format';
import { GenerateForm } from './generate-form';
import { JobCard } from './job-card';
import { submittedJobs, useSubmittedJobs } from './jobs';

/**
 * Cards that watch at once. Each watch is a subscription on the app's one socket, which Kiln
 * caps (KILN_WS_MAX_SUBSCRIPTIONS, 20 by default); the oldest unfinished jobs run first, so they
 * are the ones watched, and the next card starts watching as one finishes.
 */
const WATCHED_AT_ONCE = 8;

export function GeneratePage() {
  const jobs = useSubmittedJobs();
  const [initial] = useState(() => navigationState<{ generateAgain?: GenerateInput }>()?.generateAgain);
  const [estimate, setEstimate] = useState<number | undefined>();
  const [seedRequest, setSeedRequest] = useState<{ seed: number } | undefined>();

  const watched = useMemo(() => {
    // Oldest first; a batch's jobs share a creation time and keep their order (a stable sort).
    const unfinished = jobs.filter((j) => !TERMINAL.has(j.status)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    return new Set(unfinished.slice(0, WATCHED_AT_ONCE).map((j) => j.id));
  }, [jobs]);

  const submitted = (generations: Generation[], estimatedSeconds: number | undefined) => {
    submittedJobs.add(generations);
    setEstimate(estimatedSeconds);
    // On a narrow screen the cards are below the form: bring the new ones into view.
    if (matchMedia('(max-width: 760px)').matches) document.getElementById('jobs-title')?.scrollIntoView({ block: 'start' });
  };

  return (
    <div className="generate-page">
      <section aria-labelledby="generate-title">
        <h1 id="generate-title" tabIndex={-1}>
          Generate
        </h1>
        <GenerateForm initial={initial} lastSeed={jobs[0]?.seed} onSubmitted={submitted} seedRequest={seedRequest} />
      </section>
      <section aria-labelledby="jobs-title" className="jobs">
        <div className="section-head">
          <h2 id="jobs-title">Jobs</h2>
          {estimate !== undefined && <span className="muted">batch: about {formatSeconds(estimate)} of work</span>}
          {jobs.some((j) => TERMINAL.has(j.status)) && (
            <button type="button" className="quiet" onClick={() => jobs.filter((j) => TERMINAL.has(j.status)).forEach((j) => submittedJobs.remove(j.id))}>
              Clear finished
            </button>
          )}
        </div>
        {jobs.length === 0 && <p className="muted">Submitted jobs appear here with their live progress.</p>}
        <div className="job-list">
          {jobs.map((job) => (
            <JobCard
              key={job.id}
              job={job}
              watch={watched.has(job.id)}
              onReuseSeed={(seed) => setSeedRequest({ seed })}
              onDismiss={() => submittedJobs.remove(job.id)}
            />
          ))}
        </div>
      </section>
    </div>
  );
}
