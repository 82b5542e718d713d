import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { GraphQLSchema } from 'graphql';
import type { ClassType, NonEmptyArray } from 'type-graphql';
import type { ArtifactStore } from '../data/artifact-store.js';
import type { BlobStore } from '../data/blob-store.js';
import type { OpenDatabase } from '../data/database.js';
import { isMenagerieError, MenagerieError } from '../core/errors.js';
import { createDeadline } from '../core/deadline.js';
import { createImageService } from '../data/image-service.js';
import { createThumbnailCache } from '../data/thumbnail-cache.js';
import { createUploadKeeper, type UploadRetention } from '../data/upload-retention.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { BackboneLoader } from '../training/backbone-loader.js';
import { createModelEvaluations, type WorstError } from '../registry/model-evaluations.js';
import { createModelRegistry } from '../registry/model-registry.js';
import type { TrackingStore } from '../tracking/tracking-store.js';
import { createModelServing, DEFAULT_SERVING_MODEL } from '../serving/model-serving.js';
import { createPredictionService } from '../serving/prediction-service.js';
import { buildMenagerieSchema, RESOLVERS } from '../schema/build-schema.js';
import {
  createRequestLoaders,
  type GraphQLContext,
  type MenagerieEvents,
  type MenagerieServices,
  type Role,
} from '../schema/context.js';
import { randomUUID } from 'node:crypto';
import { createEventHub, type EventHub } from '../core/event-hub.js';
import { createPostgresEventHub } from '../core/postgres-event-hub.js';
import { createRedisEventHub } from '../core/redis-event-hub.js';
import { createAuthenticator, parseTokens, type ApiToken } from './auth.js';
import { requirePreflight } from './csrf.js';
import { formatError, toGraphQLError } from './error-format.js';
import { graphqlErrorHandler } from './graphql-error-handler.js';
import {
  databaseReadiness,
  healthRoutes,
  queueReadiness,
  storeReadiness,
  type ReadinessCheck,
} from './health.js';
import { imageRoutes } from './image-routes.js';
import { createIngestService, parseIngestRoots } from '../jobs/ingest-service.js';
import { createJobRunner, type JobConfig } from '../jobs/job-runner.js';
import { createQueueJobRunner, queueConfigFromEnv, type QueueConfig } from '../jobs/job-queue.js';
import { runArtifactRoutes } from './run-artifact-routes.js';
import { evaluationRoutes } from './evaluation-routes.js';
import { playgroundRoutes, type PlaygroundOptions } from './playground.js';
import { noIntrospection } from './introspection.js';
import { createServerMetrics } from './metrics.js';
import { multipartUploads, uploadStatusPlugin } from './multipart.js';
import {
  anonymousLimiter,
  DEFAULT_ANONYMOUS_LIMITS,
  type AnonymousLimits,
} from './anonymous-limits.js';
import { deadlinePlugin, enforceDeadlines } from './query-deadline.js';
import {
  DEFAULT_QUERY_LIMITS,
  queryLimitRules,
  refuseLongQueries,
  type QueryLimits,
} from './query-limits.js';
import { queryLimitsPlugin } from './query-limits-plugin.js';
import { jsonLogger, requestLogging, requestStore, type Logger } from './request-log.js';
import { requestLogPlugin } from './request-log-plugin.js';
import {
  createSubscriptionServer,
  DEFAULT_WEBSOCKET_LIMITS,
  type WebSocketLimits,
} from './websocket.js';

export const GRAPHQL_PATH = '/graphql';
export const DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024;
export const DEFAULT_MAX_FILES = 10;

/** Node's HTTP server timeouts, in milliseconds; a request past them is answered 408 and closed. */
export interface HttpTimeouts {
  /** To receive a request's headers (default 20 s: slowloris). */
  headersMs: number;
  /** To receive a whole request, body included (default 120 s: 100 MB at ~1 MB/s). */
  requestMs: number;
  /** An idle keep-alive connection is closed after this long (default 5 s). */
  keepAliveMs: number;
}

