import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as TfNode from '@tensorflow/tfjs-node';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { mobilenetV2, mobilenetV2x140 } from '../../plugins/backbones/mobilenet-v2.js';
import { parseBundledLiteral, readPackagedModel } from '../../plugins/backbones/packaged-model.js';
import { tempDir } from '../helpers/fixtures.js';

const tf = await loadTensorflow();
const cache = tempDir('menagerie-backbones-');
afterAll(cache.remove);

const installed = (() => {
  const main = createRequire(import.meta.url).resolve('nsfwjs');
  let dir = path.dirname(main);
  while (!fs.existsSync(path.join(dir, 'package.json')) || !dir.endsWith('nsfwjs'))
    dir = path.dirname(dir);
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
    version: string;
  };
})();

/** Makes every way out to the network throw, and counts the attempts, while `run` runs. */
async function offline<T>(run: () => Promise<T>): Promise<{ result: T; attempts: string[] }> {
  const attempts: string[] = [];
  const refuse = (what: string) => () => {
    attempts.push(what);
    throw new Error(`network use during an offline load: ${what}`);
  };
  const saved = {
    fetch: globalThis.fetch,
    httpRequest: http.request,
    httpGet: http.get,
    httpsRequest: https.request,
    httpsGet: https.get,
    connect: net.Socket.prototype.connect,
  };
  globalThis.fetch = refuse('fetch') as typeof fetch;
  http.request = refuse('http.request') as typeof http.request;
  http.get = refuse('http.get') as typeof http.get;
  https.request = refuse('https.request') as typeof https.request;
  https.get = refuse('https.get') as typeof https.get;
  net.Socket.prototype.connect = refuse('socket.connect') as typeof net.Socket.prototype.connect;
  try {
    return { result: await run(), attempts };
  } finally {
    globalThis.fetch = saved.fetch;
    http.request = saved.httpRequest;
    http.get = saved.httpGet;
    https.request = saved.httpsRequest;
    https.get = saved.httpsGet;
    net.Socket.prototype.connect = saved.connect;
  }
}

describe('packaged backbones', () => {
  it.each([
    [mobilenetV2x140, 1792],
    [mobilenetV2, 1280],
  ])('%o loads from the installed npm package with no network', async (make, size) => {
    const plugin = make();
    // The guard itself works: a fetch in here would be caught and counted.
    const probe = await offline(async () => {
      try {
        await fetch('http://127.0.0.1:9/');
      } catch {
        // refused by the guard
      }
    });
    expect(probe.attempts).toEqual(['fetch']);
    const { result: backbone, attempts } = await offline(() =>
      plugin.load({ tf, cacheDir: cache.dir }),
    );
    try {
      expect(attempts).toEqual([]);
      expect(backbone.featureSize).toBe(size);
      expect(backbone.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(backbone.source).toEqual({
        kind: 'package',
        package: 'nsfwjs',
        packageVersion: installed.version,
        location: plugin.source.location,
      });
      const features = tf.tidy(() =>
        backbone.features(tf.randomUniform([2, 224, 224, 3], 0, 1, 'float32', 1)).arraySync(),
      );
      expect(features).toHaveLength(2);
      expect(features[0]).toHaveLength(size);
      expect(features.flat().every(Number.isFinite)).toBe(true);
    } finally {
      backbone.dispose();
    }
  });

  it('runs the ×1.4 graph natively with the same features as the graph itself', async () => {
    const backbone = await mobilenetV2x140().load({ tf, cacheDir: cache.dir });
    const packaged = await readPackagedModel('nsfwjs', 'mobilenet_v2_mid');
    const graph = await tf.loadGraphModel(tf.io.fromMemory(packaged));
    const node = (packaged.modelTopology as { node: { name: string }[] }).node.find((n) =>
      n.name.endsWith('feature_vector/SpatialSqueeze'),
    )!.name;
    try {
      const xs = tf.randomUniform([3, 224, 224, 3], 0, 1, 'float32', 2) as TfNode.Tensor4D;
      const native = backbone.features(xs);
      const reference = graph.execute(xs, node) as TfNode.Tensor;
      const diff = tf.tidy(() => native.sub(reference).abs().max().dataSync()[0]!);
      const scale = tf.tidy(() => reference.abs().max().dataSync()[0]!);
      expect(diff).toBeLessThan(scale * 1e-4);
      tf.dispose([xs, native, reference]);
    } finally {
      backbone.dispose();
      graph.dispose();
    }
  });

  it("gives an image the same features alone or among others (its batch doesn't matter)", async () => {
    const backbone = await mobilenetV2x140().load({ tf, cacheDir: cache.dir });
    try {
      const xs = tf.randomUniform([6, 224, 224, 3], 0, 1, 'float32', 3) as TfNode.Tensor4D;
      const together = tf.tidy(() => backbone.features(xs).arraySync());
      for (let i = 0; i < 6; i++) {
        const alone = tf.tidy(() =>
          backbone.features(xs.slice([i, 0, 0, 0], [1, 224, 224, 3])).arraySync(),
        );
        expect(alone[0]).toEqual(together[i]);
      }
      xs.dispose();
    } finally {
      backbone.dispose();
    }
  });
});

describe('reading a packaged model', () => {
  const bundle = (literal: string) =>
    `!function(e){"object"==typeof exports?module.exports=e():window.x=e()}(function(){return function r(e,n,t){}({1:[function(a,b,c){b.exports=${literal}},{}]},{},[1])(1)});`;

  it('reads literals only: objects, arrays, strings, numbers, !0 and !1', () => {
    expect(
      parseBundledLiteral(bundle('{a:[1,.5,-2e3],"b":!0,c:!1,d:null,e:"x\\ny"}'), 'f'),
    ).toEqual({
      a: [1, 0.5, -2000],
      b: true,
      c: false,
      d: null,
      e: 'x\ny',
    });
  });

  it.each([
    ['a call', '{a:require("child_process")}'],
    ['an identifier', '{a:process}'],
    ['a template', '{a:`x`}'],
    ['a prototype key', '{__proto__:{}}'],
    ['code after the literal', '{a:1};evil()'],
  ])('refuses %s, never running it', (_what, literal) => {
    expect(() => parseBundledLiteral(bundle(literal), 'f.min.js')).toThrow(
      expect.objectContaining({ code: 'MODEL_BASE_UNAVAILABLE' }),
    );
  });

  it('refuses a file that is not a one-module bundle', () => {
    expect(() => parseBundledLiteral('module.exports = {}', 'f.js')).toThrow(
      /not a browserify bundle/,
    );
  });
});
