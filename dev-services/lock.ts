// A lock file between processes: tests in parallel workers and the CLI may start the same
// service, build pgvector or run apt at the same moment.
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';
import { processStartTime, sleep } from './process.js';

export async function withLock<T>(
  path: string,
  fn: () => Promise<T>,
  timeoutMs = 15 * 60_000,
): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  const me = `${process.pid} ${processStartTime(process.pid)}`;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, me);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // A holder that died (killed test worker, Ctrl-C) leaves its file behind: take it over.
    if (holderGone(path)) {
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for lock ${path} (held by ${readHolder(path)})`);
    }
    await sleep(50);
  }
  try {
    return await fn();
  } finally {
    if (readHolder(path) === me) rmSync(path, { force: true });
  }
}

function readHolder(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function holderGone(path: string): boolean {
  const [pid, startTime] = readHolder(path).split(' ');
  // An empty file is a holder between open and write: give it time.
  if (!pid) return false;
  return processStartTime(Number(pid)) !== startTime;
}