export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = {
  headersMs: 20_000,
  requestMs: 120_000,
  keepAliveMs: 5_000,
};

export interface ServerConfig {
  /** Default 4000; 0 picks a free port (tests). */
  port?: number;
  /** Default 127.0.0.1: exposing the server is a decision, not a default. */
  host?: string;
  /** Bearer tokens, added to those in `MENAGERIE_TOKENS` (`role:token,…`). */
  tokens?: readonly ApiToken[];
  /** Refuse every mutation but public ones (predict). */
  readOnly?: boolean;
  /** Per uploaded file, in bytes (default 10 MB). */
  maxFileSize?: number;
  /** Files per request (default 10). */
  maxFiles?: number;
  /**
   * A multipart request announcing more bytes is refused before any is read (default
   * maxFiles × maxFileSize + 1 MB).
   */
  maxRequestSize?: number;
  /** Pixel limit for uploaded images (default data/image-probe's). */
  maxPixels?: number;
  /** Depth, cost, aliases, tokens, directives and the query deadline: see QueryLimits. */
  limits?: Partial<QueryLimits>;
  /** Answer `__schema`/`__type` (default true); false refuses them, and the playground says so. */
  introspection?: boolean;
  /** How long and how much of the uploads behind predictions are kept for feedback. */
  uploadRetention?: Partial<UploadRetention>;
  /** What clients without a token may send at once, and how many predictions, per address. */
  anonymousLimits?: Partial<AnonymousLimits>;
  /** Header, request and keep-alive timeouts of the HTTP server. */
  httpTimeouts?: Partial<HttpTimeouts>;
  /** WebSocket message size and connection cap. */
  websocket?: Partial<WebSocketLimits>;
  /** Receives one entry per request; default JSON lines on stdout. */
  logger?: Logger;
  /** Checks `/readyz` runs besides the database's and the model's (same name: replaces it). */
  readiness?: readonly ReadinessCheck[];
  /** GraphiQL for browsers at /graphql (default on). */
  playground?: boolean | PlaygroundOptions;
  /** How long close() waits for in-flight requests before cutting them (default 10 s). */
  shutdownGraceMs?: number;
  /** The registered model whose champion predict serves (default $MENAGERIE_MODEL, else `faces`). */
  servingModel?: string;
  /** How often a champion promoted elsewhere (the CLI) is picked up, in ms (default 5000). */
  championPollMs?: number;
  /** Compute embeddings in a child process for each version registered or served (default on). */
  computeEmbeddings?: boolean;
  /**
   * The pretrained backbone whose feature space similar images search by default (default
   * `menagerie:mobilenet_v2_140`); null: no feature space, similar images use the serving
   * version's embeddings.
   */
  similarBackbone?: string | null;
  /** How long after the last added image the feature space takes new images in (30 s). */
  featureRefreshMs?: number;
  /** Below this confidence a prediction is flagged `uncertain` (default 0.5). */
  uncertaintyThreshold?: number;
  /** Training, tuning and evaluation child processes: how many at once (default 1), timeouts. */
  jobs?: JobConfig;
  /** Folders `ingest` may read (default $MENAGERIE_INGEST_ROOTS; none: ingest is refused). */
  ingestRoots?: readonly string[];
  /**
   * The BullMQ queue on Redis (default $MENAGERIE_QUEUE_URL; null: none). When set, training,
   * tuning (a distributed search) and evaluation jobs are queued for `menagerie worker`s
   * instead of forked, events go through Redis pub/sub to every replica, and the job limit
   * counts the whole cluster's jobs.
   */
  queueUrl?: string | null;
  /**
   * Without a queue, how events reach other replicas: `local` (in process, the default) or
   * `postgres` (LISTEN/NOTIFY on the workspace's PostgreSQL; default $MENAGERIE_EVENTS).
   * With a queue they always go through Redis.
   */
  events?: 'local' | 'postgres';
  /** Lock, stall check and key prefix of the queue (default from the environment), trials in flight. */
  queue?: Partial<Omit<QueueConfig, 'url'>> & { tuningParallelism?: number };
}

