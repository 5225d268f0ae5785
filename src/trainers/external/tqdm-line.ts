/**
 * One refresh of a tqdm progress bar, as both trainers print them on stderr (tqdm's default
 * format, `\r` between refreshes):
 *
 *   steps:  40%|████      | 4/10 [00:08<00:12,  2.01s/it, avr_loss=0.0912]
 *   my_lora:  25%|██▌       | 250/1000 [02:05<06:15,  2.00it/s, lr: 1.0e-04 loss: 4.123e-01]
 *
 * i.e. `{desc}: {percentage}%|{bar}| {n}/{total} [{elapsed}<{remaining}, {rate}{, postfix}]`.
 */
export interface TqdmLine {
  desc: string;
  n: number;
  total: number;
  elapsedSeconds: number | null;
  /** tqdm's own estimate; null while it has none (`?`). */
  remainingSeconds: number | null;
  /** What `set_postfix` / `set_postfix_str` added, or ''. */
  postfix: string;
}

const LINE = /^(.*?):\s*\d+%\|[^|]*\|\s*(\d+)\/(\d+)\s*\[([\d:]+|\?)<([\d:]+|\?)(?:,\s*([^,\]]*))?(?:,\s*(.*))?\]\s*$/;

export function parseTqdmLine(line: string): TqdmLine | null {
  const m = LINE.exec(line);
  if (!m) return null;
  return { desc: m[1]!.trim(), n: Number(m[2]), total: Number(m[3]), elapsedSeconds: seconds(m[4]!), remainingSeconds: seconds(m[5]!), postfix: m[7]?.trim() ?? '' };
}

/** `MM:SS` or `H:MM:SS`, as tqdm's format_interval writes them. */
function seconds(interval: string): number | null {
  if (!/^\d+(:\d{2}){1,2}$/.test(interval)) return null;
  return interval.split(':').reduce((total, part) => total * 60 + Number(part), 0);
}

/** A number after `name` and `:` or `=` in a postfix (`loss: 4.1e-01`, `avr_loss=0.09`), or null. */
export function postfixNumber(postfix: string, name: string): number | null {
  const m = new RegExp(`(?:^|[\\s,])${name}\\s*[:=]\\s*([-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?)`).exec(postfix);
  return m ? Number(m[1]) : null;
}
