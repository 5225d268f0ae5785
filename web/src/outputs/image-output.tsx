import { Link } from '../router';
import { formatBytes } from '../ui/format';
import { defineOutput, downloadName, type Output } from './output-view-types';

export interface ImageOutput extends Output {
  __typename: 'Image';
  width: number;
  height: number;
  seed: number;
}

const alt = (o: ImageOutput, of: string) => `Image ${o.index + 1} of "${of}", seed ${o.seed}`;

export const imageOutput = defineOutput<ImageOutput>({
  typename: 'Image',
  fields: 'width height seed',
  Thumb: ({ output: o, of, to }) => (
    <Link to={to} className="output-thumb" aria-label={`Open image ${o.index + 1} of "${of}"`}>
      <img src={o.url} alt={alt(o, of)} width={o.width} height={o.height} loading="lazy" />
    </Link>
  ),
  Full: ({ output: o, of, fileName }) => (
    <figure>
      <a href={o.url} target="_blank" rel="noreferrer">
        <img src={o.url} alt={alt(o, of)} width={o.width} height={o.height} />
      </a>
      <figcaption>
        seed {o.seed} · {o.width}×{o.height} · {formatBytes(o.bytes)}{' '}
        <a href={o.url} download={downloadName(o, fileName)}>
          Download
        </a>
      </figcaption>
    </figure>
  ),
});
