import { describe, expect, it } from 'vitest';
import { renderProgress } from '../../src/cli/progress-bar.js';

describe("model:install's progress line", () => {
  it('shows the bar, the bytes done of the total, the rate and the time left while it downloads', () => {
    const line = renderProgress(
      { step: 'DOWNLOADING', progress: 0.5, message: 'Downloading unet/model.onnx (file 3 of 10)', etaSeconds: 125, detail: { bytesDone: 1.5 * 1024 ** 3, bytesTotal: 3 * 1024 ** 3, bytesPerSecond: 40 * 1024 ** 2 } },
      160,
    );
    expect(line).toBe('[###############...............]  50% 1.5 GiB / 3.0 GiB 40.0 MiB/s ETA 2 min DOWNLOADING: Downloading unet/model.onnx (file 3 of 10)');
  });

  it('fits the terminal, and leaves the rate and time left out once the download is over', () => {
    const verifying = { step: 'VERIFYING', progress: 0.92, message: 'Checking 10 file(s) as uploads are checked', etaSeconds: 3, detail: { bytesDone: 2048, bytesTotal: 2048, bytesPerSecond: 100 } };
    expect(renderProgress(verifying, 160)).toBe('[############################..]  92% 2.0 KiB / 2.0 KiB VERIFYING: Checking 10 file(s) as uploads are checked');
    expect(renderProgress(verifying, 40)).toBe('[#########.]  92% 2.0 KiB / 2.0 KiB VER…');
  });
});
