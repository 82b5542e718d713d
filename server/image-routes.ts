import type { Request, Response, Router } from 'express';
import express from 'express';
import { MenagerieError } from '../core/errors.js';
import type { CatalogImage } from '../data/image-catalog.js';
import type { ImageService } from '../data/image-service.js';
import type { ThumbnailCache } from '../data/thumbnail-cache.js';
import {
  clampThumbnailSize,
  DEFAULT_THUMBNAIL_SIZE,
  parseThumbnailSize,
} from '../data/thumbnail-cache.js';
import { parseId } from '../schema/ids.js';
import { sendRouteError } from './route-error.js';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
};

/**
 * `GET /images/:id` (the original bytes) and `GET /images/:id/thumb?size=` (WebP). The id
 * is the only client input that selects a file, and it must be a positive integer: it
 * picks a row, and the row's content hash picks the bytes. Responses are immutable (an
 * id's bytes never change), with a strong ETag of the sha256.
 */
export function imageRoutes(deps: { images: ImageService; thumbnails: ThumbnailCache }): Router {
  const router = express.Router();

  const find = async (req: Request): Promise<CatalogImage> => {
    let id: number;
    try {
      id = parseId(String(req.params['id']), 'image id');
    } catch (error) {
      throw new MenagerieError('BAD_REQUEST', (error as Error).message);
    }
    const image = await deps.images.get(id);
    if (!image) throw new MenagerieError('IMAGE_NOT_FOUND', `no image has id ${id}`);
    return image;
  };

  const send = (
    req: Request,
    res: Response,
    etag: string,
    type: string,
    bytes?: () => Promise<Buffer>,
  ) => {
    res.setHeader('etag', etag);
    res.setHeader('cache-control', 'public, max-age=31536000, immutable');
    res.setHeader('x-content-type-options', 'nosniff');
    const match = req.headers['if-none-match'];
    if (match && match.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*')) {
      res.status(304).end();
      return null;
    }
    res.type(type);
    return bytes;
  };

  router.get('/images/:id', async (req, res) => {
    try {
      const image = await find(req);
      const read = send(
        req,
        res,
        `"${image.sha256}"`,
        CONTENT_TYPES[image.format] ?? 'application/octet-stream',
        () => deps.images.bytes(image),
      );
      if (read) res.send(await read());
    } catch (error) {
      sendRouteError(res, error);
    }
  });

  router.get('/images/:id/thumb', async (req, res) => {
    try {
      let size: number;
      try {
        size = clampThumbnailSize(parseThumbnailSize(req.query['size'] ?? DEFAULT_THUMBNAIL_SIZE));
      } catch (error) {
        throw new MenagerieError('BAD_REQUEST', (error as Error).message);
      }
      const image = await find(req);
      const read = send(req, res, `"${image.sha256}-${size}"`, 'image/webp', () =>
        deps.thumbnails.get(image, size),
      );
      if (read) res.send(await read());
    } catch (error) {
      sendRouteError(res, error);
    }
  });

  return router;
}
