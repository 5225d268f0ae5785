import { formatBytes } from '../ui/format';
import { audioOutput } from './audio-output';
import { imageOutput } from './image-output';
import { downloadName, type Output, type OutputProps, type OutputView } from './output-view-types';

/** Every media type the app shows: a new one is a file beside this one and a line here. */
const VIEWS: readonly OutputView[] = [imageOutput, audioOutput];

const byType = new Map(VIEWS.map((v) => [v.typename, v]));

/** The fields the app reads of every output: the interface's, and each known type's own. */
export const OUTPUT_FIELDS = `__typename index url mimeType bytes sha256 ${VIEWS.map((v) => `... on ${v.typename} { ${v.fields} }`).join(' ')}`;

/** A type the app does not know yet: its file, to download. */
function OtherOutput({ output: o, fileName }: OutputProps) {
  return (
    <p className="other-output">
      <a href={o.url} download={downloadName(o, fileName)}>
        Download {o.mimeType} output {o.index + 1}
      </a>{' '}
      <span className="muted">{formatBytes(o.bytes)}</span>
    </p>
  );
}

/** One output, small (job cards, the gallery; `to` is its job's page) or full (a job's page). */
export function OutputItem({ output, of, fileName, to }: { output: Output; of: string; fileName: string; to?: string }) {
  const view = byType.get(output.__typename);
  if (!view) return <OtherOutput output={output} of={of} fileName={fileName} />;
  return to === undefined ? <view.Full output={output} of={of} fileName={fileName} /> : <view.Thumb output={output} of={of} fileName={fileName} to={to} />;
}

/** The name a job's downloads start with. */
export const jobFileName = (jobId: string, o: Output) => `kiln-${jobId.slice(0, 8)}-${o.index + 1}`;
