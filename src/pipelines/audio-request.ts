import { KilnError } from '../errors.js';
import type { AudioGenerateRequest } from './audio-pipeline.js';

export const refuseAudio = (message: string) => new KilnError('BAD_USER_INPUT', message);

/** Checks the settings every audio pipeline reads the same way, and returns the number of outputs. */
export function checkAudioRequest(req: AudioGenerateRequest): number {
  const n = req.numOutputs ?? 1;
  if (!Number.isInteger(n) || n < 1) throw refuseAudio('numOutputs must be a whole number of at least 1');
  if (!Number.isFinite(req.guidanceScale) || req.guidanceScale < 0) throw refuseAudio('guidanceScale must be a number of at least 0');
  if (!Number.isFinite(req.temperature) || req.temperature < 0) throw refuseAudio('temperature must be a number of at least 0');
  if (!Number.isInteger(req.topK) || req.topK < 0) throw refuseAudio('topK must be a whole number of at least 0');
  if (!Number.isInteger(req.seed) || req.seed < 0 || req.seed >= 2 ** 32) throw refuseAudio('seed must be a whole number in [0, 2^32)');
  if (req.maxNewTokens !== undefined && !Number.isInteger(req.maxNewTokens)) throw refuseAudio('maxNewTokens must be a whole number');
  if (req.maxNewTokens === undefined && req.durationSeconds !== undefined && !(Number.isFinite(req.durationSeconds) && req.durationSeconds > 0)) {
    throw refuseAudio('durationSeconds must be a positive number');
  }
  return n;
}
