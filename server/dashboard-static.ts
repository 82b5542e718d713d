import fs from 'node:fs';
import path from 'node:path';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';

/** Paths the API owns; the dashboard's fallback never answers for them. */
const API_PREFIXES = ['/graphql', '/images', '/healthz', '/readyz'];

/** Where `npm run build:client` writes the dashboard. */
export const DASHBOARD_DIST = path.resolve(import.meta.dirname, '../client/dist');

/**
 * Serves the built Vue dashboard (client/dist) on the API's origin: hashed assets cached
 * for a year, index.html never cached, and index.html for any other GET a browser makes
 * (it accepts text/html) outside the API's paths, so a reload on any dashboard URL works.
 * Returns false, serving nothing, when the dashboard has not been built.
 *
 * ```ts
 * const server = await createServer({ workspace });
 * serveDashboard(server.app, DASHBOARD_DIST);
 * ```
 */
export function serveDashboard(app: Express, distDir: string = DASHBOARD_DIST): boolean {
  const index = path.join(distDir, 'index.html');
  if (!fs.existsSync(index)) return false;

  app.use(
    '/assets',
    express.static(path.join(distDir, 'assets'), {
      immutable: true,
      maxAge: '1y',
      index: false,
      fallthrough: false,
    }),
  );
  app.use(express.static(distDir, { index: false, maxAge: '1h' }));
  app.get(/.*/, (req: Request, res: Response, next: NextFunction) => {
    const isApi = API_PREFIXES.some((p) => req.path === p || req.path.startsWith(`${p}/`));
    if (isApi || !req.accepts('html')) {
      next();
      return;
    }
    res.setHeader('cache-control', 'no-cache');
    res.sendFile(index);
  });
  return true;
}
