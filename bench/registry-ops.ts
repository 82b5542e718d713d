// `npm run bench -- registry-ops [--backend sqlite|postgres|both] [--runs 10000]
// [--promotions 500]`: the registry and tracking stores on each database backend.
// Promotions per second (promoteChampion: alias, stages and audit rows in one transaction;
// one caller, then 4 concurrent callers), and run-search latency (p50/p99) over 10,000 runs
// with params, latest metrics and tags, for the filters and orders the dashboard sends.
// PostgreSQL is $MENAGERIE_DATABASE_URL or one started here through dev-services. The anchor
// is SQLite, the embedded default: the last line is PostgreSQL's search p50 over it.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { openDatabase, type OpenDatabase } from '../data/database.js';
import { createRng } from '../core/random.js';
import { createModelRegistry } from '../registry/model-registry.js';
import { createTrackingStore } from '../tracking/tracking-store.js';
import { benchServices } from './bench-services.js';
import { numberFlag, percentile, printFigure, printRatio } from './report.js';

const WORK = path.resolve(import.meta.dirname, '.work');
const SPEC = { size: 64, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 } as const;
const SEARCHES: [string, { filter?: string; orderBy?: string[] }][] = [
  ['newest 100', {}],
  ['metrics.val_accuracy > 0.9', { filter: 'metrics.val_accuracy > 0.9' }],
  [
    "params.optimizer = 'adam' AND metrics.val_accuracy > 0.8, by accuracy",
    {
      filter: "params.optimizer = 'adam' AND metrics.val_accuracy > 0.8",
      orderBy: ['metrics.val_accuracy DESC'],
    },
  ],
  ["tags.team LIKE 'vis%'", { filter: "tags.team LIKE 'vis%'" }],
  ['ordered by metrics.val_loss', { orderBy: ['metrics.val_loss ASC'] }],
];

async function open(backend: string, pgUrl: string | undefined): Promise<OpenDatabase> {
  if (backend === 'postgres') {
    const url = `${pgUrl!}?schema=bench_registry_ops`;
    const stale = await openDatabase(url, { migrate: false });
    if (stale.backend === 'postgres') await stale.pool.query(`drop schema ${stale.schema} cascade`);
    await stale.close();
    return openDatabase(url);
  }
  fs.mkdirSync(WORK, { recursive: true });
  const file = path.join(WORK, 'registry-ops.db');
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  return openDatabase(file);
}

/** 10,000 runs written in bulk: the search is measured here, not the logging. */
async function seedRuns(database: OpenDatabase, count: number): Promise<void> {
  const rng = createRng('bench-registry-ops');
  const tracking = createTrackingStore({ db: database.db, artifactRoot: path.join(WORK, 'art') });
  const experiment = await tracking.createExperiment('bench');
  const now = Date.now();
  for (let i = 0; i < count; i += 500) {
    const ids = Array.from({ length: Math.min(500, count - i) }, () =>
      randomUUID().replaceAll('-', ''),
    );
    await database.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('runs')
        .values(
          ids.map((id, j) => ({
            id,
            experiment_id: experiment.id,
            name: `run-${i + j}`,
            status: 'FINISHED' as const,
            start_time: now - (count - i - j) * 1000,
            end_time: now,
            parent_run_id: null,
            artifact_uri: `file:///bench/${id}`,
            owner_pid: null,
            hostname: null,
            heartbeat_at: null,
          })),
        )
        .execute();
      await trx
        .insertInto('params')
        .values(
          ids.flatMap((id) => [
            { run_id: id, key: 'optimizer', value: rng.pick(['adam', 'sgd', 'rmsprop']) },
            { run_id: id, key: 'learning_rate', value: String(rng.float(1e-4, 1e-2)) },
            { run_id: id, key: 'batch_size', value: String(rng.pick([16, 32, 64])) },
          ]),
        )
        .execute();
      await trx
        .insertInto('latest_metrics')
        .values(
          ids.flatMap((id) => [
            { run_id: id, key: 'val_accuracy', value: rng.float(0.5, 1), step: 9, timestamp: now },
            { run_id: id, key: 'val_loss', value: rng.float(0.05, 1.5), step: 9, timestamp: now },
            { run_id: id, key: 'loss', value: rng.float(0.05, 1.5), step: 9, timestamp: now },
          ]),
        )
        .execute();
      await trx
        .insertInto('run_tags')
        .values(
          ids.flatMap((id) => [
            { run_id: id, key: 'team', value: rng.pick(['vision', 'visual-search', 'infra']) },
            { run_id: id, key: 'menagerie.plugin', value: 'menagerie:cnn' },
          ]),
        )
        .execute();
    });
  }
}

