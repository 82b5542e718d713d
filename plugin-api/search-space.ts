import { MenagerieError } from '../core/errors.js';
import type { Rng } from '../core/random.js';
import type { HpCondition, HpSpec, HpValue } from './hp-spec.js';

/**
 * What tuners do with a space of HpSpecs: check, sample, enumerate, and map to the unit
 * cube and back (the Bayesian oracle models the objective there).
 *
 * ```ts
 * import { createRng } from '../core/random.js';
 * import { HyperParameters } from './hyperparameters.js';
 * import { decodeVector, encodeValues, sampleValues } from './search-space.js';
 *
 * const hp = new HyperParameters();
 * hp.float('lr', 1e-4, 1e-2, { sampling: 'log' });
 * const values = sampleValues(hp.space, createRng(1)); // { lr: 0.00137… }
 * decodeVector(hp.space, encodeValues(hp.space, values)); // the same values
 * ```
 */
export type SpecLookup = ReadonlyMap<string, HpSpec> | readonly HpSpec[];

/** Whether every condition holds: each parent is itself active and has one of the values. */
export function isActive(
  conditions: readonly HpCondition[],
  specs: SpecLookup,
  values: Readonly<Record<string, HpValue>>,
): boolean {
  const byName = toMap(specs);
  return conditions.every((c) => {
    const parent = byName.get(c.name);
    if (!parent || !isActive(parent.conditions, byName, values)) return false;
    const value = values[c.name];
    return value !== undefined && c.values.includes(value);
  });
}

/** Throws HP_INVALID unless `value` lies in `spec`'s range, type and step. */
export function checkValue(spec: HpSpec, value: unknown, what = 'value'): void {
  const bad = (expected: string) =>
    new MenagerieError(
      'HP_INVALID',
      `hyperparameter '${spec.name}': ${what} ${JSON.stringify(value)} is not ${expected}`,
    );
  switch (spec.type) {
    case 'int':
      if (
        !Number.isSafeInteger(value) ||
        (value as number) < spec.min ||
        (value as number) > spec.max ||
        ((value as number) - spec.min) % spec.step !== 0
      ) {
        throw bad(`an integer in [${spec.min}, ${spec.max}] step ${spec.step}`);
      }
      return;
    case 'float':
      if (typeof value !== 'number' || !(value >= spec.min && value <= spec.max)) {
        throw bad(`a number in [${spec.min}, ${spec.max}]`);
      }
      return;
    case 'choice':
      if (!spec.values.includes(value as HpValue)) {
        throw bad(`one of ${JSON.stringify(spec.values)}`);
      }
      return;
    case 'boolean':
      if (typeof value !== 'boolean') throw bad('a boolean');
      return;
    case 'fixed':
      if (value !== spec.value) throw bad(`the fixed value ${JSON.stringify(spec.value)}`);
  }
}

/** Whether two declarations are the same hyperparameter (so redeclaring is allowed). */
export function sameSpec(a: HpSpec, b: HpSpec): boolean {
  return canonical(a) === canonical(b);
}

/** A random value of one hyperparameter. */
export function sampleValue(spec: HpSpec, rng: Rng): HpValue {
  switch (spec.type) {
    case 'int':
    case 'float':
      if (spec.sampling === 'linear' && spec.step !== undefined) {
        // Each step value equally likely; rounding a uniform draw would halve the ends.
        return snap(spec, spec.min + rng.int(0, stepCount(spec)) * spec.step);
      }
      return fromUnit(spec, rng.next());
    case 'choice':
      return rng.pick(spec.values);
    case 'boolean':
      return rng.next() < 0.5;
    case 'fixed':
      return spec.value;
  }
}

/** Random values for the active hyperparameters of a space (parents before children). */
export function sampleValues(space: readonly HpSpec[], rng: Rng): Record<string, HpValue> {
  const values: Record<string, HpValue> = {};
  for (const spec of space) {
    if (isActive(spec.conditions, space, values)) values[spec.name] = sampleValue(spec, rng);
  }
  return values;
}

/**
 * The active values of a space given some assignment: missing ones take their default,
 * inactive and unknown ones are dropped.
 */
export function activeValues(
  space: readonly HpSpec[],
  values: Readonly<Record<string, HpValue>>,
): Record<string, HpValue> {
  const out: Record<string, HpValue> = {};
  for (const spec of space) {
    if (!isActive(spec.conditions, space, out)) continue;
    out[spec.name] = spec.type === 'fixed' ? spec.value : (values[spec.name] ?? spec.default);
  }
  return out;
}

/** The hyperparameters a search moves (all but fixed ones): one vector coordinate each. */
export function searchDimensions(space: readonly HpSpec[]): HpSpec[] {
  return space.filter((s) => s.type !== 'fixed');
}

/**
 * Values as a point of [0, 1]^d, one coordinate per search dimension. Numbers map through
 * their sampling scale; a choice of n takes the centre of its n-th slice; an inactive
 * hyperparameter sits at its default, so configurations that differ only there coincide.
 */
export function encodeValues(
  space: readonly HpSpec[],
  values: Readonly<Record<string, HpValue>>,
): number[] {
  const full = activeValues(space, values);
  return searchDimensions(space).map((spec) => {
    const value = spec.type === 'fixed' ? spec.value : (full[spec.name] ?? spec.default);
    return toUnit(spec, value);
  });
}

