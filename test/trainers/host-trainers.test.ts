import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { hostTrainers } from '../../src/trainers/registry.js';

describe('the trainers a host offers', () => {
  it('are builtin everywhere, and ai-toolkit and sd-scripts where KILN_TRAINER_* name their commands', () => {
    const none = loadConfig({}, []);
    expect(none.trainers).toEqual({ aiToolkit: undefined, sdScripts: undefined });
    expect(hostTrainers(none.trainers).map((t) => [t.name, t.requirements])).toEqual([['builtin', { pipelines: ['builtin'], device: 'cpu' }]]);

    const gpu = loadConfig({ KILN_TRAINER_AI_TOOLKIT: ' python -u /opt/ai-toolkit/run.py ', KILN_TRAINER_SD_SCRIPTS: 'accelerate launch  /opt/sd-scripts/train_network.py' }, []);
    expect(gpu.trainers).toEqual({ aiToolkit: ['python', '-u', '/opt/ai-toolkit/run.py'], sdScripts: ['accelerate', 'launch', '/opt/sd-scripts/train_network.py'] });
    expect(hostTrainers(gpu.trainers).map((t) => [t.name, t.requirements])).toEqual([
      ['builtin', { pipelines: ['builtin'], device: 'cpu' }],
      ['ai-toolkit', { pipelines: ['stable-diffusion-onnx'], device: 'cuda' }],
      ['sd-scripts', { pipelines: ['stable-diffusion-onnx'], device: 'cuda' }],
    ]);
  });

  it('refuses an empty trainer command', () => {
    expect(() => loadConfig({ KILN_TRAINER_SD_SCRIPTS: '   ' }, [])).toThrow(ConfigError);
  });
});
