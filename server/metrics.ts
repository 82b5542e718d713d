import type { ApolloServerPlugin } from '@apollo/server';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { MenagerieError } from '../core/errors.js';
import type { Role } from '../schema/context.js';
import type { PredictionService, RecordedPrediction } from '../serving/prediction-service.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import { sendRouteError } from './route-error.js';

/** Distinct operation names kept as labels; later ones are counted as `other`. */
const MAX_OPERATION_NAMES = 100;
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What the server reports about itself, in Prometheus text format at `GET /metrics`. */
export interface ServerMetrics {
  registry: Registry;
  /** Express middleware, early: counts and times every request by route and method. */
  http(req: Request, res: Response, next: NextFunction): void;
  /** Apollo plugin: counts and times GraphQL operations by name and type. */
  graphql(): ApolloServerPlugin;
  /** The prediction service, counting its answers by model version. */
  countPredictions(service: PredictionService): PredictionService;
  /** For the thumbnail cache's `onLookup`. */
  thumbnailLookup(result: 'hit' | 'miss'): void;
  /** `GET /metrics`: from loopback without a token, otherwise with a read token. */
  routes(authenticate: (authorization: string | undefined) => Role | null): Router;
}

/**
 * prom-client metrics on a registry of this server's own (no process-wide singleton):
 * HTTP requests and GraphQL operations with latency histograms, predictions by model
 * version, live TensorFlow tensors, running jobs, anonymous predictions in flight,
 * thumbnail cache hits, and Node's defaults (RSS, heap, event-loop lag).
 *
 * ```ts
 * const metrics = createServerMetrics({
 *   runningJobs: () => jobs.running().length,
 *   anonymousInFlight: () => ({ requests: 0, predicts: 0 }),
 * });
 * app.use(metrics.http);
 * app.use(metrics.routes(authenticate));
 * ```
 */
export function createServerMetrics(sources: {
  runningJobs: () => number;
  anonymousInFlight: () => { requests: number; predicts: number };
  /** Tensors the inference thread holds (the served model's weights live there). */
  inferenceTensors?: () => Promise<number>;
}): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const httpRequests = new Counter({
    name: 'menagerie_http_requests_total',
    help: 'HTTP requests answered, by route, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'menagerie_http_request_duration_seconds',
    help: 'Time from request to response, by route and method.',
    labelNames: ['route', 'method'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const operations = new Counter({
    name: 'menagerie_graphql_operations_total',
    help: 'GraphQL operations over HTTP, by operation name, type and outcome (ok or error).',
    labelNames: ['operation', 'type', 'outcome'] as const,
    registers: [registry],
  });
  const operationDuration = new Histogram({
    name: 'menagerie_graphql_operation_duration_seconds',
    help: 'GraphQL operation time, parse to response, by operation name and type.',
    labelNames: ['operation', 'type'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const predictions = new Counter({
    name: 'menagerie_predictions_total',
    help: 'Predictions answered, by the model version that answered.',
    labelNames: ['model', 'version'] as const,
    registers: [registry],
  });
  const thumbnails = new Counter({
    name: 'menagerie_thumbnail_cache_requests_total',
    help: 'Thumbnail requests, served from the disk cache (hit) or made (miss).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'menagerie_tf_tensors',
    help: 'Tensors TensorFlow.js holds in this process, its inference thread included (tf.memory().numTensors).',
    registers: [registry],
    async collect() {
      const here = (await loadTensorflow()).memory().numTensors;
      this.set(here + ((await sources.inferenceTensors?.()) ?? 0));
    },
  });
  new Gauge({
    name: 'menagerie_jobs_running',
    help: 'Training and tuning jobs this server runs now (its job queue).',
    registers: [registry],
    collect() {
      this.set(sources.runningJobs());
    },
  });
  new Gauge({
    name: 'menagerie_anonymous_requests_in_flight',
    help: 'GraphQL requests without a token in progress now.',
    registers: [registry],
    collect() {
      this.set(sources.anonymousInFlight().requests);
    },
  });
  new Gauge({
    name: 'menagerie_anonymous_predicts_in_flight',
    help: 'Predict requests without a token in progress now.',
    registers: [registry],
    collect() {
      this.set(sources.anonymousInFlight().predicts);
    },
  });

  const operationNames = new Set<string>();
  const operationLabel = (name: string | null | undefined) => {
    if (!name) return 'anonymous';
    if (operationNames.has(name)) return name;
    if (operationNames.size >= MAX_OPERATION_NAMES) return 'other';
    operationNames.add(name);
    return name;
  };
  const count = (p: RecordedPrediction) =>
    predictions.inc({ model: p.modelVersion.name, version: String(p.modelVersion.version) });

  return {
    registry,
    http(req, res, next) {
      const stop = httpDuration.startTimer();
      res.once('finish', () => {
        // The route pattern, not the path: ids never become labels.
        const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : req.baseUrl;
        const labels = { route: route || 'other', method: req.method };
        stop(labels);
        httpRequests.inc({ ...labels, status: String(res.statusCode) });
      });
      next();
    },
    graphql() {
      return {
        async requestDidStart() {
          const stop = operationDuration.startTimer();
          return {
            async willSendResponse({ operationName, operation, response }) {
              const labels = {
                operation: operationLabel(operationName),
                type: operation?.operation ?? 'unresolved',
              };
              stop(labels);
              const failed =
                response.body.kind === 'single' && !!response.body.singleResult.errors?.length;
              operations.inc({ ...labels, outcome: failed ? 'error' : 'ok' });
            },
          };
        },
      };
    },
    countPredictions(service) {
      return {
        ...service,
        async predict(bytes) {
          const p = await service.predict(bytes);
          count(p);
          return p;
        },
        async predictBatch(images) {
          const batch = await service.predictBatch(images);
          batch.forEach(count);
          return batch;
        },
      };
    },
    thumbnailLookup(result) {
      thumbnails.inc({ result });
    },
    routes(authenticate) {
      const router = express.Router();
      router.get('/metrics', async (req, res) => {
        try {
          // A bad token is refused wherever it comes from, as on /graphql.
          const role = authenticate(req.headers.authorization);
          if (role === null && !fromThisMachine(req)) {
            throw new MenagerieError(
              'UNAUTHENTICATED',
              'GET /metrics from another machine (or through a proxy) needs a bearer token ' +
                'of role read or higher',
            );
          }
          res.setHeader('cache-control', 'no-store');
          res.type(registry.contentType).send(await registry.metrics());
        } catch (error) {
          sendRouteError(res, error);
        }
      });
      return router;
    },
  };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;
const PROXY_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip'];

/**
 * A request from this machine, not relayed: its socket is loopback and it carries no
 * proxy header (a reverse proxy on this machine would make every client loopback).
 */
function fromThisMachine(req: Request): boolean {
  return (
    LOOPBACK.test(req.socket.remoteAddress ?? '') &&
    PROXY_HEADERS.every((h) => req.headers[h] === undefined)
  );
}
