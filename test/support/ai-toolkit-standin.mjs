/**
 * A stand-in for ostris/ai-toolkit's `python run.py <config.yaml>`, with its real output
 * format: it reads the job config (an `extension` job with one `sd_trainer` process), resumes
 * from the newest `<name>*.safetensors` in `<training_folder>/<name>/` as ai-toolkit does (the
 * step from its `training_info` metadata), prints the progress bar named after the job with
 * `lr: … loss: …` set before the bar moves, logs every step's loss in `loss_log.db` with
 * ai-toolkit's schema (steps from 0), saves `<name>_<step:09d>.safetensors` every `save_every`
 * steps (never on the step it started at) and `<name>.safetensors` at the end in kohya's layout
 * with diffusers module names, with `training_info`, `software` and `ss_*` metadata, writes
 * samples as `samples/<ms>__<step:09d>_<i>.jpg`, and on SIGINT prints "Job stopped" and exits 0.
 * See trainer-standin-common.mjs for the --standin-* options.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import sharp from 'sharp';
import {
  dataHash, drawBar, lossAt, loraTensors, pythonExp, pythonTraceback, safetensorsBytes, sd15LoraModules, sleep, standinOptions, startChild, textEncoderModules, tqdmLine,
} from './trainer-standin-common.mjs';

const { opts, rest } = standinOptions(process.argv.slice(2));
const configFile = rest.at(-1);
const raw = fs.readFileSync(configFile, 'utf8');
const config = parseYaml(raw);
const name = config.config.name;
const p = config.config.process[0];
const saveRoot = path.join(p.training_folder, name);
fs.mkdirSync(saveRoot, { recursive: true });
fs.writeFileSync(path.join(saveRoot, 'config.yaml'), raw);
const steps = p.train.steps;
const rank = p.network.linear;
const alpha = p.network.linear_alpha;
const saveEvery = p.save.save_every;
const sampleEvery = p.train.disable_sampling ? 0 : p.sample.sample_every;
const logEvery = p.logging?.log_every ?? 100;
const baseVersion = { sd1: 'sd_1.5', sd2: 'sd_2.1', sdxl: 'sdxl_1.0' }[p.model.arch ?? 'sd1'];

console.log('Running 1 job');
console.log('\n#############################################\n# Running job: ' + name + '\n#############################################\n');
if (opts.child) startChild();

const images = fs.readdirSync(p.datasets[0].folder_path).filter((f) => /\.(jpe?g|png|webp)$/i.test(f));
if (!images.length) {
  pythonTraceback('run.py', 120, 'job.run()', `Exception: No images found in ${p.datasets[0].folder_path}`);
  process.exit(1);
}
console.log(`Dataset: ${p.datasets[0].folder_path}\n  -  Found ${images.length} images`);

let stepNum = 0;
const saves = fs.readdirSync(saveRoot).filter((f) => f.startsWith(name) && f.endsWith('.safetensors')).map((f) => path.join(saveRoot, f));
const latest = saves.sort((a, b) => fs.statSync(a).ctimeMs - fs.statSync(b).ctimeMs).at(-1);
if (latest) {
  console.log(`#### IMPORTANT RESUMING FROM ${latest} ####`);
  const bytes = fs.readFileSync(latest);
  const meta = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString()).__metadata__;
  stepNum = JSON.parse(meta.training_info).step;
  console.log(`Found step ${stepNum} in metadata, starting from there`);
}
const startStep = stepNum;

const db = p.logging?.use_ui_logger ? openLossLog(path.join(saveRoot, 'loss_log.db'), startStep) : null;
let stopping = false;
process.on('SIGINT', () => {
  if (opts.ignoreSigint) return;
  stopping = true;
});

const started = Date.now();
const elapsed = () => (Date.now() - started) / 1000;
let n = startStep;
drawBar(tqdmLine(name, n, steps, 0, ''));
for (let step = startStep; step < steps; step++) {
  stepNum = step;
  const isSaveStep = saveEvery && stepNum % saveEvery === 0;
  const isSampleStep = sampleEvery && stepNum % sampleEvery === 0;
  await sleep(opts.stepMs);
  if (stopping) stop();
  if (opts.crashAt === step) {
    process.stderr.write('\n');
    console.log('Error running job: CUDA error: an illegal memory access was encountered');
    pythonTraceback('run.py', 120, 'job.run()', 'RuntimeError: CUDA error: an illegal memory access was encountered');
    process.exit(1);
  }
  const loss = lossAt(step);
  const lr = p.train.lr;
  // set_postfix_str refreshes the bar before it moves: this line still shows the old count.
  const postfix = `lr: ${pythonExp(lr, 1)} loss: ${pythonExp(loss, 3)}`;
  drawBar(tqdmLine(name, n, steps, elapsed(), postfix));
  if (stepNum !== startStep) {
    if (isSaveStep) {
      console.log(`\nSaving at step ${stepNum}`);
      save(path.join(saveRoot, `${name}_${String(stepNum).padStart(9, '0')}.safetensors`), stepNum);
      fs.writeFileSync(path.join(saveRoot, 'optimizer.pt'), `optimizer state at ${stepNum}`);
    }
    if (isSampleStep) await sample(stepNum);
    if (logEvery && stepNum % logEvery === 0) db?.commit(stepNum, { learning_rate: lr, 'loss/loss': loss });
  }
  n = step + 1;
  drawBar(tqdmLine(name, n, steps, elapsed(), postfix));
  stepNum = step + 1;
}
process.stderr.write('\n');
save(path.join(saveRoot, `${name}.safetensors`), stepNum);
if (sampleEvery) await sample(stepNum);
db?.close();
console.log('\n========================================\nResult:\n - 1 completed job\n========================================');
process.exit(opts.exitCode);

function stop() {
  db?.close();
  console.log('\n========================================\nJob stopped\n========================================');
  process.exit(0);
}

function save(file, step) {
  const modules = [...sd15LoraModules(), ...(opts.keys === 'te' ? textEncoderModules() : [])];
  const meta = {
    name,
    version: '1.0',
    training_info: JSON.stringify({ step, epoch: 0 }),
    ss_base_model_version: baseVersion,
    ss_output_name: name,
    ss_tag_frequency: JSON.stringify({ [`1_${p.trigger_word}`]: { [p.trigger_word]: 1 } }),
    software: JSON.stringify({ name: 'ai-toolkit', repo: 'https://github.com/ostris/ai-toolkit', version: '0.7.0' }),
    format: 'pt',
  };
  let bytes = safetensorsBytes(loraTensors(modules, rank, alpha, step + 1), meta);
  bytes = safetensorsBytes(loraTensors(modules, rank, alpha, step + 1), { ...meta, sshs_model_hash: dataHash(bytes), sshs_legacy_hash: dataHash(bytes).slice(0, 8) });
  fs.writeFileSync(file, bytes);
}

async function sample(step) {
  const dir = path.join(saveRoot, 'samples');
  fs.mkdirSync(dir, { recursive: true });
  const time = Date.now();
  for (const [i, prompt] of p.sample.prompts.entries()) {
    const shade = (step * 37 + i * 91 + prompt.length) % 256;
    const jpg = await sharp({ create: { width: p.sample.width, height: p.sample.height, channels: 3, background: { r: shade, g: 255 - shade, b: 128 } } }).jpeg().toBuffer();
    fs.writeFileSync(path.join(dir, `${time}__${String(step).padStart(9, '0')}_${i}.jpg`), jpg);
  }
}

/** ai-toolkit's UILogger: WAL, the steps / metric_keys / metrics tables, and on the first commit of a run the rows after where it resumed removed. */
function openLossLog(file, resumedAt) {
  const con = new DatabaseSync(file);
  con.exec('PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;');
  con.exec(`CREATE TABLE IF NOT EXISTS steps (step INTEGER PRIMARY KEY, wall_time REAL NOT NULL);
    CREATE TABLE IF NOT EXISTS metric_keys (key TEXT PRIMARY KEY, first_seen_step INTEGER, last_seen_step INTEGER);
    CREATE TABLE IF NOT EXISTS metrics (step INTEGER NOT NULL, key TEXT NOT NULL, value_real REAL, value_text TEXT, PRIMARY KEY (step, key), FOREIGN KEY (step) REFERENCES steps(step) ON DELETE CASCADE);
    CREATE INDEX IF NOT EXISTS idx_metrics_key_step ON metrics (key, step);`);
  let first = true;
  return {
    commit(step, values) {
      if (first) {
        con.prepare('DELETE FROM steps WHERE step > ?').run(resumedAt);
        first = false;
      }
      con.prepare('INSERT INTO steps(step, wall_time) VALUES(?, ?) ON CONFLICT(step) DO UPDATE SET wall_time=excluded.wall_time').run(step, Date.now() / 1000);
      for (const [key, value] of Object.entries(values)) {
        con.prepare('INSERT INTO metric_keys(key, first_seen_step, last_seen_step) VALUES(?, ?, ?) ON CONFLICT(key) DO UPDATE SET last_seen_step=MAX(last_seen_step, excluded.last_seen_step)').run(key, step, step);
        con.prepare('INSERT INTO metrics(step, key, value_real, value_text) VALUES(?, ?, ?, NULL) ON CONFLICT(step, key) DO UPDATE SET value_real=excluded.value_real').run(step, key, value);
      }
    },
    close: () => con.close(),
  };
}

