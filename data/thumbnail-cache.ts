import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { excerpt, MenagerieError } from '../core/errors.js';
import type { CatalogImage } from './image-catalog.js';

/** The only sizes made, so a client cannot fill the disk with one thumbnail per pixel. */
export const THUMBNAIL_SIZES = [64, 128, 256, 512] as const;
export const DEFAULT_THUMBNAIL_SIZE = 128;

/**
 * A thumbnail size a client asked for, as a number: a whole number from 1 to the largest
 * size (it is then rounded up to the next allowed one). Throws BAD_USER_INPUT, saying the
 * range, for anything else (`-5`, `0`, `abc`, `1.5`, `513`).
 */
export function parseThumbnailSize(requested: unknown): number {
  const text = String(requested);
  const size = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN;
  const largest = THUMBNAIL_SIZES.at(-1)!;
  if (!(size >= 1 && size <= largest)) {
    throw new MenagerieError(
      'BAD_USER_INPUT',
      `size should be a whole number from 1 to ${largest} (thumbnails come in ` +
        `${THUMBNAIL_SIZES.join(', ')}), got '${excerpt(text)}'`,
    );
  }
  return size;
}

/** The smallest allowed size at least `requested` (the largest when none is). */
export function clampThumbnailSize(requested: number): number {
  if (!Number.isFinite(requested)) return DEFAULT_THUMBNAIL_SIZE;
  return THUMBNAIL_SIZES.find((s) => s >= requested) ?? THUMBNAIL_SIZES.at(-1)!;
}

/** What a thumbnail is made of: an image named by the sha256 of its bytes. */
export interface ThumbnailSource {
  sha256: string;
}

/**
 * WebP thumbnails (longest side `size`, aspect kept) cached on disk by sha256 and size,
 * so each is made once however often it is asked for. Caches of different sources (catalogue
 * images, an evaluation's worst errors) may share a folder: the same bytes, the same file.
 *
 * ```ts
 * const thumbs = createThumbnailCache({ folder: '.menagerie/thumbs', read: (img) => blobs.get(img.uri) });
 * const webp = await thumbs.get(image, 128);
 * ```
 */
export interface ThumbnailCache<T extends ThumbnailSource = CatalogImage> {
  get(image: T, size: number): Promise<Buffer>;
}

export function createThumbnailCache<T extends ThumbnailSource = CatalogImage>(options: {
  folder: string;
  read: (image: T) => Promise<Buffer>;
  /** Told whether each request was served from disk (`hit`) or made (`miss`), for metrics. */
  onLookup?: (result: 'hit' | 'miss') => void;
}): ThumbnailCache<T> {
  const making = new Map<string, Promise<Buffer>>();
  const make = async (image: T, size: number, file: string): Promise<Buffer> => {
    const webp = await sharp(await options.read(image))
      .rotate()
      .resize(size, size, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 80 })
      .toBuffer();
    await fs.mkdir(path.dirname(file), { recursive: true });
    // Written aside and renamed, so a reader never sees half a file.
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await fs.writeFile(temp, webp);
    await fs.rename(temp, file);
    return webp;
  };
  return {
    async get(image, requested) {
      const size = clampThumbnailSize(requested);
      // sha256 is validated hex from our own database: the only input to the path.
      if (!/^[0-9a-f]{64}$/.test(image.sha256)) throw new Error(`bad sha256 ${image.sha256}`);
      const file = path.join(
        options.folder,
        image.sha256.slice(0, 2),
        `${image.sha256}-${size}.webp`,
      );
      const cached = await fs.readFile(file).catch(() => null);
      options.onLookup?.(cached ? 'hit' : 'miss');
      if (cached) return cached;
      const key = `${image.sha256}-${size}`;
      let pending = making.get(key);
      if (!pending) {
        pending = make(image, size, file).finally(() => making.delete(key));
        making.set(key, pending);
      }
      return pending;
    },
  };
}
