import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repo root: this file lives in bench/. */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_VENV_DIR = path.join(REPO_ROOT, 'bench', '.venv');
/** Written only after a successful install, so a crash mid-install is never trusted. */
const STAMP_FILE = '.menagerie-stamp.json';
/** How many lines of a failed command's output go into the error message. */
const TAIL_LINES = 25;

export interface PythonEnvOptions {
  /** pip requirement specs, e.g. `['pillow', 'tensorflow-cpu==2.21.0']`. */
  packages: string[];
  /** Virtualenv folder; default `bench/.venv` under the repo root. */
  dir?: string;
  /** Receives progress lines (venv creation, pip output); default: stderr. */
  log?: (line: string) => void;
}

interface Stamp {
  /** Every spec installed together by the last successful pip run. */
  packages: string[];
}

/**
 * Makes sure a virtualenv holds the given packages and returns its interpreter. The first
 * call creates the venv and runs pip; later calls with specs already installed only read a
 * stamp file, so they cost a millisecond. Nothing is installed outside the venv.
 *
 * ```ts
 * import { ensurePythonEnv, runPythonJson } from './python-env.js';
 *
 * const { python } = await ensurePythonEnv({ packages: ['pillow'] });
 * const result = await runPythonJson(python, ['bench/anchors/ingest_metadata.py', root, db]);
 * ```
 */
export async function ensurePythonEnv(options: PythonEnvOptions): Promise<{ python: string }> {
  const dir = path.resolve(options.dir ?? DEFAULT_VENV_DIR);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const requested = [...new Set(options.packages.map((spec) => spec.trim()).filter(Boolean))];
  const python = venvPython(dir);
  const stampPath = path.join(dir, STAMP_FILE);
  const stamp = readStamp(stampPath);

  if (stamp && fs.existsSync(python) && requested.every((spec) => stamp.packages.includes(spec))) {
    return { python };
  }

  if (!(await pipWorks(python))) {
    // No working pip means an interrupted or broken venv: start over rather than patch it.
    // Only ever delete a venv (or our own default folder), never an arbitrary `dir`.
    if (!isReplaceable(dir)) {
      throw new Error(`python-env: ${dir} exists and is not a virtualenv; refusing to replace it`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    log(`python-env: creating virtualenv ${displayPath(dir)}`);
    const started = performance.now();
    const created = await runCommand(basePython(), ['-m', 'venv', dir], () => {});
    if (created.code !== 0 || !(await pipWorks(python))) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(
        `python-env: \`${basePython()} -m venv ${dir}\` failed (exit ${created.code}); is python3 with ` +
          `the venv module installed?\n${tail(created.output)}`,
      );
    }
    log(`python-env: virtualenv created in ${seconds(started)}s`);
  }

  // Install the old and new specs in one resolve, so satisfying the new ones cannot
  // silently break the ones the stamp already vouches for.
  const all = [...new Set([...(stamp?.packages ?? []), ...requested])];
  fs.rmSync(stampPath, { force: true });
  if (all.length > 0) {
    log(`python-env: pip install ${all.join(' ')}`);
    const started = performance.now();
    // --retries 0: offline machines with a local mirror would otherwise back off on the
    // unreachable public index for every package; online a failed run is simply rerun.
    const pipArgs = ['-m', 'pip', 'install', '--retries', '0', '--timeout', '20'];
    pipArgs.push('--disable-pip-version-check', '--no-input', '--progress-bar', 'off', ...all);
    const installed = await runCommand(python, pipArgs, (line) => log(`pip: ${line}`));
    if (installed.code !== 0) {
      throw new Error(
        `python-env: pip install into ${dir} failed (exit ${installed.code}) for ${all.join(' ')}; ` +
          `last lines of pip output:\n${tail(installed.output)}`,
      );
    }
    log(`python-env: installed in ${seconds(started)}s`);
  }
  const next: Stamp = { packages: all };
  fs.writeFileSync(stampPath, `${JSON.stringify(next, null, 2)}\n`);
  return { python };
}

/**
 * Runs a Python script (an anchor) and parses the JSON object on the last line of its
 * stdout, which is how every anchor reports its figures. Throws with stderr's last lines
 * when the script fails or its last line is not a JSON object.
 *
 * ```ts
 * const { images_per_s } = await runPythonJson(python, ['bench/anchors/ingest_metadata.py', root, db]);
 * ```
 */
export async function runPythonJson(
  python: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Record<string, unknown>> {
  const result = await runCommand(python, args, () => {}, options);
  const what = `\`python ${args.join(' ')}\``;
  if (result.code !== 0) {
    throw new Error(
      `${what} failed (exit ${result.code}):\n${tail(result.stderr || result.output)}`,
    );
  }
  const last = result.stdout.trimEnd().split('\n').pop() ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${what} did not end with a JSON object line; got: ${last.slice(0, 200)}`);
  }
  return parsed as Record<string, unknown>;
}

function venvPython(dir: string): string {
  return process.platform === 'win32'
    ? path.join(dir, 'Scripts', 'python.exe')
    : path.join(dir, 'bin', 'python');
}

function basePython(): string {
  return process.platform === 'win32' ? 'python' : 'python3';
}

function isReplaceable(dir: string): boolean {
  if (!fs.existsSync(dir) || dir === DEFAULT_VENV_DIR) return true;
  return fs.existsSync(path.join(dir, 'pyvenv.cfg')) || fs.readdirSync(dir).length === 0;
}

function readStamp(stampPath: string): Stamp | undefined {
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(stampPath, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || !('packages' in parsed)) return undefined;
    const { packages } = parsed;
    if (!Array.isArray(packages) || !packages.every((spec) => typeof spec === 'string')) {
      return undefined;
    }
    return { packages };
  } catch {
    return undefined;
  }
}

async function pipWorks(python: string): Promise<boolean> {
  if (!fs.existsSync(python)) return false;
  const result = await runCommand(python, ['-m', 'pip', '--version'], () => {});
  return result.code === 0;
}

interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived, for error messages. */
  output: string;
}

/** Spawns without a shell, streaming each output line to `onLine` as it arrives. */
function runCommand(
  command: string,
  args: string[],
  onLine: (line: string) => void,
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let output = '';
    let pending = '';
    const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (stream === 'stdout') stdout += text;
      else stderr += text;
      output += text;
      pending += text;
      const lines = pending.split(/\r?\n/);
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) onLine(line);
    };
    child.stdout.on('data', collect('stdout'));
    child.stderr.on('data', collect('stderr'));
    // A missing executable surfaces as 'error', not an exit code; report it the same way.
    child.on('error', (error) =>
      resolve({ code: 127, stdout, stderr, output: `${output}${error.message}\n` }),
    );
    child.on('close', (code, signal) => {
      if (pending.trim()) onLine(pending);
      const tailNote = signal ? `killed by ${signal}\n` : '';
      resolve({ code: code ?? 1, stdout, stderr, output: output + tailNote });
    });
  });
}

function tail(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-TAIL_LINES).join('\n');
}

/** Relative to the working directory when inside it, absolute otherwise. */
function displayPath(dir: string): string {
  const relative = path.relative(process.cwd(), dir);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : dir;
}

function seconds(started: number): string {
  return ((performance.now() - started) / 1000).toFixed(1);
}
