import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.js';
import { HyperParameters, type HpSpec } from '../../plugin-api/hyperparameters.js';
import {
  activeValues,
  checkValue,
  configKey,
  decodeVector,
  encodeValues,
  enumerateGrid,
  sampleValue,
  sampleValues,
} from '../../plugin-api/search-space.js';

const hpInvalid = (message: RegExp) =>
  expect.objectContaining({ code: 'HP_INVALID', message: expect.stringMatching(message) });

function cnnSpace(hp: HyperParameters): void {
  hp.int('conv1_filters', 32, 128, { step: 16 });
  hp.float('dropout', 0.1, 0.5, { step: 0.1, default: 0.5 });
  hp.float('learning_rate', 1e-4, 1e-2, { sampling: 'log', default: 1e-3 });
  hp.choice('optimizer', ['adam', 'sgd']);
  hp.conditionalScope('optimizer', ['sgd'], () => {
    hp.float('momentum', 0, 0.9, { default: 0.9 });
    hp.boolean('nesterov');
  });
  hp.boolean('batch_norm', { default: true });
  hp.fixed('input_size', 64);
}

describe('HyperParameters', () => {
  it('declaring returns the default, or the assigned value', () => {
    const hp = new HyperParameters();
    expect(hp.int('units', 8, 64, { step: 8 })).toBe(8);
    expect(hp.float('lr', 1e-4, 1e-2, { sampling: 'log', default: 1e-3 })).toBe(1e-3);
    expect(hp.choice('act', ['relu', 'tanh'])).toBe('relu');
    expect(hp.boolean('bn')).toBe(false);
    expect(hp.fixed('size', 64)).toBe(64);

    const set = new HyperParameters({ units: 32, lr: 0.005, act: 'tanh', bn: true });
    expect(set.int('units', 8, 64, { step: 8 })).toBe(32);
    expect(set.float('lr', 1e-4, 1e-2, { sampling: 'log' })).toBe(0.005);
    expect(set.choice('act', ['relu', 'tanh'])).toBe('tanh');
    expect(set.boolean('bn')).toBe(true);
    expect(set.get('units')).toBe(32);
    expect(set.values).toEqual({ units: 32, lr: 0.005, act: 'tanh', bn: true });
  });

  it('keeps conditional hyperparameters out of values while their parent disagrees', () => {
    const adam = new HyperParameters();
    cnnSpace(adam);
    expect(adam.space.map((s) => s.name)).toContain('momentum');
    expect(Object.keys(adam.values)).not.toContain('momentum');
    expect(adam.isActive('momentum')).toBe(false);
    expect(() => adam.get('momentum')).toThrow(hpInvalid(/inactive/));

    const sgd = new HyperParameters({ optimizer: 'sgd', momentum: 0.5 });
    cnnSpace(sgd);
    expect(sgd.values).toMatchObject({ optimizer: 'sgd', momentum: 0.5, nesterov: false });
    expect(sgd.get('momentum')).toBe(0.5);
  });

  it('returns the scope result only when active, and nests scopes', () => {
    const hp = new HyperParameters({ depth: 3, wide: true });
    hp.int('depth', 1, 3);
    const inner = hp.conditionalScope('depth', [2, 3], () => {
      hp.boolean('wide');
      return hp.conditionalScope('wide', [true], () => hp.int('width', 64, 256, { step: 64 }));
    });
    expect(inner).toBe(64);
    expect(hp.space.find((s) => s.name === 'width')?.conditions).toEqual([
      { name: 'depth', values: [2, 3] },
      { name: 'wide', values: [true] },
    ]);
    expect(hp.conditionalScope('depth', [1], () => 'shallow')).toBeUndefined();

    const shallow = new HyperParameters({ depth: 1, wide: true });
    shallow.int('depth', 1, 3);
    shallow.conditionalScope('depth', [2, 3], () => {
      shallow.boolean('wide');
      shallow.conditionalScope('wide', [true], () => shallow.int('width', 64, 256, { step: 64 }));
    });
    // `wide` would allow `width`, but `wide` itself is inactive.
    expect(shallow.values).toEqual({ depth: 1 });
  });

  it('allows an identical redeclaration and refuses a different one', () => {
    const hp = new HyperParameters();
    hp.int('units', 8, 64, { step: 8 });
    expect(hp.int('units', 8, 64, { step: 8 })).toBe(8);
    expect(() => hp.int('units', 8, 128, { step: 8 })).toThrow(hpInvalid(/already declared/));
    expect(() => hp.choice('units', [1, 2])).toThrow(hpInvalid(/already declared/));
  });

  it.each<[string, (hp: HyperParameters) => unknown, RegExp]>([
    ['min > max', (hp) => hp.int('a', 5, 1), /min <= max/],
    ['fractional int bounds', (hp) => hp.int('a', 0.5, 3), /integer bounds/],
    ['zero step', (hp) => hp.int('a', 1, 5, { step: 0 }), /positive integer/],
    [
      'log with min 0',
      (hp) => hp.float('a', 0, 1, { sampling: 'log' }),
      /log sampling needs min > 0/,
    ],
    [
      'default out of range',
      (hp) => hp.float('a', 0, 1, { default: 2 }),
      /default 2 is not a number in \[0, 1\]/,
    ],
    ['default off step', (hp) => hp.int('a', 0, 10, { step: 5, default: 3 }), /step 5/],
    ['empty choice', (hp) => hp.choice('a', []), /at least one value/],
    ['duplicate choices', (hp) => hp.choice('a', ['x', 'x']), /distinct/],
    ['mixed choice types', (hp) => hp.choice('a', [1, 'x']), /one type/],
    [
      'scope on an undeclared parent',
      (hp) => hp.conditionalScope('nope', [1], () => 0),
      /declare 'nope'/,
    ],
    ['unknown name', (hp) => hp.get('nope'), /no hyperparameter 'nope'/],
  ])('refuses %s with HP_INVALID', (_case, declare, message) => {
    expect(() => declare(new HyperParameters())).toThrow(hpInvalid(message));
  });

  it('refuses an assigned value outside the space', () => {
    expect(() => new HyperParameters({ units: 7 }).int('units', 8, 64, { step: 8 })).toThrow(
      hpInvalid(/'units': value 7 is not an integer in \[8, 64\] step 8/),
    );
    expect(() => new HyperParameters({ act: 'gelu' }).choice('act', ['relu'])).toThrow(
      hpInvalid(/one of \["relu"\]/),
    );
    const hp = new HyperParameters();
    hp.boolean('bn');
    expect(() => hp.set('bn', 'yes')).toThrow(hpInvalid(/a boolean/));
  });
});