export interface ServerOptions {
  workspace: {
    dataDir: string;
    database: OpenDatabase;
    blobs: BlobStore;
    /** Where model versions saved in a remote store (S3) are fetched from; local when absent. */
    artifacts?: ArtifactStore;
    plugins: PluginRegistry;
    tracking: TrackingStore;
    /** Pretrained backbones for transfer models, shared with the rest of the process. */
    backbones: BackboneLoader;
    /** The config file that listed the plugins; job processes load the same one. */
    configFile?: string;
  };
  config?: ServerConfig;
  /** Resolver classes; default every resolver in schema/build-schema.ts. */
  resolvers?: NonEmptyArray<ClassType>;
  /** Services added to or replacing the defaults, for parts that bring their own. */
  services?: Partial<MenagerieServices>;
}

export interface MenagerieServer {
  app: express.Express;
  httpServer: http.Server;
  /** The GraphQL endpoint, e.g. `http://127.0.0.1:4000/graphql`. */
  url: string;
  schema: GraphQLSchema;
  services: MenagerieServices;
  /** Adds a `/readyz` check, e.g. once the inference engine exists. */
  addReadinessCheck(check: ReadinessCheck): void;
  /** Stops accepting connections, lets in-flight requests finish, then closes sockets. */
  close(): Promise<void>;
}

/**
 * Starts the GraphQL API, the image routes, health probes and the playground on one HTTP
 * server, with subscriptions over WebSocket at the same path.
 *
 * ```ts
 * const workspace = await openWorkspace();
 * const server = await createServer({ workspace, config: { port: 4000, tokens: [{ role: 'admin', token }] } });
 * console.log(server.url);
 * await server.close();
 * ```
 */
