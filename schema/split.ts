import { registerEnumType } from 'type-graphql';
import type { Split } from '../data/tables.js';

/** GraphQL names for the stored splits: `TRAIN` is stored as `'train'`. */
export const SplitEnum = { TRAIN: 'train', VAL: 'val', TEST: 'test' } as const satisfies Record<
  string,
  Split
>;

registerEnumType(SplitEnum, {
  name: 'Split',
  description: 'Which part of the data set an image is in.',
});
