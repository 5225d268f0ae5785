import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const scripts: Record<string, string> = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts;

/** Every npm script that runs one of Kiln's command lines (src/cli, bench, scripts), with node's arguments. */
const COMMAND_LINES = Object.entries(scripts)
  .map(([name, command]) => ({ name, args: command.split(/\s+/) }))
  .filter(({ args }) => args[0] === 'node' && /^(src\/cli|bench|scripts)\/[^/]+\.ts$/.test(args.at(-1)!))
  .map(({ name, args }) => ({ name, nodeArgs: args.slice(1) }));

async function run(nodeArgs: string[], args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...nodeArgs, ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe.concurrent('every command line', () => {
  it('is found in package.json: the CLIs, the benchmarks and the scripts', () => {
    expect(COMMAND_LINES.map((c) => c.name)).toEqual(expect.arrayContaining(['generate', 'model:import', 'lora:builtin', 'bench:e2e', 'bench:queue', 'bench:training']));
  });

  for (const { name, nodeArgs } of COMMAND_LINES) {
    it(`npm run ${name} -- --help prints its usage and exits 0, doing nothing else`, async () => {
      const help = await run(nodeArgs, ['--help']);
      expect(help.code, help.stderr).toBe(0);
      expect(help.stdout).toMatch(/^usage: /);
      expect(help.stdout).toContain(name);
    });

    it(`npm run ${name} with an unknown option prints what is wrong and the usage, and exits 2`, async () => {
      const bad = await run(nodeArgs, ['--no-such-option']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^Unknown option '--no-such-option'[\s\S]*\nusage: /);
      expect(bad.stdout).toBe('');
    });
  }

  it('documents --url where a command line talks to a running Kiln', async () => {
    for (const name of ['model:import', 'bench:e2e']) {
      const { stdout } = await run(COMMAND_LINES.find((c) => c.name === name)!.nodeArgs, ['--help']);
      expect(stdout).toMatch(/--url URL +the running Kiln .*\(default http:\/\/localhost:4000\)/);
    }
  });
});
