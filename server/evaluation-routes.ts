import express, { type Request, type Response, type Router } from 'express';
import { MenagerieError } from '../core/errors.js';
import type { BlobStore } from '../data/blob-store.js';
import { clampThumbnailSize, DEFAULT_THUMBNAIL_SIZE } from '../data/thumbnail-cache.js';
import type { ThumbnailCache } from '../data/thumbnail-cache.js';
import {
  EVALUATION_ID,
  type ModelEvaluation,
  type ModelEvaluations,
  type WorstError,
} from '../registry/model-evaluations.js';
import { CONFUSION_MATRIX_PNG } from '../tracking/run-evaluation.js';
import { sendRouteError } from './route-error.js';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
};
const RANK = /^[1-9]\d{0,2}$/;

/**
 * What an evaluation keeps in the blob store: `GET /evaluations/:id/confusion_matrix.png`,
 * `/evaluations/:id/errors/:rank` (a worst error's image) and `…/errors/:rank/thumb?size=`
 * (WebP). The id (32 hex digits) and rank (a small positive integer) pick a row; the row
 * names the blob, so nothing a client sends becomes a path. A finished evaluation never
 * changes: its images are served with a strong ETag of their sha256.
 */
export function evaluationRoutes(deps: {
  evaluations: ModelEvaluations;
  blobs: BlobStore;
  thumbnails: ThumbnailCache<WorstError>;
}): Router {
  const router = express.Router();

  const find = async (req: Request): Promise<ModelEvaluation> => {
    const id = String(req.params['id']);
    if (!EVALUATION_ID.test(id)) {
      throw new MenagerieError(
        'BAD_REQUEST',
        `an evaluation id is 32 lowercase hex digits, got '${id.slice(0, 40)}'`,
      );
    }
    return deps.evaluations.get(id);
  };

  const worstError = async (req: Request): Promise<WorstError> => {
    const evaluation = await find(req);
    const rank = String(req.params['rank']);
    if (!RANK.test(rank))
      throw new MenagerieError('BAD_REQUEST', `a rank is 1, 2, 3…, got '${rank.slice(0, 20)}'`);
    const error = evaluation.worstErrors.find((e) => e.rank === Number(rank));
    if (!error) {
      throw new MenagerieError(
        'EVALUATION_NOT_FOUND',
        `evaluation ${evaluation.id} has ${evaluation.worstErrors.length} worst errors, not a number ${rank}`,
      );
    }
    return error;
  };

  const sendImage = async (
    req: Request,
    res: Response,
    etag: string,
    type: string,
    bytes: () => Promise<Buffer>,
  ) => {
    res.setHeader('etag', etag);
    res.setHeader('cache-control', 'public, max-age=31536000, immutable');
    res.setHeader('x-content-type-options', 'nosniff');
    const match = req.headers['if-none-match'];
    if (match && match.split(',').some((tag) => tag.trim() === etag)) {
      res.status(304).end();
      return;
    }
    res.type(type).send(await bytes());
  };

  router.get(`/evaluations/:id/${CONFUSION_MATRIX_PNG}`, async (req, res) => {
    try {
      const evaluation = await find(req);
      const uri = evaluation.confusionMatrixUri;
      if (!uri) {
        throw new MenagerieError(
          'EVALUATION_NOT_FOUND',
          `evaluation ${evaluation.id} is ${evaluation.status}: the confusion matrix is drawn when it finishes`,
        );
      }
      res.setHeader('cache-control', 'no-cache');
      res.setHeader('x-content-type-options', 'nosniff');
      res.type('image/png').send(await deps.blobs.get(uri));
    } catch (error) {
      sendRouteError(res, error);
    }
  });

  router.get('/evaluations/:id/errors/:rank', async (req, res) => {
    try {
      const error = await worstError(req);
      await sendImage(
        req,
        res,
        `"${error.sha256}"`,
        CONTENT_TYPES[error.format] ?? 'application/octet-stream',
        () => deps.blobs.get(error.blobUri),
      );
    } catch (error) {
      sendRouteError(res, error);
    }
  });

  router.get('/evaluations/:id/errors/:rank/thumb', async (req, res) => {
    try {
      const error = await worstError(req);
      const size = clampThumbnailSize(Number(req.query['size'] ?? DEFAULT_THUMBNAIL_SIZE));
      await sendImage(req, res, `"${error.sha256}-${size}"`, 'image/webp', () =>
        deps.thumbnails.get(error, size),
      );
    } catch (error) {
      sendRouteError(res, error);
    }
  });

  return router;
}
