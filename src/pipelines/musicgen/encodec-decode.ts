import { floatValues, tensorFor } from '../onnx/tensor-io.js';
import type { MusicgenSessions } from './sessions.js';

/**
 * Codes to waveforms with the EnCodec decoder, as transformers' generate hands them to
 * `audio_encoder.decode`: all outputs in one batch, `audio_codes` [1, batch, codebooks,
 * frames]. Stereo models interleave their channels' codebooks, so the even codebooks are
 * decoded as the left channel and the odd ones as the right (two runs, as transformers does).
 * Returns each output's samples, channels interleaved.
 */
export async function decodeCodes(sessions: MusicgenSessions, codes: number[][][], channels: number): Promise<Float32Array[]> {
  const { session, audioCodes, audioValues } = sessions.encodec;
  const batch = codes.length;
  const perChannel = codes[0]!.length / channels;
  const frames = codes[0]![0]!.length;
  const channelAudio: Float32Array[] = [];
  for (let c = 0; c < channels; c++) {
    const values = new Array<number>(batch * perChannel * frames);
    let i = 0;
    for (const output of codes) for (let k = c; k < output.length; k += channels) for (const code of output[k]!) values[i++] = code;
    const out = await session.run({ [audioCodes.name]: tensorFor(audioCodes, values, [1, batch, perChannel, frames]) });
    channelAudio.push(await floatValues(out[audioValues]!));
    for (const value of Object.values(out)) value.dispose();
  }
  const length = channelAudio[0]!.length / batch;
  return Array.from({ length: batch }, (_, b) => {
    if (channels === 1) return channelAudio[0]!.slice(b * length, (b + 1) * length);
    const samples = new Float32Array(length * channels);
    for (let c = 0; c < channels; c++) {
      const source = channelAudio[c]!.subarray(b * length, (b + 1) * length);
      for (let n = 0; n < length; n++) samples[n * channels + c] = source[n]!;
    }
    return samples;
  });
}
