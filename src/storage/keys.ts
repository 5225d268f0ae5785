/**
 * Every storage key Kiln makes, by what it holds: the layout of the store is decided here and
 * nowhere else. Client-supplied names never become keys.
 */

/** All of a job's files; each attempt writes under a folder of its own inside. */
export const jobKey = (jobId: string) => `jobs/${jobId}`;

/** Where one attempt of a job writes: per lease, so a retry never reuses a key. */
export const attemptKey = (jobId: string, lease: number) => `${jobKey(jobId)}/${lease}`;

/** A model's folder (uploads land here too, under the id the model will have). */
export const modelKey = (modelId: string) => `models/${modelId}`;

/** The built-in model's folder: by version and content, so installs of different versions never clash. */
export const builtinModelKey = (version: number, sha256: string) => `models/builtin-v${version}-${sha256.slice(0, 12)}`;

/** The built-in music model's folder, likewise. */
export const builtinMusicModelKey = (version: number, sha256: string) => `models/builtin-music-v${version}-${sha256.slice(0, 12)}`;
/** A dataset's canonical folder (`001.png`, `001.txt`, …, `manifest.json`). */
export const datasetKey = (datasetId: string) => `datasets/${datasetId}`;

/** The files a client sent for a dataset upload, by their place in it, until it is checked. */
export const datasetUploadKey = (datasetId: string) => `dataset-uploads/${datasetId}`;

/**
 * A training's checkpoints, kept across attempts so that a retry on any worker continues from
 * the last one (outside every attempt's folder, which goes when the attempt fails). Each lease
 * writes its own: `<lease>-<step>/…` and `latest-<lease>.json` naming the newest.
 */
export const trainingCheckpointsKey = (jobId: string) => `${jobKey(jobId)}/checkpoints`;
