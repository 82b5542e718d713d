import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import busboy from 'busboy';
import type { FileUpload } from 'graphql-upload/processRequest.mjs';
import Upload from 'graphql-upload/Upload.mjs';
import createError from 'http-errors';
import objectPath from 'object-path';

const SPEC = 'https://github.com/jaydenseric/graphql-multipart-request-spec';

export interface MultipartRequestLimits {
  /** Bytes per file: a longer file fails with a 413. */
  maxFileSize: number;
  /** Files per request: more fail the request with a 413. */
  maxFiles: number;
  /** Bytes of the `operations` and `map` fields (default 1 MB). */
  maxFieldSize?: number;
}

/** An uploaded file as resolvers see it, with its bytes held in memory. */
export interface BufferedFileUpload extends FileUpload {
  /** The whole file once its last byte has arrived; rejects as `createReadStream` fails. */
  bytes(): Promise<Buffer>;
}

/**
 * Parses a GraphQL multipart request (the spec graphql-upload implements, with its
 * messages and http-errors statuses) into the operations, each mapped file an `Upload`
 * for the `Upload` scalar. Unlike graphql-upload's `processRequest`, which writes every
 * file to a temporary file (fs-capacitor) and reads it back, files are kept in memory:
 * the resolvers read each whole upload into memory anyway, every file is bounded by
 * `maxFileSize` and a request by `maxFiles`, and the temporary file cost a thread-pool
 * open, write, read, close and unlink per prediction. Resolvers may read a file while it
 * is still arriving; its bytes are dropped once the response is sent.
 *
 * ```ts
 * const operations = await processMultipartRequest(req, res, { maxFileSize: 10e6, maxFiles: 10 });
 * // operations.variables.file is an Upload: (await upload.promise).bytes()
 * ```
 */
