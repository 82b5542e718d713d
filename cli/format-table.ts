import type { LabelSplitCount } from '../data/image-catalog.js';

/** Right-aligns numbers, left-aligns the first column: a table that reads in a terminal. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '),
    )
    .join('\n');
}

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
