import path from 'node:path';
import sharp from 'sharp';
import { makeImage, writeFile } from './fixtures.js';

export type Rgb = [number, number, number];

/**
 * Solid 4×4 PNGs by true label, for the colour model (helpers/models.ts): lossless, so the
 * model sees exactly these values. Three of the nine are mistakes of distinct confidence.
 */
export const COLOUR_IMAGES: { label: string; name: string; rgb: Rgb }[] = [
  { label: 'red', name: 'pure.png', rgb: [255, 0, 0] },
  { label: 'red', name: 'orange.png', rgb: [200, 150, 0] },
  { label: 'red', name: 'olive.png', rgb: [100, 180, 0] },
  { label: 'green', name: 'pure.png', rgb: [0, 255, 0] },
  { label: 'green', name: 'brick.png', rgb: [230, 60, 40] },
  { label: 'green', name: 'teal.png', rgb: [0, 200, 190] },
  { label: 'blue', name: 'pure.png', rgb: [0, 0, 255] },
  { label: 'blue', name: 'violet.png', rgb: [120, 0, 130] },
  { label: 'blue', name: 'lime.png', rgb: [0, 250, 10] },
];

/** A label the colour model does not predict: its images are counted and left out. */
export const UNKNOWN_COLOUR_IMAGES: { label: string; name: string; rgb: Rgb }[] = [
  { label: 'purple', name: 'a.png', rgb: [128, 0, 128] },
  { label: 'purple', name: 'b.png', rgb: [140, 0, 120] },
];

export function solidPng(rgb: Rgb, size = 4): Promise<Buffer> {
  const [r, g, b] = rgb;
  return sharp({ create: { width: size, height: size, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();
}

/**
 * A `<label>/*` folder of the colour images plus the broken files a real folder has: a
 * truncated JPEG, a text file named .jpg, an empty file, and a file outside any label folder.
 */
export async function writeColourFolder(folder: string): Promise<void> {
  for (const image of [...COLOUR_IMAGES, ...UNKNOWN_COLOUR_IMAGES])
    writeFile(path.join(folder, image.label, image.name), await solidPng(image.rgb));
  const jpeg = await makeImage(5, { size: 64 });
  writeFile(path.join(folder, 'red', 'truncated.jpg'), jpeg.subarray(0, jpeg.length / 2));
  writeFile(path.join(folder, 'green', 'notes.jpg'), 'a text file named like a picture\n');
  writeFile(path.join(folder, 'blue', 'empty.jpg'), Buffer.alloc(0));
  writeFile(path.join(folder, 'README.txt'), 'not in a label folder\n');
}
