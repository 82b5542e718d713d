/**
 * Format, stored size and EXIF orientation of a JPEG, PNG or WebP read from its header bytes
 * in JavaScript: what `sharp(bytes).metadata()` reports for them, without a trip through
 * libvips (a thread-pool hop and an image open that cost more than a small file's decode).
 * Anything this parser is not sure of (another format, a malformed or unusual header, an
 * animated WebP, EXIF where libvips might read it differently) gives `undefined`, and the
 * caller asks sharp instead: the answer is never a guess.
 */
export interface ImageHeader {
  format: 'jpeg' | 'png' | 'webp';
  /** As stored, before the EXIF orientation. */
  width: number;
  height: number;
  /** EXIF orientation 1–8 (1 when there is none). */
  orientation: number;
  /** A JPEG's colour components from its frame header: 1 grey, 3 YCbCr or RGB, 4 CMYK/YCCK. */
  components?: number;
}

/**
 * Reads the header of a JPEG, PNG or WebP; `undefined` when the bytes are anything else or
 * the header is not one this parser reads with certainty (ask sharp then).
 *
 * ```ts
 * const header = readImageHeader(await fs.readFile('cat.jpg'));
 * // { format: 'jpeg', width: 512, height: 512, orientation: 1 }
 * ```
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff)
    return readJpeg(bytes);
  if (bytes.length >= 8 && matches(bytes, 0, PNG_SIGNATURE)) return readPng(bytes);
  if (bytes.length >= 12 && matches(bytes, 0, RIFF) && matches(bytes, 8, WEBP))
    return readWebp(bytes);
  return undefined;
}

/** Stored width and height turned as displayed: orientations 5–8 swap them. */
export function orientedSize(header: ImageHeader): { width: number; height: number } {
  return header.orientation >= 5
    ? { width: header.height, height: header.width }
    : { width: header.width, height: header.height };
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const RIFF = [0x52, 0x49, 0x46, 0x46];
const WEBP = [0x57, 0x45, 0x42, 0x50];
const EXIF_APP1 = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"

function matches(bytes: Uint8Array, at: number, expected: readonly number[]): boolean {
  if (at + expected.length > bytes.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[at + i] !== expected[i]) return false;
  return true;
}

const u16be = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;
const u32be = (b: Uint8Array, at: number) =>
  ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + u16be(b, at + 2);
const u16le = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);
const u24le = (b: Uint8Array, at: number) => u16le(b, at) | (b[at + 2]! << 16);
const u32le = (b: Uint8Array, at: number) => u24le(b, at) + b[at + 3]! * 0x1000000;
const fourcc = (b: Uint8Array, at: number) =>
  String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);

/** Start-of-frame markers: SOF0–3, 5–7, 9–11, 13–15 (C4 DHT, C8 JPG and CC DAC are not). */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/**
 * Walks the marker segments up to the first start of frame, picking up the EXIF orientation
 * on the way. Two EXIF segments (which libvips would resolve its own way) give undefined.
 */
function readJpeg(b: Uint8Array): ImageHeader | undefined {
  let at = 2;
  let orientation = 1;
  let exifSegments = 0;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) return undefined;
    const marker = b[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    // Markers without a length: TEM and RST0–7 (neither belongs before the frame), SOI, EOI.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) return undefined;
    const length = u16be(b, at + 2);
    if (length < 2 || at + 2 + length > b.length) return undefined;
    const body = at + 4;
    if (marker === 0xe1 && matches(b, body, EXIF_APP1)) {
      const value = exifOrientation(b, body, at + 2 + length);
      if (value === undefined || ++exifSegments > 1) return undefined;
      orientation = value;
    } else if (isStartOfFrame(marker)) {
      if (length < 8) return undefined;
      const height = u16be(b, body + 1);
      const width = u16be(b, body + 3);
      const components = b[body + 5]!;
      // Height 0 means a DNL marker gives it after the first scan: leave that to libvips.
      return width && height
        ? { format: 'jpeg', width, height, orientation, components }
        : undefined;
    } else if (marker === 0xda) {
      return undefined; // a scan before any frame header
    }
    at += 2 + length;
  }
  return undefined;
}

/**
 * The Orientation tag (0x0112) of IFD0 in the TIFF structure at [start, end): 1 when the
 * tag is absent, undefined when the structure is malformed or the value is out of 1–8.
 */
