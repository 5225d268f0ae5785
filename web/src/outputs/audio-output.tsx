import { formatBytes, formatSeconds } from '../ui/format';
import { defineOutput, downloadName, type Output, type OutputProps } from './output-view-types';

export interface AudioOutput extends Output {
  __typename: 'Audio';
  durationSeconds: number;
  sampleRate: number;
  channels: number;
  seed: number;
}

/** A player with its duration and a download: the same small and full, since a player is its own control. */
function AudioPlayer({ output: o, of, fileName, full }: OutputProps<AudioOutput> & { full: boolean }) {
  return (
    <figure className="audio-output">
      <audio controls preload="metadata" src={o.url} aria-label={`Audio ${o.index + 1} of "${of}"`} />
      <figcaption>
        <span className="audio-duration">{formatSeconds(o.durationSeconds)}</span>
        {full && ` · ${o.sampleRate} Hz · ${o.channels === 1 ? 'mono' : o.channels === 2 ? 'stereo' : `${o.channels} channels`} · seed ${o.seed} · ${formatBytes(o.bytes)}`}{' '}
        <a href={o.url} download={downloadName(o, fileName)}>
          Download
        </a>
      </figcaption>
    </figure>
  );
}

export const audioOutput = defineOutput<AudioOutput>({
  typename: 'Audio',
  fields: 'durationSeconds sampleRate channels seed',
  Thumb: (props) => <AudioPlayer {...props} full={false} />,
  Full: (props) => <AudioPlayer {...props} full />,
});
