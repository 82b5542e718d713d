import { defaultFieldResolver, type GraphQLSchema } from 'graphql';
import { Extensions } from 'type-graphql';
import { MenagerieError } from '../core/errors.js';
import type { GraphQLContext, Role } from './context.js';
import { ROLES } from './context.js';

/** Who may call a mutation: anyone (`public`), or a token of at least this role. */
export type AccessLevel = 'public' | Role;

/** Mutations without an @Access decorator need a `write` token. */
export const DEFAULT_MUTATION_ACCESS: AccessLevel = 'write';

/**
 * Declares who may call a mutation. Every mutation is guarded, decorated or not, so a
 * new mutation is safe by default.
 *
 * ```ts
 * @Access('public')
 * @Mutation(() => Prediction)
 * predict(...) {}
 * ```
 */
export const Access = (level: AccessLevel) => Extensions({ access: level });

/**
 * Wraps every Mutation field's resolver with the access check, in the schema itself, so
 * HTTP and WebSocket callers meet the same rule and queries pay nothing for it.
 */
export function guardMutations(schema: GraphQLSchema): void {
  const fields = schema.getMutationType()?.getFields() ?? {};
  for (const field of Object.values(fields)) {
    const level =
      (field.extensions['access'] as AccessLevel | undefined) ?? DEFAULT_MUTATION_ACCESS;
    const resolve = field.resolve ?? defaultFieldResolver;
    field.resolve = (source, args, context: GraphQLContext, info) => {
      checkAccess(context, level, field.name);
      return resolve(source, args, context, info);
    };
  }
}

export function checkAccess(context: GraphQLContext, level: AccessLevel, action: string): void {
  if (level === 'public') return;
  if (context.readOnly) {
    throw new MenagerieError('FORBIDDEN', `the server is read-only; ${action} is refused`);
  }
  if (context.role === null) {
    throw new MenagerieError(
      'UNAUTHENTICATED',
      `${action} needs a bearer token (authorization: Bearer <token>)`,
    );
  }
  if (ROLES.indexOf(context.role) < ROLES.indexOf(level)) {
    throw new MenagerieError(
      'FORBIDDEN',
      `${action} needs a ${level} token; this token's role is ${context.role}`,
    );
  }
}
