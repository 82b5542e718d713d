// Proves the harness end to end (venv, anchor run, figures, ratio) on a job both sides do
// with the same native code underneath: sha256 of 10 MB. Expect a ratio near 1.
import { createHash } from 'node:crypto';
import { ensurePythonEnv, runPythonJson } from './python-env.js';
import { percentile, printFigure, printRatio, timeIt } from './report.js';

const MEGABYTES = 10;
const REPEATS = 7;

// Times inside the interpreter, so Python's start-up is not counted against it.
const PYTHON_SHA256 = `
import hashlib, json, sys, time
import PIL  # the venv must really hold the anchor's packages
size, repeats = int(sys.argv[1]), int(sys.argv[2])
data = (bytes(range(251)) * (size // 251 + 1))[:size]
samples = []
for _ in range(repeats):
    started = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    samples.append(time.perf_counter() - started)
print(json.dumps({"seconds": samples, "pillow": PIL.__version__}))
`;

export async function run(_args: string[]): Promise<void> {
  const { python } = await ensurePythonEnv({ packages: ['pillow'] });
  const size = MEGABYTES * 1024 * 1024;

  const anchor = await runPythonJson(python, ['-c', PYTHON_SHA256, String(size), String(REPEATS)]);
  const pythonSamples = anchor.seconds;
  if (!Array.isArray(pythonSamples) || !pythonSamples.every((s) => typeof s === 'number')) {
    throw new Error(`python anchor returned no timings: ${JSON.stringify(anchor)}`);
  }

  // Same bytes as the Python side: i mod 251.
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = i % 251;
  const nodeSamples: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const { seconds } = await timeIt(() => createHash('sha256').update(data).digest('hex'));
    nodeSamples.push(seconds);
  }

  const ours = MEGABYTES / percentile(nodeSamples, 50);
  const theirs = MEGABYTES / percentile(pythonSamples, 50);
  printFigure(
    `sha256 ${MEGABYTES} MB python-hashlib (pillow ${String(anchor.pillow)})`,
    theirs,
    'MB/s',
  );
  printFigure(`sha256 ${MEGABYTES} MB node-crypto`, ours, 'MB/s');
  printRatio('sha256 node-crypto vs python-hashlib', ours, theirs);
}
