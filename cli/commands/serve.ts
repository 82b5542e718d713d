import { InvalidArgumentError, type Command } from 'commander';
import { MenagerieError } from '../../core/errors.js';
import { ROLES, type Role } from '../../schema/context.js';
import type { ApiToken } from '../../server/auth.js';
import { createServer } from '../../server/create-server.js';
import { serveDashboard } from '../../server/dashboard-static.js';
import { ensurePlayground } from '../../server/playground.js';
import { collect, parsePositiveInt, parsePositiveNumber, parseWholeNumber } from '../options.js';
import { openWorkspace } from '../workspace.js';

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError(`expected a port 0–65535, got '${value}'`);
  return port;
}

/**
 * `role:token`, or a bare token, which is an admin token. Throws CONFIG_INVALID naming the
 * role but never echoing the token.
 */
export function parseTokenFlag(value: string): ApiToken {
  const colon = value.indexOf(':');
  const role = value.slice(0, colon);
  const withRole = colon > 0 && (ROLES as readonly string[]).includes(role);
  const token = withRole ? value.slice(colon + 1) : value;
  if (token.length < 8)
    throw new MenagerieError(
      'CONFIG_INVALID',
      `--token ${withRole ? `${role}:` : ''}…: a token needs 8 or more characters, got ` +
        `${token.length} (roles: ${ROLES.join(', ')}; a bare token is admin)`,
    );
  return { role: withRole ? (role as Role) : 'admin', token };
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the GraphQL API (+ WebSocket subscriptions), image routes and playground')
    .option('--port <n>', 'port (0 picks a free one)', parsePort, 4000)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option(
      '--token <[role:]token>',
      'bearer token for mutations, role read/write/admin (default admin); repeatable; ' +
        'also env MENAGERIE_TOKENS=role:token,…',
      collect,
      [],
    )
    .option('--read-only', 'refuse every mutation except predict')
    .option('--no-playground', 'do not build or serve the GraphiQL playground')
    .option('--max-file-size <bytes>', 'upload size cap per file (default 10 MB)', parsePositiveInt)
    .option('--max-files <n>', 'files per request (default 10)', parsePositiveInt)
    .option('--max-pixels <n>', 'reject uploaded images with more pixels', parsePositiveInt)
    .option(
      '--model <name>',
      'registered model whose champion predict serves (default $MENAGERIE_MODEL, else faces)',
    )
    .option(
      '--max-jobs <n>',
      'training/tuning/evaluation jobs at once (default 1)',
      parsePositiveInt,
    )
    .option(
      '--ingest-root <dir>',
      'folder the ingest mutation may read (repeatable; default $MENAGERIE_INGEST_ROOTS, else none)',
      collect,
      [],
    )
    .option('--no-introspection', 'refuse __schema/__type queries (the playground says so)')
    .option('--query-timeout <ms>', 'stop a query after this long (default 1000)', parsePositiveInt)
    .option(
      '--max-query-cost <n>',
      'estimated cost a query may have (default 20000)',
      parsePositiveInt,
    )
    .option(
      '--predict-rate <n>',
      'predictions without a token per client address per minute (default 60; 0: no limit)',
      parseWholeNumber,
    )
    .option(
      '--predict-concurrency <n>',
      'predictions without a token in progress at once per client address (default 4; 0: no limit)',
      parseWholeNumber,
    )
    .option(
      '--anonymous-concurrency <n>',
      'GraphQL requests without a token in progress at once per client address (default 16; 0: no limit)',
      parseWholeNumber,
    )
    .option(
      '--upload-max-age <days>',
      'keep prediction uploads for feedback this long (default 7)',
      parsePositiveNumber,
    )
    .option(
      '--upload-max-mb <mb>',
      'keep at most this many MB of prediction uploads (default 1024)',
      parsePositiveNumber,
    )
    .option(
      '--ws-max-connections <n>',
      'WebSocket connections at once (default 1000)',
      parsePositiveInt,
    )
    .option(
      '--ws-max-payload <bytes>',
      'largest WebSocket message (default 1 MB)',
      parsePositiveInt,
    )
    .option(
      '--headers-timeout <ms>',
      'time to receive request headers (default 20000)',
      parsePositiveInt,
    )
    .option(
      '--request-timeout <ms>',
      'time to receive a whole request (default 120000)',
      parsePositiveInt,
    )
    .option(
      '--similar-backbone <name>',
      'pretrained backbone whose feature space similar images search (default menagerie:mobilenet_v2_140)',
    )
    .option('--no-similar-features', 'similar images only in the serving version’s embeddings')
    .action(async (opts, command: Command) => {
      // Options first: a bad one is reported before anything is opened.
      const tokens = (opts.token as string[]).map(parseTokenFlag);
      const workspace = await openWorkspace(command.optsWithGlobals());
      const server = await createServer({
        workspace,
        config: {
          port: opts.port,
          host: opts.host,
          tokens,
          readOnly: opts.readOnly === true,
          maxFileSize: opts.maxFileSize,
          maxFiles: opts.maxFiles,
          maxPixels: opts.maxPixels,
          ...(opts.model !== undefined && { servingModel: opts.model as string }),
          playground: opts.playground !== false,
          ...(opts.similarFeatures === false
            ? { similarBackbone: null }
            : opts.similarBackbone !== undefined && {
                similarBackbone: opts.similarBackbone as string,
              }),
          ...(opts.maxJobs !== undefined && { jobs: { maxJobs: opts.maxJobs as number } }),
          ...((opts.ingestRoot as string[]).length > 0 && {
            ingestRoots: opts.ingestRoot as string[],
          }),
          introspection: opts.introspection !== false,
          limits: {
            ...(opts.queryTimeout !== undefined && { timeoutMs: opts.queryTimeout as number }),
            ...(opts.maxQueryCost !== undefined && { maxCost: opts.maxQueryCost as number }),
          },
          anonymousLimits: {
            ...(opts.predictRate !== undefined && {
              predicts: opts.predictRate as number,
              windowSeconds: 60,
            }),
            ...(opts.predictConcurrency !== undefined && {
              predictsAtOnce: opts.predictConcurrency as number,
            }),
            ...(opts.anonymousConcurrency !== undefined && {
              requestsAtOnce: opts.anonymousConcurrency as number,
            }),
          },
          uploadRetention: {
            ...(opts.uploadMaxAge !== undefined && {
              maxAgeMs: (opts.uploadMaxAge as number) * 24 * 60 * 60 * 1000,
            }),
            ...(opts.uploadMaxMb !== undefined && {
              maxBytes: (opts.uploadMaxMb as number) * 1024 * 1024,
            }),
          },
          websocket: {
            ...(opts.wsMaxConnections !== undefined && {
              maxConnections: opts.wsMaxConnections as number,
            }),
            ...(opts.wsMaxPayload !== undefined && { maxPayload: opts.wsMaxPayload as number }),
          },
          httpTimeouts: {
            ...(opts.headersTimeout !== undefined && { headersMs: opts.headersTimeout as number }),
            ...(opts.requestTimeout !== undefined && { requestMs: opts.requestTimeout as number }),
          },
        },
      });
      // After the API's routes: the dashboard's SPA fallback never shadows them.
      if (serveDashboard(server.app)) {
        console.error(`menagerie: dashboard at ${server.url.replace(/\/graphql$/, '/')}`);
      }
      const served = server.services.serving.engine.status().serving;
      console.error(
        served
          ? `menagerie: predicting with ${served.name} version ${served.version} (its champion)`
          : `menagerie: no champion of '${server.services.serving.modelName}' yet: predict answers ` +
              'MODEL_NOT_SERVING until one is promoted',
      );
      console.error(
        `menagerie: serving ${server.url}` +
          (opts.playground === false ? '' : ' (open it in a browser for the playground)'),
      );
      if (tokens.length === 0 && !process.env.MENAGERIE_TOKENS && opts.readOnly !== true) {
        console.error(
          'menagerie: no tokens configured, so every mutation but predict is refused ' +
            '(pass --token or set MENAGERIE_TOKENS)',
        );
      }
      if (opts.playground !== false) {
        // Bundle GraphiQL now rather than on the first browser visit (a minute, the first time).
        ensurePlayground().catch((error: unknown) =>
          console.error(`menagerie: the playground could not be built: ${String(error)}`),
        );
      }
      let stopping = false;
      const stop = async () => {
        if (stopping) return;
        stopping = true;
        console.error('menagerie: finishing in-flight requests…');
        await server.close();
        await workspace.close();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
