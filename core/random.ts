/**
 * A seeded stream of pseudo-random numbers (sfc32). The same seed always yields the same
 * sequence, on every platform, so generated data sets are reproducible byte for byte.
 *
 * ```ts
 * import { createRng } from './core/random.js';
 *
 * const rng = createRng('menagerie');
 * rng.next(); // 0 <= x < 1
 * rng.int(1, 6); // a die roll, 1..6 inclusive
 * rng.pick(['cat', 'dog', 'wild'] as const);
 * const image7 = rng.fork('cat').fork('7'); // depends only on ('menagerie', 'cat', '7')
 * ```
 */
export interface Rng {
  /** The seed path this stream was made from, e.g. `'42/cat/7'`. */
  readonly seed: string;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both inclusive. */
  int(min: number, max: number): number;
  /** A float in [min, max). */
  float(min: number, max: number): number;
  /** One element of a non-empty array, uniformly. */
  pick<T>(items: readonly T[]): T;
  /** A normally distributed float (Box–Muller). */
  normal(mean: number, sd: number): number;
  /**
   * An independent child stream named `label`. It derives from this stream's seed, not its
   * position, so a fork is the same however many numbers the parent has already drawn.
   */
  fork(label: string): Rng;
}

/**
 * Creates a stream from a number or string seed; `createRng(42)` and `createRng('42')` are
 * the same stream.
 */
export function createRng(seed: number | string): Rng {
  const path = String(seed);
  const next = sfc32(...hashSeed(path));
  const rng: Rng = {
    seed: path,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    float: (min, max) => min + next() * (max - min),
    pick(items) {
      if (items.length === 0) throw new RangeError('pick: expected a non-empty array, got []');
      return items[Math.floor(next() * items.length)] as (typeof items)[number];
    },
    normal(mean, sd) {
      // 1 - next() is in (0, 1], so the logarithm is finite.
      const u = 1 - next();
      const v = next();
      return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    fork: (label) => createRng(`${path}/${label}`),
  };
  return rng;
}

/** cyrb128: four well-mixed 32-bit words from a string, enough state for sfc32. */
function hashSeed(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

function sfc32(a: number, b: number, c: number, d: number): () => number {
  const next = (): number => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  // The first outputs still echo the seed words; discard them.
  for (let i = 0; i < 12; i++) next();
  return next;
}
