import { sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import { excerpt, MenagerieError } from '../core/errors.js';
import { like, type SqlDialect } from '../data/sql-dialect.js';
import { RUN_STATUSES, type Database } from '../data/tables.js';

/** What a filter or order-by key names: a latest metric, a param, a tag or a run column. */
export type RunKeyEntity = 'metric' | 'param' | 'tag' | 'attribute';

export interface RunKey {
  entity: RunKeyEntity;
  key: string;
}

export type NumericOperator = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type StringOperator = '=' | '!=' | 'LIKE' | 'ILIKE' | 'IN' | 'NOT IN';

/** The parsed filter: comparisons joined by AND (and OR, an extension of MLflow's syntax). */
export type RunFilter =
  | { type: 'numeric'; target: RunKey; op: NumericOperator; value: number }
  | { type: 'string'; target: RunKey; op: StringOperator; value: string | string[] }
  | { type: 'and'; items: RunFilter[] }
  | { type: 'or'; items: RunFilter[] };

export interface RunOrder {
  target: RunKey;
  direction: 'asc' | 'desc';
}

/** Run columns a filter may name, as `attributes.<name>`. */
const ATTRIBUTES = {
  run_id: { column: 'runs.id', numeric: false },
  run_name: { column: 'runs.name', numeric: false },
  status: { column: 'runs.status', numeric: false },
  parent_run_id: { column: 'runs.parent_run_id', numeric: false },
  start_time: { column: 'runs.start_time', numeric: true },
  end_time: { column: 'runs.end_time', numeric: true },
} as const;
type Attribute = keyof typeof ATTRIBUTES;

const PREFIXES: Record<string, RunKeyEntity> = {
  metric: 'metric',
  metrics: 'metric',
  param: 'param',
  params: 'param',
  parameter: 'param',
  parameters: 'param',
  tag: 'tag',
  tags: 'tag',
  attribute: 'attribute',
  attributes: 'attribute',
  attr: 'attribute',
  run: 'attribute',
};

const KEYWORDS = ['AND', 'OR', 'NOT', 'IN', 'LIKE', 'ILIKE', 'ASC', 'DESC'] as const;
type Keyword = (typeof KEYWORDS)[number];

type Token = { pos: number } & (
  | { kind: 'key'; target: RunKey; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number; text: string }
  | { kind: 'op'; value: NumericOperator }
  | { kind: 'keyword'; value: Keyword }
  | { kind: '(' | ')' | ',' | 'end' }
);

/**
 * How big a run search may be: each bound sits well inside SQLite's own (expressions 1,000
 * deep, 2,000 ORDER BY terms, 32,766 bound values), so a search too big is refused here,
 * RUN_FILTER_INVALID naming the limit, never inside the database. docs/errors.md lists them.
 */
export const RUN_SEARCH_LIMITS = {
  /** Characters in a filter. */
  filterLength: 10_000,
  /** Comparisons in a filter (`metrics.a > 1` is one). */
  comparisons: 100,
  /** Parentheses inside parentheses. */
  nesting: 20,
  /** Strings in all of a filter's IN lists together. */
  listValues: 1_000,
  /** Order-by clauses in one search. */
  orderBy: 20,
} as const;

type Subject = 'filter' | 'order-by';

function fail(source: string, subject: Subject, pos: number, what: string): never {
  const near = source.slice(pos, pos + 20);
  throw new MenagerieError(
    'RUN_FILTER_INVALID',
    `invalid ${subject} at column ${pos + 1}` +
      `${near ? ` (near '${near}')` : ' (at the end)'}: ${what}`,
  );
}

function describe(token: Token, source: string): string {
  if (token.kind === 'end') return 'the end';
  if (token.kind === 'string') return `string '${token.value}'`;
  if (token.kind === 'key') return `'${token.text}'`;
  if (token.kind === 'number') return `number ${token.text}`;
  if (token.kind === 'op' || token.kind === 'keyword') return `'${token.value}'`;
  return `'${source[token.pos]}'`;
}

/** Hand-written tokenizer: every character is accounted for, nothing reaches SQL as text. */
function tokenize(source: string, subject: Subject): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const quoted = (quote: string, start: number): { value: string; end: number } => {
    let value = '';
    let j = start + 1;
    for (;;) {
      if (j >= source.length)
        fail(
          source,
          subject,
          start,
          `unterminated ${quote === '`' ? 'quoted key' : 'string'}: expected a closing ${quote}`,
        );
      const c = source[j]!;
      if (c === '\\' && j + 1 < source.length) {
        value += source[j + 1];
        j += 2;
      } else if (c === quote && source[j + 1] === quote) {
        value += quote;
        j += 2;
      } else if (c === quote) {
        return { value, end: j + 1 };
      } else {
        value += c;
        j++;
      }
    }
  };
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: c, pos: i });
      i++;
    } else if (c === "'" || c === '"') {
      const { value, end } = quoted(c, i);
      tokens.push({ kind: 'string', value, pos: i });
      i = end;
    } else if ('=!<>'.includes(c)) {
      const two = source.slice(i, i + 2);
      const op = (['!=', '<=', '>=', '<>'].includes(two) ? two : c) as string;
      if (op === '!' || op === '<>')
        fail(source, subject, i, `unknown operator '${op}': expected =, !=, <, <=, > or >=`);
      if (source[i + op.length] === '=')
        fail(source, subject, i, `unknown operator '${op}=': expected =, !=, <, <=, > or >=`);
      tokens.push({ kind: 'op', value: op as NumericOperator, pos: i });
      i += op.length;
    } else if (/[-+\d.]/.test(c)) {
      const match = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(source.slice(i));
      if (!match) fail(source, subject, i, `expected a number, got '${c}'`);
      const text = match[0];
      if (/[\w.]/.test(source[i + text.length] ?? ''))
        fail(
          source,
          subject,
          i,
          `expected a number, got '${/^[^\s()',]*/.exec(source.slice(i))![0]}'`,
        );
      tokens.push({ kind: 'number', value: Number(text), text, pos: i });
      i += text.length;
    } else if (/[A-Za-z_]/.test(c)) {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i))![0];
      const upper = word.toUpperCase() as Keyword;
      if (source[i + word.length] !== '.') {
        if (!KEYWORDS.includes(upper))
          fail(
            source,
            subject,
            i,
            `expected a key such as metrics.<name>, params.<name>, tags.<name> or ` +
              `attributes.<name>, got '${excerpt(word)}' (strings need quotes)`,
          );
        tokens.push({ kind: 'keyword', value: upper, pos: i });
        i += word.length;
        continue;
      }
      const entity = PREFIXES[word.toLowerCase()];
      if (!entity)
        fail(
          source,
          subject,
          i,
          `unknown key type '${excerpt(word)}': expected metrics, params, tags or attributes`,
        );
      let j = i + word.length + 1;
      let key: string;
      const q = source[j];
      if (q === '`' || q === '"') {
        const read = quoted(q, j);
        key = read.value;
        j = read.end;
      } else {
        key = /^[A-Za-z0-9_\-./:]*/.exec(source.slice(j))![0];
        j += key.length;
      }
      if (key === '')
        fail(
          source,
          subject,
          i,
          `expected a key name after '${word}.' (quote names with spaces in backticks)`,
        );
      const target: RunKey = { entity, key };
      if (entity === 'attribute' && !(key in ATTRIBUTES))
        fail(
          source,
          subject,
          i,
          `unknown attribute '${excerpt(key)}': expected one of ${Object.keys(ATTRIBUTES).join(', ')}`,
        );
      tokens.push({ kind: 'key', target, text: source.slice(i, j), pos: i });
      i = j;
    } else {
      fail(source, subject, i, `unexpected character '${c}'`);
    }
  }
  tokens.push({ kind: 'end', pos: source.length });
  return tokens;
}

