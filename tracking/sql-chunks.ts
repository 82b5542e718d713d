// SQLite's default limit on bound parameters is 32766 (PostgreSQL's 65535); lists bound
// into one statement go in slices well below it.
const CHUNK = 500;

export function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}
