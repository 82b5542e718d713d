// `npm run services -- start|stop|status|env [--dir DIR] [--only postgres,redis,s3] [--json]`
// start prints `export …` lines on stdout (progress goes to stderr), so a shell can
// `eval "$(npm run -s services -- start)"`.
import { parseArgs } from 'node:util';
import { defaultStateDir } from './paths.js';
import {
  ALL_SERVICES,
  formatExports,
  parseServices,
  servicesStatus,
  startServices,
  stopServices,
} from './services.js';

const USAGE = `usage: services start|stop|status|env [--dir DIR] [--only postgres,redis,s3] [--json]
  start   install what is missing, start (or find running) and print export lines
  stop    stop by the pids recorded in DIR and wait for them to exit
  status  each service: running (pid, port, url) or not; exit 3 unless all are running
  env     the export lines of the running services, starting nothing
DIR defaults to $MENAGERIE_SERVICES_DIR or ./.menagerie/services`;

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = positionals[0];
  if (values.help || !command || positionals.length > 1) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const dir = values.dir ?? defaultStateDir();
  const which = values.only ? parseServices(values.only) : ALL_SERVICES;
  const t0 = Date.now();
  const log = (msg: string) => console.error(`[services +${Date.now() - t0} ms] ${msg}`);

  switch (command) {
    case 'start': {
      const started = await startServices({ dir, which, log });
      console.log(formatExports(started.env));
      return 0;
    }
    case 'stop': {
      const stopped = await stopServices(dir, which);
      log(stopped.length ? `stopped ${stopped.join(', ')}` : `nothing was running in ${dir}`);
      return 0;
    }
    case 'status': {
      const status = await servicesStatus(dir, which);
      if (values.json) {
        console.log(JSON.stringify(status, null, 2));
      } else {
        for (const s of status) {
          console.log(
            s.running
              ? `${s.service.padEnd(8)} running  pid ${s.pid}  port ${s.port}  ${s.url}` +
                  (s.unreachable ? '  (port not answering)' : '')
              : `${s.service.padEnd(8)} not running`,
          );
        }
      }
      return status.every((s) => s.running) ? 0 : 3;
    }
    case 'env': {
      const status = await servicesStatus(dir, which);
      const env = Object.assign({}, ...status.filter((s) => s.running).map((s) => s.env));
      console.log(formatExports(env));
      return status.some((s) => s.running) ? 0 : 3;
    }
    default:
      console.error(`unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
