/** A hyperparameter's value: what `hp.get(name)` returns. */
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
