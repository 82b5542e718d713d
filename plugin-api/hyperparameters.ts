import { MenagerieError } from '../core/errors.js';
import type { HpCondition, HpSpec, HpValue } from './hp-spec.js';
import { checkValue, isActive, sameSpec } from './search-space.js';

export type { HpCondition, HpSpec, HpValue } from './hp-spec.js';

export interface NumberOptions {
  /** Int: values are `min + k * step` (default 1). Float: optional quantisation. */
  step?: number;
  /** `log` samples uniformly in log space (needs `min > 0`), e.g. learning rates. */
  sampling?: 'linear' | 'log';
  /** Defaults to `min`, as in KerasTuner. */
  default?: number;
}

/**
 * KerasTuner's HyperParameters: declaring a hyperparameter returns its current value
 * (the assigned one, else the default), so one `space(hp)` both declares and reads.
 *
 * ```ts
 * import { HyperParameters } from './plugin-api/hyperparameters.js';
 *
 * const hp = new HyperParameters({ optimizer: 'sgd' });
 * hp.float('learning_rate', 1e-4, 1e-2, { sampling: 'log', default: 1e-3 }); // 0.001
 * hp.choice('optimizer', ['adam', 'sgd']); // 'sgd'
 * hp.conditionalScope('optimizer', ['sgd'], () => hp.float('momentum', 0, 0.9)); // 0
 * hp.values; // { learning_rate: 0.001, optimizer: 'sgd', momentum: 0 }
 * ```
 */
export class HyperParameters {
  readonly #assigned: Map<string, HpValue>;
  readonly #specs = new Map<string, HpSpec>();
  #conditions: HpCondition[] = [];

  constructor(values: Record<string, HpValue> = {}) {
    this.#assigned = new Map(Object.entries(values));
  }

