// CONTRACT DRAFT — the tuning helper replaces this file with the implementation, keeping
// these exported names and shapes (other modules already code against them).

export type HpValue = number | string | boolean;

export interface HpCondition {
  /** Name of the parent hyperparameter. */
  name: string;
  /** The parent values under which this one is active. */
  values: readonly HpValue[];
}

export type HpSpec =
  | {
      type: 'int';
      name: string;
      min: number;
      max: number;
      step: number;
      sampling: 'linear' | 'log';
      default: number;
      conditions: HpCondition[];
    }
  | {
      type: 'float';
      name: string;
      min: number;
      max: number;
      step?: number;
      sampling: 'linear' | 'log';
      default: number;
      conditions: HpCondition[];
    }
  | {
      type: 'choice';
      name: string;
      values: readonly HpValue[];
      default: HpValue;
      conditions: HpCondition[];
    }
  | { type: 'boolean'; name: string; default: boolean; conditions: HpCondition[] }
  | { type: 'fixed'; name: string; value: HpValue; conditions: HpCondition[] };

/**
 * KerasTuner's HyperParameters: declaring a hyperparameter returns its current value
 * (the assigned one, else the default), so one `space(hp)` both declares and reads.
 */
export declare class HyperParameters {
  constructor(values?: Record<string, HpValue>);
  int(
    name: string,
    min: number,
    max: number,
    options?: { step?: number; sampling?: 'linear' | 'log'; default?: number },
  ): number;
  float(
    name: string,
    min: number,
    max: number,
    options?: { step?: number; sampling?: 'linear' | 'log'; default?: number },
  ): number;
  choice<T extends HpValue>(name: string, values: readonly T[], options?: { default?: T }): T;
  boolean(name: string, options?: { default?: boolean }): boolean;
  fixed<T extends HpValue>(name: string, value: T): T;
  /** Hyperparameters declared inside `fn` are active only when `parent` is one of `values`. */
  conditionalScope<T>(parent: string, values: readonly HpValue[], fn: () => T): T | undefined;
  /** The current value; throws for an unknown name. */
  get(name: string): HpValue;
  /** Active hyperparameters' current values. */
  readonly values: Record<string, HpValue>;
  readonly space: readonly HpSpec[];
}

export interface OracleOptions {
  space: readonly HpSpec[];
  objective: { name: string; direction: 'min' | 'max' };
  maxTrials?: number;
  seed?: number;
  /** Tuner-specific options (Hyperband's maxEpochs, factor, iterations…). */
  [option: string]: unknown;
}

/** What to run next. */
export interface TrialProposal {
  trialId: string;
  values: Record<string, HpValue>;
  /** Epochs to train this trial for (Hyperband); the caller's default when absent. */
  epochs?: number;
  /** Start from this earlier trial's checkpoint (Hyperband promotions). */
  warmStartFrom?: string;
  /** Epoch to start counting from when warm-starting. */
  initialEpoch?: number;
}

export interface Oracle {
  /** The next trial, or null when the search is done. */
  next(): TrialProposal | null;
  report(result: import('../plugins/plugin.js').TrialResult): void;
  /** JSON-safe state; `restore` of it continues the search exactly. */
  state(): unknown;
  restore(state: unknown): void;
}