describe('search space helpers', () => {
  const space = (() => {
    const hp = new HyperParameters();
    cnnSpace(hp);
    return hp.space;
  })();

  it('samples values inside the space, conditional ones only when active', () => {
    const rng = createRng('sample');
    let sawSgd = false;
    for (let i = 0; i < 300; i++) {
      const values = sampleValues(space, rng);
      for (const spec of space) {
        if (values[spec.name] !== undefined) checkValue(spec, values[spec.name]);
      }
      expect('momentum' in values).toBe(values.optimizer === 'sgd');
      sawSgd ||= values.optimizer === 'sgd';
    }
    expect(sawSgd).toBe(true);
  });

  it('samples log-scaled floats in range and evenly per decade', () => {
    const spec: HpSpec = {
      type: 'float',
      name: 'lr',
      min: 1e-4,
      max: 1e-1,
      sampling: 'log',
      default: 1e-3,
      conditions: [],
    };
    const rng = createRng(7);
    const perDecade = [0, 0, 0];
    const n = 6000;
    for (let i = 0; i < n; i++) {
      const v = sampleValue(spec, rng) as number;
      expect(v).toBeGreaterThanOrEqual(1e-4);
      expect(v).toBeLessThanOrEqual(1e-1);
      perDecade[Math.min(2, Math.floor(Math.log10(v / 1e-4)))]! += 1;
    }
    // Uniform in value would put ~90% in the top decade; log sampling puts a third in each.
    for (const count of perDecade) expect(count / n).toBeCloseTo(1 / 3, 1);
  });

  it('samples log-scaled ints in range, favouring small values', () => {
    const spec: HpSpec = {
      type: 'int',
      name: 'units',
      min: 1,
      max: 1000,
      step: 1,
      sampling: 'log',
      default: 1,
      conditions: [],
    };
    const rng = createRng(8);
    const values = Array.from({ length: 2000 }, () => sampleValue(spec, rng) as number);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...values)).toBeLessThanOrEqual(1000);
    expect(values.every(Number.isInteger)).toBe(true);
    const below32 = values.filter((v) => v < 32).length / values.length;
    expect(below32).toBeGreaterThan(0.4);
  });

  it('gives every step of a linear int the same chance, ends included', () => {
    const spec: HpSpec = {
      type: 'int',
      name: 'k',
      min: 0,
      max: 2,
      step: 1,
      sampling: 'linear',
      default: 0,
      conditions: [],
    };
    const rng = createRng(9);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[sampleValue(spec, rng) as number]! += 1;
    for (const count of counts) expect(count / 3000).toBeCloseTo(1 / 3, 1);
  });

  it('is reproducible with a seed', () => {
    const a = Array.from({ length: 5 }, (_, i) =>
      sampleValues(space, createRng(1).fork(String(i))),
    );
    const b = Array.from({ length: 5 }, (_, i) =>
      sampleValues(space, createRng(1).fork(String(i))),
    );
    expect(a).toEqual(b);
  });

  it('encodes to the unit cube and decodes back to the same values', () => {
    const rng = createRng('encode');
    for (let i = 0; i < 100; i++) {
      const values = sampleValues(space, rng);
      const vector = encodeValues(space, values);
      expect(vector).toHaveLength(space.length - 1); // the fixed one is no dimension
      for (const x of vector) expect(x >= 0 && x <= 1).toBe(true);
      const back = decodeVector(space, vector);
      expect(Object.keys(back).sort()).toEqual(Object.keys(values).sort());
      for (const [name, value] of Object.entries(values)) {
        if (typeof value === 'number') expect(back[name]).toBeCloseTo(value, 9);
        else expect(back[name]).toBe(value);
      }
    }
    expect(
      decodeVector(
        space,
        space.map(() => 1),
      ),
    ).toMatchObject({ conv1_filters: 128, learning_rate: 1e-2 });
  });

  it('enumerates a grid of active combinations only', () => {
    const hp = new HyperParameters();
    hp.int('filters', 32, 64, { step: 16 });
    hp.choice('optimizer', ['adam', 'sgd']);
    hp.conditionalScope('optimizer', ['sgd'], () => hp.float('momentum', 0, 0.9, { step: 0.3 }));
    hp.fixed('size', 64);
    const grid = enumerateGrid(hp.space);
    // 3 filters × (adam + sgd × 4 momenta)
    expect(grid).toHaveLength(3 * (1 + 4));
    expect(grid[0]).toEqual({ filters: 32, optimizer: 'adam', size: 64 });
    expect(grid[1]).toEqual({ filters: 32, optimizer: 'sgd', momentum: 0, size: 64 });
    expect(grid.map((g) => g.momentum).slice(1, 5)).toEqual([0, 0.3, 0.6, 0.9]);
    expect(new Set(grid.map(configKey)).size).toBe(grid.length);
  });

  it('spreads floats without a step over their sampling scale in a grid', () => {
    const hp = new HyperParameters();
    hp.float('lr', 1e-4, 1e-2, { sampling: 'log' });
    const grid = enumerateGrid(hp.space, { floatPoints: 3 }).map((g) => g.lr as number);
    expect(grid[0]).toBeCloseTo(1e-4, 12);
    expect(grid[1]).toBeCloseTo(1e-3, 12);
    expect(grid[2]).toBeCloseTo(1e-2, 12);
  });

  it('fills defaults and drops inactive values', () => {
    expect(activeValues(space, { optimizer: 'adam', momentum: 0.3, stray: 1 })).toEqual({
      conv1_filters: 32,
      dropout: 0.5,
      learning_rate: 1e-3,
      optimizer: 'adam',
      batch_norm: true,
      input_size: 64,
    });
  });
});
