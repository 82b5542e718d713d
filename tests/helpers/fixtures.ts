import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

/** The real AFHQ sample beside the checkout (never copied into the repository). */
export const AFHQ_MINI = path.resolve(import.meta.dirname, '../../../shared/samples/afhq-mini');

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

/** A fresh folder under the OS temp dir, removed by the returned function. */
export function tempDir(prefix = 'menagerie-test-'): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A distinct image per seed: a coloured noise field, so bytes never collide. */
export async function makeImage(
  seed: number,
  options: { size?: number; format?: 'jpeg' | 'png'; width?: number; height?: number } = {},
): Promise<Buffer> {
  const width = options.width ?? options.size ?? 64;
  const height = options.height ?? options.size ?? 64;
  const image = sharp({
    create: {
      width,
      height,
      channels: 3,
      background: { r: (seed * 37) % 256, g: (seed * 91) % 256, b: (seed * 53) % 256 },
      noise: { type: 'gaussian', mean: 128, sigma: 30 + (seed % 20) },
    },
  });
  return options.format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 85 }).toBuffer();
}

export function writeFile(file: string, bytes: Buffer | string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
  return file;
}
