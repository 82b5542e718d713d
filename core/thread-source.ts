/**
 * The source of a worker thread that runs the TypeScript module at `entry` (a file URL), as
 * this process runs from source: the thread registers tsx first, since a worker does not
 * inherit the loader `bin/` registered.
 *
 * ```ts
 * const worker = new Worker(threadSource(new URL('./thread.ts', import.meta.url).href));
 * ```
 */
export function threadSource(entry: string): URL {
  const tsx = import.meta.resolve('tsx/esm/api');
  const code =
    `import { register } from ${JSON.stringify(tsx)}; register();\n` +
    `await import(${JSON.stringify(entry)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}
