import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Request, Response } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerWhileDraining } from '../../server/early-answer.js';
import { rawRequest } from '../helpers/raw-http.js';

/** A server that refuses every request at once, before reading its body. */
let server: http.Server;
let origin: string;
beforeAll(async () => {
  server = http.createServer((req, res) =>
    answerWhileDraining(
      req as Request,
      res as unknown as Response,
      () => {
        res.statusCode = 413;
        res.end('refused');
      },
      { maxBytes: 256 * 1024, maxMs: 5000 },
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('answerWhileDraining', () => {
  it('gives a client still sending a small body its answer, request after request', async () => {
    // The uploads refused in bad-input and anonymous-limits failed this way on Node 24 (EPIPE).
    const body = new Uint8Array(200 * 1024).fill(7);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(origin, { method: 'POST', body });
      expect(res.status).toBe(413);
      expect(await res.text()).toBe('refused');
    }
  });

  it('cuts the connection once more than maxBytes of the body have arrived', async () => {
    const head =
      'POST / HTTP/1.1\r\nHost: x\r\ncontent-type: application/octet-stream\r\n' +
      `content-length: ${4 * 1024 * 1024}\r\n\r\n`;
    const req = rawRequest(origin, head, new Uint8Array(1024 * 1024));
    expect((await req.response).status).toBe(413);
    await req.closed;
  });
});
