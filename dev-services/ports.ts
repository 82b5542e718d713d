// Free ports on 127.0.0.1 and readiness checks. Everything binds to loopback only.
import { createConnection, createServer, type Server } from 'node:net';

export const HOST = '127.0.0.1';

// Ports handed out by this process: two services starting at once must not get the same one
// between our probe closing it and the server binding it.
const handedOut = new Set<number>();

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port, host: HOST, exclusive: true }, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A port that nothing listens on right now, found by binding port 0 and reading it back. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const server = await listen(0);
    const address = server.address();
    await close(server);
    if (address && typeof address === 'object' && !handedOut.has(address.port)) {
      handedOut.add(address.port);
      return address.port;
    }
  }
  throw new Error('ports: no free port on 127.0.0.1');
}

export async function isPortFree(port: number): Promise<boolean> {
  try {
    await close(await listen(port));
    return true;
  } catch {
    return false;
  }
}

/** `preferred` when it is free (stable URLs across restarts), else any free port. */
export async function pickPort(preferred: number | undefined): Promise<number> {
  if (preferred && (await isPortFree(preferred))) return preferred;
  return freePort();
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: HOST });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
