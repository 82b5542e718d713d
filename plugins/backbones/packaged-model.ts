import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { MenagerieError } from '../../core/errors.js';
import type { WeightSpec } from '../../tf/saved-model-writer.js';

/**
 * A tfjs model shipped inside an installed npm package as JavaScript files, the way nsfwjs
 * 4.x ships its models: `dist/models/<name>/model.min.js` (model.json as a literal) and a
 * `<shard>.min.js` per weight shard (a base64 string), each wrapped in a browserify bundle.
 * The files are parsed, never run: only JavaScript literals are accepted, so a tampered
 * package cannot execute code through this loader. Nothing touches the network.
 */
export interface PackagedModel {
  /** The package and the version installed. */
  package: string;
  packageVersion: string;
  /** The model's folder inside the package. */
  dir: string;
  modelTopology: unknown;
  format: string | undefined;
  weightSpecs: WeightSpec[];
  /** The weight bytes as shipped (quantised), in manifest order. */
  weightData: ArrayBuffer;
  /** sha256 of `weightData`. */
  weightsSha256: string;
}

/**
 * Reads `<package>/dist/models/<model>/` of the installed package.
 *
 * ```ts
 * const model = await readPackagedModel('nsfwjs', 'mobilenet_v2_mid');
 * const graph = await tf.loadGraphModel(tf.io.fromMemory(model));
 * ```
 */
export async function readPackagedModel(pkg: string, model: string): Promise<PackagedModel> {
  const { dir: packageDir, version } = await findPackage(pkg);
  const dir = path.join(packageDir, 'dist', 'models', model);
  const modelFile = path.join(dir, 'model.min.js');
  const json = parseBundledLiteral(await readFile(modelFile), modelFile);
  const manifest = isRecord(json) ? json['weightsManifest'] : undefined;
  if (!isRecord(json) || !Array.isArray(manifest)) {
    throw unavailable(`${modelFile} holds no model.json with a weightsManifest`);
  }
  const specs: WeightSpec[] = [];
  const shards: Buffer[] = [];
  for (const group of manifest as { paths?: unknown; weights?: unknown }[]) {
    if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw unavailable(`${modelFile}: a weights group has no paths or weights`);
    }
    for (const shard of group.paths) {
      if (typeof shard !== 'string' || !/^[\w.-]+$/.test(shard)) {
        throw unavailable(`${modelFile}: shard name ${JSON.stringify(shard)} is not a file name`);
      }
      const file = path.join(dir, `${shard.replace(/\.bin$/, '')}.min.js`);
      const base64 = parseBundledLiteral(await readFile(file), file);
      if (typeof base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) {
        throw unavailable(`${file} does not hold one base64 string`);
      }
      shards.push(Buffer.from(base64, 'base64'));
    }
    specs.push(...(group.weights as WeightSpec[]));
  }
  const bytes = Buffer.concat(shards);
  const expected = specs.reduce((sum, spec) => sum + specBytes(spec), 0);
  if (expected !== bytes.length) {
    throw unavailable(
      `${dir}: the weight specs need ${expected} bytes, the shards hold ${bytes.length}`,
    );
  }
  return {
    package: pkg,
    packageVersion: version,
    dir,
    modelTopology: json['modelTopology'],
    format: typeof json['format'] === 'string' ? json['format'] : undefined,
    weightSpecs: specs,
    weightData: bytes.buffer.slice(
      bytes.byteOffset,
      bytes.byteOffset + bytes.byteLength,
    ) as ArrayBuffer,
    weightsSha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

function unavailable(message: string, cause?: unknown): MenagerieError {
  return new MenagerieError('MODEL_BASE_UNAVAILABLE', message, { cause });
}

async function readFile(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    throw unavailable(`${file} cannot be read: ${(error as Error).message}`, error);
  }
}

/** The installed package's folder and version: its main entry resolves; walk up from it. */
async function findPackage(pkg: string): Promise<{ dir: string; version: string }> {
  let dir: string;
  try {
    // `<pkg>/package.json` may be blocked by the package's `exports`; its main entry is not.
    dir = path.dirname(createRequire(import.meta.url).resolve(pkg));
  } catch (error) {
    throw unavailable(`the npm package ${pkg} is not installed (npm ci installs it)`, error);
  }
  for (;;) {
    const json = await fs
      .readFile(path.join(dir, 'package.json'), 'utf8')
      .then((text) => JSON.parse(text) as { name?: unknown; version?: unknown })
      .catch(() => null);
    if (json?.name === pkg) return { dir, version: String(json.version) };
    const up = path.dirname(dir);
    if (up === dir) throw unavailable(`no package.json of ${pkg} above its main entry`);
    dir = up;
  }
}

const DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

