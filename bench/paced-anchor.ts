// A Python anchor run as a live process that does one timed unit of work per request, so
// its runs and ours alternate and share whatever load the machine has at the moment.
import { spawn } from 'node:child_process';
import readline from 'node:readline';

export interface PacedAnchor {
  /** The next JSON line the anchor prints, unprompted (its ready or summary line). */
  next(): Promise<Record<string, unknown>>;
  /** Asks for one unit of work (a line on its stdin) and returns the JSON line it answers. */
  step(): Promise<Record<string, unknown>>;
  /** Closes its stdin; a paced anchor then prints its summary and exits. */
  close(): void;
}

/**
 * Starts `python script args...`; the script reads a line on stdin before each unit of
 * work and answers with one JSON line on stdout.
 *
 * ```ts
 * const anchor = pacedAnchor(python, ['anchors/predict_keras.py', 'batch', ..., '--paced']);
 * await anchor.next(); // ready, after its warm-up
 * const { images_per_s } = await anchor.step();
 * anchor.close();
 * ```
 */
export function pacedAnchor(python: string, args: string[]): PacedAnchor {
  const child = spawn(python, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  const next = async (): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.next();
    if (done) {
      const tail = stderr.split('\n').slice(-15).join('\n');
      throw new Error(`anchor ${args[0]} exited (${await exited}):\n${tail}`);
    }
    return JSON.parse(value) as Record<string, unknown>;
  };
  return {
    next,
    step: () => {
      child.stdin.write('\n');
      return next();
    },
    close: () => child.stdin.end(),
  };
}
