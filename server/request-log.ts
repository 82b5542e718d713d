import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

/** What one request accumulates for its log line, reachable from anywhere it runs. */
export interface RequestState {
  id: string;
  /** `performance.now()` when the request arrived: deadlines count from here. */
  startedAt?: number;
  operation?: string;
  errorCodes: string[];
  /** An unexpected error: logged with its stack, answered as INTERNAL_SERVER_ERROR. */
  failure?: { message: string; stack?: string };
}

export const requestStore = new AsyncLocalStorage<RequestState>();

/**
 * Keeps an unexpected error's message and stack for the request's log line: the client
 * gets only INTERNAL_SERVER_ERROR and the request id.
 */
export function recordFailure(state: RequestState | undefined, error: unknown): void {
  if (!state) return;
  const cause = error instanceof Error ? error : new Error(String(error));
  state.failure = { message: cause.message, ...(cause.stack ? { stack: cause.stack } : {}) };
}

export type LogEntry = Record<string, unknown> & { level: 'info' | 'warn' | 'error'; msg: string };
export type Logger = (entry: LogEntry) => void;

/** One JSON object per line on stdout, with a timestamp. */
export const jsonLogger: Logger = (entry) => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
};

const CLIENT_ID = /^[\w.-]{1,64}$/;

/**
 * Gives each request an id (the client's `x-request-id` when well-formed), echoes it in
 * the response, and writes one log line when the response is finished: method, path,
 * status, duration, GraphQL operation and error codes.
 */
export function requestLogging(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    const header = req.headers['x-request-id'];
    const id = typeof header === 'string' && CLIENT_ID.test(header) ? header : randomUUID();
    const state: RequestState = { id, errorCodes: [], startedAt: performance.now() };
    // Read now: routers mounted on a path rewrite req.path while they run.
    const { method, path } = req;
    res.setHeader('x-request-id', id);
    res.on('finish', () => {
      const status = res.statusCode;
      log({
        level: state.failure || status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info',
        msg: 'request',
        requestId: id,
        method,
        path,
        status,
        ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        ...(state.operation ? { operation: state.operation } : {}),
        ...(state.errorCodes.length ? { errors: state.errorCodes } : {}),
        ...(state.failure ? { failure: state.failure } : {}),
      });
    });
    requestStore.run(state, next);
  };
}