export async function createServer(options: ServerOptions): Promise<MenagerieServer> {
  const { workspace } = options;
  const config = options.config ?? {};
  const log = config.logger ?? jsonLogger;
  const limits: QueryLimits = { ...DEFAULT_QUERY_LIMITS, ...config.limits };
  const authenticate = createAuthenticator([
    ...(config.tokens ?? []),
    ...parseTokens(process.env.MENAGERIE_TOKENS),
  ]);
  const readOnly = config.readOnly ?? false;
  const maxFileSize = config.maxFileSize ?? DEFAULT_MAX_FILE_SIZE;
  const maxFiles = config.maxFiles ?? DEFAULT_MAX_FILES;
  const timeouts = checkTimeouts({ ...DEFAULT_HTTP_TIMEOUTS, ...config.httpTimeouts });
  const limitAnonymous = anonymousLimiter(
    { ...DEFAULT_ANONYMOUS_LIMITS, ...config.anonymousLimits },
    authenticate,
  );
  const metrics = createServerMetrics({
    runningJobs: () => services.jobs.running().length,
    anonymousInFlight: limitAnonymous.inFlight,
    inferenceTensors: () => services.serving.inferenceTensors(),
  });

  const images =
    options.services?.images ?? createImageService(workspace, { maxPixels: config.maxPixels });
  const registry = options.services?.registry ?? createModelRegistry({ db: workspace.database.db });
  const evaluations =
    options.services?.evaluations ?? createModelEvaluations({ db: workspace.database.db });
  const serving =
    options.services?.serving ??
    (await createModelServing({
      database: workspace.database,
      dataDir: workspace.dataDir,
      registry,
      plugins: workspace.plugins,
      ...(workspace.artifacts && { artifacts: workspace.artifacts }),
      backbones: workspace.backbones,
      blobs: workspace.blobs,
      ...(workspace.configFile !== undefined && { configFile: workspace.configFile }),
      modelName: config.servingModel ?? (process.env.MENAGERIE_MODEL || DEFAULT_SERVING_MODEL),
      ...(config.championPollMs !== undefined && { pollIntervalMs: config.championPollMs }),
      ...(config.similarBackbone !== undefined && { similarBackbone: config.similarBackbone }),
      ...(config.featureRefreshMs !== undefined && { featureRefreshMs: config.featureRefreshMs }),
      ...(config.computeEmbeddings !== undefined && {
        computeEmbeddings: config.computeEmbeddings,
      }),
      ...(config.uncertaintyThreshold !== undefined && {
        uncertaintyThreshold: config.uncertaintyThreshold,
      }),
      onError: (error) =>
        log({
          level: 'error',
          msg: 'serving',
          error: error instanceof Error ? error.message : String(error),
        }),
    }));
  const queueUrl =
    config.queueUrl === undefined ? (queueConfigFromEnv()?.url ?? null) : config.queueUrl;
  const queue: QueueConfig | null = queueUrl
    ? {
        ...queueConfigFromEnv({ ...process.env, MENAGERIE_QUEUE_URL: queueUrl }),
        ...config.queue,
        url: queueUrl,
      }
    : null;
  const redisEvents = queue
    ? createRedisEventHub<MenagerieEvents>({
        url: queue.url,
        ...(queue.prefix !== undefined && { prefix: queue.prefix }),
        onError: (error) => log({ level: 'error', msg: 'events', error: error.message }),
      })
    : null;
  await redisEvents?.ready();
  const pgEvents = !queue ? postgresEvents(workspace.database, config, log) : null;
  await pgEvents?.ready();
  const sharedEvents = redisEvents ?? pgEvents;
  const events = sharedEvents ?? createEventHub<MenagerieEvents>();
  const jobContext = {
    db: workspace.database.db,
    blobs: workspace.blobs,
    dataDir: workspace.dataDir,
    plugins: workspace.plugins,
    tracking: workspace.tracking,
    backbones: workspace.backbones,
  };
  const services: MenagerieServices = {
    database: workspace.database,
    blobs: workspace.blobs,
    images,
    events,
    plugins: workspace.plugins,
    tracking: workspace.tracking,
    registry,
    evaluations,
    serving,
    predictions: createPredictionService({
      database: workspace.database,
      blobs: workspace.blobs,
      images,
      engine: serving.engine,
      features: serving.features,
      ...(config.maxPixels !== undefined && { maxPixels: config.maxPixels }),
      // A read-only server takes no feedback, so it keeps no upload.
      uploads: createUploadKeeper(workspace, {
        keep: !readOnly,
        ...(config.uploadRetention && { retention: config.uploadRetention }),
      }),
    }),
    jobs: queue
      ? createQueueJobRunner({
          queue,
          context: jobContext,
          evaluations,
          // Every replica hears the workers through QueueEvents: deliver here only.
          publish: (update) => redisEvents!.deliver('runProgress', update),
          publishEvaluation: (update) => redisEvents!.deliver('evaluationProgress', update),
          config: {
            ...config.jobs,
            ...(config.queue?.tuningParallelism !== undefined && {
              tuningParallelism: config.queue.tuningParallelism,
            }),
          },
        })
      : createJobRunner({
          dataDir: workspace.dataDir,
          ...(workspace.configFile !== undefined && { configFile: workspace.configFile }),
          tracking: workspace.tracking,
          publish: (update) => services.events.publish('runProgress', update),
          evaluations,
          publishEvaluation: (update) => services.events.publish('evaluationProgress', update),
          ...(config.jobs && { config: config.jobs }),
        }),
    ingest: createIngestService({
      database: workspace.database,
      blobs: workspace.blobs,
      roots: config.ingestRoots ?? parseIngestRoots(process.env.MENAGERIE_INGEST_ROOTS),
      ...(config.maxPixels !== undefined && { maxPixels: config.maxPixels }),
    }),
    ...options.services,
  };
  services.predictions = metrics.countPredictions(services.predictions);
  if (queue && !options.services?.ingest) {
    // Confined here, read by whichever worker takes the job: the roots are a shared mount.
    const confined = services.ingest;
    const queued = services.jobs as ReturnType<typeof createQueueJobRunner>;
    services.ingest = {
      roots: confined.roots,
      resolveFolder: (source) => confined.resolveFolder(source),
      run: async (source) => queued.ingest(await confined.resolveFolder(source)),
    };
  }
  if (sharedEvents) followPromotionsElsewhere(services, sharedEvents);
  const thumbnails = createThumbnailCache({
    folder: path.join(workspace.dataDir, 'thumbs'),
    read: (image) => services.images.bytes(image),
    onLookup: metrics.thumbnailLookup,
  });
  // A configured check named like a built-in one replaces it.
  const given = config.readiness ?? [];
  const queueJobs = queue ? (services.jobs as ReturnType<typeof createQueueJobRunner>) : null;
  const readiness: ReadinessCheck[] = [
    databaseReadiness(workspace.database),
    ...(queueJobs ? [storeReadiness(workspace.blobs), queueReadiness(() => queueJobs.ping())] : []),
    { name: 'model', check: () => services.serving.checkReady() },
  ].filter((builtin) => !given.some((c) => c.name === builtin.name));
  readiness.push(...given);

  const schema = await buildMenagerieSchema(options.resolvers ?? RESOLVERS);
  enforceDeadlines(schema);
  const contextFor = (role: Role | null): GraphQLContext => {
    const request = requestStore.getStore();
    return {
      services,
      role,
      readOnly,
      requestId: request?.id ?? 'ws',
      loaders: createRequestLoaders(services),
      // From the request's arrival: time queued behind other work counts.
      deadline: createDeadline(
        limits.timeoutMs,
        request?.startedAt ? { startedAt: request.startedAt } : {},
      ),
    };
  };
  const introspectionRules = config.introspection === false ? [noIntrospection()] : [];

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  const httpServer = http.createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      // Node checks the timeouts on this period: often enough to honour the shortest.
      connectionsCheckingInterval: Math.max(
        10,
        Math.min(5_000, Math.floor(Math.min(timeouts.headersMs, timeouts.requestMs) / 4)),
      ),
    },
    app,
  );

  const subscriptions = createSubscriptionServer({
    httpServer,
    path: GRAPHQL_PATH,
    schema,
    limits,
    websocket: { ...DEFAULT_WEBSOCKET_LIMITS, ...config.websocket },
    validationRules: introspectionRules,
    authenticate,
    contextFor,
    log,
  });

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    csrfPrevention: true,
    formatError,
    includeStacktraceInErrorResponses: process.env.NODE_ENV === 'development',
    // Refused by our own rule (noIntrospection) when off, with our code and message.
    introspection: true,
    validationRules: [...queryLimitRules(limits), ...introspectionRules],
    parseOptions: { maxTokens: limits.maxTokens },
    plugins: [
      ApolloServerPluginDrainHttpServer({
        httpServer,
        stopGracePeriodMillis: config.shutdownGraceMs ?? 10_000,
      }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await subscriptions.dispose();
            },
          };
        },
      },
      ApolloServerPluginLandingPageDisabled(),
      requestLogPlugin(),
      queryLimitsPlugin(schema, limits),
      deadlinePlugin(),
      uploadStatusPlugin(),
      metrics.graphql(),
    ],
  });
  await apollo.start();

  app.use(requestLogging(log));
  app.use(metrics.http);
  app.use(healthRoutes(() => readiness));
  app.use(metrics.routes(authenticate));
  app.use(imageRoutes({ images: services.images, thumbnails }));
  app.use(runArtifactRoutes({ tracking: services.tracking }));
  app.use(
    evaluationRoutes({
      evaluations: services.evaluations,
      blobs: workspace.blobs,
      // Keyed by sha256 like the catalogue's, so both share one folder.
      thumbnails: createThumbnailCache<WorstError>({
        folder: path.join(workspace.dataDir, 'thumbs'),
        read: (error) => workspace.blobs.get(error.blobUri),
      }),
    }),
  );
  if (config.playground !== false) {
    app.use(
      playgroundRoutes(GRAPHQL_PATH, {
        ...(config.playground === true ? {} : config.playground),
        ...(config.introspection === false && { introspection: false }),
      }),
    );
  }
  app.use(
    GRAPHQL_PATH,
    requirePreflight,
    limitAnonymous,
    multipartUploads({
      maxFileSize,
      maxFiles,
      maxRequestSize: config.maxRequestSize ?? maxFiles * maxFileSize + 1024 * 1024,
    }),
    express.json({ limit: '1mb' }),
    refuseLongQueries(limits),
    (req: Request, _res: Response, next: NextFunction) => {
      // Apollo insists on a parsed body; GET requests have none.
      if (!('body' in req)) (req as { body?: unknown }).body = undefined;
      next();
    },
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        try {
          return contextFor(authenticate(req.headers.authorization));
        } catch (error) {
          throw isMenagerieError(error) ? toGraphQLError(error) : error;
        }
      },
    }),
  );
  app.use(graphqlErrorHandler);

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port ?? 4000, config.host ?? '127.0.0.1', () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const address = httpServer.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    app,
    httpServer,
    url: `http://${host}:${address.port}${GRAPHQL_PATH}`,
    schema,
    services,
    addReadinessCheck: (check) => {
      readiness.push(check);
    },
    // Jobs get SIGINT at once, so their runs end KILLED while requests drain.
    close: () =>
      (closing ??= Promise.all([apollo.stop(), services.jobs.shutdown()])
        .then(() => {})
        .finally(() => Promise.all([services.serving.close(), sharedEvents?.close()]))
        .then(() => {})),
  };
}

