import type { ValidationContext, ValidationRule } from 'graphql';
import { MenagerieError } from '../core/errors.js';
import { toGraphQLError } from './error-format.js';

/** What a client is told when it asks for the schema of a server that does not publish it. */
export const INTROSPECTION_OFF =
  'introspection is switched off on this server (serve --no-introspection): ' +
  'it does not publish its schema; ask its operators for schema.graphql';

/**
 * Refuses `__schema` and `__type` (QUERY_INVALID, 400), over HTTP and WebSocket alike;
 * `__typename` stays, as clients need it. Added to the validation rules when
 * ServerConfig.introspection is false.
 */
export function noIntrospection(): ValidationRule {
  return (context: ValidationContext) => ({
    Field(node) {
      if (node.name.value === '__schema' || node.name.value === '__type') {
        context.reportError(toGraphQLError(new MenagerieError('QUERY_INVALID', INTROSPECTION_OFF)));
      }
    },
  });
}