export function processMultipartRequest(
  request: IncomingMessage,
  response: ServerResponse,
  limits: MultipartRequestLimits,
): Promise<Record<string, unknown> | Record<string, unknown>[]> {
  const { maxFileSize, maxFiles, maxFieldSize = 1_000_000 } = limits;
  return new Promise((resolve, reject) => {
    let exitError: Error | undefined;
    let released = false;
    let operations: Record<string, unknown> | Record<string, unknown>[] | undefined;
    let operationsPath: objectPath.ObjectPathBound<object> | undefined;
    let map: Map<string, Upload> | undefined;
    const files: BufferedFile[] = [];

    const parser = busboy({
      headers: request.headers,
      defParamCharset: 'utf8',
      limits: { fieldSize: maxFieldSize, fields: 2, fileSize: maxFileSize, files: maxFiles },
    });

    /** Ends processing with an error; later calls do nothing. */
    const exit = (error: Error, isParserError = false) => {
      if (exitError) return;
      exitError = error;
      if (map) for (const upload of map.values()) if (!upload.file) upload.reject(error);
      for (const file of files) file.fail(error);
      if (isParserError) parser.destroy();
      else parser.destroy(error);
      request.unpipe(parser);
      setImmediate(() => request.resume());
      reject(error);
    };
    const invalid = (what: string) => exit(createError(400, `${what} (${SPEC}).`));

    parser.on('field', (name, value, { valueTruncated }) => {
      if (valueTruncated) {
        exit(
          createError(
            413,
            `The ‘${name}’ multipart field value exceeds the ${maxFieldSize} byte size limit.`,
          ),
        );
        return;
      }
      if (name === 'operations') {
        try {
          operations = JSON.parse(value) as typeof operations;
        } catch {
          invalid('Invalid JSON in the ‘operations’ multipart field');
          return;
        }
        if (typeof operations !== 'object' || !operations) {
          invalid('Invalid type for the ‘operations’ multipart field');
          return;
        }
        operationsPath = objectPath(operations);
        return;
      }
      if (name !== 'map') return;
      if (!operations || !operationsPath) {
        invalid('Misordered multipart fields; ‘map’ should follow ‘operations’');
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        invalid('Invalid JSON in the ‘map’ multipart field');
        return;
      }
      if (typeof parsed !== 'object' || !parsed || Array.isArray(parsed)) {
        invalid('Invalid type for the ‘map’ multipart field');
        return;
      }
      const entries = Object.entries(parsed);
      if (entries.length > maxFiles) {
        exit(createError(413, `${maxFiles} max file uploads exceeded.`));
        return;
      }
      map = new Map();
      for (const [field, paths] of entries) {
        if (!Array.isArray(paths)) {
          invalid(`Invalid type for the ‘map’ multipart field entry key ‘${field}’ array`);
          return;
        }
        const upload = new Upload();
        map.set(field, upload);
        for (const [index, at] of paths.entries()) {
          const entry = `entry key ‘${field}’ array index ‘${index}’ value`;
          if (typeof at !== 'string') {
            invalid(`Invalid type for the ‘map’ multipart field ${entry}`);
            return;
          }
          try {
            operationsPath.set(at, upload);
          } catch {
            invalid(`Invalid object path for the ‘map’ multipart field ${entry} ‘${at}’`);
            return;
          }
        }
      }
      resolve(operations);
    });

    parser.on('file', (field, stream, { filename, encoding, mimeType }) => {
      const ignore = () => {
        stream.on('error', () => {});
        stream.resume();
      };
      if (!map) {
        ignore();
        invalid('Misordered multipart fields; files should follow ‘map’');
        return;
      }
      const upload = map.get(field);
      if (!upload) {
        ignore();
        return;
      }
      const file = new BufferedFile(() => (released ? exitError : undefined));
      files.push(file);
      stream.on('data', (chunk: Buffer) => file.push(chunk));
      stream.on('limit', () => {
        file.fail(
          createError(413, `File truncated as it exceeds the ${maxFileSize} byte size limit.`),
        );
        stream.resume();
      });
      stream.on('error', (error: Error) => file.fail(error));
      stream.on('end', () => file.end());
      const fileUpload: BufferedFileUpload = {
        filename: filename ?? '',
        mimetype: mimeType,
        encoding,
        createReadStream: () => file.createReadStream(),
        bytes: () => file.bytes(),
      };
      upload.resolve(fileUpload);
    });

    parser.once('filesLimit', () =>
      exit(createError(413, `${maxFiles} max file uploads exceeded.`)),
    );

    parser.once('finish', () => {
      request.unpipe(parser);
      request.resume();
      if (!operations) {
        invalid('Missing multipart field ‘operations’');
        return;
      }
      if (!map) {
        invalid('Missing multipart field ‘map’');
        return;
      }
      for (const upload of map.values())
        if (!upload.file) upload.reject(createError(400, 'File missing in the request.'));
    });

    parser.on('error', (error: Error) => exit(error, true));

    const disconnected = () => {
      if (!request.readableEnded)
        exit(createError(499, 'Request disconnected during file upload stream parsing.'));
    };
    response.once('close', () => {
      disconnected(); // either may close first when the client goes away
      released = true;
      for (const file of files) file.release();
    });
    request.once('close', disconnected);

    request.pipe(parser);
  });
}

/** One file's bytes as they arrive, readable while arriving, dropped on release. */
class BufferedFile {
  private chunks: Buffer[] = [];
  private ended = false;
  private error: Error | undefined;
  private waiting: (() => void)[] = [];
  private whole: Promise<Buffer> | undefined;

  /** `releasedError`: the request's error once the response is sent, if it failed. */
  constructor(private readonly releasedError: () => Error | undefined) {}

  push(chunk: Buffer): void {
    if (this.error) return;
    this.chunks.push(chunk);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(error: Error): void {
    if (this.ended && !this.error) return; // a complete file stays readable
    this.error ??= error;
    this.chunks = [];
    this.wake();
  }

  release(): void {
    this.chunks = [];
    this.error ??= this.releasedError() ?? new Error('the upload was released with its response');
    this.wake();
  }

  bytes(): Promise<Buffer> {
    this.whole ??= (async () => {
      await this.settled();
      if (this.error) throw this.error;
      return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    })();
    return this.whole;
  }

  createReadStream(): Readable {
    if (this.error) throw this.error;
    return Readable.from(this.chunksAsTheyArrive(), { objectMode: false });
  }

  private async *chunksAsTheyArrive(): AsyncGenerator<Buffer> {
    for (let next = 0; ;) {
      if (this.error) throw this.error;
      if (next < this.chunks.length) yield this.chunks[next++]!;
      else if (this.ended) return;
      else await this.changed();
    }
  }

  private async settled(): Promise<void> {
    while (!this.ended && !this.error) await this.changed();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }
}
