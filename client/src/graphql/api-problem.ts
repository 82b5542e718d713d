import type { CombinedError } from '@urql/core';

/** What went wrong, as the dashboard shows it: the server's code and message. */
export interface ApiProblem {
  code: string;
  message: string;
  /** The server does not have this part of the API (an older or partial build). */
  unsupported: boolean;
}

/**
 * Turns urql's CombinedError into one problem: the first GraphQL error's
 * `extensions.code` and message, or, when no response came, that the server is down.
 */
export function toApiProblem(error: CombinedError): ApiProblem {
  const first = error.graphQLErrors[0];
  if (first) {
    const code =
      typeof first.extensions?.['code'] === 'string' ? first.extensions['code'] : 'ERROR';
    // Validation errors naming a missing field or type: an older server, not a bad request.
    const unsupported = /^Cannot query field|^Unknown (type|argument)/.test(first.message);
    return { code, message: first.message, unsupported };
  }
  const status = (error.response as Response | undefined)?.status;
  if (status === 413) {
    return {
      code: 'PAYLOAD_TOO_LARGE',
      message: 'the upload is larger than the server accepts',
      unsupported: false,
    };
  }
  if (status !== undefined && status >= 500) {
    return { code: `HTTP_${status}`, message: `the server answered ${status}`, unsupported: false };
  }
  return {
    code: 'SERVER_UNREACHABLE',
    message: `cannot reach the Menagerie server at ${window.location.origin}: is it running?`,
    unsupported: false,
  };
}

/** A problem from a client-side check, shaped like the server's. */
export function localProblem(code: string, message: string): ApiProblem {
  return { code, message, unsupported: false };
}
