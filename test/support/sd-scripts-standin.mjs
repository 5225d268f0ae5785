/**
 * A stand-in for kohya-ss/sd-scripts' `train_network.py --flag=value …`, with its real output
 * format: it reads the `--dataset_config` TOML (DreamBooth subsets; captions from
 * `caption_extension`, `.caption` by default, else the class tokens), counts images × repeats
 * into batches and epochs, resumes from `--resume` as sd-scripts does (the step from the
 * state's train_state.json, skipped only with `--skip_until_initial_step`, by its rule: whole
 * epochs first, then the remainder, so an epoch shorter than the skip miscounts), prints
 * "epoch i/n" and the tqdm bar named `steps` over the steps left, moving it before setting the
 * postfix `avr_loss=` (the mean loss of this run), saves `<name>-step<8 digits>.safetensors`
 * and, with `--save_state`, the state folder (train_state.json first, random_states_0.pkl
 * last) every `--save_every_n_steps`, samples as `sample/<name>_<step:06d>_<i:02d>_<time>_<seed>.png`,
 * and `<name>.safetensors` at the end, in kohya's layout with its `ss_*` metadata (built from the
 * captions it read). On SIGINT Python's KeyboardInterrupt ends it with exit code 130.
 * See trainer-standin-common.mjs for the --standin-* options.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import {
  dataHash, drawBar, lossAt, loraTensors, pythonTraceback, safetensorsBytes, sd15LoraModules, sleep, standinOptions, startChild, textEncoderModules, tqdmLine,
} from './trainer-standin-common.mjs';

const { opts, rest } = standinOptions(process.argv.slice(2));
const args = {};
for (const a of rest) {
  const m = /^--([a-z0-9_]+)(?:=(.*))?$/.exec(a);
  if (m) args[m[1]] = m[2] ?? true;
}
const name = args.output_name;
const outputDir = args.output_dir;
const maxSteps = Number(args.max_train_steps);
const rank = Number(args.network_dim);
const alpha = Number(args.network_alpha);
const saveEvery = args.save_every_n_steps ? Number(args.save_every_n_steps) : null;
const sampleEvery = args.sample_every_n_steps ? Number(args.sample_every_n_steps) : null;
if (opts.child) startChild();

const dataset = parseToml(fs.readFileSync(args.dataset_config, 'utf8'));
const general = dataset.general ?? {};
const ds = dataset.datasets[0];
const batchSize = ds.batch_size ?? 1;
const tagFrequency = {};
const dirs = {};
let numTrainImages = 0;
for (const subset of ds.subsets) {
  const ext = subset.caption_extension ?? general.caption_extension ?? '.caption';
  const images = fs.readdirSync(subset.image_dir).filter((f) => /\.(jpe?g|png|webp)$/i.test(f));
  const folder = path.basename(subset.image_dir);
  const tags = (tagFrequency[folder] = {});
  for (const image of images) {
    const captionFile = path.join(subset.image_dir, image.replace(/\.[^.]+$/, ext));
    const caption = fs.existsSync(captionFile) ? fs.readFileSync(captionFile, 'utf8').trim() : (subset.class_tokens ?? '');
    for (const tag of new Set(caption.split(',').map((t) => t.trim()).filter(Boolean))) tags[tag] = (tags[tag] ?? 0) + 1;
  }
  const repeats = subset.num_repeats ?? 1;
  dirs[folder] = { n_repeats: repeats, img_count: images.length };
  numTrainImages += images.length * repeats;
}
const batchesPerEpoch = Math.ceil(numTrainImages / batchSize);
const numEpochs = Math.ceil(maxSteps / batchesPerEpoch);

let initialStep = 0;
if (args.resume) {
  console.log(`INFO     resume training from local state: ${args.resume}`);
  const state = JSON.parse(fs.readFileSync(path.join(args.resume, 'train_state.json'), 'utf8'));
  console.log(`INFO     load train state from ${path.join(args.resume, 'train_state.json')}: ${JSON.stringify(state)}`);
  initialStep = state.current_step;
}
let epochToStart = 0;
let skip = 0;
let globalStep = 0;
const barTotal = args.skip_until_initial_step ? maxSteps - initialStep : maxSteps;
if (initialStep > 0) {
  epochToStart = Math.floor(initialStep / batchesPerEpoch);
  if (args.skip_until_initial_step) {
    skip = initialStep;
    for (let e = 0; e < epochToStart; e++) skip -= batchesPerEpoch;
    globalStep = skip;
  }
}

console.log('running training / 学習開始');
console.log(`  num train images * repeats / 学習画像の数×繰り返し回数: ${numTrainImages}`);
console.log(`  num batches per epoch / 1epochのバッチ数: ${batchesPerEpoch}`);
console.log(`  num epochs / epoch数: ${numEpochs}`);
console.log(`  total optimization steps / 学習ステップ数: ${maxSteps}`);

process.on('SIGINT', () => {
  if (opts.ignoreSigint) return;
  pythonTraceback('train_network.py', 1913, 'trainer.train(args)', 'KeyboardInterrupt');
  process.exit(130);
});

const started = Date.now();
const elapsed = () => (Date.now() - started) / 1000;
const losses = [];
let n = 0;
let postfix = '';
drawBar(tqdmLine('steps', 0, barTotal, 0, ''));
training: for (let epoch = epochToStart; epoch < numEpochs; epoch++) {
  process.stderr.write(`\nepoch ${epoch + 1}/${numEpochs}\n`);
  for (let step = 0; step < batchesPerEpoch; step++) {
    if (skip > 0) {
      skip--;
      continue;
    }
    await sleep(opts.stepMs);
    if (opts.crashAt === globalStep) {
      pythonTraceback('train_network.py', 1913, 'trainer.train(args)', 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB.');
      process.exit(1);
    }
    globalStep++;
    n++;
    drawBar(tqdmLine('steps', n, barTotal, elapsed(), postfix));
    if (sampleEvery && globalStep % sampleEvery === 0) await sample(globalStep);
    if (saveEvery && globalStep % saveEvery === 0) {
      console.log(`\nsaving checkpoint: ${path.join(outputDir, `${name}-step${String(globalStep).padStart(8, '0')}.safetensors`)}`);
      save(path.join(outputDir, `${name}-step${String(globalStep).padStart(8, '0')}.safetensors`), globalStep, epoch + 1);
      if (args.save_state) saveState(globalStep, epoch + 1);
    }
    losses.push(lossAt(globalStep - 1));
    postfix = `avr_loss=${formatNum(losses.reduce((a, b) => a + b, 0) / losses.length)}`;
    drawBar(tqdmLine('steps', n, barTotal, elapsed(), postfix));
    if (globalStep >= maxSteps) break training;
  }
}
process.stderr.write('\n');
save(path.join(outputDir, `${name}.safetensors`), globalStep, numEpochs);
console.log('model saved.');
process.exit(opts.exitCode);

function save(file, steps, epoch) {
  fs.mkdirSync(outputDir, { recursive: true });
  const modules = [...sd15LoraModules(), ...(opts.keys === 'te' ? textEncoderModules() : [])];
  const pyFloat = (v) => (Number.isInteger(v) ? `${v}.0` : String(v));
  const meta = {
    ss_session_id: '1234567890',
    ss_training_started_at: String(started / 1000),
    ss_output_name: name,
    ss_learning_rate: String(Number(args.learning_rate)),
    ss_num_train_images: String(numTrainImages),
    ss_num_batches_per_epoch: String(batchesPerEpoch),
    ss_num_epochs: String(numEpochs),
    ss_max_train_steps: String(maxSteps),
    ss_lr_scheduler: args.lr_scheduler,
    ss_network_module: args.network_module,
    ss_network_dim: String(rank),
    ss_network_alpha: pyFloat(alpha),
    ss_mixed_precision: args.mixed_precision,
    ss_v2: args.v2 ? 'True' : 'False',
    ss_base_model_version: args.v2 ? 'sd_v2' : 'sd_v1',
    ss_seed: String(args.seed),
    ss_optimizer: `torch.optim.adamw.AdamW`,
    ss_sd_model_name: path.basename(args.pretrained_model_name_or_path),
    ss_resolution: `(${ds.resolution}, ${ds.resolution})`,
    ss_batch_size_per_device: String(batchSize),
    ss_tag_frequency: JSON.stringify(tagFrequency),
    ss_dataset_dirs: JSON.stringify(dirs),
    ss_training_finished_at: String(Date.now() / 1000),
    ss_steps: String(steps),
    ss_epoch: String(epoch),
    'modelspec.sai_model_spec': '1.0.1',
    'modelspec.architecture': args.v2 ? 'stable-diffusion-v2-512/lora' : 'stable-diffusion-v1/lora',
    'modelspec.implementation': 'diffusers',
    'modelspec.title': name,
    'modelspec.resolution': `${ds.resolution}x${ds.resolution}`,
  };
  const tensors = loraTensors(modules, rank, alpha, steps + 7);
  const first = safetensorsBytes(tensors, meta);
  fs.writeFileSync(file, safetensorsBytes(tensors, { ...meta, sshs_model_hash: dataHash(first), sshs_legacy_hash: dataHash(first).slice(0, 8) }));
}

function saveState(step, epoch) {
  console.log(`INFO     saving state at step ${step}`);
  const dir = path.join(outputDir, `${name}-step${String(step).padStart(8, '0')}-state`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'train_state.json'), JSON.stringify({ current_epoch: epoch, current_step: step }));
  for (const f of ['model.safetensors', 'optimizer.bin', 'scheduler.bin']) fs.writeFileSync(path.join(dir, f), `${f} at ${step}`);
  fs.writeFileSync(path.join(dir, 'random_states_0.pkl'), `rng at ${step}`);
}

async function sample(step) {
  const dir = path.join(outputDir, 'sample');
  fs.mkdirSync(dir, { recursive: true });
  const lines = fs.readFileSync(args.sample_prompts, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  const ts = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  for (const [i, line] of lines.entries()) {
    const option = (o) => new RegExp(` --${o} (\\S+)`).exec(line)?.[1];
    const width = Number(option('w') ?? 512);
    const height = Number(option('h') ?? 512);
    const seed = option('d');
    const shade = (step * 53 + i * 71) % 256;
    const png = await sharp({ create: { width, height, channels: 3, background: { r: 128, g: shade, b: 255 - shade } } }).png().toBuffer();
    fs.writeFileSync(path.join(dir, `${name}_${String(step).padStart(6, '0')}_${String(i).padStart(2, '0')}_${ts}${seed ? `_${seed}` : ''}.png`), png);
  }
}

/** tqdm's format_num: 3 significant digits, the shorter of fixed and exponent form. */
function formatNum(v) {
  const f = Number(v.toPrecision(3)).toString();
  const e = v.toExponential(2).replace(/\.?0+e/, 'e').replace(/e([+-])(\d)$/, 'e$10$2');
  return f.length <= e.length ? f : e;
}

/** Enough of TOML for a dataset config: tables, arrays of tables, key = JSON-style value. */
function parseToml(text) {
  const root = {};
  let current = root;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let m;
    if ((m = /^\[\[(.+)\]\]$/.exec(line))) {
      const parts = m[1].split('.');
      let table = root;
      for (const part of parts.slice(0, -1)) table = Array.isArray(table[part]) ? table[part].at(-1) : (table[part] ??= {});
      current = {};
      (table[parts.at(-1)] ??= []).push(current);
    } else if ((m = /^\[(.+)\]$/.exec(line))) {
      current = root[m[1]] ??= {};
    } else if ((m = /^([A-Za-z0-9_]+)\s*=\s*(.+)$/.exec(line))) {
      current[m[1]] = JSON.parse(m[2]);
    }
  }
  return root;
}
