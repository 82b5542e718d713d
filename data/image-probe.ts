import sharp from 'sharp';
import { MenagerieError } from '../core/errors.js';
import { orientedSize, readImageHeader } from './image-header.js';
import type { JpegDecoder } from './tensorflow-jpeg-decoder.js';

/** Formats Menagerie stores, by sharp's name, with the file extension blobs get. */
export const IMAGE_FORMATS: Readonly<Record<string, string>> = {
  jpeg: 'jpg',
  png: 'png',
  webp: 'webp',
};

/** Default pixel limit: far above AFHQ's 512×512, far below a decompression bomb. */
export const DEFAULT_MAX_PIXELS = 40_000_000;

/** The size probeImage decodes to, at most, on each side: a proof of the data, not a picture. */
const PROBE_SIZE = 32;

export interface ImageInfo {
  format: string;
  /** As displayed: after the EXIF orientation, if any. */
  width: number;
  height: number;
}

/**
 * Identifies and fully decodes an image from its bytes (never from a name or a client's
 * MIME type), so a truncated or corrupt file is caught here, not in training.
 * Throws IMAGE_EMPTY, IMAGE_UNSUPPORTED_FORMAT, IMAGE_TOO_LARGE or IMAGE_UNREADABLE.
 *
 * ```ts
 * const { format, width, height } = await probeImage(await fs.readFile('cat.jpg'));
 * ```
 */
export async function probeImage(
  bytes: Uint8Array,
  options: {
    maxPixels?: number;
    /**
     * Decodes JPEGs instead of sharp (`tensorflowJpegDecoder().decode`); a JPEG it fails on is
     * decoded by sharp too and rejected only if sharp fails as well.
     */
    decodeJpeg?: JpegDecoder;
  } = {},
): Promise<ImageInfo> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const { format, width, height } = await sniffImage(bytes, { maxPixels });
  if (options.decodeJpeg && format === 'jpeg') {
    try {
      // The scale sharp's resize(32, 32, { fit: 'inside' }) below decodes at.
      await options.decodeJpeg(bytes, Math.max(width, height) / PROBE_SIZE);
      return { format, width, height };
    } catch {
      // sharp decides, below.
    }
  }
  try {
    // Decoding every pixel is what finds truncated data; the header alone looks fine.
    // Every byte of entropy-coded data is still read (that is what finds a truncated
    // file), but JPEG and WebP decode at reduced scale: no full-size pixel buffer. The
    // lanczos3 reduction reads every row: a nearest-neighbour 1×1 target lets libvips stop
    // early and accept a JPEG missing its last tenth.
    await sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels, pages: 1 })
      .resize(PROBE_SIZE, PROBE_SIZE, { fit: 'inside' })
      .raw()
      .toBuffer();
  } catch (error) {
    throw new MenagerieError('IMAGE_UNREADABLE', `${format} data is corrupt: ${message(error)}`, {
      cause: error,
    });
  }
  return { format, width, height };
}

/**
 * The header half of `probeImage`: identifies the format from the bytes and refuses empty
 * files, unsupported formats and pixel bombs, without decoding pixels. For callers that
 * decode the image fully next anyway (serving decodes with `failOn: 'truncated'`).
 * Throws IMAGE_EMPTY, IMAGE_UNREADABLE, IMAGE_UNSUPPORTED_FORMAT or IMAGE_TOO_LARGE.
 *
 * ```ts
 * const { format } = await sniffImage(upload, { maxPixels: 40_000_000 });
 * ```
 */
export async function sniffImage(
  bytes: Uint8Array,
  options: { maxPixels?: number } = {},
): Promise<ImageInfo> {
  if (bytes.length === 0) throw new MenagerieError('IMAGE_EMPTY', 'the file is empty (0 bytes)');
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  // A JPEG, PNG or WebP header is read here in JavaScript: a sharp call for it costs more
  // than the header is worth (a thread-pool trip, an image open, its options parsed on this
  // thread). Anything else, or a header the parser is unsure of, is left to sharp.
  const header = readImageHeader(bytes);
  const { format, width, height } = header
    ? { format: header.format, ...orientedSize(header) }
    : await sharpHeader(bytes);
  if (!(format in IMAGE_FORMATS)) {
    const allowed = Object.keys(IMAGE_FORMATS).join(', ');
    throw new MenagerieError(
      'IMAGE_UNSUPPORTED_FORMAT',
      `format ${format} is not supported (expected ${allowed})`,
    );
  }
  if (width * height > maxPixels) {
    throw new MenagerieError(
      'IMAGE_TOO_LARGE',
      `${width}×${height} is ${width * height} pixels, over the limit of ${maxPixels}`,
    );
  }
  return { format, width, height };
}

async function sharpHeader(bytes: Uint8Array): Promise<ImageInfo> {
  let meta: sharp.Metadata;
  try {
    // Header only, so no pixel limit here: sharp's own (268 Mpx) would report a bomb
    // bigger than that as unreadable instead of IMAGE_TOO_LARGE.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new MenagerieError('IMAGE_UNREADABLE', `not a readable image: ${message(error)}`, {
      cause: error,
    });
  }
  // As displayed: EXIF orientations 5–8 turn the stored pixels a quarter, so a phone photo
  // stored 4032×3024 is 3024×4032 upright, as its thumbnail (and training) shows it.
  return {
    format: meta.format ?? 'unknown',
    width: meta.autoOrient?.width ?? meta.width ?? 0,
    height: meta.autoOrient?.height ?? meta.height ?? 0,
  };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0]! : String(error);
}
