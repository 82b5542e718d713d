// Vitest globalSetup: starts the services once for the whole run and hands their URLs to the
// test workers through process.env (workers are forked after this runs and inherit it).
//   test: { globalSetup: ['dev-services/vitest-global-setup.ts'] }
// MENAGERIE_SERVICES picks services (default all), MENAGERIE_SERVICES_DIR the state folder.
// Services that were already running (say from `npm run services -- start`) are reused and
// left running; the ones started here are stopped at teardown.
import { defaultStateDir } from './paths.js';
import { ALL_SERVICES, parseServices, startServices, stopServices } from './services.js';

export default async function setup(): Promise<() => Promise<void>> {
  const dir = defaultStateDir();
  const list = process.env.MENAGERIE_SERVICES;
  const which = list ? parseServices(list) : ALL_SERVICES;
  const started = await startServices({
    dir,
    which,
    log: (msg) => console.error(`[dev-services] ${msg}`),
  });
  Object.assign(process.env, started.env);
  return async () => {
    await stopServices(dir, started.startedHere);
  };
}
