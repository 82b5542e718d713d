// What a running service leaves in its state folder: one JSON file per service with the pids
// (and their kernel start times) to stop, so that any process can stop or report it.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRunning, killAndWait, type ProcessRef } from './process.js';

export type ServiceName = 'postgres' | 'redis' | 's3';

export interface ServiceState {
  service: ServiceName;
  port: number;
  url: string;
  /** The variables a client needs, e.g. MENAGERIE_DATABASE_URL. */
  env: Record<string, string>;
  /** In the order to stop them. */
  processes: (ProcessRef & { stopSignal: NodeJS.Signals })[];
  logs: string[];
  startedAt: string;
}

export interface ServiceHandle extends ServiceState {
  pid: number;
  /** True when start found the service already running (started by another process). */
  alreadyRunning: boolean;
  stop(): Promise<void>;
}

function stateFile(dir: string, service: ServiceName): string {
  return join(dir, `${service}.json`);
}

export function readState(dir: string, service: ServiceName): ServiceState | undefined {
  const file = stateFile(dir, service);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ServiceState;
  } catch {
    return undefined; // a torn or hand-edited file: treat the service as not running
  }
}

export function writeState(dir: string, state: ServiceState): void {
  mkdirSync(dir, { recursive: true });
  const file = stateFile(dir, state.service);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/** The recorded state when every one of its processes is still the one we started. */
export function liveState(dir: string, service: ServiceName): ServiceState | undefined {
  const state = readState(dir, service);
  if (!state || state.processes.length === 0) return undefined;
  return state.processes.every(isRunning) ? state : undefined;
}

/** Stops a service's processes by pid, in order, waiting for each to exit; drops its state. */
export async function stopRecorded(dir: string, service: ServiceName): Promise<boolean> {
  const state = readState(dir, service);
  if (!state) return false;
  const running = state.processes.filter(isRunning);
  // A service that lost one of its processes (a Ceph gateway without its OSD) can hang in a
  // clean shutdown, waiting for the missing peer: kill the rest outright.
  const broken = running.length < state.processes.length;
  for (const p of running) await killAndWait(p, broken ? 'SIGKILL' : p.stopSignal);
  rmSync(stateFile(dir, service), { force: true });
  return running.length > 0;
}

export function handleFor(
  dir: string,
  state: ServiceState,
  alreadyRunning: boolean,
): ServiceHandle {
  const main = state.processes[0];
  if (!main) throw new Error(`${state.service}: state has no process`);
  return {
    ...state,
    pid: main.pid,
    alreadyRunning,
    stop: async () => {
      await stopRecorded(dir, state.service);
    },
  };
}