  int(name: string, min: number, max: number, options: NumberOptions = {}): number {
    const step = options.step ?? 1;
    const sampling = options.sampling ?? 'linear';
    const where = `int '${name}'`;
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max) {
      throw invalid(`${where}: expected integer bounds with min <= max, got [${min}, ${max}]`);
    }
    if (!Number.isSafeInteger(step) || step < 1) {
      throw invalid(`${where}: step should be a positive integer, got ${step}`);
    }
    checkSampling(where, sampling, min);
    const spec: HpSpec = {
      type: 'int',
      name,
      min,
      max,
      step,
      sampling,
      default: options.default ?? min,
      conditions: this.#conditions,
    };
    return this.#declare(spec) as number;
  }

  float(name: string, min: number, max: number, options: NumberOptions = {}): number {
    const sampling = options.sampling ?? 'linear';
    const where = `float '${name}'`;
    if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) {
      throw invalid(`${where}: expected finite bounds with min <= max, got [${min}, ${max}]`);
    }
    if (options.step !== undefined && !(Number.isFinite(options.step) && options.step > 0)) {
      throw invalid(`${where}: step should be a positive number, got ${options.step}`);
    }
    checkSampling(where, sampling, min);
    const spec: HpSpec = {
      type: 'float',
      name,
      min,
      max,
      ...(options.step === undefined ? {} : { step: options.step }),
      sampling,
      default: options.default ?? min,
      conditions: this.#conditions,
    };
    return this.#declare(spec) as number;
  }

  choice<T extends HpValue>(name: string, values: readonly T[], options: { default?: T } = {}): T {
    if (values.length === 0) throw invalid(`choice '${name}': expected at least one value`);
    if (new Set(values).size !== values.length) {
      throw invalid(`choice '${name}': values should be distinct, got ${JSON.stringify(values)}`);
    }
    const types = new Set(values.map((v) => typeof v));
    if (types.size > 1) {
      throw invalid(`choice '${name}': values should share one type, got ${[...types].join(', ')}`);
    }
    const first = values[0] as T;
    const spec: HpSpec = {
      type: 'choice',
      name,
      values: [...values],
      default: options.default ?? first,
      conditions: this.#conditions,
    };
    return this.#declare(spec) as T;
  }

  boolean(name: string, options: { default?: boolean } = {}): boolean {
    const spec: HpSpec = {
      type: 'boolean',
      name,
      default: options.default ?? false,
      conditions: this.#conditions,
    };
    return this.#declare(spec) as boolean;
  }

  fixed<T extends HpValue>(name: string, value: T): T {
    return this.#declare({ type: 'fixed', name, value, conditions: this.#conditions }) as T;
  }

  /**
   * Hyperparameters declared inside `fn` are active only when `parent` is one of `values`.
   * `fn` always runs, so the whole space is declared whatever the current values; its
   * result is returned only when the scope is active, `undefined` otherwise.
   */
  conditionalScope<T>(parent: string, values: readonly HpValue[], fn: () => T): T | undefined {
    if (!this.#specs.has(parent)) {
      throw invalid(`conditional scope on '${parent}': declare '${parent}' before the scope`);
    }
    if (values.length === 0) {
      throw invalid(`conditional scope on '${parent}': expected at least one parent value`);
    }
    const outer = this.#conditions;
    this.#conditions = [...outer, { name: parent, values: [...values] }];
    const scope = this.#conditions;
    try {
      const result = fn();
      return isActive(scope, this.#specs, this.values) ? result : undefined;
    } finally {
      this.#conditions = outer;
    }
  }

  /** The current value; throws for an unknown or currently inactive name. */
  get(name: string): HpValue {
    const spec = this.#specs.get(name);
    if (!spec) {
      const assigned = this.#assigned.get(name);
      if (assigned !== undefined) return assigned;
      throw invalid(`no hyperparameter '${name}' (declared: ${this.#names() || 'none'})`);
    }
    if (!this.isActive(name)) {
      throw invalid(`hyperparameter '${name}' is inactive for the current parent values`);
    }
    return this.#current(spec);
  }

  /** Whether `name` is declared and its conditions hold for the current values. */
  isActive(name: string): boolean {
    const spec = this.#specs.get(name);
    return spec !== undefined && isActive(spec.conditions, this.#specs, this.#allCurrent());
  }

  /** Assigns a value (checked against the declared spec, if any). */
  set(name: string, value: HpValue): void {
    const spec = this.#specs.get(name);
    if (spec) checkValue(spec, value);
    this.#assigned.set(name, value);
  }

  /** Active hyperparameters' current values, in declaration order. */
  get values(): Record<string, HpValue> {
    const all = this.#allCurrent();
    const out: Record<string, HpValue> = {};
    for (const spec of this.#specs.values()) {
      if (isActive(spec.conditions, this.#specs, all)) out[spec.name] = all[spec.name] as HpValue;
    }
    return out;
  }

  /** Every declared hyperparameter, active or not, in declaration order. */
  get space(): readonly HpSpec[] {
    return [...this.#specs.values()];
  }

  #declare(spec: HpSpec): HpValue {
    const existing = this.#specs.get(spec.name);
    if (existing) {
      if (!sameSpec(existing, spec)) {
        throw invalid(
          `hyperparameter '${spec.name}' is already declared as ${describe(existing)}, now as ${describe(spec)}`,
        );
      }
      return this.#current(existing);
    }
    if (spec.type !== 'fixed') checkValue(spec, spec.default, 'default');
    const assigned = this.#assigned.get(spec.name);
    if (assigned !== undefined) checkValue(spec, assigned);
    this.#specs.set(spec.name, spec);
    return this.#current(spec);
  }

  #current(spec: HpSpec): HpValue {
    if (spec.type === 'fixed') return spec.value;
    return this.#assigned.get(spec.name) ?? spec.default;
  }

  #allCurrent(): Record<string, HpValue> {
    const out: Record<string, HpValue> = {};
    for (const spec of this.#specs.values()) out[spec.name] = this.#current(spec);
    return out;
  }

  #names(): string {
    return [...this.#specs.keys()].join(', ');
  }
}

function checkSampling(where: string, sampling: string, min: number): void {
  if (sampling !== 'linear' && sampling !== 'log') {
    throw invalid(`${where}: sampling should be 'linear' or 'log', got '${sampling}'`);
  }
  if (sampling === 'log' && min <= 0) {
    throw invalid(`${where}: log sampling needs min > 0, got ${min}`);
  }
}

function describe(spec: HpSpec): string {
  return JSON.stringify({ ...spec, name: undefined });
}

function invalid(message: string): MenagerieError {
  return new MenagerieError('HP_INVALID', message);
}
