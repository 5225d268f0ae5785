import crypto from 'node:crypto';
import type { NewOutput } from '../../jobs/kind.js';
import { encodeWav } from '../../media/wav.js';
import type { Storage } from '../../storage/storage.js';
import type { AudioParams } from './params.js';
import type { RunAudio } from './runner-task.js';

const SOFTWARE = 'Kiln';

/**
 * Encodes each piece as a 16-bit PCM WAV at the model's rate, with the prompt, its seed and the
 * model in the INFO chunk, and stores it under the attempt's folder. The same samples and
 * parameters always give the same bytes.
 */
export async function saveAudio(storage: Storage, prefix: string, params: AudioParams, modelName: string, outputs: RunAudio[]): Promise<NewOutput[]> {
  return Promise.all(
    outputs.map(async (audio, index) => {
      const wav = encodeWav(audio.samples, {
        sampleRate: audio.sampleRate,
        channels: audio.channels,
        metadata: { prompt: params.prompt, seed: audio.seed, model: modelName, software: SOFTWARE },
      });
      const storageKey = `${prefix}/${index}.wav`;
      await storage.put(storageKey, wav, 'audio/wav');
      return {
        index,
        mediaType: 'audio' as const,
        storageKey,
        mimeType: 'audio/wav',
        bytes: wav.length,
        sha256: crypto.createHash('sha256').update(wav).digest('hex'),
        metadata: {
          durationSeconds: audio.samples.length / audio.channels / audio.sampleRate,
          sampleRate: audio.sampleRate,
          channels: audio.channels,
          seed: audio.seed,
        },
      };
    }),
  );
}
