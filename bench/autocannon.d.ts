// The part of autocannon 8's programmatic API the benchmarks use (it ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Options {
      url: string;
      method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
      headers?: Record<string, string>;
      /** Sent as is on every request; autocannon sets Content-Length. */
      body?: string | Buffer;
      connections?: number;
      /** Seconds. */
      duration?: number;
      /** Seconds before a request counts as a timeout (default 10). */
      timeout?: number;
      pipelining?: number;
      /** A falsy return counts the response in `mismatches`. */
      verifyBody?: (body: string) => boolean;
      /** Sent in turn on each connection, each overriding the defaults above. */
      requests?: {
        method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
        path?: string;
        headers?: Record<string, string>;
        body?: string | Buffer;
      }[];
      /** Requests per second across all connections (default: as fast as answered). */
      overallRate?: number;
    }

    /** hdr-histogram summary; latencies in milliseconds, rounded to whole ms. */
    interface Histogram {
      average: number;
      stddev: number;
      min: number;
      max: number;
      p50: number;
      p99: number;
    }

    interface Result {
      /** Seconds. */
      duration: number;
      errors: number;
      timeouts: number;
      mismatches: number;
      non2xx: number;
      resets: number;
      '2xx': number;
      latency: Histogram;
      requests: Histogram & { sent: number };
    }

    /** An instance under way: resolves with the result; emits `response` per answer. */
    interface Instance extends EventEmitter, PromiseLike<Result> {
      on(
        event: 'response',
        listener: (client: unknown, statusCode: number, bytes: number, ms: number) => void,
      ): this;
      stop(): void;
    }
  }

  function autocannon(options: autocannon.Options): autocannon.Instance;
  export = autocannon;
}
