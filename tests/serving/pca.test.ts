import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.js';
import { fitProjection, project } from '../../serving/pca.js';
import { loadTensorflow } from '../../tf/tensorflow.js';

const tf = await loadTensorflow();

describe('principal components', () => {
  // 600 points in 40 dimensions: three orthogonal directions with variances 25, 9 and 4,
  // small noise elsewhere, and an offset the fit must take out.
  const rng = createRng('pca');
  const D = 40;
  const basis = [0, 1, 2].map((k) => {
    const v = new Float32Array(D);
    for (let i = 0; i < D; i++) v[i] = Math.cos((k + 1) * (i + 0.5) * (Math.PI / D));
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
  const scales = [5, 3, 2];
  const rows = Array.from({ length: 600 }, () => {
    const row = new Float32Array(D).fill(10);
    basis.forEach((b, k) => {
      const c = rng.normal(0, scales[k]!);
      b.forEach((x, i) => (row[i]! += c * x));
    });
    for (let i = 0; i < D; i++) row[i]! += rng.normal(0, 0.05);
    return row;
  });

  it('finds the strongest directions, strongest first, and the mean', () => {
    const projection = fitProjection(tf, rows, 3, 1);
    expect(projection.mean.every((m) => Math.abs(m - 10) < 0.5)).toBe(true);
    basis.forEach((b, k) => {
      const component = projection.components.slice(k * D, (k + 1) * D);
      const cos = component.reduce((s, x, i) => s + x * b[i]!, 0) / Math.hypot(...component);
      expect(Math.abs(cos)).toBeGreaterThan(0.99);
    });
  });

  it('projects onto them: the spread along each follows its variance', () => {
    const projection = fitProjection(tf, rows, 3, 2);
    const projected = project(tf, projection, rows);
    expect(projected[0]).toHaveLength(3);
    const sd = [0, 1, 2].map((k) =>
      Math.sqrt(projected.reduce((s, p) => s + p[k]! ** 2, 0) / projected.length),
    );
    sd.forEach((s, k) => expect(s).toBeCloseTo(scales[k]!, 0));
  });

  it('refuses what it cannot fit', () => {
    expect(() => fitProjection(tf, rows.slice(0, 1), 2, 1)).toThrow(RangeError);
    expect(() => fitProjection(tf, rows, 41, 1)).toThrow(RangeError);
    expect(() => project(tf, fitProjection(tf, rows, 2, 1), [new Float32Array(3)])).toThrow(
      RangeError,
    );
  });
});
