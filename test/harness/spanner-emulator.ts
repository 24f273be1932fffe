/**
 * Runs the real Cloud Spanner emulator for tests. gateway_main serves gRPC and spawns
 * emulator_main as its child; startChild gives it its own process group, so stop() reaches both.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startChild } from '../../lib/local/child';
import { freePort, waitForPort } from '../../lib/local/ports';

const GATEWAY = '/usr/lib/google-cloud-sdk/bin/cloud_spanner_emulator/gateway_main';
const START_TIMEOUT_MS = 30_000;

export interface SpannerEmulator {
  /** host:port, the value for SPANNER_EMULATOR_HOST. */
  host: string;
  stop(): Promise<void>;
}

export async function startSpannerEmulator(): Promise<SpannerEmulator> {
  if (!existsSync(GATEWAY)) {
    throw new Error(`Spanner emulator not found: ${GATEWAY} is missing; it comes with the \`google-cloud-cli-spanner-emulator\` package`);
  }
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const logFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'rbs-spanner-')), 'emulator.log');
  const args = ['--hostname', '127.0.0.1', '--grpc_port', String(grpcPort), '--http_port', String(httpPort)];
  const child = startChild('spanner emulator', GATEWAY, args, { logFile });
  try {
    await waitForPort('127.0.0.1', grpcPort, START_TIMEOUT_MS, () => child.exited());
  } catch (err) {
    await child.stop(0);
    throw new Error(`Spanner emulator did not serve on 127.0.0.1:${grpcPort}: ${(err as Error).message}\n${child.logTail()}`);
  }
  return { host: `127.0.0.1:${grpcPort}`, stop: () => child.stop(0) };
}
