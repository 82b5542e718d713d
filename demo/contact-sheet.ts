import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

export interface ContactSheetOptions {
  /** Root of an AFHQ-layout set: `train/<label>/*.jpg`, `val/<label>/*.jpg`. */
  dir: string;
  /** Where to write the PNG. */
  out: string;
  /** Images per row; 8 unless given. */
  perLabel?: number;
  /** Side of each square tile in pixels; 128 unless given. */
  tile?: number;
}

const IMAGE_FILE = /\.(jpe?g|png|webp)$/i;

/**
 * Writes a PNG grid for eyeballing a data set: one row per label, in name order, the label
 * written in a first column `2 × tile` wide, then the first `perLabel` images (training
 * split first). The sheet is `(perLabel + 2) × tile` wide and `labels × tile` high; rows
 * with fewer images leave their cells blank.
 *
 * ```ts
 * import { writeContactSheet } from './demo/contact-sheet.js';
 *
 * await writeContactSheet({ dir: '/tmp/afhq-demo', out: '/tmp/afhq-demo.png' });
 * ```
 */
export async function writeContactSheet(options: ContactSheetOptions): Promise<void> {
  const perLabel = options.perLabel ?? 8;
  const tile = options.tile ?? 128;
  const labelWidth = tile * 2;
  const labels = await labelsIn(options.dir);
  const width = labelWidth + perLabel * tile;
  const height = Math.max(1, labels.length) * tile;

  const layers: sharp.OverlayOptions[] = [];
  for (const [row, label] of labels.entries()) {
    const top = row * tile;
    layers.push({ input: labelImage(label, labelWidth, tile), top, left: 0 });
    const files = (await imagesOf(options.dir, label)).slice(0, perLabel);
    const tiles = await Promise.all(
      files.map((file) => sharp(file).resize(tile, tile, { fit: 'cover' }).toBuffer()),
    );
    tiles.forEach((input, column) => layers.push({ input, top, left: labelWidth + column * tile }));
  }
  await fs.mkdir(path.dirname(options.out), { recursive: true });
  await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite(layers)
    .png()
    .toFile(options.out);
}

async function labelsIn(dir: string): Promise<string[]> {
  const labels = new Set<string>();
  for (const split of ['train', 'val']) {
    const entries = await fs
      .readdir(path.join(dir, split), { withFileTypes: true })
      .catch(() => []);
    for (const entry of entries) if (entry.isDirectory()) labels.add(entry.name);
  }
  return [...labels].sort();
}

async function imagesOf(dir: string, label: string): Promise<string[]> {
  const files: string[] = [];
  for (const split of ['train', 'val']) {
    const folder = path.join(dir, split, label);
    const names = await fs.readdir(folder).catch(() => []);
    files.push(
      ...names
        .filter((name) => IMAGE_FILE.test(name))
        .sort()
        .map((name) => path.join(folder, name)),
    );
  }
  return files;
}

function labelImage(label: string, width: number, height: number): Buffer {
  const fontSize = Math.round(height / 5);
  const escaped = label.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<text x="${fontSize / 2}" y="${height / 2}" dominant-baseline="middle" font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" fill="#222">${escaped}</text>` +
      '</svg>',
  );
}
