import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Router } from 'express';
import express from 'express';

const SOURCE_DIR = path.join(import.meta.dirname, 'playground');
const SOURCES = ['index.html', 'main.js', 'examples.js'];
/** Where bundles go (git-ignored), one folder per source hash. */
export const PLAYGROUND_BUILD_DIR = path.join(SOURCE_DIR, 'dist');
const ASSET_PATH = '/playground/';

export interface PlaygroundOptions {
  /** Folder for built bundles (default server/playground/dist). */
  buildDir?: string;
  /** Build when no bundle matches the sources (default true); otherwise answer 503. */
  buildOnDemand?: boolean;
  /**
   * False when the server refuses introspection: GraphiQL could not load the schema, so
   * the page says so instead (set by createServer from ServerConfig.introspection).
   */
  introspection?: boolean;
}

/** The page browsers get at the endpoint when introspection is switched off. */
const NO_INTROSPECTION_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Menagerie GraphQL</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>Menagerie GraphQL</h1>
<p>Introspection is switched off on this server (<code>menagerie serve --no-introspection</code>),
so the GraphiQL playground cannot load its schema, and is not served.</p>
<p>The API answers GraphQL at this URL as usual: POST queries with any GraphQL client, typed
from the release's <code>schema/schema.graphql</code>.</p>
</body>
</html>
`;

/**
 * The bundle's folder: named by a hash of the playground sources and the GraphiQL and Vite
 * versions, so an edit or an upgrade builds afresh and processes never overwrite each
 * other's bundle.
 */
export function playgroundBundleDir(buildDir = PLAYGROUND_BUILD_DIR): string {
  const hash = createHash('sha256');
  for (const file of SOURCES) hash.update(fs.readFileSync(path.join(SOURCE_DIR, file)));
  for (const pkg of ['graphiql', 'vite']) {
    const manifest = path.join(import.meta.dirname, '../node_modules', pkg, 'package.json');
    hash.update(fs.existsSync(manifest) ? fs.readFileSync(manifest) : pkg);
  }
  return path.join(buildDir, hash.digest('hex').slice(0, 16));
}

const building = new Map<string, Promise<string>>();

/**
 * Bundles GraphiQL with Vite unless the current bundle exists; resolves to its folder.
 * Takes a minute on a small machine the first time, nothing after. `npm run
 * build:playground` calls it; the server calls it on the first browser visit.
 */
export function ensurePlayground(buildDir = PLAYGROUND_BUILD_DIR): Promise<string> {
  const dir = playgroundBundleDir(buildDir);
  if (fs.existsSync(path.join(dir, 'index.html'))) return Promise.resolve(dir);
  let pending = building.get(dir);
  if (!pending) {
    pending = buildBundle(dir).finally(() => building.delete(dir));
    building.set(dir, pending);
  }
  return pending;
}

async function buildBundle(dir: string): Promise<string> {
  const { build } = await import('vite');
  // Built aside and renamed, so a half-built bundle is never served, and of two
  // processes building at once the first rename wins and the other's copy is dropped.
  const temp = `${dir}.${randomBytes(4).toString('hex')}.tmp`;
  await build({
    root: SOURCE_DIR,
    base: ASSET_PATH,
    configFile: false,
    logLevel: 'warn',
    build: {
      outDir: temp,
      emptyOutDir: true,
      chunkSizeWarningLimit: 8192,
      reportCompressedSize: false,
      rollupOptions: {
        // GraphiQL's React dependencies mark themselves "use client"; harmless here.
        onwarn(warning, warn) {
          if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
        },
      },
    },
    worker: { format: 'es' },
  });
  try {
    fs.renameSync(temp, dir);
  } catch (error) {
    fs.rmSync(temp, { recursive: true, force: true });
    if (!fs.existsSync(path.join(dir, 'index.html'))) throw error;
  }
  return dir;
}

const wantsHtml = (req: express.Request) =>
  req.method === 'GET' &&
  req.query['query'] === undefined &&
  (req.headers.accept ?? '').split(',').some((type) => type.trim().startsWith('text/html'));

/**
 * GraphiQL for browsers at `endpoint` (a GET that accepts text/html and has no `query`
 * parameter), its assets under /playground/. Everything is served from this machine.
 */
export function playgroundRoutes(endpoint: string, options: PlaygroundOptions = {}): Router {
  const router = express.Router();
  const statics = new Map<string, express.RequestHandler>();
  const buildDir = options.buildDir ?? PLAYGROUND_BUILD_DIR;
  const bundle = () =>
    options.buildOnDemand === false
      ? Promise.resolve(playgroundBundleDir(buildDir))
      : ensurePlayground(buildDir);

  router.get(endpoint, async (req, res, next) => {
    if (!wantsHtml(req)) {
      next();
      return;
    }
    if (options.introspection === false) {
      res.setHeader('cache-control', 'no-cache');
      res.type('html').send(NO_INTROSPECTION_PAGE);
      return;
    }
    const dir = await bundle().catch(() => null);
    const index = dir ? path.join(dir, 'index.html') : null;
    if (!index || !fs.existsSync(index)) {
      res
        .status(503)
        .type('text/plain')
        .send('The playground is not built: run `npm run build:playground`.\n');
      return;
    }
    res.setHeader('cache-control', 'no-cache');
    res.sendFile(index);
  });
  router.use(ASSET_PATH, async (req, res, next) => {
    const dir = options.introspection === false ? null : await bundle().catch(() => null);
    if (!dir) {
      next();
      return;
    }
    let serve = statics.get(dir);
    if (!serve) {
      // Asset names carry content hashes: cache them for good.
      serve = express.static(dir, { immutable: true, maxAge: '1y', index: false });
      statics.set(dir, serve);
    }
    serve(req, res, next);
  });
  return router;
}
