import fs from 'node:fs';
import path from 'node:path';
import type * as TfNode from '@tensorflow/tfjs-node';
import { afterEach, describe, expect, it } from 'vitest';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { cnnModel } from '../../plugins/models/cnn.js';
import { HyperParameters } from '../../plugin-api/hyperparameters.js';
import {
  loadModelArtifact,
  saveModelArtifact,
  type ManifestInput,
} from '../../training/model-artifact.js';
import { createServedModel } from '../../serving/served-model.js';
import { pixelsToTensor } from '../../data/preprocess.js';
import { tempDir } from '../helpers/fixtures.js';

const tf = await loadTensorflow();
const labels = ['cat', 'dog', 'wild'];

async function savedCnn(dir: string) {
  const plugin = cnnModel();
  const hp = new HyperParameters({ dense_units: 64 });
  plugin.space(hp);
  const inputSpec = plugin.inputSpec(hp);
  const model = await plugin.build(hp, { tf, labels, input: inputSpec, seed: 3 });
  const manifest: ManifestInput = {
    plugin: plugin.name,
    pluginVersion: plugin.version ?? null,
    labels,
    inputSpec,
    hyperparameters: hp.values,
    embeddingLayer: plugin.embeddingLayer,
    epoch: 2,
    metrics: { val_accuracy: 0.9 },
  };
  const written = await saveModelArtifact(dir, model, manifest, { 'notes.txt': Buffer.from('hi') });
  return { model, manifest, written };
}

describe('model artifact', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });
  const dir = () => {
    const t = tempDir('menagerie-artifact-');
    cleanups.push(t.remove);
    return path.join(t.dir, 'model');
  };

  it('round-trips: same predictions, same embeddings, the manifest as written', async () => {
    const where = dir();
    const { model, manifest, written } = await savedCnn(where);
    expect(fs.readdirSync(where).sort()).toEqual([
      'menagerie.json',
      'model.json',
      'notes.txt',
      'weights.bin',
    ]);
    expect(written.tfjsVersion).toBe(tf.version.tfjs);
    expect(written.tensorflowVersion).toMatch(/^2\./);
    const loaded = await loadModelArtifact(where);
    expect(loaded.manifest).toEqual(written);
    expect(loaded.manifest).toMatchObject(manifest);
    const xs = tf.randomUniform([4, 64, 64, 3], 0, 1, 'float32', 1);
    const [a, b] = [model, loaded.model].map((m) => m.predict(xs) as TfNode.Tensor);
    expect(Array.from(await b!.data())).toEqual(Array.from(await a!.data()));
    // Served as it would be: one forward pass gives probabilities and the embedding.
    const served = createServedModel(tf, loaded.model, {
      ref: { name: 'm', version: 1 },
      labels: loaded.manifest.labels,
      inputSpec: loaded.manifest.inputSpec,
      embeddingLayer: loaded.manifest.embeddingLayer,
    });
    const pixels = Array.from({ length: 4 }, (_, i) => new Uint8Array(64 * 64 * 3).fill(i * 60));
    const { embeddings, probabilities } = served.forward(pixels);
    expect(embeddings.map((e) => e.length)).toEqual([64, 64, 64, 64]);
    // The CNN serves through native ops: the numbers predict gives, to float rounding.
    const expected = tf.tidy(
      () =>
        (
          model.predict(pixelsToTensor(tf, pixels, loaded.manifest.inputSpec)) as TfNode.Tensor
        ).arraySync() as number[][],
    );
    probabilities.forEach((row, i) =>
      row.forEach((p, k) => expect(p).toBeCloseTo(expected[i]![k]!, 5)),
    );
    tf.dispose([xs, a!, b!]);
    model.dispose();
    served.dispose();
  });

  it('replaces an existing artifact whole', async () => {
    const where = dir();
    const first = await savedCnn(where);
    first.model.dispose();
    const second = await savedCnn(where);
    second.model.dispose();
    expect(fs.readdirSync(path.dirname(where))).toEqual(['model']);
  });

  it.each([
    [
      'a missing manifest',
      (d: string) => fs.rmSync(path.join(d, 'menagerie.json')),
      /menagerie\.json cannot be read/,
    ],
    [
      'a manifest that is not JSON',
      (d: string) => fs.writeFileSync(path.join(d, 'menagerie.json'), '{'),
      /not valid JSON/,
    ],
    [
      'a manifest without labels',
      (d: string) => {
        const m = JSON.parse(fs.readFileSync(path.join(d, 'menagerie.json'), 'utf8'));
        fs.writeFileSync(path.join(d, 'menagerie.json'), JSON.stringify({ ...m, labels: [] }));
      },
      /labels should be a non-empty list/,
    ],
    [
      'labels that disagree with the model',
      (d: string) => {
        const m = JSON.parse(fs.readFileSync(path.join(d, 'menagerie.json'), 'utf8'));
        fs.writeFileSync(
          path.join(d, 'menagerie.json'),
          JSON.stringify({ ...m, labels: ['a', 'b'] }),
        );
      },
      /3 outputs, the manifest 2 labels/,
    ],
    [
      'an input spec naming an unknown decoder',
      (d: string) => {
        const m = JSON.parse(fs.readFileSync(path.join(d, 'menagerie.json'), 'utf8'));
        m.inputSpec.decoder = 'pillow';
        fs.writeFileSync(path.join(d, 'menagerie.json'), JSON.stringify(m));
      },
      /a decoder if any of sharp, tensorflow/,
    ],
    [
      'a missing model.json',
      (d: string) => fs.rmSync(path.join(d, 'model.json')),
      /does not load as a tfjs model/,
    ],
    [
      'truncated weights',
      (d: string) => fs.truncateSync(path.join(d, 'weights.bin'), 100),
      /does not load as a tfjs model/,
    ],
  ])('refuses %s with MODEL_ARTIFACT_INVALID', async (_what, damage, message) => {
    const where = dir();
    const { model } = await savedCnn(where);
    model.dispose();
    damage(where);
    const before = tf.memory().numTensors;
    const error = await loadModelArtifact(where).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'MODEL_ARTIFACT_INVALID',
      message: expect.stringMatching(message),
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names the layers when the embedding layer is unknown', async () => {
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [2], units: 2, name: 'only' })],
    });
    const serve = () =>
      createServedModel(tf, model, {
        ref: { name: 'm', version: 1 },
        labels: ['a', 'b'],
        inputSpec: { size: 1, channels: 3, fit: 'fill', scale: 1, offset: 0 },
        embeddingLayer: 'nope',
      });
    expect(serve).toThrow(/no layer 'nope' in the model \(layers: only\)/); // and frees it
  });
});
