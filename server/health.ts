import type { Router } from 'express';
import express from 'express';
import { sql } from 'kysely';
import type { BlobStore } from '../data/blob-store.js';
import type { OpenDatabase } from '../data/database.js';

/**
 * One thing `/readyz` asks about. A check resolves when ready and throws (or rejects)
 * with the reason when not; each is given `timeoutMs` (default 2 s).
 *
 * ```ts
 * const modelLoaded: ReadinessCheck = { name: 'model', check: async () => { if (!engine.ready) throw new Error('loading'); } };
 * ```
 */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
  timeoutMs?: number;
}

export function databaseReadiness(database: OpenDatabase): ReadinessCheck {
  return {
    name: 'database',
    check: async () => {
      await sql`select 1`.execute(database.db);
    },
  };
}

/** The blob store answers: a listing of one entry (a request to S3 when the store is S3). */
export function storeReadiness(blobs: BlobStore): ReadinessCheck {
  return {
    name: 'store',
    check: async () => {
      const entries = blobs.list?.();
      if (!entries) return;
      for await (const entry of entries) {
        void entry;
        break;
      }
    },
  };
}

/** The job queue answers (Redis PING), in queue mode. */
export function queueReadiness(ping: () => Promise<unknown>): ReadinessCheck {
  return {
    name: 'queue',
    check: async () => {
      await ping();
    },
  };
}

/**
 * `/healthz`: the process answers (for restarts). `/readyz`: every readiness check passes
 * (for load balancers); 503 with the failing checks otherwise.
 */
export function healthRoutes(checks: () => readonly ReadinessCheck[]): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      checks().map(async ({ name, check, timeoutMs = 2000 }) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            check(),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`no answer in ${timeoutMs} ms`)),
                timeoutMs,
              );
            }),
          ]);
          return { name, ok: true };
        } catch (error) {
          return { name, ok: false, error: error instanceof Error ? error.message : String(error) };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const ready = results.every((r) => r.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: results });
  });
  return router;
}
