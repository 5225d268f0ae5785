/**
 * The FLUX.1 pipeline's own costs, without the service:
 * `npm run bench:flux -- [MODEL_DIR ...] [--steps 10] [--size 256] [--rounds 5] [--generations 50] [--provider cpu]`.
 *
 * For the shared flux-tiny fixture (when ../shared/fixtures is there) and each folder given, it
 * prints: ms per transformer step through Kiln's pipeline (steps 2…n of a generation, so prompt
 * encoding and decoding are left out) and ms per bare `session.run` of the same transformer
 * graph on inputs of the same shapes and types, on the same session; their ratio is Kiln's
 * per-step overhead (timestep tensor, Euler step, tensor conversion). Both run from the same
 * random prompt embeddings, T5-length (256 or 512 tokens), so folders without text encoders
 * work too. Rounds alternate between the two (ABBA); medians and best times are reported.
 * Then VAE decode ms per image, and the process's RSS across `--generations` generations
 * (memory must stay flat) and its peak.
 */
import { LATENT_CHANNELS, latentImageIds, latentSide, PACKED_WIDTH } from '../src/pipelines/flux/latents.js';
import { type FluxPipeline, loadFluxPipeline } from '../src/pipelines/flux/pipeline.js';
import { decodeFluxLatents } from '../src/pipelines/flux/vae-decode.js';
import type { GenerateRequest } from '../src/pipelines/pipeline.js';
import { SeededRandom } from '../src/pipelines/random.js';
import { tensorFor } from '../src/pipelines/onnx/tensor-io.js';
import { median, mib, pipelineBenchArgs, RssSampler, rssOverGenerations, timedSteps } from './support/pipeline-bench.js';

const { models, steps, size: sizeArg, rounds, generations, provider, options } = pipelineBenchArgs({
  script: 'bench:flux',
  family: 'FLUX.1',
  fixture: 'flux-tiny',
  stepOf: 'transformer',
  defaultSize: 256,
  defaultGenerations: 50,
});
const size = sizeArg!;
const rss = new RssSampler();
/** Per generation: ms per step spent outside the transformer's session.run. */
const ownWork: number[] = [];

for (const dir of models) {
  const pipeline = await loadFluxPipeline(dir, options);
  const { folder } = pipeline;
  const random = new SeededRandom(4);
  const [length, width, pooled] = [folder.maxSequenceLength, folder.jointAttentionDim ?? 4096, folder.pooledProjectionDim ?? 768];
  const request: GenerateRequest = {
    prompt: '',
    negativePrompt: null,
    steps,
    guidanceScale: folder.defaults.guidanceScale,
    width: size,
    height: size,
    seed: 1,
    numImages: 1,
    embeddings: { prompt: { data: random.normals(length * width), dims: [1, length, width] }, pooled: { data: random.normals(pooled), dims: [1, pooled] } },
  };
  const tokens = (latentSide(size) / 2) ** 2;
  console.log(`\n${dir} (FLUX.1 ${folder.variant}, ${folder.layout}), ${size}×${size} (${tokens} image tokens, ${length} text tokens), ${steps} steps, ${provider}`);

  const bare = bareTransformerLoop(pipeline, request);
  const kiln: number[] = [];
  const plain: number[] = [];
  await kilnStep(pipeline, request);
  await bare(2);
  for (let r = 0; r < rounds; r++) {
    kiln.push(await kilnStep(pipeline, request));
    plain.push(await bare(steps - 1), await bare(steps - 1));
    kiln.push(await kilnStep(pipeline, request));
  }
  const [k, b] = [median(kiln), median(plain)];
  const [kMin, bMin] = [Math.min(...kiln), Math.min(...plain)];
  console.log(`  transformer step through Kiln  ${k.toFixed(3)} ms median, ${kMin.toFixed(3)} ms best`);
  console.log(`  bare session.run               ${b.toFixed(3)} ms median, ${bMin.toFixed(3)} ms best`);
  console.log(`  ratio (Kiln overhead)          ${(k / b).toFixed(3)} median, ${(kMin / bMin).toFixed(3)} best`);
  const own = median(ownWork.splice(0));
  console.log(`  Kiln's own work                ${own.toFixed(3)} ms per step outside session.run (${((100 * own) / k).toFixed(2)}% of a step)`);

  const h = latentSide(size);
  const latents = new SeededRandom(6).normals(LATENT_CHANNELS * h * h);
  await decodeFluxLatents(pipeline.sessions, latents, 1, h, h, folder.vae);
  const vae: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await decodeFluxLatents(pipeline.sessions, latents, 1, h, h, folder.vae);
    vae.push(performance.now() - t0);
  }
  console.log(`  VAE decode                     ${median(vae).toFixed(1)} ms per image`);

  const short = { ...request, steps: Math.min(steps, 4) };
  const memory = await rssOverGenerations(rss, generations, (g) => pipeline.generate({ ...short, seed: g }, { signal: new AbortController().signal, onStep: ({ preview }) => void preview() }));
  console.log(`  RSS over ${generations} generations      ${memory}`);
  await pipeline.release();
}
console.log(`\npeak RSS ${mib(Math.max(rss.peak, process.resourceUsage().maxRSS * 1024))}`);

/** ms per transformer step through the pipeline; its share outside the transformer's session.run goes to ownWork. */
async function kilnStep(pipeline: FluxPipeline, request: GenerateRequest): Promise<number> {
  const { step, own } = await timedSteps(pipeline.sessions.transformer.session, (onStep) => pipeline.generate(request, { signal: new AbortController().signal, onStep }));
  rss.sample();
  ownWork.push(own);
  return step;
}

/** A loop of bare session.run calls on the pipeline's own transformer session, with inputs of the shapes and types Kiln feeds it. */
function bareTransformerLoop(pipeline: FluxPipeline, request: GenerateRequest) {
  const t = pipeline.sessions.transformer;
  const random = new SeededRandom(5);
  const side = latentSide(size) / 2;
  const tokens = side * side;
  const { prompt, pooled } = request.embeddings!;
  const [length, width] = [prompt.dims[1]!, prompt.dims[2]!];
  const ids = (values: Float32Array, rows: number) => tensorFor(t.imgIds, values, t.imgIds.shape.length === 3 ? [1, rows, 3] : [rows, 3]);
  const feeds = {
    [t.hiddenStates.name]: tensorFor(t.hiddenStates, random.normals(tokens * PACKED_WIDTH), [1, tokens, PACKED_WIDTH]),
    [t.encoderHiddenStates.name]: tensorFor(t.encoderHiddenStates, prompt.data, [1, length, width]),
    [t.pooledProjections.name]: tensorFor(t.pooledProjections, pooled!.data, [1, pooled!.data.length]),
    [t.timestep.name]: tensorFor(t.timestep, [0.5], t.timestep.shape.length ? [1] : []),
    [t.imgIds.name]: ids(latentImageIds(side, side), tokens),
    [t.txtIds.name]: tensorFor(t.txtIds, new Float32Array(length * 3), t.txtIds.shape.length === 3 ? [1, length, 3] : [length, 3]),
    ...(t.guidance ? { [t.guidance.name]: tensorFor(t.guidance, [request.guidanceScale], t.guidance.shape.length ? [1] : []) } : {}),
  };
  return async (runs: number): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) {
      const out = await t.session.run(feeds);
      for (const o of Object.values(out)) o.dispose();
    }
    return (performance.now() - t0) / runs;
  };
}