class Parser {
  private at = 0;
  constructor(
    private readonly source: string,
    private readonly subject: Subject,
    private readonly tokens: Token[],
  ) {}

  private comparisons = 0;
  private depth = 0;
  private values = 0;

  peek(): Token {
    return this.tokens[this.at]!;
  }

  /** Fails once a count passes its limit, at the token that passed it. */
  private bound(count: number, limit: number, what: string, token: Token): void {
    if (count > limit)
      fail(this.source, this.subject, token.pos, `a filter has at most ${limit} ${what}`);
  }

  next(): Token {
    return this.tokens[this.at++]!;
  }

  keyword(value: Keyword): boolean {
    const t = this.peek();
    if (t.kind === 'keyword' && t.value === value) {
      this.at++;
      return true;
    }
    return false;
  }

  expected(what: string, token = this.peek()): never {
    fail(
      this.source,
      this.subject,
      token.pos,
      `expected ${what}, got ${describe(token, this.source)}`,
    );
  }

  // expr := and ( OR and )*
  expression(): RunFilter {
    const items = [this.conjunction()];
    while (this.keyword('OR')) items.push(this.conjunction());
    return items.length === 1 ? items[0]! : { type: 'or', items };
  }

  // and := primary ( AND primary )*
  conjunction(): RunFilter {
    const items = [this.primary()];
    while (this.keyword('AND')) items.push(this.primary());
    return items.length === 1 ? items[0]! : { type: 'and', items };
  }

