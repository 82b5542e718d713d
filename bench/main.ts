// Dispatcher for `npm run bench -- <name> [args...]`: runs `run(args)` from bench/<name>.ts.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** What a benchmark module exports: `bench/<name>.ts` with `run(args)`. */
export interface BenchmarkModule {
  run(args: string[]): Promise<void>;
}

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
/** Files in bench/ that are harness, not benchmarks. */
const NOT_BENCHMARKS = new Set([
  'bench-services.ts',
  'main.ts',
  'paced-anchor.ts',
  'python-env.ts',
  'reference-champion.ts',
  'reference-cnn.ts',
  'report.ts',
  'served-workspace.ts',
]);

function availableBenchmarks(): string[] {
  return fs
    .readdirSync(BENCH_DIR, { withFileTypes: true })
    .filter(
      (entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'),
    )
    .map((entry) => entry.name)
    .filter((name) => !NOT_BENCHMARKS.has(name))
    .map((name) => name.slice(0, -'.ts'.length))
    .sort();
}

function isBenchmarkModule(value: unknown): value is BenchmarkModule {
  return (
    typeof value === 'object' && value !== null && 'run' in value && typeof value.run === 'function'
  );
}

const [name, ...args] = process.argv.slice(2);
const available = availableBenchmarks();

// Matching against the listing (not building a path from the argument) keeps `../x` out.
if (name === undefined || !available.includes(name)) {
  if (name !== undefined) console.error(`unknown benchmark: ${name}`);
  console.error('usage: npm run bench -- <name> [args...]; available benchmarks:');
  console.log(available.length > 0 ? available.join('\n') : '(none)');
  process.exit(2);
}

try {
  const loaded: unknown = await import(pathToFileURL(path.join(BENCH_DIR, `${name}.ts`)).href);
  if (!isBenchmarkModule(loaded)) {
    throw new Error(`bench/${name}.ts does not export \`async function run(args: string[])\``);
  }
  await loaded.run(args);
} catch (error) {
  // The stack matters for a bug in a benchmark; pip's tail is already in the message.
  console.error(
    `bench ${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exitCode = 1;
}