/** The LISTEN/NOTIFY hub when asked for, on the workspace's PostgreSQL, one channel per schema. */
function postgresEvents(database: OpenDatabase, config: ServerConfig, log: Logger) {
  const wanted = config.events ?? (process.env.MENAGERIE_EVENTS || 'local');
  if (wanted !== 'local' && wanted !== 'postgres')
    throw new MenagerieError(
      'CONFIG_INVALID',
      `events should be local or postgres, got '${wanted}'`,
    );
  if (wanted === 'local') return null;
  if (database.backend !== 'postgres')
    throw new MenagerieError(
      'CONFIG_INVALID',
      'events over PostgreSQL need a postgres:// database (MENAGERIE_DATABASE_URL)',
    );
  return createPostgresEventHub<MenagerieEvents>({
    connectionString: database.pool.options.connectionString!,
    channel: `menagerie_${database.schema}`.slice(0, 63),
    onError: (error) => log({ level: 'error', msg: 'events', error: error.message }),
  });
}

/**
 * Replicas behind a Redis (or PostgreSQL) hub: a promotion here is announced to the others, and one
 * announced elsewhere swaps the champion in here at once, not at the next poll.
 */
function followPromotionsElsewhere(
  services: MenagerieServices,
  events: EventHub<MenagerieEvents>,
): void {
  const replica = randomUUID();
  const serving = services.serving;
  const swapIn = serving.championMoved.bind(serving);
  serving.championMoved = async (model) => {
    // Announced first: the other replicas load it while this one does.
    events.publish('championMoved', { model, replica });
    await swapIn(model);
  };
  const moves = events.subscribe('championMoved');
  const close = serving.close.bind(serving);
  serving.close = async () => {
    await moves.return?.();
    await close();
  };
  void (async () => {
    for await (const move of moves) {
      if (move.replica !== replica) await swapIn(move.model);
    }
  })();
}

/** Node refuses a headers timeout longer than the request timeout: say which option is wrong. */
function checkTimeouts(timeouts: HttpTimeouts): HttpTimeouts {
  for (const [name, ms] of Object.entries(timeouts)) {
    if (!Number.isInteger(ms) || ms < 1)
      throw new MenagerieError(
        'CONFIG_INVALID',
        `httpTimeouts.${name} should be whole milliseconds ≥ 1, got ${ms}`,
      );
  }
  if (timeouts.headersMs > timeouts.requestMs)
    throw new MenagerieError(
      'CONFIG_INVALID',
      `the headers timeout (${timeouts.headersMs} ms) should not be longer than the request timeout (${timeouts.requestMs} ms)`,
    );
  return timeouts;
}
