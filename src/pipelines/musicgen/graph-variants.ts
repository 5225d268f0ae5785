/**
 * The precisions a MusicGen export ships its graphs in, named by the suffix before `.onnx`, as
 * Hugging Face's exports name them (Optimum writes `*_quantized.onnx` for dynamic 8-bit
 * quantization; transformers.js adds `_fp16`, `_int8`, `_uint8`, `_q4`, `_q4f16`, `_bnb4`).
 *
 * The rule: each graph (text encoder, decoder, EnCodec decoder) is chosen on its own. With no
 * variant asked for, it is the first of VARIANT_ORDER present, so fp32 wins wherever it exists
 * (the precision transformers runs, and the one the reference checks hold to); a folder that
 * ships only some precisions runs what it has. A variant asked for is tried first for every
 * graph, and a graph that does not exist in it falls back to the same order (EnCodec decoders
 * are often shipped in fp32 only, since quantizing them degrades the audio most).
 */
export const VARIANT_ORDER = ['fp32', 'fp16', 'quantized', 'int8', 'uint8', 'q4f16', 'q4', 'bnb4'] as const;
export type GraphVariant = (typeof VARIANT_ORDER)[number];

export const isGraphVariant = (value: string): value is GraphVariant => (VARIANT_ORDER as readonly string[]).includes(value);

export const variantFile = (stem: string, variant: GraphVariant) => `${stem}${variant === 'fp32' ? '' : `_${variant}`}.onnx`;

/** The order one graph's variants are tried in. */
export function variantPreference(asked: GraphVariant | undefined): GraphVariant[] {
  return asked ? [asked, ...VARIANT_ORDER.filter((v) => v !== asked)] : [...VARIANT_ORDER];
}
