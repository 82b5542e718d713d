import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../data/database.js';
import type { Run, TrackingStore } from '../../tracking/tracking-store.js';
import { memoryTrackingStore } from '../helpers/tracking.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) => {
  let store: TrackingStore;
  let database: OpenDatabase;
  let dispose: () => Promise<void>;
  let otherExperimentId: number;
  let facesId: number;

  // name, val_accuracy (undefined: never logged), optimizer, team, status, start offset
  const RUNS: [string, number | undefined, string, string, 'FINISHED' | 'FAILED' | null, number][] =
    [
      ['a', 0.95, 'adam', 'x', 'FINISHED', 1],
      ['b', 0.91, 'sgd', 'x', 'FINISHED', 2],
      ['c', 0.8, 'adam', 'y', 'FAILED', 3],
      ['d', undefined, 'Adam', 'x', null, 4],
      ['e', Number.NaN, 'rmsprop', "o'brien", 'FINISHED', 5],
      ['f', 0.99, "it's", 'y', 'FINISHED', 6],
    ];

  const names = (runs: Run[]) => runs.map((r) => r.name);

  beforeAll(async () => {
    ({ store, database, dispose } = await memoryTrackingStore(backend));
    facesId = (await store.createExperiment('faces')).id;
    for (const [name, acc, optimizer, team, status, start] of RUNS) {
      const run = await store.createRun({
        experimentId: facesId,
        name,
        tags: { team },
        startTime: 1_000_000 + start,
      });
      await store.logParams(run.id, { optimizer, batch_size: 32 });
      if (acc !== undefined) {
        await store.logMetric(run.id, 'val_accuracy', 0.1, 0);
        await store.logMetric(run.id, 'val_accuracy', acc, 1);
        await store.logMetric(run.id, 'val acc', acc, 1);
      }
      if (status) await store.endRun(run.id, status, 2_000_000 + start);
    }
    otherExperimentId = (await store.createExperiment('other')).id;
    const other = await store.createRun({ experimentId: otherExperimentId, name: 'z' });
    await store.logMetric(other.id, 'val_accuracy', 0.97, 1);
  });
  afterAll(() => dispose());

  async function search(filter: string, orderBy: string[] = ['attributes.run_name']) {
    return names((await store.searchRuns({ experimentIds: [facesId], filter, orderBy })).runs);
  }

  describe('searchRuns filters', () => {
    it.each([
      ['', ['a', 'b', 'c', 'd', 'e', 'f']],
      ['   ', ['a', 'b', 'c', 'd', 'e', 'f']],
      ['metrics.val_accuracy > 0.9', ['a', 'b', 'f']],
      ['metrics.val_accuracy >= 0.95', ['a', 'f']],
      ['metrics.val_accuracy < 0.9', ['c']],
      ['metrics.val_accuracy <= 0.8', ['c']],
      ['metrics.val_accuracy = 0.8', ['c']],
      ['metrics.val_accuracy != 0.8', ['a', 'b', 'f']],
      ['metric.val_accuracy > 9e-1', ['a', 'b', 'f']],
      ['metrics.`val acc` > 0.9', ['a', 'b', 'f']],
      ['metrics."val acc" > 0.9', ['a', 'b', 'f']],
      ["metrics.val_accuracy > 0.9 AND params.optimizer = 'adam'", ['a']],
      ["metrics.val_accuracy > 0.9 and params.optimizer = 'adam' AND tags.team = 'x'", ['a']],
      ["params.optimizer = 'adam'", ['a', 'c']],
      ["params.optimizer != 'adam'", ['b', 'd', 'e', 'f']],
      ["params.optimizer LIKE 'a%'", ['a', 'c']],
      ["params.optimizer ILIKE 'a%'", ['a', 'c', 'd']],
      ["params.optimizer LIKE '_gd'", ['b']],
      ["params.optimizer IN ('adam', 'sgd')", ['a', 'b', 'c']],
      ["params.optimizer NOT IN ('adam', 'sgd')", ['d', 'e', 'f']],
      ["params.optimizer = 'it''s'", ['f']],
      ["params.optimizer = 'it\\'s'", ['f']],
      ['params.optimizer = "it\'s"', ['f']],
      ["tags.team = 'o''brien'", ['e']],
      ["params.batch_size = '32' AND tags.team = 'y'", ['c', 'f']],
      ["params.missing = 'x'", []],
      ["attributes.status = 'FINISHED'", ['a', 'b', 'e', 'f']],
      ["attributes.status IN ('FAILED', 'RUNNING')", ['c', 'd']],
      ["attributes.run_name = 'b'", ['b']],
      ["attributes.run_name LIKE '%'", ['a', 'b', 'c', 'd', 'e', 'f']],
      ['attributes.start_time > 1000003', ['d', 'e', 'f']],
      ['attributes.end_time < 2000003', ['a', 'b']],
      ["metrics.val_accuracy > 0.9 OR tags.team = 'y'", ['a', 'b', 'c', 'f']],
      [
        "(params.optimizer = 'adam' OR params.optimizer = 'sgd') AND metrics.val_accuracy > 0.85",
        ['a', 'b'],
      ],
      // Hostile values are data: bound parameters, never SQL.
      ["params.optimizer = '''; DROP TABLE runs; --'", []],
      ["tags.team = 'x'' OR ''1''=''1'", []],
      ["params.optimizer LIKE '%'' OR 1=1 --'", []],
      ["params.`optimizer; DROP TABLE runs` = 'adam'", []],
      ["params.optimizer = 'SELECT * FROM runs'", []],
      ["params.optimizer LIKE '[a]%'", []],
    ])('%s', async (filter, expected) => {
      expect(await search(filter)).toEqual(expected);
    });

    it.each([
      ['metrics.val_accuracy >', /column 23 .*expected a number after 'metrics.val_accuracy >'/],
      ["metrics.val_accuracy > 'x'", /column 24 .*expected a number/],
      ['metrics.val_accuracy LIKE 0.9', /column 22 .*expected a comparison/],
      [
        "params.optimizer > 'adam'",
        /expected =, !=, LIKE, ILIKE, IN or NOT IN .*params are strings/,
      ],
      [
        'params.optimizer = adam',
        /column 20 .*expected a key such as metrics.*got 'adam' \(strings need quotes\)/,
      ],
      ['params.lr = 0.01', /expected a quoted string .*got number 0.01/],
      ["params.optimizer = 'adam", /column 20 .*unterminated string: expected a closing '/],
      ['params.`optimizer = 1', /unterminated quoted key/],
      [
        "foo.bar = 'x'",
        /column 1 .*unknown key type 'foo': expected metrics, params, tags or attributes/,
      ],
      ["attributes.colour = 'red'", /unknown attribute 'colour': expected one of run_id, run_name/],
      ["attributes.status = 'DONE'", /unknown status 'DONE': expected one of RUNNING/],
      ["params.optimizer = 'adam' AND", /at the end.*expected a key/],
      ["params.optimizer = 'adam' adam", /expected a key such as metrics/],
      [
        "params.optimizer = 'adam' tags.team = 'x'",
        /expected AND, OR or the end of the filter, got 'tags.team'/,
      ],
      ['AND', /column 1 .*expected a key/],
      ["'; DROP TABLE runs; --", /unterminated string/],
      ["params.optimizer = 'a'; DROP TABLE runs; --", /column 23 .*unexpected character ';'/],
      ['SELECT * FROM runs', /got 'SELECT'/],
      ['params.optimizer IN ()', /expected a quoted string in the list/],
      ["params.optimizer IN ('a' 'b')", /expected ',' or '\)' in the list/],
      ["params.optimizer NOT 'a'", /expected =, !=, LIKE/],
      ["(params.optimizer = 'a'", /expected '\)' or AND\/OR/],
      ["params.optimizer == 'a'", /unknown operator '==='|unknown operator '=='/],
      ['metrics.acc <> 1', /unknown operator '<>'/],
      ['metrics.acc > 1.2.3', /expected a number, got '1.2.3'/],
      ['metrics. > 1', /expected a key name after 'metrics\.'/],
      ['metrics.acc > 1 # comment', /unexpected character '#'/],
      ['metrics.acc ≥ 1', /unexpected character '≥'/],
    ])('%s is RUN_FILTER_INVALID', async (filter, message) => {
      const error = await store.searchRuns({ filter }).catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: 'RUN_FILTER_INVALID',
        message: expect.stringMatching(message),
      });
    });

    it('leaves every table in place after hostile filters', async () => {
      const tables = (await database.db.introspection.getTables()).map((t) => t.name);
      expect(tables).toEqual(
        expect.arrayContaining([
          'runs',
          'params',
          'metrics',
          'latest_metrics',
          'run_tags',
          'experiments',
        ]),
      );
      expect((await store.searchRuns()).runs).toHaveLength(RUNS.length + 1);
    });

    it('searches every experiment by default, or the ones named', async () => {
      const all = await store.searchRuns({ filter: 'metrics.val_accuracy > 0.96' });
      expect(names(all.runs).sort()).toEqual(['f', 'z']);
      const other = await store.searchRuns({ experimentIds: [otherExperimentId] });
      expect(names(other.runs)).toEqual(['z']);
      expect((await store.searchRuns({ experimentIds: [] })).runs).toEqual([]);
    });
  });

  describe('searchRuns order and paging', () => {
    // Ties and runs without the key: newest first. Missing and NaN sort last either way.
    it.each([
      [['metrics.val_accuracy DESC'], ['f', 'a', 'b', 'c', 'e', 'd']],
      [['metrics.val_accuracy ASC'], ['c', 'b', 'a', 'f', 'e', 'd']],
      [['metrics.`val acc` desc'], ['f', 'a', 'b', 'c', 'e', 'd']],
      [['params.optimizer'], ['d', 'c', 'a', 'f', 'e', 'b']],
      [
        ['tags.team DESC', 'attributes.run_name DESC'],
        ['f', 'c', 'd', 'b', 'a', 'e'],
      ],
      [['attributes.start_time'], ['a', 'b', 'c', 'd', 'e', 'f']],
      [[], ['f', 'e', 'd', 'c', 'b', 'a']],
    ])('%j', async (orderBy, expected) => {
      expect(await search('', orderBy)).toEqual(expected);
    });

    it.each([['metrics.acc sideways'], ['DESC'], ['metrics.acc DESC DESC'], ['foo.acc']])(
      'order-by %s is RUN_FILTER_INVALID',
      async (orderBy) => {
        await expect(store.searchRuns({ orderBy })).rejects.toMatchObject({
          code: 'RUN_FILTER_INVALID',
        });
      },
    );

    it('refuses more order-by clauses than the documented limit, before SQLite would', async () => {
      const orderBy = Array.from({ length: 1000 }, (_, i) => `metrics.m${i} DESC`);
      await expect(store.searchRuns({ orderBy })).rejects.toMatchObject({
        code: 'RUN_FILTER_INVALID',
        message: expect.stringMatching(/at most 20 order-by clauses, got 1000/),
      });
      // At the limit, the search runs.
      const twenty = orderBy.slice(0, 20);
      await expect(store.searchRuns({ orderBy: twenty })).resolves.toMatchObject({
        runs: expect.any(Array),
      });
    });

    it.each([
      [
        '1,000 comparisons',
        Array.from({ length: 1000 }, (_, i) => `metrics.m${i} > 0`).join(' AND '),
      ],
      ['300 OR-ed comparisons', Array.from({ length: 300 }, () => "tags.team = 'x'").join(' OR ')],
      ['parentheses 200 deep', `${'('.repeat(200)}tags.team = 'x'${')'.repeat(200)}`],
      [
        'an IN list of 2,000 strings',
        `tags.team IN (${Array.from({ length: 2000 }, () => "'x'").join(',')})`,
      ],
    ])('a filter of %s is RUN_FILTER_INVALID with the limit named', async (_name, filter) => {
      await expect(store.searchRuns({ filter })).rejects.toMatchObject({
        code: 'RUN_FILTER_INVALID',
        message: expect.stringMatching(/at most \d+/),
      });
    });

    it('pages with an opaque token tied to its search', async () => {
      const query = { experimentIds: [facesId], orderBy: ['metrics.val_accuracy DESC'] };
      const seen: string[] = [];
      let pageToken: string | null = null;
      let pages = 0;
      do {
        const page: { runs: Run[]; nextPageToken: string | null } = await store.searchRuns({
          ...query,
          maxResults: 4,
          pageToken,
        });
        seen.push(...names(page.runs));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken);
      expect(pages).toBe(2);
      expect(seen).toEqual(['f', 'a', 'b', 'c', 'e', 'd']);

      const first = await store.searchRuns({ ...query, maxResults: 2 });
      await expect(
        store.searchRuns({ ...query, filter: "tags.team = 'x'", pageToken: first.nextPageToken }),
      ).rejects.toMatchObject({
        code: 'CURSOR_INVALID',
        message: expect.stringContaining('another search'),
      });
      await expect(store.searchRuns({ pageToken: 'garbage' })).rejects.toMatchObject({
        code: 'CURSOR_INVALID',
      });
      for (const maxResults of [0, -1, 1.5, 50_001])
        await expect(store.searchRuns({ maxResults })).rejects.toMatchObject({
          code: 'RUN_FILTER_INVALID',
        });
    });
  });
});