/** Enough of YAML for a job config: block maps and lists, JSON-style scalars. */
function parseYaml(text) {
  const lines = text
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    .map((l) => ({ indent: l.length - l.trimStart().length, text: l.trim() }));
  let i = 0;
  const scalar = (s) => {
    try {
      return JSON.parse(s);
    } catch {
      return s;
    }
  };
  const entry = (s) => /^("(?:[^"\\]|\\.)*"|[A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(s);
  const isScalar = (s) => {
    try {
      JSON.parse(s);
      return true;
    } catch {
      return !entry(s);
    }
  };
  const block = (indent) => (lines[i].text.startsWith('- ') ? list(indent) : map(indent));
  function map(indent) {
    const out = {};
    while (i < lines.length && lines[i].indent === indent && !lines[i].text.startsWith('- ')) {
      const m = entry(lines[i].text);
      const key = scalar(m[1]);
      i++;
      out[key] = m[2] === undefined ? block(lines[i].indent) : scalar(m[2]);
    }
    return out;
  }
  function list(indent) {
    const out = [];
    while (i < lines.length && lines[i].indent === indent && lines[i].text.startsWith('- ')) {
      const item = lines[i].text.slice(2);
      if (isScalar(item)) {
        out.push(scalar(item));
        i++;
      } else {
        lines[i] = { indent: indent + 2, text: item };
        out.push(map(indent + 2));
      }
    }
    return out;
  }
  return block(0);
}
