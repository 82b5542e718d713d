import express, { type Router } from 'express';
import { MenagerieError } from '../core/errors.js';
import { CONFUSION_MATRIX_PNG, MODEL_ARTIFACT_PATH } from '../tracking/run-evaluation.js';
import type { TrackingStore } from '../tracking/tracking-store.js';
import { sendRouteError } from './route-error.js';

const RUN_ID = /^[0-9a-f]{32}$/;

/**
 * `GET /runs/:id/artifacts/confusion_matrix.png`. The route names the one file it serves;
 * the id (32 hex digits, else 400) picks a run, and the run's own artifact URI the folder,
 * so nothing a client sends becomes a path. Read through the artifact store, so any replica
 * serves any run's plot. Not cached for long: a resumed run rewrites it.
 */
export function runArtifactRoutes(deps: { tracking: TrackingStore }): Router {
  const router = express.Router();
  router.get(`/runs/:id/artifacts/${CONFUSION_MATRIX_PNG}`, async (req, res) => {
    try {
      const id = String(req.params['id']);
      if (!RUN_ID.test(id)) {
        throw new MenagerieError(
          'BAD_REQUEST',
          `a run id is 32 lowercase hex digits, got '${id.slice(0, 40)}'`,
        );
      }
      const bytes = await deps.tracking.readArtifact(
        id,
        `${MODEL_ARTIFACT_PATH}/${CONFUSION_MATRIX_PNG}`,
      );
      if (!bytes) {
        throw new MenagerieError(
          'RUN_ARTIFACT_NOT_FOUND',
          `run ${id} has no confusion matrix (yet): it is written when training ends`,
        );
      }
      res.setHeader('cache-control', 'no-cache');
      res.setHeader('x-content-type-options', 'nosniff');
      res.type('image/png').send(bytes);
    } catch (error) {
      sendRouteError(res, error);
    }
  });
  return router;
}
