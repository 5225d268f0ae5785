import type { Config } from '../config.js';
import { builtinTrainer } from './builtin/trainer.js';
import { AI_TOOLKIT_REQUIREMENTS, aiToolkitTrainer } from './external/ai-toolkit.js';
import type { ExternalTrainerOptions } from './external/external-trainer.js';
import { SD_SCRIPTS_REQUIREMENTS, sdScriptsTrainer } from './external/sd-scripts.js';
import type { Trainer, TrainerName, TrainerRequirements } from './trainer.js';

/**
 * The trainers this host can run: `builtin` everywhere, ai-toolkit and sd-scripts where their
 * commands are set (`tool` adds options to both, such as how long a stopped tool may take). A
 * worker advertises their names (and each one's requirements) so that a training waits for a
 * worker that has its trainer.
 */
export function hostTrainers(settings: Config['trainers'], tool: Omit<ExternalTrainerOptions, 'command'> = {}): Trainer[] {
  return [
    builtinTrainer,
    ...(settings.aiToolkit ? [aiToolkitTrainer({ ...tool, command: settings.aiToolkit })] : []),
    ...(settings.sdScripts ? [sdScriptsTrainer({ ...tool, command: settings.sdScripts })] : []),
  ];
}

/** What each trainer needs of a host and trains, whether or not this host has it (for checks at submit). */
export const trainerRequirements: Readonly<Record<TrainerName, TrainerRequirements>> = {
  builtin: builtinTrainer.requirements,
  'ai-toolkit': AI_TOOLKIT_REQUIREMENTS,
  'sd-scripts': SD_SCRIPTS_REQUIREMENTS,
};
