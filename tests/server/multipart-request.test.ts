import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Upload from 'graphql-upload/Upload.mjs';
import {
  processMultipartRequest,
  type BufferedFileUpload,
} from '../../server/multipart-request.js';
import { multipartBody, multipartHead, rawRequest, type RawPart } from '../helpers/raw-http.js';

/**
 * A real HTTP server whose handler parses the request and answers with what the first
 * upload read: its bytes' length and first byte, or the error's status and message.
 */
let server: http.Server;
let origin: string;
const reads: { bytes?: Buffer; streamed?: Buffer; error?: { status?: number; message: string } }[] =
  [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const answer = (value: unknown) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(value));
    };
    processMultipartRequest(req, res, { maxFileSize: 1000, maxFiles: 2 })
      .then(async (operations) => {
        const upload = (operations as { variables: { file: Upload } }).variables.file;
        const read: (typeof reads)[number] = {};
        try {
          const file = (await upload.promise) as BufferedFileUpload;
          read.bytes = await file.bytes();
          const chunks: Buffer[] = [];
          for await (const chunk of file.createReadStream()) chunks.push(chunk as Buffer);
          read.streamed = Buffer.concat(chunks);
        } catch (error) {
          const e = error as { status?: number; message: string };
          read.error = { status: e.status, message: e.message };
        }
        reads.push(read);
        answer(read.error ?? { length: read.bytes!.length });
      })
      .catch((error: { status?: number; message: string }) =>
        answer({ status: error.status, message: error.message }),
      );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const operations = (map = '{"0":["variables.file"]}'): RawPart[] => [
  {
    headers: ['Content-Disposition: form-data; name="operations"'],
    value: JSON.stringify({ query: '{ x }', variables: { file: null } }),
  },
  { headers: ['Content-Disposition: form-data; name="map"'], value: map },
];
const filePart = (value: Uint8Array): RawPart => ({
  headers: ['Content-Disposition: form-data; name="0"; filename="a.bin"'],
  value,
});

describe('processMultipartRequest keeps uploads in memory', () => {
  it('hands a file over whole, through bytes() and createReadStream(), writing no temporary file', async () => {
    const before = new Set(fs.readdirSync(os.tmpdir()));
    const file = Buffer.from(Array.from({ length: 900 }, (_, i) => i % 251));
    const body = multipartBody([...operations(), filePart(file)]);
    const { json } = await rawRequest(origin, multipartHead(body.length), body).response;
    expect(json).toEqual({ length: 900 });
    const read = reads.at(-1)!;
    expect(read.bytes!.equals(file)).toBe(true);
    expect(read.streamed!.equals(file)).toBe(true);
    const added = fs.readdirSync(os.tmpdir()).filter((name) => !before.has(name));
    expect(added.filter((name) => name.startsWith('capacitor'))).toEqual([]);
  });

  it('lets the handler start while the file is still arriving, and waits for its last byte', async () => {
    const file = Buffer.alloc(800, 7);
    const body = multipartBody([...operations(), filePart(file)]);
    const cut = body.indexOf(file) + 300; // operations, map and 300 bytes of the file
    const request = rawRequest(origin, multipartHead(body.length), body.subarray(0, cut));
    await new Promise((resolve) => setTimeout(resolve, 150));
    request.write(body.subarray(cut));
    expect((await request.response).json).toEqual({ length: 800 });
    expect(reads.at(-1)!.bytes!.equals(file)).toBe(true);
  });

  it('fails a file over maxFileSize with a 413, and a file the map names but the body lacks with a 400', async () => {
    const big = multipartBody([...operations(), filePart(Buffer.alloc(1001))]);
    const tooBig = await rawRequest(origin, multipartHead(big.length), big).response;
    expect(tooBig.json).toEqual({
      status: 413,
      message: 'File truncated as it exceeds the 1000 byte size limit.',
    });
    const none = multipartBody(operations());
    const missing = await rawRequest(origin, multipartHead(none.length), none).response;
    expect(missing.json).toEqual({ status: 400, message: 'File missing in the request.' });
  });

  it('refuses malformed operations and maps with graphql-upload’s statuses', async () => {
    const cases: [RawPart[], number, RegExp][] = [
      [
        [{ headers: operations()[0]!.headers, value: '{' }],
        400,
        /Invalid JSON in the ‘operations’/,
      ],
      [[operations()[0]!, { ...operations()[1]!, value: '[]' }], 400, /Invalid type for the ‘map’/],
      [operations('{"0":["variables.file"],"1":["a"],"2":["b"]}'), 413, /2 max file uploads/],
      [[operations()[1]!], 400, /‘map’ should follow ‘operations’/],
    ];
    for (const [parts, status, message] of cases) {
      const body = multipartBody(parts);
      const { json } = await rawRequest(origin, multipartHead(body.length), body).response;
      expect(json?.['status']).toBe(status);
      expect(String(json?.['message'])).toMatch(message);
    }
  });

  it('fails an upload cut off mid-file: the client disconnects, the reader gets an error', async () => {
    const file = Buffer.alloc(800, 1);
    const body = multipartBody([...operations(), filePart(file)]);
    const count = reads.length;
    const request = rawRequest(
      origin,
      multipartHead(body.length),
      body.subarray(0, body.indexOf(file) + 100),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    request.socket.destroy();
    await expect.poll(() => reads.length).toBe(count + 1);
    expect(reads.at(-1)!.error?.status).toBe(499);
  });
});
