import { describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait-for.js';

describe('health, logs and shutdown', () => {
  it('/healthz answers; /readyz runs every check and reports the failing one with 503', async () => {
    let modelLoaded = false;
    const t = await startTestServer({
      readiness: [
        {
          name: 'model',
          check: async () => {
            if (!modelLoaded) throw new Error('no champion loaded yet');
          },
        },
      ],
    });
    try {
      expect(await (await t.get('/healthz')).json()).toEqual({ status: 'ok' });
      const notReady = await t.get('/readyz');
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toMatchObject({
        status: 'not ready',
        checks: [
          { name: 'database', ok: true },
          { name: 'model', ok: false, error: 'no champion loaded yet' },
        ],
      });
      modelLoaded = true;
      expect((await t.get('/readyz')).status).toBe(200);
      await t.workspace.database.close();
      expect((await t.get('/readyz')).status).toBe(503);
    } finally {
      await t.server.close();
      t.workspace.dispose().catch(() => undefined);
    }
  });

  it('writes one JSON log line per request with its id, operation and error codes', async () => {
    const t = await startTestServer();
    try {
      const res = await t.gql(
        'query Counting { imageStats { totalCount } }',
        {},
        {
          headers: { 'x-request-id': 'trace-abc-123' },
        },
      );
      expect(res.headers.get('x-request-id')).toBe('trace-abc-123');
      await t.gql('mutation { deleteImage(id: "1") }');
      const generated = await t.get('/healthz', { 'x-request-id': 'bad id with spaces' });
      // A line is written when the server finishes the response, which the client may see first.
      const requestLines = () => t.logs.filter((l) => l.msg === 'request');
      await waitFor(() => requestLines().length >= 3, 'three request log lines');
      const lines = requestLines();
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatchObject({
        level: 'info',
        requestId: 'trace-abc-123',
        method: 'POST',
        path: '/graphql',
        status: 200,
        operation: 'Counting',
      });
      expect(lines[1]).toMatchObject({ errors: ['UNAUTHENTICATED'] });
      expect(lines[2]!['requestId']).toBe(generated.headers.get('x-request-id'));
      expect(lines[2]!['requestId']).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await t.dispose();
    }
  });

  it('close() lets an in-flight request finish, then refuses new connections', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const t = await startTestServer({
      readiness: [
        {
          name: 'slow',
          timeoutMs: 30_000,
          check: async () => {
            entered();
            await gate;
          },
        },
      ],
    });
    const inFlight = t.get('/readyz');
    await inside;
    let closed = false;
    const closing = t.server.close().then(() => (closed = true));
    try {
      // The readiness check is held until release(), so close() cannot finish first; once the
      // listener is gone, close() is visibly draining, waiting on that request alone.
      await waitFor(() => !t.server.httpServer.listening, 'close() to stop listening');
      expect(closed).toBe(false);
      await expect(fetch(`${t.origin}/healthz`)).rejects.toThrow();
      expect(closed).toBe(false);
    } finally {
      release();
    }
    const res = await inFlight;
    expect(res.status).toBe(200);
    await closing;
    expect(closed).toBe(true);
    await t.workspace.dispose();
  });
});
