// Child process for the concurrency test: promotes random versions on a shared database
// (a SQLite file or a PostgreSQL URL) and checks, after each promotion, that exactly one version is in Production and
// that it carries the champion alias. Prints one JSON line: { promotions, violations }.
import { sql } from 'kysely';
import { openDatabase } from '../../data/database.js';
import { createModelRegistry } from '../../registry/model-registry.js';

const [file, name, versionsArg, roundsArg, seedArg] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const versions = Number(versionsArg);
let seed = Number(seedArg);
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);

const database = await openDatabase(file, { busyTimeoutMs: 20_000 });
const registry = createModelRegistry({ db: database.db, user: `worker-${seedArg}` });
// One statement, so one snapshot of the registry on either backend.
const check = async () =>
  (
    await sql<{ production: number; champion: number | null; championStage: string | null }>`
    select
      (select count(*) from model_versions v join registered_models m on m.id = v.model_id
        where m.name = ${name} and v.stage = 'Production') as production,
      (select a.version from model_aliases a join registered_models m on m.id = a.model_id
        where m.name = ${name} and a.alias = 'champion') as champion,
      (select v.stage from model_aliases a join registered_models m on m.id = a.model_id
        join model_versions v on v.model_id = a.model_id and v.version = a.version
        where m.name = ${name} and a.alias = 'champion') as "championStage"`.execute(database.db)
  ).rows[0]!;
const violations: string[] = [];
let promotions = 0;
for (let i = 0; i < Number(roundsArg); i++) {
  await registry.promoteChampion(name, 1 + Math.floor(random() * versions), {
    comment: `round ${i}`,
  });
  promotions++;
  const state = await check();
  if (
    Number(state.production) !== 1 ||
    state.champion === null ||
    state.championStage !== 'Production'
  )
    violations.push(JSON.stringify(state));
}
await database.close();
console.log(JSON.stringify({ promotions, violations }));
