/**
 * The Stable Diffusion pipeline's own costs, without the service:
 * `npm run bench:pipeline -- [MODEL_DIR ...] [--steps 10] [--size S] [--rounds 5] [--generations 50] [--provider cpu]`.
 *
 * For the shared sd-tiny fixture (when ../shared/fixtures is there) and each folder given, it
 * prints: ms per UNet step through Kiln's pipeline (steps 2…n of a generation, so text encoding
 * and decoding are left out) and ms per bare `session.run` of the same UNet graph, on inputs of
 * the same shapes and types, on the same session; their ratio is Kiln's per-step overhead
 * (scaling, guidance, scheduler, tensor conversion). Rounds alternate between the two; medians
 * and best times are reported (the best are the least disturbed by other load). Then VAE decode ms per image, PNG encode ms (sharp), and the process's
 * RSS across `--generations` generations (memory must stay flat) and its peak.
 */
import sharp from 'sharp';
import type { GenerateRequest } from '../src/pipelines/pipeline.js';
import { SeededRandom } from '../src/pipelines/random.js';
import { CLIP_MAX_LENGTH } from '../src/pipelines/clip-tokenizer.js';
import { loadStableDiffusionPipeline, type StableDiffusionPipeline } from '../src/pipelines/stable-diffusion/pipeline.js';
import { tensorFor } from '../src/pipelines/onnx/tensor-io.js';
import { decodeLatents } from '../src/pipelines/stable-diffusion/vae-decode.js';
import { median, mib, pipelineBenchArgs, RssSampler, rssOverGenerations, timedSteps } from './support/pipeline-bench.js';

const { models, steps, size: sizeArg, rounds, generations, provider, options } = pipelineBenchArgs({
  script: 'bench:pipeline',
  family: 'Stable Diffusion',
  fixture: 'sd-tiny',
  stepOf: 'denoising',
  defaultGenerations: 50,
});
const rss = new RssSampler();
/** Per generation: ms per step spent outside the UNet's session.run. */
const ownWork: number[] = [];

for (const dir of models) {
  const pipeline = await loadStableDiffusionPipeline(dir, options);
  const d = pipeline.folder.defaults;
  const size = sizeArg ?? d.width;
  const guidanceScale = d.guidanceScale > 1 ? d.guidanceScale : 7.5;
  const request: GenerateRequest = { prompt: 'a lighthouse on a cliff at dusk', negativePrompt: 'blurry', steps, guidanceScale, width: size, height: size, seed: 1, numImages: 1, scheduler: 'euler' };
  console.log(`\n${dir} (${pipeline.folder.layout}), ${size}×${size}, ${steps} Euler steps, guidance ${guidanceScale} (UNet batch 2), ${provider}`);

  const bare = bareUnetLoop(pipeline, size);
  const kiln: number[] = [];
  const plain: number[] = [];
  await kilnStep(pipeline, request);
  await bare(2);
  // ABBA order, so that drift in the machine's load falls on both alike.
  for (let r = 0; r < rounds; r++) {
    kiln.push(await kilnStep(pipeline, request));
    plain.push(await bare(steps - 1), await bare(steps - 1));
    kiln.push(await kilnStep(pipeline, request));
  }
  const [k, b] = [median(kiln), median(plain)];
  const [kMin, bMin] = [Math.min(...kiln), Math.min(...plain)];
  console.log(`  UNet step through Kiln   ${k.toFixed(2)} ms median, ${kMin.toFixed(2)} ms best`);
  console.log(`  bare session.run         ${b.toFixed(2)} ms median, ${bMin.toFixed(2)} ms best`);
  console.log(`  ratio (Kiln overhead)    ${(k / b).toFixed(3)} median, ${(kMin / bMin).toFixed(3)} best`);
  const own = median(ownWork.splice(0));
  console.log(`  Kiln's own work          ${own.toFixed(3)} ms per step outside session.run (${((100 * own) / k).toFixed(2)}% of a step)`);

  const { vaeMs, pngMs } = await decodeAndEncode(pipeline, size);
  console.log(`  VAE decode               ${vaeMs.toFixed(1)} ms per image`);
  console.log(`  PNG encode (sharp)       ${pngMs.toFixed(1)} ms`);

  const short = { ...request, steps: Math.min(steps, 4) };
  const memory = await rssOverGenerations(rss, generations, (g) => pipeline.generate({ ...short, seed: g }, { signal: new AbortController().signal, onStep: ({ preview }) => void preview() }));
  console.log(`  RSS over ${generations} generations  ${memory}`);
  await pipeline.release();
}
console.log(`\npeak RSS ${mib(Math.max(rss.peak, process.resourceUsage().maxRSS * 1024))}`);

/** ms per UNet step through the pipeline; its share outside the UNet's session.run goes to ownWork. */
async function kilnStep(pipeline: StableDiffusionPipeline, request: GenerateRequest): Promise<number> {
  const { step, own } = await timedSteps(pipeline.sessions.unet, (onStep) => pipeline.generate(request, { signal: new AbortController().signal, onStep }));
  rss.sample();
  ownWork.push(own);
  return step;
}

/**
 * A loop of bare session.run calls on the pipeline's own UNet session, with inputs of the shapes
 * and types Kiln feeds it. (The same session, because a second one's idle spinning threads
 * would slow whichever runs next on a machine with few cores.)
 */
function bareUnetLoop(pipeline: StableDiffusionPipeline, size: number) {
  const { io, unet } = pipeline.sessions;
  const random = new SeededRandom(5);
  const [h, w] = [size / 8, size / 8];
  const width = io.encoderHiddenStates.shape[2];
  const hidden = typeof width === 'number' ? width : 768;
  const feeds = {
    [io.sample.name]: tensorFor(io.sample, random.normals(2 * 4 * h * w), [2, 4, h, w]),
    [io.timestep.name]: tensorFor(io.timestep, [500], io.timestep.shape.length ? [1] : []),
    [io.encoderHiddenStates.name]: tensorFor(io.encoderHiddenStates, random.normals(2 * CLIP_MAX_LENGTH * hidden), [2, CLIP_MAX_LENGTH, hidden]),
  };
  return async (runs: number): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) {
      const out = await unet.run(feeds);
      for (const t of Object.values(out)) t.dispose();
    }
    return (performance.now() - t0) / runs;
  };
}

async function decodeAndEncode(pipeline: StableDiffusionPipeline, size: number): Promise<{ vaeMs: number; pngMs: number }> {
  const decode = (latents: Float32Array) => decodeLatents(pipeline.sessions, latents, 1, size / 8, size / 8, pipeline.folder.vaeScalingFactor);
  const latents = new SeededRandom(6).normals(4 * (size / 8) ** 2, 0.18215);
  await decode(latents);
  const vae: number[] = [];
  const png: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    const [pixels] = await decode(latents);
    vae.push(performance.now() - t0);
    const rgb = Uint8Array.from(pixels!, (v) => Math.round(v * 255));
    t0 = performance.now();
    await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
    png.push(performance.now() - t0);
  }
  return { vaeMs: median(vae), pngMs: median(png) };
}