function exifOrientation(b: Uint8Array, start: number, end: number): number | undefined {
  // WebP and PNG EXIF may start with JPEG's "Exif\0\0" too (libvips writes it so).
  if (matches(b, start, EXIF_APP1)) start += EXIF_APP1.length;
  if (end - start < 8) return undefined;
  const little = b[start] === 0x49 && b[start + 1] === 0x49; // "II"
  if (!little && !(b[start] === 0x4d && b[start + 1] === 0x4d)) return undefined; // "MM"
  const u16 = (at: number) => (little ? u16le(b, at) : u16be(b, at));
  const u32 = (at: number) => (little ? u32le(b, at) : u32be(b, at));
  if (u16(start + 2) !== 42) return undefined;
  const ifd = start + u32(start + 4);
  if (ifd + 2 > end) return undefined;
  const entries = u16(ifd);
  if (ifd + 2 + entries * 12 > end) return undefined;
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    if (u16(entry) !== 0x0112) continue;
    // SHORT, count 1: the value sits in the first two bytes of the value field.
    if (u16(entry + 2) !== 3 || u32(entry + 4) !== 1) return undefined;
    const value = u16(entry + 8);
    return value >= 1 && value <= 8 ? value : undefined;
  }
  return 1;
}

/**
 * IHDR for the size, then every chunk up to the first IDAT: an eXIf there gives the
 * orientation; an eXIf after the image data (which readers treat differently) gives undefined.
 */
function readPng(b: Uint8Array): ImageHeader | undefined {
  if (b.length < 33 || fourcc(b, 12) !== 'IHDR' || u32be(b, 8) !== 13) return undefined;
  const width = u32be(b, 16);
  const height = u32be(b, 20);
  if (width === 0 || height === 0) return undefined;
  let orientation = 1;
  let exifChunks = 0;
  let at = 33;
  let afterData = false;
  while (at + 8 <= b.length) {
    const length = u32be(b, at);
    const type = fourcc(b, at + 4);
    if (type === 'IDAT') afterData = true;
    if (type === 'eXIf') {
      if (afterData || ++exifChunks > 1 || at + 8 + length > b.length) return undefined;
      const value = exifOrientation(b, at + 8, at + 8 + length);
      if (value === undefined) return undefined;
      orientation = value;
    }
    if (type === 'IEND') break;
    at += 12 + length;
  }
  return { format: 'png', width, height, orientation };
}

/**
 * Simple lossy (VP8), lossless (VP8L) or extended (VP8X) WebP. Animated WebP gives undefined
 * (libvips reports its frames its own way); an EXIF chunk gives the orientation.
 */
function readWebp(b: Uint8Array): ImageHeader | undefined {
  const first = b.length >= 20 ? fourcc(b, 12) : '';
  const data = 20;
  if (first === 'VP8 ') {
    // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height.
    if (
      b.length < data + 10 ||
      b[data + 3] !== 0x9d ||
      b[data + 4] !== 0x01 ||
      b[data + 5] !== 0x2a
    )
      return undefined;
    const width = u16le(b, data + 6) & 0x3fff;
    const height = u16le(b, data + 8) & 0x3fff;
    return width && height ? { format: 'webp', width, height, orientation: 1 } : undefined;
  }
  if (first === 'VP8L') {
    if (b.length < data + 5 || b[data] !== 0x2f) return undefined;
    const bits = u32le(b, data + 1);
    return {
      format: 'webp',
      width: (bits & 0x3fff) + 1,
      height: ((bits >>> 14) & 0x3fff) + 1,
      orientation: 1,
    };
  }
  if (first !== 'VP8X' || b.length < data + 10) return undefined;
  const flags = b[data]!;
  if (flags & 0x02) return undefined; // animation
  const width = u24le(b, data + 4) + 1;
  const height = u24le(b, data + 7) + 1;
  // Every chunk is looked at: an EXIF chunk the flags do not announce gives undefined.
  let orientation: number | undefined;
  for (let at = 12; at + 8 <= b.length;) {
    const length = u32le(b, at + 4);
    if (fourcc(b, at) === 'EXIF') {
      if (!(flags & 0x08) || orientation !== undefined || at + 8 + length > b.length)
        return undefined;
      orientation = exifOrientation(b, at + 8, at + 8 + length);
      if (orientation === undefined) return undefined;
    }
    at += 8 + length + (length & 1);
  }
  if (flags & 0x08 && orientation === undefined) return undefined;
  orientation ??= 1;
  return { format: 'webp', width, height, orientation };
}