function specBytes(spec: WeightSpec): number {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const bytes = DTYPE_BYTES[dtype];
  if (bytes === undefined) throw unavailable(`weight ${spec.name} has dtype ${dtype}`);
  return spec.shape.reduce((a, b) => a * b, 1) * bytes;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type Literal = null | boolean | number | string | Literal[] | { [key: string]: Literal };

/**
 * The literal a minified browserify bundle exports as its one module:
 * `!function(…){…}({1:[function(a,b,c){b.exports=<literal>},{}]},{},[1])(1)});`.
 * The wrapper is matched before and after the literal; the literal is parsed, never run.
 */
export function parseBundledLiteral(source: string, file: string): Literal {
  const head =
    /\(\{1:\[function\(([A-Za-z_$][\w$]*),([A-Za-z_$][\w$]*),([A-Za-z_$][\w$]*)\)\{\2\.exports=/g;
  const match = head.exec(source);
  if (!source.startsWith('!function(') || !match) {
    throw unavailable(`${file} is not a browserify bundle of one literal`);
  }
  if (head.exec(source)) throw unavailable(`${file} holds more than one module`);
  const parser = new LiteralParser(source, file);
  parser.pos = match.index + match[0].length;
  const value = parser.value();
  const tail = source.slice(parser.pos).trim();
  if (!/^\},\{\}\]\},\{\},\[1\]\)\(1\)\}\);?$/.test(tail)) {
    throw unavailable(`${file} has code after its literal: ${JSON.stringify(tail.slice(0, 80))}`);
  }
  return value;
}

/** JavaScript literals only: objects, arrays, strings, numbers, true/false/null, !0/!1. */
class LiteralParser {
  pos = 0;

  constructor(
    private readonly source: string,
    private readonly file: string,
  ) {}

  value(): Literal {
    this.skipSpace();
    const c = this.source[this.pos];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"' || c === "'") return this.string();
    if (this.source.startsWith('!0', this.pos) || this.source.startsWith('!1', this.pos)) {
      this.pos += 2;
      return this.source[this.pos - 1] === '0';
    }
    if (c !== undefined && /[-+.\d]/.test(c)) return this.number();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (
        this.source.startsWith(word, this.pos) &&
        !/[\w$]/.test(this.source[this.pos + word.length] ?? '')
      ) {
        this.pos += word.length;
        return value;
      }
    }
    return this.fail('a literal');
  }

  private fail(expected: string): never {
    const near = this.source.slice(Math.max(0, this.pos - 20), this.pos + 20);
    throw unavailable(
      `${this.file}: expected ${expected} at ${this.pos}, near ${JSON.stringify(near)}`,
    );
  }

  private skipSpace(): void {
    while (/\s/.test(this.source[this.pos] ?? '')) this.pos++;
  }

  private expect(char: string): void {
    this.skipSpace();
    if (this.source[this.pos] !== char) this.fail(`'${char}'`);
    this.pos++;
  }

  private number(): number {
    const match = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/.exec(
      this.source.slice(this.pos, this.pos + 64),
    );
    if (!match) this.fail('a number');
    this.pos += match[0].length;
    return Number(match[0]);
  }

  private string(): string {
    const quote = this.source[this.pos++]!;
    let out = '';
    for (;;) {
      // Copy the run up to the next quote or backslash at once: shards are megabytes long.
      const end = this.source.indexOf(quote, this.pos);
      const escape = this.source.indexOf('\\', this.pos);
      if (end < 0) this.fail('the end of the string');
      const stop = escape >= 0 && escape < end ? escape : end;
      const run = this.source.slice(this.pos, stop);
      if (/[\n\r]/.test(run)) this.fail('no line break in a string');
      out += run;
      this.pos = stop + 1;
      if (stop === end) return out;
      const code = this.source[this.pos++];
      const simple: Record<string, string> = {
        n: '\n',
        t: '\t',
        r: '\r',
        b: '\b',
        f: '\f',
        v: '\v',
        '0': '\0',
        '"': '"',
        "'": "'",
        '\\': '\\',
        '/': '/',
      };
      if (code !== undefined && code in simple) out += simple[code];
      else if (code === 'u' || code === 'x') {
        const digits = this.source.slice(this.pos, this.pos + (code === 'u' ? 4 : 2));
        if (!/^[0-9a-fA-F]+$/.test(digits) || digits.length !== (code === 'u' ? 4 : 2))
          this.fail('a hex escape');
        out += String.fromCharCode(parseInt(digits, 16));
        this.pos += digits.length;
      } else this.fail('a known escape');
    }
  }

  private key(): string {
    this.skipSpace();
    const c = this.source[this.pos];
    if (c === '"' || c === "'") return this.string();
    const match = /^(?:[A-Za-z_$][\w$]*|\d+)/.exec(this.source.slice(this.pos, this.pos + 256));
    if (!match) this.fail('a key');
    this.pos += match[0].length;
    return match[0];
  }

  private object(): { [key: string]: Literal } {
    this.expect('{');
    const out: { [key: string]: Literal } = {};
    this.skipSpace();
    if (this.source[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      const key = this.key();
      if (key === '__proto__') this.fail('a key other than __proto__');
      this.expect(':');
      out[key] = this.value();
      this.skipSpace();
      const c = this.source[this.pos++];
      if (c === '}') return out;
      if (c !== ',') this.fail("',' or '}'");
    }
  }

  private array(): Literal[] {
    this.expect('[');
    const out: Literal[] = [];
    this.skipSpace();
    if (this.source[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.skipSpace();
      const c = this.source[this.pos++];
      if (c === ']') return out;
      if (c !== ',') this.fail("',' or ']'");
    }
  }
}
