import os from 'node:os';
/**
 * Output helpers every benchmark uses, so figures and ratios read the same everywhere and
 * a script can pick the ratio off the last line.
 */

/**
 * Prints one measured figure as `<name>: <value> <unit>`.
 *
 * ```ts
 * printFigure('ingest --reference', 512.3, 'images/s'); // ingest --reference: 512.3 images/s
 * ```
 */
export function printFigure(name: string, value: number, unit: string): void {
  console.log(`${name}: ${formatNumber(value)} ${unit}`);
}

/**
 * Prints ours ÷ anchor as the benchmark's last line. The ratio is always ours over the
 * anchor; `higherIsBetter` says which way is good for this quantity (false for latencies).
 * Throws on a zero, negative or non-finite figure: a ratio of it would mislead.
 *
 * ```ts
 * printRatio('ingest --reference vs python-pillow-sqlite', 942.6, 512.3);
 * // ratio ingest --reference vs python-pillow-sqlite: 1.84x (higher is better)
 * printRatio('predict p50 vs fastapi-keras', 4.1, 8.2, false);
 * // ratio predict p50 vs fastapi-keras: 0.50x (lower is better)
 * ```
 */
export function printRatio(
  label: string,
  ours: number,
  anchor: number,
  higherIsBetter = true,
): void {
  for (const [which, value] of [
    ['ours', ours],
    ['anchor', anchor],
  ] as const) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new RangeError(
        `printRatio(${label}): ${which} must be a positive number, got ${value}`,
      );
    }
  }
  const direction = higherIsBetter ? 'higher is better' : 'lower is better';
  console.log(`ratio ${label}: ${(ours / anchor).toFixed(2)}x (${direction})`);
}

/**
 * Runs `fn` once and returns its result with the wall-clock seconds it took.
 *
 * ```ts
 * const { result, seconds } = await timeIt(() => ingest(folder));
 * printFigure('ingest', result.images / seconds, 'images/s');
 * ```
 */
export async function timeIt<T>(fn: () => T | Promise<T>): Promise<{ result: T; seconds: number }> {
  const started = process.hrtime.bigint();
  const result = await fn();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { result, seconds };
}

/**
 * The p-th percentile (0–100) with linear interpolation between closest ranks, the same
 * rule as numpy's default, so our figures compare with the Python anchors'.
 *
 * ```ts
 * percentile([10, 20, 30, 40], 50); // 25
 * percentile(latenciesMs, 99);
 * ```
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of an empty list');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lower = Math.floor(rank);
  const upper = Math.ceil(rank);
  const low = sorted[lower] ?? Number.NaN;
  const high = sorted[upper] ?? Number.NaN;
  return low + (high - low) * (rank - lower);
}

/** One decimal for big figures, three significant digits for small ones (0.00412 s). */
function formatNumber(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude >= 100 || magnitude === 0) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

/** `--flag N` from a benchmark's arguments: a positive integer, else `fallback`. */
export function numberFlag(args: string[], flag: string, fallback: number): number {
  const at = args.indexOf(flag);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${flag} takes a positive integer, got ${args[at + 1]}`);
  }
  return value;
}

/** The 1, 5 and 15 minute load averages, printed beside figures from a shared machine. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}
