/**
 * Progress for long commands: a redrawn bar with rate and ETA on a terminal, a plain line
 * every few seconds otherwise (CI logs, pipes), so logs stay readable.
 */
export interface Progress {
  update(done: number, total: number, note?: string): void;
  finish(): void;
}

export function createProgress(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
  options: { plainEveryMs?: number; elapsedSeconds?: number } = {},
): Progress {
  // A bar created mid-task (after the first batch) counts from when the task began.
  const started = performance.now() - (options.elapsedSeconds ?? 0) * 1000;
  const tty = stream.isTTY === true;
  const plainEveryMs = options.plainEveryMs ?? 5000;
  let lastDraw = 0;
  let last = { done: 0, total: 0, note: '' };
  const line = () => {
    const { done, total, note } = last;
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 && total > done ? `ETA ${formatDuration((total - done) / rate)}` : '';
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    const width = 24;
    const filled = total > 0 ? Math.round((width * done) / total) : width;
    const bar = tty ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    return `${label} ${bar}${done}/${total} ${pct}% ${rate.toFixed(0)}/s ${eta}${note ? ` ${note}` : ''}`.trimEnd();
  };
  return {
    update(done, total, note = '') {
      last = { done, total, note };
      const now = performance.now();
      if (tty && now - lastDraw > 100) {
        stream.write(`\r\x1b[2K${line()}`);
        lastDraw = now;
      } else if (!tty && now - lastDraw > plainEveryMs) {
        stream.write(`${line()}\n`);
        lastDraw = now;
      }
    },
    finish() {
      stream.write(tty ? `\r\x1b[2K${line()}\n` : `${line()}\n`);
    },
  };
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60
    ? `${m}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`
    : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
