import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TfNode from '@tensorflow/tfjs-node';
import { loadTensorflow } from '../../tf/tensorflow.js';

const tf = await loadTensorflow();

/** A MobileNet-shaped base (conv, batch norm, depthwise/pointwise blocks, classifier), 32×32. */
export async function saveMiniMobilenet(dir: string): Promise<void> {
  const input = tf.input({ shape: [32, 32, 3], name: 'input_1' });
  let x = tf.layers
    .conv2d({
      name: 'conv1',
      filters: 8,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      useBias: false,
    })
    .apply(input);
  x = tf.layers.batchNormalization({ name: 'conv1_bn' }).apply(x);
  x = tf.layers.reLU({ name: 'conv1_relu', maxValue: 6 }).apply(x);
  for (const block of [1, 2]) {
    x = tf.layers
      .depthwiseConv2d({ name: `conv_dw_${block}`, kernelSize: 3, padding: 'same', useBias: false })
      .apply(x);
    x = tf.layers.batchNormalization({ name: `conv_dw_${block}_bn` }).apply(x);
    x = tf.layers.reLU({ name: `conv_dw_${block}_relu`, maxValue: 6 }).apply(x);
    x = tf.layers
      .conv2d({ name: `conv_pw_${block}`, filters: 8 * (block + 1), kernelSize: 1, useBias: false })
      .apply(x);
    x = tf.layers.batchNormalization({ name: `conv_pw_${block}_bn` }).apply(x);
    x = tf.layers.reLU({ name: `conv_pw_${block}_relu`, maxValue: 6 }).apply(x);
  }
  x = tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d_1' }).apply(x);
  const out = tf.layers
    .dense({ name: 'conv_preds', units: 10, activation: 'softmax' })
    .apply(x) as TfNode.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  await model.save(pathToFileURL(dir).href);
  model.dispose();
}

/**
 * Serves the files of `dir` over HTTP on 127.0.0.1, recording every path asked for: a tfjs
 * model at a URL, for backbones that really go over the network.
 */
export async function serveFolder(
  dir: string,
): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const name = (req.url ?? '').slice(1);
    const file = path.join(dir, name);
    if (name.includes('/') || !fs.existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    });
    res.end(fs.readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
