/**
 * The key a loaded music model is kept under in a runner's session cache, and from which its
 * jobs' affinity is derived: one per model, apart from image models' keys.
 */
export const audioSessionKey = (modelSha256: string) => `audio:${modelSha256}`;