  primary(): RunFilter {
    const t = this.peek();
    if (t.kind === '(') {
      this.next();
      this.bound(++this.depth, RUN_SEARCH_LIMITS.nesting, 'levels of parentheses', t);
      const inner = this.expression();
      if (this.peek().kind !== ')') this.expected("')' or AND/OR");
      this.next();
      this.depth--;
      return inner;
    }
    return this.comparison();
  }

  comparison(): RunFilter {
    this.bound(++this.comparisons, RUN_SEARCH_LIMITS.comparisons, 'comparisons', this.peek());
    const keyToken = this.next();
    if (keyToken.kind !== 'key') this.expected('a key such as metrics.accuracy', keyToken);
    const target = keyToken.target;
    const numeric =
      target.entity === 'metric' ||
      (target.entity === 'attribute' && ATTRIBUTES[target.key as Attribute].numeric);
    const t = this.next();
    if (numeric) {
      if (t.kind !== 'op')
        this.expected(`a comparison (=, !=, <, <=, >, >=) after ${keyToken.text}`, t);
      const v = this.next();
      if (v.kind !== 'number')
        this.expected(`a number after '${keyToken.text} ${t.value}' (it is numeric)`, v);
      return { type: 'numeric', target, op: t.value, value: v.value };
    }
    const how = `(${target.entity === 'attribute' ? 'this attribute' : `${target.entity}s`} are strings)`;
    let op: StringOperator;
    if (t.kind === 'op' && (t.value === '=' || t.value === '!=')) op = t.value;
    else if (t.kind === 'keyword' && (t.value === 'LIKE' || t.value === 'ILIKE')) op = t.value;
    else if (t.kind === 'keyword' && t.value === 'IN') op = 'IN';
    else if (t.kind === 'keyword' && t.value === 'NOT' && this.keyword('IN')) op = 'NOT IN';
    else this.expected(`=, !=, LIKE, ILIKE, IN or NOT IN after ${keyToken.text} ${how}`, t);
    const value = op === 'IN' || op === 'NOT IN' ? this.list() : this.string(how);
    if (
      target.entity === 'attribute' &&
      target.key === 'status' &&
      (op === '=' || op === '!=' || op === 'IN' || op === 'NOT IN')
    ) {
      for (const s of [value].flat())
        if (!(RUN_STATUSES as readonly string[]).includes(s))
          fail(
            this.source,
            this.subject,
            t.pos,
            `unknown status '${excerpt(s)}': expected one of ${RUN_STATUSES.join(', ')}`,
          );
    }
    return { type: 'string', target, op, value };
  }

  string(how: string): string {
    const v = this.next();
    if (v.kind !== 'string') this.expected(`a quoted string ${how}`, v);
    return v.value;
  }

  list(): string[] {
    if (this.next().kind !== '(') this.expected("'(' to start the list", this.tokens[this.at - 1]);
    const values: string[] = [];
    do {
      if (values.length > 0) this.next();
      this.bound(++this.values, RUN_SEARCH_LIMITS.listValues, 'strings in IN lists', this.peek());
      values.push(this.string('in the list'));
    } while (this.peek().kind === ',');
    if (this.next().kind !== ')') this.expected("',' or ')' in the list", this.tokens[this.at - 1]);
    return values;
  }

  end(what: string): void {
    if (this.peek().kind !== 'end') this.expected(what);
  }
}

/**
 * Parses an MLflow search filter into a `RunFilter`; an empty filter matches every run
 * (`null`). Comparisons are joined by AND; OR and parentheses are an extension.
 *
 * ```ts
 * import { parseRunFilter } from './tracking/run-filter.js';
 * parseRunFilter("metrics.val_accuracy > 0.9 AND params.optimizer = 'adam'");
 * // { type: 'and', items: [{ type: 'numeric', target: { entity: 'metric', key: 'val_accuracy' }, op: '>', value: 0.9 }, …] }
 * ```
 */
