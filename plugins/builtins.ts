import { cnnModel } from './models/cnn.js';
import { mobilenetV2, mobilenetV2x140 } from './backbones/mobilenet-v2.js';
import { transferModel } from './models/transfer.js';
import type { Plugin } from '../plugin-api/plugin.js';
import { localFsStorage } from './storage/local-fs.js';
import { s3Storage } from './storage/s3.js';
import { bayesianOptimizationTuner } from './tuners/bayesian-optimization.js';
import { gridSearchTuner } from './tuners/grid-search.js';
import { hyperbandTuner } from './tuners/hyperband.js';
import { randomSearchTuner } from './tuners/random-search.js';

/** The plugins Menagerie ships, registered through the same API as anyone else's. */
export function builtinPlugins(): Plugin[] {
  return [
    localFsStorage(),
    s3Storage(),
    cnnModel(),
    transferModel(),
    mobilenetV2x140(),
    mobilenetV2(),
    randomSearchTuner(),
    gridSearchTuner(),
    hyperbandTuner(),
    bayesianOptimizationTuner(),
  ];
}
