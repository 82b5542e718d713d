import {
  createServer,
  type MenagerieServer,
  type ServerConfig,
  type ServerOptions,
} from '../../server/create-server.js';
import type { LogEntry } from '../../server/request-log.js';
import { tempWorkspace } from './workspace.js';

export const TOKENS = {
  admin: 'admin-token-0123456789',
  write: 'write-token-0123456789',
  read: 'read-token-0123456789',
} as const;

export interface GraphQLResponse<TData = Record<string, unknown>> {
  status: number;
  data?: TData | null;
  errors?: {
    message: string;
    extensions?: { code?: string; requestId?: string } & Record<string, unknown>;
  }[];
  headers: Headers;
}

export interface UploadFile {
  /** The form field name the file part gets; `map` names it (default '0'). */
  field?: string;
  bytes: Uint8Array;
  filename?: string;
  type?: string;
}

/**
 * A real server on 127.0.0.1 (a free port) over a temp workspace, with one token per role,
 * playground off and logs captured. `dispose` closes both. `pluginConfig` is a
 * menagerie.config.json for the workspace (third-party plugins for training jobs). Every
 * test client is one address, and a busy machine is slow: the anonymous limits are
 * off and the query deadline is 30 s unless a test sets them (their own tests do).
 */
export async function startTestServer(
  config: ServerConfig = {},
  options: Pick<ServerOptions, 'services' | 'resolvers'> & { pluginConfig?: string } = {},
) {
  const { pluginConfig, ...serverOptions } = options;
  const workspace = await tempWorkspace(pluginConfig ? { config: pluginConfig } : {});
  const logs: LogEntry[] = [];
  const server: MenagerieServer = await createServer({
    ...serverOptions,
    workspace,
    config: {
      port: 0,
      playground: false,
      logger: (entry) => logs.push(entry),
      tokens: [
        { role: 'admin', token: TOKENS.admin },
        { role: 'write', token: TOKENS.write },
        { role: 'read', token: TOKENS.read },
      ],
      anonymousLimits: { predicts: 0, predictsAtOnce: 0, requestsAtOnce: 0 },
      // A feature space is a backbone pass over the catalogue: only the tests about it.
      similarBackbone: null,
      ...config,
      limits: { timeoutMs: 30_000, ...config.limits },
    },
  });
  const origin = new URL(server.url).origin;

  const authHeaders = (token: string | undefined): Record<string, string> =>
    token ? { authorization: `Bearer ${token}` } : {};

  async function asJson<T>(response: Response): Promise<GraphQLResponse<T>> {
    const text = await response.text();
    let body: Omit<GraphQLResponse<T>, 'status' | 'headers'>;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`not JSON (${response.status}): ${text.slice(0, 300)}`);
    }
    return { ...body, status: response.status, headers: response.headers };
  }

  /** A JSON POST, as any GraphQL client sends it. */
  async function gql<T = Record<string, unknown>>(
    query: string,
    variables: Record<string, unknown> = {},
    options: { token?: string; headers?: Record<string, string> } = {},
  ): Promise<GraphQLResponse<T>> {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...authHeaders(options.token),
        ...options.headers,
      },
      body: JSON.stringify({ query, variables }),
    });
    return asJson<T>(response);
  }

  /**
   * A GraphQL multipart request (operations, map, then file parts), each file's variable
   * path given by `paths` in file order, e.g. `['variables.file']`.
   */
  async function upload<T = Record<string, unknown>>(
    query: string,
    variables: Record<string, unknown>,
    files: { path: string; file: UploadFile }[],
    options: { token?: string; preflight?: boolean; map?: Record<string, string[]> } = {},
  ): Promise<GraphQLResponse<T>> {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query, variables }));
    const map = options.map ?? Object.fromEntries(files.map((f, i) => [String(i), [f.path]]));
    form.append('map', JSON.stringify(map));
    files.forEach(({ file }, i) => {
      const blob = new Blob([file.bytes], { type: file.type ?? 'image/jpeg' });
      form.append(file.field ?? String(i), blob, file.filename ?? `file-${i}.jpg`);
    });
    const response = await fetch(server.url, {
      method: 'POST',
      headers: {
        ...(options.preflight === false ? {} : { 'apollo-require-preflight': 'true' }),
        ...authHeaders(options.token),
      },
      body: form,
    });
    return asJson<T>(response);
  }

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${origin}${path}`, { headers });

  return {
    server,
    workspace,
    logs,
    origin,
    gql,
    upload,
    get,
    async dispose() {
      await server.close();
      await workspace.dispose();
    },
  };
}

export type TestServer = Awaited<ReturnType<typeof startTestServer>>;

export const ADD_IMAGE = `mutation Add($file: Upload!, $label: String!, $split: Split) {
  addImage(file: $file, label: $label, split: $split) {
    duplicate
    image { id sha256 label { name } split width height format bytes url }
  }
}`;
