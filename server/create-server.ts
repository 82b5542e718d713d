import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { GraphQLSchema } from 'graphql';
import graphqlUploadExpress from 'graphql-upload/graphqlUploadExpress.mjs';
import type { ClassType, NonEmptyArray } from 'type-graphql';
import type { BlobStore } from '../data/blob-store.js';
import type { OpenDatabase } from '../data/database.js';
import { isMenagerieError } from '../core/errors.js';
import { createImageService } from '../data/image-service.js';
import { createThumbnailCache } from '../data/thumbnail-cache.js';
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
import { createEventHub } from '../core/event-hub.js';
import { createAuthenticator, parseTokens, type ApiToken } from './auth.js';
import { requirePreflight } from './csrf.js';
import { formatError, toGraphQLError } from './error-format.js';
import { graphqlErrorHandler } from './graphql-error-handler.js';
import { databaseReadiness, healthRoutes, type ReadinessCheck } from './health.js';
import { imageRoutes } from './image-routes.js';
import { createIngestService, parseIngestRoots } from '../jobs/ingest-service.js';
import { createJobRunner, type JobConfig } from '../jobs/job-runner.js';
import { runArtifactRoutes } from './run-artifact-routes.js';
import { evaluationRoutes } from './evaluation-routes.js';
import { playgroundRoutes, type PlaygroundOptions } from './playground.js';
import { DEFAULT_QUERY_LIMITS, type QueryLimits } from './query-limits.js';
import { queryLimitsPlugin } from './query-limits-plugin.js';
import { jsonLogger, requestLogging, requestStore, type Logger } from './request-log.js';
import { requestLogPlugin } from './request-log-plugin.js';
import { createSubscriptionServer } from './websocket.js';

export const GRAPHQL_PATH = '/graphql';
export const DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024;
export const DEFAULT_MAX_FILES = 10;

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
  /** Pixel limit for uploaded images (default data/image-probe's). */
  maxPixels?: number;
  limits?: Partial<QueryLimits>;
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
  /** Below this confidence a prediction is flagged `uncertain` (default 0.5). */
  uncertaintyThreshold?: number;
  /** Training, tuning and evaluation child processes: how many at once (default 1), timeouts. */
  jobs?: JobConfig;
  /** Folders `ingest` may read (default $MENAGERIE_INGEST_ROOTS; none: ingest is refused). */
  ingestRoots?: readonly string[];
}

export interface ServerOptions {
  workspace: {
    dataDir: string;
    database: OpenDatabase;
    blobs: BlobStore;
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
      backbones: workspace.backbones,
      modelName: config.servingModel ?? (process.env.MENAGERIE_MODEL || DEFAULT_SERVING_MODEL),
      ...(config.championPollMs !== undefined && { pollIntervalMs: config.championPollMs }),
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
  const services: MenagerieServices = {
    database: workspace.database,
    blobs: workspace.blobs,
    images,
    events: createEventHub<MenagerieEvents>(),
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
      ...(config.maxPixels !== undefined && { maxPixels: config.maxPixels }),
    }),
    jobs: createJobRunner({
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
  const thumbnails = createThumbnailCache({
    folder: path.join(workspace.dataDir, 'thumbs'),
    read: (image) => services.images.bytes(image),
  });
  // A configured check named like a built-in one replaces it.
  const given = config.readiness ?? [];
  const readiness: ReadinessCheck[] = [
    databaseReadiness(workspace.database),
    { name: 'model', check: () => services.serving.checkReady() },
  ].filter((builtin) => !given.some((c) => c.name === builtin.name));
  readiness.push(...given);

  const schema = await buildMenagerieSchema(options.resolvers ?? RESOLVERS);
  const contextFor = (role: Role | null): GraphQLContext => ({
    services,
    role,
    readOnly,
    requestId: requestStore.getStore()?.id ?? 'ws',
    loaders: createRequestLoaders(services),
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  const httpServer = http.createServer(app);

  const subscriptions = createSubscriptionServer({
    httpServer,
    path: GRAPHQL_PATH,
    schema,
    limits,
    authenticate,
    contextFor,
  });

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    csrfPrevention: true,
    formatError,
    includeStacktraceInErrorResponses: process.env.NODE_ENV === 'development',
    introspection: true,
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
    ],
  });
  await apollo.start();

  app.use(requestLogging(log));
  app.use(healthRoutes(() => readiness));
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
    app.use(playgroundRoutes(GRAPHQL_PATH, config.playground === true ? {} : config.playground));
  }
  app.use(
    GRAPHQL_PATH,
    requirePreflight,
    graphqlUploadExpress({
      maxFileSize: config.maxFileSize ?? DEFAULT_MAX_FILE_SIZE,
      maxFiles: config.maxFiles ?? DEFAULT_MAX_FILES,
    }),
    express.json({ limit: '1mb' }),
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
        .finally(() => services.serving.close())),
  };
}