/** The inverse of `encodeValues`: snaps to steps and choices, keeps only active values. */
export function decodeVector(
  space: readonly HpSpec[],
  vector: readonly number[],
): Record<string, HpValue> {
  const dims = searchDimensions(space);
  const raw: Record<string, HpValue> = {};
  dims.forEach((spec, i) => {
    raw[spec.name] = fromUnit(spec, clamp01(vector[i] ?? 0.5));
  });
  return activeValues(space, raw);
}

/** A coordinate in [0, 1] for one value. */
export function toUnit(spec: HpSpec, value: HpValue): number {
  switch (spec.type) {
    case 'int':
    case 'float': {
      if (spec.max === spec.min) return 0.5;
      const v = value as number;
      if (spec.sampling === 'log') {
        return clamp01(Math.log(v / spec.min) / Math.log(spec.max / spec.min));
      }
      return clamp01((v - spec.min) / (spec.max - spec.min));
    }
    case 'choice': {
      const index = Math.max(0, spec.values.indexOf(value));
      return (index + 0.5) / spec.values.length;
    }
    case 'boolean':
      return value === true ? 0.75 : 0.25;
    case 'fixed':
      return 0.5;
  }
}

/** The value at a coordinate in [0, 1], snapped to the spec's step or choices. */
export function fromUnit(spec: HpSpec, unit: number): HpValue {
  const u = clamp01(unit);
  switch (spec.type) {
    case 'int':
    case 'float': {
      const raw =
        spec.sampling === 'log'
          ? spec.min * Math.pow(spec.max / spec.min, u)
          : spec.min + u * (spec.max - spec.min);
      return snap(spec, raw);
    }
    case 'choice':
      return spec.values[Math.min(spec.values.length - 1, Math.floor(u * spec.values.length))]!;
    case 'boolean':
      return u >= 0.5;
    case 'fixed':
      return spec.value;
  }
}

/** Every value one hyperparameter takes in a grid. */
export function gridValues(spec: HpSpec, floatPoints = 5): HpValue[] {
  switch (spec.type) {
    case 'int': {
      const out: number[] = [];
      for (let v = spec.min; v <= spec.max; v += spec.step) out.push(v);
      return out;
    }
    case 'float': {
      if (spec.step !== undefined) {
        const count = Math.floor((spec.max - spec.min) / spec.step + 1e-9) + 1;
        return Array.from({ length: count }, (_, k) => roundFloat(spec.min + k * spec.step!));
      }
      if (spec.max === spec.min || floatPoints <= 1) return [spec.min];
      const points = Array.from({ length: floatPoints }, (_, k) =>
        fromUnit(spec, k / (floatPoints - 1)),
      );
      return [...new Set(points)];
    }
    case 'choice':
      return [...spec.values];
    case 'boolean':
      return [false, true];
    case 'fixed':
      return [spec.value];
  }
}

/**
 * Every combination of the active hyperparameters, first declared varying slowest. An
 * inactive branch contributes no combinations, so conditional spaces do not blow up.
 * Floats without a step take `floatPoints` evenly spaced values on their sampling scale.
 */
export function enumerateGrid(
  space: readonly HpSpec[],
  options: { floatPoints?: number; limit?: number } = {},
): Record<string, HpValue>[] {
  const limit = options.limit ?? 100_000;
  const grids = space.map((spec) => gridValues(spec, options.floatPoints));
  const out: Record<string, HpValue>[] = [];
  const walk = (i: number, values: Record<string, HpValue>): void => {
    if (out.length >= limit) return;
    if (i === space.length) {
      out.push({ ...values });
      return;
    }
    const spec = space[i]!;
    if (!isActive(spec.conditions, space, values)) {
      walk(i + 1, values);
      return;
    }
    for (const value of grids[i]!) {
      values[spec.name] = value;
      walk(i + 1, values);
      delete values[spec.name];
    }
  };
  walk(0, {});
  return out;
}

/** A stable key for a configuration, equal for equal values whatever the key order. */
export function configKey(values: Readonly<Record<string, HpValue>>): string {
  return JSON.stringify(
    Object.keys(values)
      .sort()
      .map((k) => [k, values[k]]),
  );
}

function snap(spec: Extract<HpSpec, { type: 'int' | 'float' }>, raw: number): number {
  const step = spec.step;
  if (step === undefined) return Math.min(spec.max, Math.max(spec.min, raw));
  const maxK = stepCount(spec);
  const k = Math.min(maxK, Math.max(0, Math.round((raw - spec.min) / step)));
  const value = spec.min + k * step;
  return spec.type === 'int' ? value : roundFloat(value);
}

/** The largest k with min + k * step <= max. */
function stepCount(spec: Extract<HpSpec, { type: 'int' | 'float' }>): number {
  return spec.step === undefined ? 0 : Math.floor((spec.max - spec.min) / spec.step + 1e-9);
}

/** Removes float noise such as 0.30000000000000004 from stepped values. */
function roundFloat(x: number): number {
  return Number.parseFloat(x.toPrecision(12));
}

function clamp01(x: number): number {
  return Number.isNaN(x) ? 0.5 : Math.min(1, Math.max(0, x));
}

function toMap(specs: SpecLookup): ReadonlyMap<string, HpSpec> {
  return specs instanceof Map
    ? specs
    : new Map((specs as readonly HpSpec[]).map((s) => [s.name, s]));
}

function canonical(spec: HpSpec): string {
  const entries = Object.entries(spec)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify(entries);
}
