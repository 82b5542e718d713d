import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.js';
import { augmentPixels, DEFAULT_AUGMENT, drawAugmentations } from '../../data/augment.js';
import { augmentOffThread } from '../../data/augment-worker.js';

const spec = { size: 16, scale: 1 / 255, offset: 0 };

/** Ten 16×16 RGB images as views into one buffer, as the in-memory pixel cache hands them. */
function images(): Uint8Array[] {
  const each = spec.size * spec.size * 3;
  const all = new Uint8Array(10 * each);
  const rng = createRng('pixels');
  for (let i = 0; i < all.length; i++) all[i] = Math.floor(rng.next() * 256);
  return Array.from({ length: 10 }, (_, i) => all.subarray(i * each, (i + 1) * each));
}

describe('augmentation off the training thread', () => {
  it('gives the values this thread gives for the same draws, bit for bit', async () => {
    const pixels = images().slice(3, 7); // views in the middle of a larger buffer
    const here = augmentPixels(pixels, spec, DEFAULT_AUGMENT, drawAugmentations(createRng(7), 4));
    const there = await augmentOffThread(
      pixels,
      spec,
      DEFAULT_AUGMENT,
      drawAugmentations(createRng(7), 4),
    );
    expect(there).toBeInstanceOf(Float32Array);
    expect(there.length).toBe(4 * 16 * 16 * 3);
    expect(Buffer.from(there.buffer).equals(Buffer.from(here.buffer))).toBe(true);
    // Other draws, other values: the draws are what decides.
    const other = await augmentOffThread(
      pixels,
      spec,
      DEFAULT_AUGMENT,
      drawAugmentations(createRng(8), 4),
    );
    expect(Buffer.from(other.buffer).equals(Buffer.from(here.buffer))).toBe(false);
  });

  it('answers batches in flight together, each its own', async () => {
    const pixels = images();
    const batches = [0, 1, 2, 3, 4].map((b) => pixels.slice(b * 2, b * 2 + 2));
    const results = await Promise.all(
      batches.map((batch, b) =>
        augmentOffThread(batch, spec, DEFAULT_AUGMENT, drawAugmentations(createRng(b), 2)),
      ),
    );
    results.forEach((values, b) => {
      const expected = augmentPixels(
        batches[b]!,
        spec,
        DEFAULT_AUGMENT,
        drawAugmentations(createRng(b), 2),
      );
      expect(Array.from(values)).toEqual(Array.from(expected));
    });
  });
});
