// PostgreSQL (and S3) for the benchmarks that compare backends: given by flag or environment,
// or started here through dev-services and stopped when the benchmark ends.
import path from 'node:path';
import { startServices, stopServices, type ServiceName } from '../dev-services/services.js';

export interface BenchServices {
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The variables of `which` (MENAGERIE_DATABASE_URL, MENAGERIE_STORE_URL, AWS_*): from the
 * environment when set there, else from servers started now under /var/tmp.
 */
export async function benchServices(which: readonly ServiceName[]): Promise<BenchServices> {
  const fromEnv: Record<ServiceName, string | undefined> = {
    postgres: process.env.MENAGERIE_DATABASE_URL,
    s3: process.env.MENAGERIE_STORE_URL,
    redis: process.env.MENAGERIE_QUEUE_URL,
  };
  const missing = which.filter((s) => !fromEnv[s]);
  if (missing.length === 0)
    return { env: { ...(process.env as Record<string, string>) }, stop: async () => {} };
  // Not under /root: the postgres user must reach it.
  const dir = path.join('/var/tmp', 'menagerie-bench-services');
  const started = await startServices({ dir, which: missing });
  return {
    env: { ...(process.env as Record<string, string>), ...started.env },
    stop: async () => {
      if (started.startedHere.length) await stopServices(dir, started.startedHere);
    },
  };
}
