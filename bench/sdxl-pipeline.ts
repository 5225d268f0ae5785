/**
 * The SDXL pipeline's own costs, without the service:
 * `npm run bench:sdxl -- [MODEL_DIR ...] [--steps 10] [--size S] [--rounds 5] [--generations 20] [--provider cpu]`.
 *
 * For the shared sdxl-tiny fixture (when ../shared/fixtures is there) and each folder given, it
 * prints ms per UNet step through Kiln's pipeline (steps 2…n of a generation under guidance,
 * so the UNet runs both halves in one batch, and prompt encoding and decoding are left out)
 * against ms per bare `session.run` of the same UNet session replaying the very inputs Kiln fed
 * it in those steps (sample, timestep, encoder_hidden_states, text_embeds, time_ids); their
 * ratio is Kiln's per-step overhead (input scaling, guidance, scheduler, tensor conversion). Rounds alternate
 * between the two (ABBA), medians and best times are reported. Then the time Kiln spends per
 * step outside session.run, VAE decode ms per image, and RSS across `--generations`
 * generations (it must stay flat). Folders without text encoders get random prompt embeddings.
 */
import type * as ort from 'onnxruntime-node';
import type { GenerateRequest } from '../src/pipelines/pipeline.js';
import { SeededRandom } from '../src/pipelines/random.js';
import { decodeLatents } from '../src/pipelines/stable-diffusion/vae-decode.js';
import { loadStableDiffusionXLPipeline, type StableDiffusionXLPipeline } from '../src/pipelines/stable-diffusion-xl/pipeline.js';
import { median, mib, pipelineBenchArgs, RssSampler, rssOverGenerations, timedSteps } from './support/pipeline-bench.js';

const { models, steps, size: sizeArg, rounds, generations, provider, options } = pipelineBenchArgs({
  script: 'bench:sdxl',
  family: 'SDXL',
  fixture: 'sdxl-tiny',
  stepOf: 'denoising',
  defaultGenerations: 20,
});
const never = new AbortController().signal;
const TOKENS = 77;

const rss = new RssSampler();
for (const dir of models) {
  const pipeline = await loadStableDiffusionXLPipeline(dir, options);
  const d = pipeline.folder.defaults;
  const size = sizeArg ?? d.width;
  const request = requestFor(pipeline, size);
  console.log(`\n${dir}, ${size}×${size}, ${steps} Euler steps, guidance ${request.guidanceScale} (UNet batch 2), ${provider}`);

  const kiln: number[] = [];
  const plain: number[] = [];
  const own: number[] = [];
  const fed: Record<string, ort.Tensor>[] = [];
  await kilnStep(pipeline, request, [], fed);
  const bare = bareUnetLoop(pipeline, fed.slice(1));
  await bare();
  // ABBA order, so that drift in the machine's load falls on both alike.
  for (let r = 0; r < rounds; r++) {
    kiln.push(await kilnStep(pipeline, request, own));
    plain.push(await bare(), await bare());
    kiln.push(await kilnStep(pipeline, request, own));
  }
  const [k, b] = [median(kiln), median(plain)];
  const [kMin, bMin] = [Math.min(...kiln), Math.min(...plain)];
  console.log(`  UNet step through Kiln   ${k.toFixed(2)} ms median, ${kMin.toFixed(2)} ms best`);
  console.log(`  bare session.run         ${b.toFixed(2)} ms median, ${bMin.toFixed(2)} ms best`);
  console.log(`  ratio (Kiln overhead)    ${(k / b).toFixed(3)} median, ${(kMin / bMin).toFixed(3)} best`);
  const outside = median(own);
  console.log(`  Kiln's own work          ${outside.toFixed(3)} ms per step outside session.run (${((100 * outside) / k).toFixed(2)}% of a step)`);

  const latents = new SeededRandom(6).normals(4 * (size / 8) ** 2);
  await decodeLatents(pipeline.sessions, latents, 1, size / 8, size / 8, pipeline.folder.vae.scalingFactor);
  const vae: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await decodeLatents(pipeline.sessions, latents, 1, size / 8, size / 8, pipeline.folder.vae.scalingFactor);
    vae.push(performance.now() - t0);
  }
  console.log(`  VAE decode               ${median(vae).toFixed(1)} ms per image${pipeline.sessions.vaeUpcast ? ' (upcast to float32)' : ''}`);

  const memory = await rssOverGenerations(rss, generations, (g) => pipeline.generate({ ...request, steps: Math.min(steps, 4), seed: g }, { signal: never, onStep: ({ preview }) => void preview() }));
  console.log(`  RSS over ${generations} generations  ${memory}`);
  await pipeline.release();
}
console.log(`\npeak RSS ${mib(Math.max(rss.peak, process.resourceUsage().maxRSS * 1024))}`);

/** A guided request; prompts as random embeddings where the folder has no text encoders. */
function requestFor(pipeline: StableDiffusionXLPipeline, size: number): GenerateRequest {
  const base: GenerateRequest = { prompt: 'a lighthouse on a cliff at dusk', negativePrompt: 'blurry', steps, guidanceScale: 5, width: size, height: size, seed: 1, numImages: 1, scheduler: 'euler' };
  if (pipeline.folder.textEncoders) return base;
  const random = new SeededRandom(4);
  const width = pipeline.embeddingWidth ?? 2048;
  const pooled = fixedDim(pipeline.sessions.io.textEmbeds.shape[1]) ?? pipeline.folder.unet.pooledDim ?? 1280;
  const tensor = (dims: number[]) => ({ data: random.normals(dims.reduce((a, b) => a * b, 1)), dims });
  return {
    ...base,
    embeddings: { prompt: tensor([1, TOKENS, width]), pooled: tensor([1, pooled]), negative: tensor([1, TOKENS, width]), negativePooled: tensor([1, pooled]) },
  };
}

function fixedDim(d: number | string | undefined): number | null {
  return typeof d === 'number' && d > 0 ? d : null;
}

/** ms per UNet step through the pipeline; its share outside the UNet's session.run goes to `own`, the UNet's feeds to `fed`. */
async function kilnStep(pipeline: StableDiffusionXLPipeline, request: GenerateRequest, own: number[], fed: Record<string, ort.Tensor>[] = []): Promise<number> {
  const timed = await timedSteps(pipeline.sessions.unet, (onStep) => pipeline.generate(request, { signal: never, onStep }), fed);
  own.push(timed.own);
  return timed.step;
}

/** Bare session.run calls on the pipeline's own UNet session, replaying `feeds` in order; ms per run. */
function bareUnetLoop(pipeline: StableDiffusionXLPipeline, feeds: Record<string, ort.Tensor>[]) {
  const { unet } = pipeline.sessions;
  return async (): Promise<number> => {
    const t0 = performance.now();
    for (const f of feeds) {
      const out = await unet.run(f);
      for (const t of Object.values(out)) t.dispose();
    }
    return (performance.now() - t0) / feeds.length;
  };
}
