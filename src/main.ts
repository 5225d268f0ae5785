import { startKiln } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`kiln: ${err.message}`);
  process.exit(78); // EX_CONFIG
}
const log = createLogger(config.logLevel, { role: config.role }, config.env === 'development' && process.stdout.isTTY);
const kiln = await startKiln(config, log).catch((err) => {
  log.fatal({ err }, 'Kiln could not start');
  process.exit(1);
});

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    void kiln.stop().then(() => process.exit(0));
  });
}
