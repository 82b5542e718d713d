import type { Request, Response } from 'express';

const MB = 1024 * 1024;

export interface DrainLimits {
  /** Body bytes read and dropped after the answer before the connection is cut. */
  maxBytes?: number;
  /** How long the rest of the body may take before the connection is cut. */
  maxMs?: number;
}

/**
 * Sends an answer to a request whose body is still arriving, then reads and drops the rest
 * of the body, up to `maxBytes` (1 MB) or `maxMs` (1 s), and cuts the connection past that.
 * Closing the connection at once instead leaves unread bytes in the kernel, which resets
 * the connection: fetch on Node 24 (undici 7) then fails with EPIPE rather than return the
 * answer it was sent, while a small body read to its end leaves the connection reusable.
 *
 * ```ts
 * answerWhileDraining(req, res, () => sendGraphQLError(res, error));
 * ```
 */
export function answerWhileDraining(
  req: Request,
  res: Response,
  send: () => void,
  limits: DrainLimits = {},
): void {
  if (req.readableEnded || req.complete) {
    send();
    return;
  }
  const maxBytes = limits.maxBytes ?? MB;
  let seen = 0;
  const stop = () => {
    clearTimeout(timer);
    req.off('data', count);
  };
  const cut = () => {
    stop();
    req.socket.destroy();
  };
  const count = (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > maxBytes) cut();
  };
  const timer = setTimeout(cut, limits.maxMs ?? 1000);
  timer.unref();
  req.once('end', stop);
  req.once('close', stop);
  // A parser that gave up may still be piped from the request: only this reads it now.
  req.unpipe();
  req.on('data', count);
  req.resume();
  send();
}
