import type { Generated, Insertable, Selectable } from 'kysely';

/**
 * Table types for the current schema; migrations in ./migrations create them. Timestamps
 * are integer milliseconds since the Unix epoch.
 */
export interface LabelTable {
  id: Generated<number>;
  /** Normalised: lowercase letters, digits and '-' (see label-name.ts). */
  name: string;
  created_at: number;
}

export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

export interface ImageTable {
  id: Generated<number>;
  /** Hex sha256 of the file's bytes: identical files are stored once. */
  sha256: string;
  /** Where the bytes are: `blob:` (the blob store) or `file://` (ingested by reference). */
  uri: string;
  label_id: number;
  split: Split;
  width: number;
  height: number;
  /** sharp's name for the decoded format: jpeg, png, webp. */
  format: string;
  bytes: number;
  /** The path the image was ingested from, for reports; null when uploaded. */
  source_path: string | null;
  added_at: number;
}

export interface Database {
  labels: LabelTable;
  images: ImageTable;
}

export type LabelRow = Selectable<LabelTable>;
export type ImageRow = Selectable<ImageTable>;
export type NewImage = Insertable<ImageTable>;
