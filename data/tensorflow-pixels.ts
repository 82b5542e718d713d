import { readImageHeader } from './image-header.js';

/**
 * The DCT scale libjpeg decodes at: the smallest image (1/8, 1/4, 1/2 or whole) whose
 * shorter side still has `size` pixels or more (libjpeg rounds up), as both fits need. A
 * 512×512 JPEG for a 64-pixel side decodes at 1/8, straight to 64×64: each pixel the mean
 * of an 8×8 block, and no resize.
 */
export function dctScaleFor(shorterSide: number, size: number): number {
  return [8, 4, 2].find((scale) => Math.ceil(shorterSide / scale) >= size) ?? 1;
}

/**
 * The DCT scale the `'tensorflow'` decoder decodes `bytes` at for a `size`-pixel input, or
 * undefined when they go the sharp way instead: not a JPEG (or a header this parser is
 * unsure of), a JPEG turned by an EXIF orientation, or a CMYK one (libjpeg's RGB from CMYK
 * is not sharp's, 22 dB off on a photo). Pure JavaScript, so the decoder processes, which
 * load no sharp, decide as this process does.
 */
export function tensorflowScale(bytes: Uint8Array, size: number): number | undefined {
  const header = readImageHeader(bytes);
  if (header?.format !== 'jpeg' || header.orientation !== 1 || header.components === 4)
    return undefined;
  return dctScaleFor(Math.min(header.width, header.height), size);
}
