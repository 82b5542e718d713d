/**
 * A small Gaussian-process regressor on the unit cube, enough for Bayesian optimisation
 * over tens to hundreds of trials: isotropic Matern 5/2 or RBF kernel, targets
 * standardised, length scale chosen by maximum marginal likelihood over a log grid.
 *
 * ```ts
 * import { fitGaussianProcess } from './gaussian-process.js';
 * const gp = fitGaussianProcess([[0.1], [0.5], [0.9]], [1, 0, 1], { kernel: 'matern52' });
 * gp.predict([0.5]); // { mean: ≈0, sd: ≈0 }
 * ```
 */
export type KernelName = 'matern52' | 'rbf';

export interface GaussianProcess {
  /** Posterior mean and standard deviation, in the targets' own units. */
  predict(x: readonly number[]): { mean: number; sd: number };
  readonly lengthScale: number;
}

const LENGTH_SCALES = [0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1, 1.5, 2.5];

export function fitGaussianProcess(
  xs: readonly (readonly number[])[],
  ys: readonly number[],
  options: { kernel?: KernelName; noise?: number } = {},
): GaussianProcess {
  const kernel = options.kernel ?? 'matern52';
  const noise = options.noise ?? 1e-4;
  const n = ys.length;
  const mean = ys.reduce((a, b) => a + b, 0) / Math.max(1, n);
  const variance = ys.reduce((a, y) => a + (y - mean) ** 2, 0) / Math.max(1, n);
  const scale = variance > 1e-24 ? Math.sqrt(variance) : 1;
  const z = ys.map((y) => (y - mean) / scale);

  let best: { lengthScale: number; chol: number[][]; alpha: number[]; logml: number } | null = null;
  for (const lengthScale of LENGTH_SCALES) {
    const k = xs.map((a, i) =>
      xs.map((b, j) => covariance(kernel, a, b, lengthScale) + (i === j ? noise : 0)),
    );
    const chol = cholesky(k);
    if (!chol) continue;
    const alpha = backSubstitute(chol, forwardSubstitute(chol, z));
    let logDet = 0;
    for (let i = 0; i < n; i++) logDet += Math.log(chol[i]![i]!);
    const logml = -0.5 * dot(z, alpha) - logDet;
    if (!best || logml > best.logml) best = { lengthScale, chol, alpha, logml };
  }
  if (!best) throw new Error('Gaussian process: covariance matrix is not positive definite');
  const { lengthScale, chol, alpha } = best;

  return {
    lengthScale,
    predict(x) {
      const kStar = xs.map((a) => covariance(kernel, a, x, lengthScale));
      const v = forwardSubstitute(chol, kStar);
      const variancePost = Math.max(1e-12, 1 + noise - dot(v, v));
      return { mean: mean + scale * dot(kStar, alpha), sd: scale * Math.sqrt(variancePost) };
    },
  };
}

function covariance(
  kernel: KernelName,
  a: readonly number[],
  b: readonly number[],
  lengthScale: number,
): number {
  let d2 = 0;
  for (let i = 0; i < a.length; i++) d2 += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
  if (kernel === 'rbf') return Math.exp(-d2 / (2 * lengthScale * lengthScale));
  const r = Math.sqrt(5 * d2) / lengthScale;
  return (1 + r + (r * r) / 3) * Math.exp(-r);
}

/** Lower-triangular L with L·Lᵀ = a, or null when `a` is not positive definite. */
function cholesky(a: readonly (readonly number[])[]): number[][] | null {
  const n = a.length;
  const l = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    const li = l[i]!;
    for (let j = 0; j <= i; j++) {
      const lj = l[j]!;
      let sum = a[i]![j]!;
      for (let k = 0; k < j; k++) sum -= li[k]! * lj[k]!;
      if (i === j) {
        if (!(sum > 0)) return null;
        li[i] = Math.sqrt(sum);
      } else {
        li[j] = sum / lj[j]!;
      }
    }
  }
  return l;
}

/** Solves L·x = b. */
function forwardSubstitute(l: readonly (readonly number[])[], b: readonly number[]): number[] {
  const x = new Array<number>(b.length).fill(0);
  for (let i = 0; i < b.length; i++) {
    let sum = b[i]!;
    for (let k = 0; k < i; k++) sum -= l[i]![k]! * x[k]!;
    x[i] = sum / l[i]![i]!;
  }
  return x;
}

/** Solves Lᵀ·x = b. */
function backSubstitute(l: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length;
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let sum = b[i]!;
    for (let k = i + 1; k < n; k++) sum -= l[k]![i]! * x[k]!;
    x[i] = sum / l[i]![i]!;
  }
  return x;
}

function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Standard normal density and distribution (Abramowitz–Stegun 7.1.26 erf, |error| < 1.5e-7). */
export function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
}

export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return 0.5 * (1 + (z >= 0 ? erf : -erf));
}