export async function run(args: string[]): Promise<void> {
  const which = args[args.indexOf('--backend') + 1];
  const backends =
    args.includes('--backend') && which !== 'both' ? [which!] : ['sqlite', 'postgres'];
  const runs = numberFlag(args, '--runs', 10_000);
  const promotions = numberFlag(args, '--promotions', 500);
  const services = backends.includes('postgres') ? await benchServices(['postgres']) : undefined;
  const searchP50: Record<string, number> = {};
  try {
    for (const backend of backends) {
      const database = await open(backend, services?.env.MENAGERIE_DATABASE_URL);
      try {
        const registry = createModelRegistry({ db: database.db, user: 'bench' });
        for (let v = 1; v <= 4; v++) {
          await registry.createModelVersion({
            name: 'faces',
            source: 'file:///bench/model',
            plugin: 'menagerie:cnn',
            inputSpec: SPEC,
            labels: ['cat', 'dog', 'wild'],
          });
          await registry.setVersionStatus('faces', v, 'READY');
        }
        const rng = createRng('bench-promotions');
        let started = performance.now();
        for (let i = 0; i < promotions; i++)
          await registry.promoteChampion('faces', rng.int(1, 4), { comment: `round ${i}` });
        printFigure(
          `${backend} promoteChampion, one caller`,
          promotions / ((performance.now() - started) / 1000),
          'promotions/s',
        );
        started = performance.now();
        await Promise.all(
          Array.from({ length: 4 }, async (_, w) => {
            for (let i = 0; i < promotions / 4; i++)
              await registry.promoteChampion('faces', ((i + w) % 4) + 1, { user: `w${w}` });
          }),
        );
        printFigure(
          `${backend} promoteChampion, 4 concurrent callers`,
          promotions / ((performance.now() - started) / 1000),
          'promotions/s',
        );

        const seedStart = performance.now();
        await seedRuns(database, runs);
        // Statistics for both planners, as autovacuum (or `ANALYZE`) gives a live database.
        await sql`analyze`.execute(database.db);
        console.log(
          `${backend}: ${runs} runs seeded in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`,
        );
        const tracking = createTrackingStore({
          db: database.db,
          artifactRoot: path.join(WORK, 'art'),
        });
        const all: number[] = [];
        for (const [name, search] of SEARCHES) {
          for (let i = 0; i < 3; i++) await tracking.searchRuns({ ...search, maxResults: 100 });
          const ms: number[] = [];
          for (let i = 0; i < 30; i++) {
            const t = performance.now();
            await tracking.searchRuns({ ...search, maxResults: 100 });
            ms.push(performance.now() - t);
          }
          all.push(...ms);
          printFigure(
            `${backend} searchRuns ${name}, 100 of ${runs} p50`,
            percentile(ms, 50),
            'ms',
          );
          printFigure(
            `${backend} searchRuns ${name}, 100 of ${runs} p99`,
            percentile(ms, 99),
            'ms',
          );
        }
        searchP50[backend] = percentile(all, 50);
        printFigure(`${backend} searchRuns, all filters p50`, searchP50[backend]!, 'ms');
      } finally {
        await database.close();
      }
    }
  } finally {
    await services?.stop();
  }
  if (searchP50.postgres && searchP50.sqlite)
    printRatio('run search p50, postgres vs sqlite', searchP50.postgres, searchP50.sqlite, false);
}
