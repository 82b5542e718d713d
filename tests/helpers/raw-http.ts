import net from 'node:net';

/** What came back on a raw socket: the status line's code, headers and body as sent. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON, when it is. */
  json?: { errors?: { message: string; extensions?: { code?: string } }[] } & Record<
    string,
    unknown
  >;
}

/**
 * An HTTP/1.1 request written byte by byte on a socket, for requests `fetch` refuses to
 * send: a malformed multipart body, a Content-Length larger than what follows, headers
 * never finished. `response` resolves with the first response once the server has sent
 * it whole (or closed the socket); `closed` when the server closes the connection.
 *
 * ```ts
 * const req = rawRequest(t.origin, 'POST /graphql HTTP/1.1\r\nHost: x\r\n');
 * await req.closed; // the server gave up on the unfinished headers
 * ```
 */
export function rawRequest(origin: string, ...chunks: (string | Uint8Array)[]) {
  const { hostname, port } = new URL(origin);
  const socket = net.connect(Number(port), hostname);
  const received: Buffer[] = [];
  let resolveResponse: (response: RawResponse) => void;
  const response = new Promise<RawResponse>((resolve) => (resolveResponse = resolve));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const tryParse = (final: boolean) => {
    const raw = Buffer.concat(received).toString('latin1');
    const end = raw.indexOf('\r\n\r\n');
    if (end < 0) {
      if (final) resolveResponse({ status: 0, headers: {}, body: raw });
      return;
    }
    const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let body = raw.slice(end + 4);
    const length = headers['content-length'];
    if (length !== undefined) {
      if (Buffer.byteLength(body, 'latin1') < Number(length) && !final) return;
      body = body.slice(0, Number(length));
    } else if (headers['transfer-encoding'] === 'chunked') {
      if (!body.includes('\r\n0\r\n\r\n') && !body.startsWith('0\r\n') && !final) return;
      body = dechunk(body);
    } else if (!final) {
      return;
    }
    body = Buffer.from(body, 'latin1').toString('utf8');
    let json: RawResponse['json'];
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    resolveResponse({ status: Number(statusLine!.split(' ')[1]), headers, body, json });
  };
  socket.on('data', (chunk: Buffer) => {
    received.push(chunk);
    tryParse(false);
  });
  socket.on('close', () => tryParse(true));
  // A server that resets a connection it has answered is fine; the answer is what counts.
  socket.on('error', () => {});
  for (const chunk of chunks) socket.write(chunk);
  return {
    socket,
    response,
    closed,
    write: (chunk: string | Uint8Array) => socket.write(chunk),
  };
}

function dechunk(body: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) return out;
    const size = parseInt(body.slice(at, lineEnd), 16);
    if (!size) return out;
    out += body.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

/** One part of a hand-built multipart body: its header lines as sent, and its value. */
export interface RawPart {
  headers: string[];
  value: string | Uint8Array;
}

export const BOUNDARY = 'menagerie-test-boundary';

/** A multipart/form-data body from parts, each header line exactly as given. */
export function multipartBody(parts: RawPart[], boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n${part.headers.join('\r\n')}\r\n\r\n`, 'latin1'));
    chunks.push(Buffer.from(part.value));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/** The request head of a GraphQL multipart POST (preflight header included). */
export function multipartHead(
  contentLength: number,
  options: { contentType?: string; headers?: Record<string, string> } = {},
): string {
  const headers = {
    host: '127.0.0.1',
    'content-type': options.contentType ?? `multipart/form-data; boundary=${BOUNDARY}`,
    'apollo-require-preflight': 'true',
    'content-length': String(contentLength),
    ...options.headers,
  };
  return (
    'POST /graphql HTTP/1.1\r\n' +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    '\r\n'
  );
}

/** `operations` and `map` parts for one file at `variables.file`. */
export function operationParts(query: string, variables: Record<string, unknown>): RawPart[] {
  return [
    {
      headers: ['Content-Disposition: form-data; name="operations"'],
      value: JSON.stringify({ query, variables }),
    },
    {
      headers: ['Content-Disposition: form-data; name="map"'],
      value: JSON.stringify({ 0: ['variables.file'] }),
    },
  ];
}
