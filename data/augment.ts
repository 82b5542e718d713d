import type { Rng } from '../core/random.js';
import type { InputSpec } from './input-spec.js';

/** What of an input spec augmentation needs: the side, and the scaling it applies. */
export type AugmentSpec = Pick<InputSpec, 'size' | 'scale' | 'offset'>;

/**
 * Random transforms applied to training batches, drawn per example. Ranges are ± around
 * identity; 0 or false turns one off.
 */
export interface AugmentOptions {
  /** Mirror left-right with probability ½ (default true). */
  flip?: boolean;
  /** Maximum rotation in degrees (default 10). */
  rotation?: number;
  /** Maximum zoom as a fraction: 0.1 samples a scale in [0.9, 1.1] (default 0.1). */
  zoom?: number;
  /** Maximum shift as a fraction of the side, on each axis (default 0.1). */
  shift?: number;
  /** Maximum brightness change as a fraction: 0.2 multiplies by [0.8, 1.2] (default 0.2). */
  brightness?: number;
}

export const DEFAULT_AUGMENT: Required<AugmentOptions> = {
  flip: true,
  rotation: 10,
  zoom: 0.1,
  shift: 0.1,
  brightness: 0.2,
};

/** Random numbers per example: six whatever the options, so turning one off leaves the others. */
const DRAWS = 6;

/** The draws `augmentPixels` takes for `n` examples, in the order the loop once took them. */
export function drawAugmentations(rng: Rng, n: number): Float64Array {
  const draws = new Float64Array(n * DRAWS);
  for (let i = 0; i < draws.length; i++) draws[i] = rng.next();
  return draws;
}

/**
 * Augments a batch: per example an affine map (flip, rotation, zoom, shift) sampled
 * bilinearly, edges extended like Keras's 'nearest' fill, then brightness, clipping to
 * 0–255 and the spec's scaling, fused in one pass into one buffer (NHWC float32). tfjs-node
 * has no Transform kernel; a native gather-based sampler measured 24 ms a batch of 32×64²,
 * this loop about 4 ms. Pure JavaScript, so it can run off the thread that trains
 * (augment-thread.ts). `draws` come from `drawAugmentations`.
 */
export function augmentPixels(
  pixels: readonly Uint8Array[],
  spec: AugmentSpec,
  options: Required<AugmentOptions>,
  draws: Float64Array,
): Float32Array {
  const n = pixels.length;
  const s = spec.size;
  const last = s - 1;
  const out = new Float32Array(n * s * s * 3);
  const c = s / 2;
  const { scale, offset } = spec;
  for (let e = 0; e < n; e++) {
    const src = pixels[e]!;
    // rng.float(-1, 1), as the draws were once taken inline: the same numbers bit for bit.
    const draw = (k: number) => -1 + draws[e * DRAWS + k]! * 2;
    const flip = draws[e * DRAWS]! < 0.5 && options.flip ? -1 : 1;
    const angle = (draw(1) * options.rotation * Math.PI) / 180;
    const zoom = 1 + draw(2) * options.zoom;
    const tx = draw(3) * options.shift * s;
    const ty = draw(4) * options.shift * s;
    const gain = 1 + draw(5) * options.brightness;
    // Output pixel centre → source point: rotate and scale about the centre, then shift.
    const cos = Math.cos(angle) * zoom;
    const sin = Math.sin(angle) * zoom;
    let o = e * s * s * 3;
    for (let y = 0; y < s; y++) {
      const v = y + 0.5 - c;
      for (let x = 0; x < s; x++) {
        const u = (x + 0.5 - c) * flip;
        const sx = Math.min(Math.max(cos * u - sin * v + c + tx - 0.5, 0), last);
        const sy = Math.min(Math.max(sin * u + cos * v + c + ty - 0.5, 0), last);
        const x0 = Math.min(Math.floor(sx), last - 1);
        const y0 = Math.min(Math.floor(sy), last - 1);
        const fx = sx - x0;
        const fy = sy - y0;
        const w00 = (1 - fx) * (1 - fy) * gain;
        const w01 = fx * (1 - fy) * gain;
        const w10 = (1 - fx) * fy * gain;
        const w11 = fx * fy * gain;
        const p00 = (y0 * s + x0) * 3;
        const p10 = p00 + s * 3;
        for (let ch = 0; ch < 3; ch++) {
          const value =
            src[p00 + ch]! * w00 +
            src[p00 + 3 + ch]! * w01 +
            src[p10 + ch]! * w10 +
            src[p10 + 3 + ch]! * w11;
          out[o++] = Math.min(Math.max(value, 0), 255) * scale + offset;
        }
      }
    }
  }
  return out;
}
