import { createHash } from 'node:crypto';
import { MenagerieError } from '../core/errors.js';
import { ROLES, type Role } from '../schema/context.js';

export interface ApiToken {
  token: string;
  role: Role;
}

/**
 * Parses `MENAGERIE_TOKENS`: comma-separated `role:token` pairs, e.g.
 * `admin:s3cret,read:dashboard-token`. Throws CONFIG_INVALID on a bad entry.
 */
export function parseTokens(text: string | undefined): ApiToken[] {
  if (!text?.trim()) return [];
  return text.split(',').map((entry) => {
    const colon = entry.indexOf(':');
    const role = entry.slice(0, colon).trim();
    const token = entry.slice(colon + 1).trim();
    if (colon <= 0 || !(ROLES as readonly string[]).includes(role) || token.length < 8) {
      throw new MenagerieError(
        'CONFIG_INVALID',
        `MENAGERIE_TOKENS entries should be role:token with role ${ROLES.join('/')} and a ` +
          `token of 8+ characters, got '${entry.slice(0, 12)}…'`,
      );
    }
    return { role: role as Role, token };
  });
}

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * Resolves `authorization: Bearer <token>` to a role. No header is anonymous (null); a
 * header with an unknown token is refused outright, so a typo never silently downgrades
 * a client to anonymous. Tokens are compared by digest, so lookup time says nothing
 * about how much of a guess matched.
 */
export function createAuthenticator(tokens: readonly ApiToken[]) {
  const roles = new Map(tokens.map((t) => [digest(t.token), t.role]));
  return (authorization: string | undefined): Role | null => {
    if (authorization === undefined || authorization === '') return null;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    const role = match ? roles.get(digest(match[1]!)) : undefined;
    if (!role) {
      throw new MenagerieError('UNAUTHENTICATED', 'the bearer token is not one this server knows');
    }
    return role;
  };
}
