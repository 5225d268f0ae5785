import { describe, expect, it } from 'vitest';
import { latentImageIds, latentSide, packLatents, unpackLatents } from '../../../src/pipelines/flux/latents.js';
import { eulerStep } from '../../../src/pipelines/flux/schedule.js';
import { SeededRandom } from '../../../src/pipelines/random.js';
import { type CaseReference, caseTensor, hasFluxReference, readFluxReference } from '../../support/flux-reference.js';

const cases = () => (hasFluxReference() ? readFluxReference().cases.map((c) => [c.name, c] as [string, CaseReference]) : []);

describe('FLUX latent packing', () => {
  it('rounds image sides down to whole 2×2 patches of latents, as prepare_latents does', () => {
    expect([latentSide(1024), latentSide(96), latentSide(128), latentSide(100), latentSide(15)]).toEqual([128, 12, 16, 12, 0]);
  });

  it('puts channel c of patch (i, j) at c·4 + 2·dy + dx of token i·(w/2) + j, and unpacks back to the same latents', () => {
    const [n, c, h, w] = [2, 3, 4, 6];
    const latents = new SeededRandom(9).normals(n * c * h * w);
    const packed = packLatents(latents, n, c, h, w);
    const at = (b: number, ch: number, y: number, x: number) => latents[((b * c + ch) * h + y) * w + x];
    // image 1, channel 2, latent (3, 5): patch (1, 2), dy 1, dx 1.
    expect(packed[(1 * (h / 2) * (w / 2) + 1 * (w / 2) + 2) * c * 4 + 2 * 4 + 2 + 1]).toBe(at(1, 2, 3, 5));
    expect(unpackLatents(packed, n, c, h, w)).toEqual(latents);
  });

  it.each(cases())("packs %s's noise into exactly diffusers' packed latents and unpacks its final latents exactly", (_, c) => {
    const [h, w] = c.latent_hw;
    expect(packLatents(caseTensor(c, c.files.initial_latents_unpacked!), 1, 16, h, w)).toEqual(caseTensor(c, c.files.initial_latents_packed!));
    expect(unpackLatents(caseTensor(c, c.files.final_latents_packed!), 1, 16, h, w)).toEqual(caseTensor(c, c.files.final_latents_unpacked!));
  });

  it.each(cases())('makes the image ids (0, row, col) of %s', (_, c) => {
    const [h, w] = c.latent_hw;
    expect(latentImageIds(h / 2, w / 2)).toEqual(caseTensor(c, c.files.img_ids!));
    expect(c.files.img_ids!.shape).toEqual([c.packed_seq_len, 3]);
  });

  it.each(cases())("takes each Euler step of %s exactly as diffusers' scheduler.step did", (_, c) => {
    for (const step of c.steps) {
      const next = eulerStep(caseTensor(c, step.hidden_states_in), caseTensor(c, step.noise_pred), step.sigma, step.sigma_next);
      expect(next).toEqual(caseTensor(c, step.latents_out));
    }
  });
});
