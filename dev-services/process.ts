// Running commands and managing daemons by pid: the only process plumbing the services need.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Stop the command (SIGKILL) after this long; the result then has code null. */
  timeoutMs?: number;
  /** Send the child's stdout and stderr to this file instead of capturing them. */
  logFile?: string;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command to its exit; never throws for a non-zero exit (only when it can't be spawned). */
export function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // A daemon that forks keeps any pipe we give it open for its whole life, so commands that
    // start daemons write to a log file instead.
    const logFd = opts.logFile ? openSync(opts.logFile, 'a') : undefined;
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd],
    });
    if (logFd !== undefined) closeSync(logFd);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    // With pipes, 'close' comes after all output; with a log file there are no pipes to wait
    // for, and a daemon that forked keeps the file open long after its launcher exited.
    child.on(logFd === undefined ? 'close' : 'exit', (code: number | null) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? null : code, stdout, stderr, timedOut });
    });
  });
}

/** Runs a command and throws `what: …` with the output's tail when it fails. */
export async function runOk(
  what: string,
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code === 0) return r.stdout;
  const output = opts.logFile ? tailFile(opts.logFile) : tailText(`${r.stdout}\n${r.stderr}`);
  const why = r.timedOut ? `timed out after ${opts.timeoutMs} ms` : `exited with ${r.code}`;
  throw new Error(`${what}: \`${[cmd, ...args].join(' ')}\` ${why}\n${output}`);
}

export function tailText(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** The last lines of a log file, for error messages; reads only the file's end. */
export function tailFile(path: string, lines = 30): string {
  if (!existsSync(path)) return `(no log at ${path})`;
  const size = statSync(path).size;
  const length = Math.min(size, 64 * 1024);
  const buf = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, length, size - length);
  } finally {
    closeSync(fd);
  }
  return `--- ${path} (last lines) ---\n${tailText(buf.toString('utf8'), lines)}`;
}

/**
 * The kernel's start time of a process (clock ticks since boot), or undefined when it is gone
 * or a zombie. Stored next to a pid so that a reused pid is never mistaken for our daemon.
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name, which is in parentheses and may itself contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  if (state === 'Z' || state === 'X') return undefined;
  return fields[19]; // field 22 of stat(5), counted from the state (field 3)
}

export interface ProcessRef {
  name: string;
  pid: number;
  startTime: string;
}

export function processRef(name: string, pid: number): ProcessRef {
  const startTime = processStartTime(pid);
  if (startTime === undefined) throw new Error(`${name}: process ${pid} exited right after start`);
  return { name, pid, startTime };
}

export function isRunning(ref: ProcessRef): boolean {
  return processStartTime(ref.pid) === ref.startTime;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | Promise<T | undefined>,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/**
 * Signals a process and waits until it has exited, escalating to SIGKILL after `graceMs`.
 * Works on any pid (not just our children): it polls /proc rather than waiting on the child.
 */
export async function killAndWait(
  ref: ProcessRef,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 15_000,
): Promise<void> {
  if (!isRunning(ref)) return;
  const send = (sig: NodeJS.Signals) => {
    try {
      process.kill(ref.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  };
  send(signal);
  const gone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (isRunning(ref)) {
      if (Date.now() > deadline) return false;
      await sleep(10);
    }
    return true;
  };
  if (await gone(graceMs)) return;
  send('SIGKILL');
  if (!(await gone(5_000))) {
    throw new Error(`${ref.name}: process ${ref.pid} did not exit after SIGKILL`);
  }
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${what} must run as root (it installs Debian packages and runs as other users)`,
    );
  }
}
