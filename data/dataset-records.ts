import type { Kysely } from 'kysely';
import type * as TfNode from '@tensorflow/tfjs-node';
import { MenagerieError } from '../core/errors.js';
import type { Rng } from '../core/random.js';
import type { Database, Split } from './tables.js';

/** One image of a data set, in record order. */
export interface DatasetRecord {
  id: number;
  uri: string;
  sha256: string;
  labelIndex: number;
}

/** The images of one split with what training needs to know of them. */
export interface DatasetRecords {
  /** Class names in one-hot order. */
  labels: string[];
  /** The split's images of those labels, by id. */
  records: DatasetRecord[];
  /** Examples per class, in `labels` order. */
  counts: number[];
  /** Keras-style `class_weight`: total / (classes × count), by class index. */
  classWeights: Record<number, number>;
}

/**
 * Reads one split's images from the catalogue: the rows every data set (pixels or backbone
 * features) is built from. Labels default to every label with images in any split, sorted
 * by name, so train and val sets read separately agree on the one-hot order.
 */
export async function loadDatasetRecords(
  db: Kysely<Database>,
  options: { split: Split; labels?: readonly string[]; limitPerLabel?: number },
): Promise<DatasetRecords> {
  const labels = await resolveLabels(db, options.labels);
  const records = await queryRecords(db, options.split, labels, options.limitPerLabel);
  if (records.length === 0) {
    throw new MenagerieError(
      'DATASET_EMPTY',
      `no ${options.split} images with label ${labels.join(', ')}`,
    );
  }
  const counts = labels.map(() => 0);
  for (const r of records) counts[r.labelIndex]!++;
  const classWeights: Record<number, number> = {};
  counts.forEach((count, i) => {
    // Keras: total / (classes × count); a class absent from the split gets 0.
    classWeights[i] = count > 0 ? records.length / (labels.length * count) : 0;
  });
  return { labels, records, counts, classWeights };
}

async function resolveLabels(
  db: Kysely<Database>,
  requested: readonly string[] | undefined,
): Promise<string[]> {
  if (requested === undefined) {
    const rows = await db
      .selectFrom('labels')
      .select('name')
      .where((eb) =>
        eb.exists(
          eb.selectFrom('images').select('images.id').whereRef('images.label_id', '=', 'labels.id'),
        ),
      )
      .orderBy('name')
      .execute();
    return rows.map((r) => r.name);
  }
  if (new Set(requested).size !== requested.length) {
    throw new MenagerieError('CONFIG_INVALID', `labels repeat a name: ${requested.join(', ')}`);
  }
  if (requested.length === 0) {
    throw new MenagerieError('CONFIG_INVALID', 'labels should name at least one label, got []');
  }
  const known = new Set(
    (await db.selectFrom('labels').select('name').where('name', 'in', requested).execute()).map(
      (r) => r.name,
    ),
  );
  const missing = requested.filter((l) => !known.has(l));
  if (missing.length > 0) {
    throw new MenagerieError(
      'LABEL_NOT_FOUND',
      `no label named ${missing.map((l) => `'${l}'`).join(', ')}`,
    );
  }
  return [...requested];
}

async function queryRecords(
  db: Kysely<Database>,
  split: Split,
  labels: readonly string[],
  limitPerLabel: number | undefined,
): Promise<DatasetRecord[]> {
  if (labels.length === 0) return [];
  const rows = await db
    .selectFrom('images')
    .innerJoin('labels', 'labels.id', 'images.label_id')
    .select(['images.id', 'images.uri', 'images.sha256', 'labels.name as label'])
    .where('images.split', '=', split)
    .where('labels.name', 'in', labels)
    .orderBy('images.id')
    .execute();
  const indexOf = new Map(labels.map((l, i) => [l, i]));
  const taken = labels.map(() => 0);
  const records: DatasetRecord[] = [];
  for (const row of rows) {
    const labelIndex = indexOf.get(row.label)!;
    if (limitPerLabel !== undefined && taken[labelIndex]! >= limitPerLabel) continue;
    taken[labelIndex]!++;
    records.push({ id: row.id, uri: row.uri, sha256: row.sha256, labelIndex });
  }
  return records;
}

/** Shuffles in place from `rng` (Fisher–Yates): the same stream, the same order. */
export function shuffleInPlace<T>(items: T[], rng: Rng): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

/** `[n, depth]` one-hot float32 labels. */
export function oneHot(
  tf: Pick<typeof TfNode, 'tensor2d'>,
  classes: readonly number[],
  depth: number,
) {
  const values = new Float32Array(classes.length * depth);
  classes.forEach((c, i) => (values[i * depth + c] = 1));
  return tf.tensor2d(values, [classes.length, depth], 'float32');
}

/** Runs at most `n` tasks at once, in the order they were asked for. */
export function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async (task) => {
    // A finishing task hands its slot straight to the next waiter, so none can jump the queue.
    if (active >= n) await new Promise<void>((resolve) => queue.push(resolve));
    else active++;
    try {
      return await task();
    } finally {
      const next = queue.shift();
      if (next) next();
      else active--;
    }
  };
}
