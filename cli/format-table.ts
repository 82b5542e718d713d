import type { LabelSplitCount } from '../data/image-catalog.js';

/** Right-aligns numeric columns, left-aligns the rest: a table that reads in a terminal. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map(
    (_, i) => i > 0 && rows.length > 0 && rows.every((r) => NUMBER.test(String(r[i] ?? ''))),
  );
  return cells
    .map((r) =>
      r
        .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const NUMBER = /^(-?[\d.,]+(e-?\d+)?%?|)$/;

/** Counts per label × split, with totals, as printed after ingest and by `doctor`. */
export function formatCounts(counts: readonly LabelSplitCount[]): string {
  const splits = ['train', 'val', 'test'].filter((s) => counts.some((c) => c.split === s));
  const labels = [...new Set(counts.map((c) => c.label))];
  const get = (label: string, split: string) =>
    counts.find((c) => c.label === label && c.split === split)?.count ?? 0;
  const rows = labels.map((l) => [
    l,
    ...splits.map((s) => get(l, s)),
    splits.reduce((n, s) => n + get(l, s), 0),
  ]);
  const totals = splits.map((s) => labels.reduce((n, l) => n + get(l, s), 0));
  rows.push(['total', ...totals, totals.reduce((a, b) => a + b, 0)]);
  return formatTable(['label', ...splits, 'total'], rows);
}
