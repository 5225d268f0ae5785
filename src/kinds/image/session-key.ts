/**
 * The key a loaded image model is kept under in a runner's session cache: each (model, LoRA,
 * weight) has its own session, built from the base weights, so adapters never stack. A LoRA at
 * weight 0 changes nothing: the plain model's session serves.
 */
export const imageSessionKey = (modelSha256: string, lora?: { sha256: string; weight: number } | null) =>
  lora && lora.weight ? `${modelSha256}+${lora.sha256}@${lora.weight}` : modelSha256;