export function parseRunFilter(source: string): RunFilter | null {
  const maxLength = RUN_SEARCH_LIMITS.filterLength;
  if (source.length > maxLength)
    fail(
      source,
      'filter',
      maxLength,
      `filter longer than ${maxLength} characters (${source.length}): a filter has at most ${maxLength}`,
    );
  const tokens = tokenize(source, 'filter');
  if (tokens.length === 1) return null;
  const parser = new Parser(source, 'filter', tokens);
  const filter = parser.expression();
  parser.end('AND, OR or the end of the filter');
  return filter;
}

/** Parses one order-by clause: `metrics.val_accuracy DESC`, `attributes.start_time`. */
export function parseRunOrder(source: string): RunOrder {
  const parser: Parser = new Parser(source, 'order-by', tokenize(source, 'order-by'));
  const key = parser.next();
  if (key.kind !== 'key') parser.expected('a key such as metrics.accuracy', key);
  let direction: RunOrder['direction'] = 'asc';
  if (parser.keyword('DESC')) direction = 'desc';
  else parser.keyword('ASC');
  parser.end(`ASC, DESC or the end after ${key.text}`);
  return { target: key.target, direction };
}

type RunsBuilder = ExpressionBuilder<Database, 'runs'>;

const TABLES = { metric: 'latest_metrics', param: 'params', tag: 'run_tags' } as const;

function compareString<DB, TB extends keyof DB>(
  eb: ExpressionBuilder<DB, TB>,
  dialect: SqlDialect,
  lhs: Expression<string | null>,
  op: StringOperator,
  value: string | string[],
): Expression<SqlBool> {
  switch (op) {
    // MLflow's LIKE matches case, its ILIKE does not: the same on both backends.
    case 'LIKE':
      return like(dialect, lhs, String(value), { caseSensitive: true });
    case 'ILIKE':
      return like(dialect, lhs, String(value), { caseSensitive: false });
    case 'IN':
      return eb(lhs, 'in', [value].flat());
    case 'NOT IN':
      return eb(lhs, 'not in', [value].flat());
    default:
      return eb(lhs, op, String(value));
  }
}

/**
 * The filter as a kysely expression over `runs`: metrics, params and tags become
 * correlated EXISTS subqueries, every value a bound parameter.
 *
 * ```ts
 * const filter = parseRunFilter("tags.team = 'x'");
 * db.selectFrom('runs').selectAll().where((eb) => runFilterExpression(eb, filter!, dialectOf(db)));
 * // … where exists (select 1 from run_tags where run_id = runs.id and key = ? and value = ?)
 * ```
 */
export function runFilterExpression(
  eb: RunsBuilder,
  filter: RunFilter,
  dialect: SqlDialect,
): Expression<SqlBool> {
  if (filter.type === 'and')
    return eb.and(filter.items.map((f) => runFilterExpression(eb, f, dialect)));
  if (filter.type === 'or')
    return eb.or(filter.items.map((f) => runFilterExpression(eb, f, dialect)));
  const { entity, key } = filter.target;
  if (entity === 'attribute') {
    const column = ATTRIBUTES[key as Attribute].column;
    return filter.type === 'numeric'
      ? eb(sql.ref<number | null>(column), filter.op, filter.value)
      : compareString(eb, dialect, sql.ref<string | null>(column), filter.op, filter.value);
  }
  const table = TABLES[entity];
  return eb.exists(
    eb
      .selectFrom(table)
      .select(sql.lit(1).as('one'))
      .whereRef(`${table}.run_id`, '=', 'runs.id')
      .where(`${table}.key`, '=', key)
      .where((inner) =>
        filter.type === 'numeric'
          ? inner(sql.ref<number | null>(`${table}.value`), filter.op, filter.value)
          : compareString(
              inner,
              dialect,
              sql.ref<string | null>(`${table}.value`),
              filter.op,
              filter.value,
            ),
      ),
  );
}

/** The value an order-by sorts on: a column, or a scalar subquery (null when missing). */
export function runOrderExpression(
  eb: RunsBuilder,
  target: RunKey,
): Expression<string | number | null> {
  if (target.entity === 'attribute')
    return sql.ref<string | number | null>(ATTRIBUTES[target.key as Attribute].column);
  const table = TABLES[target.entity];
  return eb
    .selectFrom(table)
    .select(`${table}.value`)
    .whereRef(`${table}.run_id`, '=', 'runs.id')
    .where(`${table}.key`, '=', target.key)
    .$castTo<string | number | null>();
}
