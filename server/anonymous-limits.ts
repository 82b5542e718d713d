import type { NextFunction, Request, Response } from 'express';
import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { MenagerieError } from '../core/errors.js';
import type { Role } from '../schema/context.js';
import { answerWhileDraining } from './early-answer.js';
import { sendGraphQLError } from './graphql-error-handler.js';

/** rate-limiter-flexible's options: `points` per `duration` seconds, per key. */
export type LimiterOptions = ConstructorParameters<typeof RateLimiterMemory>[0];

/** What a client without a token may send to `/graphql`, per client address. */
export interface AnonymousLimits {
  /** Predict requests per window (default 60; 0 turns the rate off). */
  predicts: number;
  /** The predict window, in seconds (default 60). */
  windowSeconds: number;
  /** Predict requests in progress at once (default 4; 0: no limit). */
  predictsAtOnce: number;
  /**
   * GraphQL requests of any kind in progress at once (default 16; 0: no limit): a flood
   * from one address is refused before its bodies are read, so it cannot queue more work
   * than this ahead of everyone else's requests and the probes.
   */
  requestsAtOnce: number;
  /**
   * Makes each limiter: in memory by default, which holds per replica. Several replicas
   * share limits through one store, e.g.
   * `(o) => new RateLimiterRedis({ ...o, storeClient: redis })`.
   */
  createLimiter: (options: LimiterOptions) => RateLimiterAbstract;
}

export const DEFAULT_ANONYMOUS_LIMITS: AnonymousLimits = {
  predicts: 60,
  windowSeconds: 60,
  predictsAtOnce: 4,
  requestsAtOnce: 16,
  createLimiter: (options) => new RateLimiterMemory(options),
};

/** Largest body read and dropped for a refused request (the JSON body limit). */
const MAX_DRAINED = 1024 * 1024;

/** How long a slot is held at most, should its release be lost (a replica dying). */
const SLOT_LEASE_SECONDS = 600;

export interface AnonymousLimiter {
  /** Express middleware for `/graphql`, before the body parsers. */
  (req: Request, res: Response, next: NextFunction): void;
  /** Requests without a token in progress now: all, and predictions (for /metrics). */
  inFlight(): { requests: number; predicts: number };
}

/**
 * Limits what clients without a token send to `/graphql`, per client address, before a
 * byte of the body is read: requests in progress at once, and for predictions (a
 * multipart request: the only public mutations taking files) a rate and their own number
 * at once. Past a limit the request is refused RATE_LIMITED (429, with Retry-After), its
 * body dropped unparsed (an upload's connection is closed instead). A request with a token is not limited; with an unknown token it
 * is refused UNAUTHENTICATED (401) here, so a made-up token buys nothing. The address is
 * the socket's: behind a proxy every client is the proxy, so limit at the proxy there.
 */
export function anonymousLimiter(
  limits: AnonymousLimits,
  authenticate: (authorization: string | undefined) => Role | null,
): AnonymousLimiter {
  const slotsOf = (keyPrefix: string, points: number) =>
    points > 0 ? limits.createLimiter({ keyPrefix, points, duration: SLOT_LEASE_SECONDS }) : null;
  const requestSlots = slotsOf('menagerie-anonymous-requests', limits.requestsAtOnce);
  const predictSlots = slotsOf('menagerie-anonymous-predicts', limits.predictsAtOnce);
  const predictRate =
    limits.predicts > 0
      ? limits.createLimiter({
          keyPrefix: 'menagerie-anonymous-predict-rate',
          points: limits.predicts,
          duration: limits.windowSeconds,
        })
      : null;
  const inFlight = { requests: 0, predicts: 0 };

  const refuse = (res: Response, error: MenagerieError, retryAfterMs?: number) => {
    const req = res.req;
    if (retryAfterMs !== undefined)
      res.setHeader('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    // An upload's body may be 100 MB: answered at once, at most 1 MB more of it read and
    // dropped, then the connection closed. Any other body is at most the 1 MB JSON limit:
    // read and dropped, unparsed, so the client (which may still be sending) gets its
    // answer and keeps its connection.
    if (req.is('multipart/form-data')) {
      answerWhileDraining(req, res, () => sendGraphQLError(res, error), { maxBytes: MAX_DRAINED });
      return;
    }
    if (Number(req.headers['content-length']) > MAX_DRAINED) {
      res.setHeader('connection', 'close');
      sendGraphQLError(res, error);
      return;
    }
    req.resume();
    if (req.readableEnded) sendGraphQLError(res, error);
    else req.once('end', () => sendGraphQLError(res, error));
  };

  /** Takes a point; false (the point given back) when the limit is reached. */
  const take = async (limiter: RateLimiterAbstract | null, key: string): Promise<boolean> => {
    if (!limiter) return true;
    try {
      await limiter.consume(key);
      return true;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      // A refused consume still counts its point: give it back, no slot was taken.
      await limiter.reward(key);
      return false;
    }
  };

  const middleware = async (req: Request, res: Response, next: NextFunction) => {
    let role: Role | null;
    try {
      role = authenticate(req.headers.authorization);
    } catch (error) {
      refuse(res, error as MenagerieError);
      return;
    }
    if (role !== null) {
      next();
      return;
    }
    const client = req.socket.remoteAddress ?? 'unknown';
    const predict = Boolean(req.is('multipart/form-data'));
    if (predict && predictRate) {
      try {
        await predictRate.consume(client);
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        refuse(
          res,
          new MenagerieError(
            'RATE_LIMITED',
            `this address sent more than ${limits.predicts} predictions without a token in ` +
              `${limits.windowSeconds} s; wait, or send a token`,
          ),
          rejection.msBeforeNext,
        );
        return;
      }
    }
    if (!(await take(requestSlots, client))) {
      refuse(
        res,
        new MenagerieError(
          'RATE_LIMITED',
          `this address already has ${limits.requestsAtOnce} requests without a token in ` +
            'progress at once; send the next when one is answered',
        ),
        1000,
      );
      return;
    }
    if (predict && !(await take(predictSlots, client))) {
      await requestSlots?.reward(client);
      refuse(
        res,
        new MenagerieError(
          'RATE_LIMITED',
          `this address already has ${limits.predictsAtOnce} predictions without a token ` +
            'in progress at once; send the next when one is answered',
        ),
        1000,
      );
      return;
    }
    inFlight.requests++;
    if (predict) inFlight.predicts++;
    // Released when the response is sent or the connection drops, whichever comes first.
    res.once('close', () => {
      inFlight.requests--;
      void requestSlots?.reward(client).catch(() => {});
      if (predict) {
        inFlight.predicts--;
        void predictSlots?.reward(client).catch(() => {});
      }
    });
    next();
  };

  return Object.assign(
    (req: Request, res: Response, next: NextFunction) => {
      middleware(req, res, next).catch(next);
    },
    { inFlight: () => ({ ...inFlight }) },
  );
}
