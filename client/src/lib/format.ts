/** Display helpers shared by the pages. */

export const percent = (value: number, digits = 1) => `${(value * 100).toFixed(digits)}%`;

/** A metric as shown; null is how the API sends a NaN or infinite value. */
export function metricValue(value: number | null): string {
  if (value === null) return 'NaN';
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(4);
}

export function timestamp(ms: string | null | undefined): string {
  if (!ms) return '—';
  return new Date(Number(ms)).toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
}

export function date(ms: string | null | undefined): string {
  if (!ms) return '—';
  return new Date(Number(ms)).toLocaleDateString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
  });
}

export function duration(start: string, end: string | null): string {
  const ms = (end ? Number(end) : Date.now()) - Number(start);
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export const shortId = (id: string) => (id.length > 10 ? id.slice(0, 8) : id);

/** A score in [0, 1] (precision, F1, ECE…) with fixed digits, so columns line up. */
export function score(value: number | null, digits = 4): string {
  return value === null ? '—' : value.toFixed(digits);
}

/** A change in a score, signed: `+0.1000`, `-0.0500`, `0.0000`. */
export function signedScore(delta: number, digits = 4): string {
  return `${delta > 0 ? '+' : ''}${delta.toFixed(digits)}`;
}
