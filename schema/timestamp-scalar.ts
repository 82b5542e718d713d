import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';

const DIGITS = /^-?\d{1,16}$/;

function parse(value: unknown): number {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !DIGITS.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new GraphQLError(`Timestamp should be milliseconds since the epoch as a decimal string`);
  }
  return Number(text);
}

/**
 * Milliseconds since the Unix epoch as a decimal string (`"1718000000000"`), as MLflow
 * sends int64s so that no JavaScript client rounds them. Inputs accept the string or an
 * integer literal.
 */
export const TimestampScalar = new GraphQLScalarType<number, string>({
  name: 'Timestamp',
  description: 'Milliseconds since the Unix epoch, as a decimal string (int64-safe).',
  serialize: (value) => String(parse(value)),
  parseValue: parse,
  parseLiteral(ast) {
    if (ast.kind === Kind.STRING || ast.kind === Kind.INT) return parse(ast.value);
    throw new GraphQLError('Timestamp should be a string of digits');
  },
});
