import { KilnError } from '../../errors.js';
import type { GenerateRequest } from '../pipeline.js';

/**
 * SDXL's micro-conditioning, as diffusers' `_get_add_time_ids` lays it out:
 * original_size + crops_coords_top_left + target_size, each [height, width] or [top, left],
 * defaulting to (height, width), (0, 0) and (height, width) of the image being made.
 */
export function timeIds(req: GenerateRequest): number[] {
  const originalSize = pair(req.originalSize, [req.height, req.width], 'originalSize', 1);
  const crops = pair(req.cropsCoordsTopLeft, [0, 0], 'cropsCoordsTopLeft', 0);
  const targetSize = pair(req.targetSize, [req.height, req.width], 'targetSize', 1);
  return [...originalSize, ...crops, ...targetSize];
}

function pair(value: [number, number] | undefined, fallback: [number, number], name: string, min: number): [number, number] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => Number.isFinite(v) && v >= min)) {
    throw new KilnError('BAD_USER_INPUT', `${name} must be two numbers of at least ${min}, not ${JSON.stringify(value)}`);
  }
  return value;
}
