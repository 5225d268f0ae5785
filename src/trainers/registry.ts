import type { Config } from '../config.js';
import { builtinTrainer } from './builtin/trainer.js';
import { aiToolkitTrainer } from './external/ai-toolkit.js';
import { sdScriptsTrainer } from './external/sd-scripts.js';
import type { Trainer } from './trainer.js';

/**
 * The trainers this host can run: `builtin` everywhere, ai-toolkit and sd-scripts where their
 * commands are set. A worker advertises their names (and each one's requirements) so that a
 * training waits for a worker that has its trainer.
 */
export function hostTrainers(settings: Config['trainers']): Trainer[] {
  return [
    builtinTrainer,
    ...(settings.aiToolkit ? [aiToolkitTrainer({ command: settings.aiToolkit })] : []),
    ...(settings.sdScripts ? [sdScriptsTrainer({ command: settings.sdScripts })] : []),
  ];
}
