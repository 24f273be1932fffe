/**
 * Runs the real Cloud Spanner emulator for tests. gateway_main serves gRPC and spawns
 * emulator_main as its child, so it runs in its own process group and stop() kills the group.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

const GATEWAY = '/usr/lib/google-cloud-sdk/bin/cloud_spanner_emulator/gateway_main';
const START_TIMEOUT_MS = 30_000;
const OUTPUT_TAIL_CHARS = 4000;

export interface SpannerEmulator {
  /** host:port, the value for SPANNER_EMULATOR_HOST. */
  host: string;
  stop(): Promise<void>;
}

/** Asks the kernel for a free loopback port. It could be taken again before use; that is rare enough. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startSpannerEmulator(): Promise<SpannerEmulator> {
  if (!existsSync(GATEWAY)) {
    throw new Error(
      `Spanner emulator not found: ${GATEWAY} is missing; it comes with the ` +
        '`google-cloud-cli-spanner-emulator` package',
    );
  }
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const args = ['--hostname', '127.0.0.1', '--grpc_port', String(grpcPort), '--http_port', String(httpPort)];
  const child = spawn(GATEWAY, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });

  let output = '';
  const record = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout.on('data', record);
  child.stderr.on('data', record);
  // Why the gateway is no longer running, once it is not.
  let gone: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      gone = `exited (code ${code}, signal ${signal})`;
      resolve();
    });
    child.once('error', (err) => {
      gone = `failed to start: ${err.message}`;
      resolve();
    });
  });

  // Kill the whole group even if the gateway has already exited: emulator_main may outlive it.
  const stop = async () => {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (err) {
        // ESRCH: the group is already gone.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
    await exited;
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await canConnect(grpcPort))) {
    const failure = gone ?? (Date.now() > deadline ? 'timed out' : undefined);
    if (failure) {
      await stop();
      throw new Error(
        `Spanner emulator (${GATEWAY} ${args.join(' ')}) did not accept gRPC connections on ` +
          `127.0.0.1:${grpcPort} within ${START_TIMEOUT_MS / 1000}s: ${failure}. Output tail:\n${output}`,
      );
    }
    await sleep(100);
  }
  return { host: `127.0.0.1:${grpcPort}`, stop };
}
