/**
 * The inference thread's side of `createModelWorker` (model-worker.ts): loads versions with
 * the same checks as the main thread (`loadServedModel`: the plugin that built it, labels and
 * input spec against the registry, a transfer model's backbone and its weights' sha256) and
 * runs their forward passes, so TensorFlow's work never blocks the server's event loop.
 * Messages are handled one at a time, in arrival order: a forward posted after a load runs
 * on the loaded model.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { MenagerieError } from '../core/errors.js';
import { builtinPlugins } from '../plugins/builtins.js';
import { loadConfig } from '../plugins/plugin-config.js';
import { createPluginRegistry } from '../plugin-api/plugin-registry.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import { createBackboneLoader } from '../training/backbone-loader.js';
import { concatFloats, loadServedModel, type ServedModel } from './served-model.js';
import type { ThreadReply, ThreadRequest, WorkerLoaderConfig } from './model-worker.js';

const port = parentPort!;
const config = workerData as WorkerLoaderConfig;

const plugins = createPluginRegistry(builtinPlugins());
for (const { plugin } of (await loadConfig(config.configFile)).plugins) plugins.register(plugin);
const backbones = createBackboneLoader({ plugins, cacheDir: config.cacheDir });
const models = new Map<number, ServedModel>();

function reply(message: ThreadReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function failure(error: unknown): { code: string | null; message: string } {
  return {
    code: error instanceof MenagerieError ? error.code : null,
    message: error instanceof Error ? error.message : String(error),
  };
}

async function handle(request: ThreadRequest): Promise<void> {
  switch (request.kind) {
    case 'load': {
      try {
        const model = await loadServedModel(request.version, { plugins, backbones });
        models.set(request.modelId, model);
        reply({
          kind: 'loaded',
          id: request.id,
          embeddingSize: model.embeddingSize,
          ...(model.backbone && { backbone: model.backbone }),
        });
      } catch (error) {
        reply({ kind: 'failed', id: request.id, ...failure(error) });
      }
      return;
    }
    case 'forward': {
      const model = models.get(request.modelId);
      if (!model) {
        reply({
          kind: 'failed',
          id: request.id,
          code: 'INFERENCE_WORKER_FAILED',
          message: `the inference thread has no model ${request.modelId} (its load failed after a restart)`,
        });
        return;
      }
      try {
        const { pixels, count } = request;
        const each = pixels.length / count;
        const images = Array.from({ length: count }, (_, i) =>
          pixels.subarray(i * each, (i + 1) * each),
        );
        const out = model.forward(images);
        const probabilities = concatFloats(out.probabilities);
        const embeddings = concatFloats(out.embeddings);
        const features = out.features && concatFloats(out.features);
        reply(
          {
            kind: 'forwarded',
            id: request.id,
            probabilities,
            embeddings,
            ...(features && { features }),
          },
          [
            probabilities.buffer,
            embeddings.buffer,
            ...(features ? [features.buffer] : []),
          ] as ArrayBuffer[],
        );
      } catch (error) {
        reply({ kind: 'failed', id: request.id, ...failure(error) });
      }
      return;
    }
    case 'memory': {
      const tf = await loadTensorflow();
      reply({ kind: 'memory', id: request.id, numTensors: tf.memory().numTensors });
      return;
    }
    case 'dispose': {
      models.get(request.modelId)?.dispose();
      models.delete(request.modelId);
      return;
    }
  }
}

let queue = Promise.resolve();
port.on('message', (request: ThreadRequest) => {
  queue = queue.then(() => handle(request));
});
