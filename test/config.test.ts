import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('settings', () => {
  it('names a bad secret without showing its value', () => {
    expect(() => loadConfig({ KILN_URL_SECRET: 'too-short' }, [])).toThrow(ConfigError);
    expect(() => loadConfig({ KILN_URL_SECRET: 'too-short' }, [])).toThrow('Invalid setting KILN_URL_SECRET=(hidden): ');
    expect(() => loadConfig({ KILN_INSTALL_PARALLEL: '0' }, [])).toThrow('Invalid setting KILN_INSTALL_PARALLEL="0": ');
  });

  it('reads the install settings, a hub token of any form included', () => {
    const c = loadConfig({ KILN_DATA_DIR: '/srv/kiln', KILN_HF_TOKEN: ' hf_x ', KILN_HF_ENDPOINT: 'https://hub.internal/', KILN_INSTALL_TIMEOUT_S: '30' }, []);
    expect(c.install).toEqual({ dir: '/srv/kiln/installs', hubEndpoint: 'https://hub.internal', hubToken: 'hf_x', requestTimeoutMs: 30_000, parallelFiles: 4, allowHttp: false });
    expect(loadConfig({}, []).install.hubToken).toBeUndefined();
  });
});
