import type { LossPoint } from './training-log';

const W = 600;
const H = 200;
/** Points drawn at most: a long training's curve keeps each stretch's lowest and highest loss. */
const MAX_DRAWN = 800;

/** At most MAX_DRAWN points, in step order, each stretch of the curve by its extremes (spikes stay visible). */
function thinned(points: LossPoint[]): LossPoint[] {
  if (points.length <= MAX_DRAWN) return points;
  const out: LossPoint[] = [];
  const per = Math.ceil(points.length / (MAX_DRAWN / 2));
  for (let i = 0; i < points.length; i += per) {
    const chunk = points.slice(i, i + per);
    const lo = chunk.reduce((a, b) => (b.loss < a.loss ? b : a));
    const hi = chunk.reduce((a, b) => (b.loss > a.loss ? b : a));
    out.push(...(lo.step < hi.step ? [lo, hi] : lo === hi ? [lo] : [hi, lo]));
  }
  return out;
}

/** A round top for the loss axis: 1, 2 or 5 times a power of ten. */
function niceTop(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 5, 10].find((m) => m * p >= v) ?? 10) * p;
}

const short = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(2));

/**
 * The loss of each step so far, against every step the training will run (the line grows
 * across as it trains), from 0 up to a round number above the highest loss.
 */
export function LossChart({ points, steps }: { points: LossPoint[]; steps: number }) {
  const top = niceTop(points.reduce((m, p) => Math.max(m, p.loss), 0));
  const x = (step: number) => (step / Math.max(1, steps)) * W;
  const y = (loss: number) => H - (Math.min(loss, top) / top) * H;
  const drawn = thinned(points);
  const last = points.at(-1);
  const label = last ? `Loss per step: ${points.length} points, ${short(last.loss)} at step ${last.step} of ${steps}` : 'Loss per step: no steps yet';
  return (
    <figure className="loss-chart">
      <div className="loss-plot">
        <span className="loss-axis loss-top" aria-hidden>
          {short(top)}
        </span>
        <span className="loss-axis loss-zero" aria-hidden>
          0
        </span>
        <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={label} data-points={points.length}>
          {[0.25, 0.5, 0.75].map((f) => (
            <line key={f} className="loss-grid" x1={0} x2={W} y1={H * f} y2={H * f} vectorEffect="non-scaling-stroke" />
          ))}
          {drawn.length > 1 && <polyline className="loss-line" points={drawn.map((p) => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(' ')} vectorEffect="non-scaling-stroke" />}
          {/* A dot that the stretched plot leaves round: a round cap of a line of no length. */}
          {last && <line className="loss-last" x1={x(last.step)} x2={x(last.step)} y1={y(last.loss)} y2={y(last.loss)} vectorEffect="non-scaling-stroke" />}
        </svg>
      </div>
      <figcaption className="loss-steps" aria-hidden>
        <span>step 0</span>
        <span>{steps}</span>
      </figcaption>
    </figure>
  );
}
