/**
 * A proxy whose network drops mid-command (no FIN, no RST: a laptop that sleeps or leaves the
 * Wi-Fi) must not leave its command running on the agent's Bazel server, holding its lock: the
 * agent's keepalive finds the silent connection, drops it, and the command is cancelled.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import { clientKeepalive } from '../../lib/grpc/keepalive';
import { protos } from '../../lib/grpc/protos';
import { tlsChannelOptions, channelCredentials } from '../../lib/grpc/tls';
import { type Fixture, SESSION, startFixture, write } from '../sync/fixture';
import { startTcpRelay } from '../harness/tcp-relay';
import { waitFor } from '../harness/wait';

const KEEPALIVE_MS = 1000;

/** Pids of `sleep` processes working under `dir` (the genrule's action runs in the execroot). */
function sleepsUnder(dir: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .flatMap((pid) => {
      try {
        const running = fs.readlinkSync(`/proc/${pid}/cwd`).startsWith(dir) && fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep';
        return running ? [Number(pid)] : [];
      } catch {
        return [];
      }
    });
}

let f: Fixture;
beforeAll(async () => {
  f = await startFixture({ keepaliveMs: KEEPALIVE_MS });
});
afterAll(async () => {
  await f.stop();
});

test('a dropped network ends the command at both ends once keepalive gives up, and the server is free again', async () => {
  write(f.source, { WORKSPACE: '', BUILD: 'genrule(name = "slow", outs = ["slow.txt"], cmd = "sleep 120; touch $@")\n' });
  const { syncId } = await f.sync();
  const relay = await startTcpRelay(f.agent.address);
  const isAgent = (id: { kind: string; sessionId?: string }) => id.kind === 'agent' && id.sessionId === SESSION;
  // As the proxy's own client (services/proxy/session.ts), with the test's short keepalive.
  const options = { ...tlsChannelOptions('127.0.0.1'), ...clientKeepalive(KEEPALIVE_MS) };
  const client = new (protos().agent.rbs.v1.Agent)(relay.address, channelCredentials(f.proxyTls, isAgent), options) as unknown as AgentClient;
  const outputBase = path.join(f.root, 'output_base');
  const request = (command: string, ...args: string[]) => ({
    request: {
      arg: [command, `--client_cwd=${f.source}`, ...args].map((a) => Buffer.from(a)),
      blockForLock: true,
      clientDescription: 'pid=4242',
      startupOptions: [],
    },
    clientWorkspace: f.source,
    syncId,
  });
  try {
    const call = client.run(request('build', '//:slow'));
    const status = new Promise<string>((resolve) => call.on('error', (err: Error) => resolve(err.message)).on('end', () => resolve('ended')));
    call.on('data', () => undefined);
    await waitFor(() => sleepsUnder(outputBase).length > 0, 60_000, 'the slow action to run');

    relay.blackhole();
    const silentAt = Date.now();
    await waitFor(() => sleepsUnder(outputBase).length === 0, 15_000, 'the action to be cancelled');
    console.log(`action gone ${Date.now() - silentAt} ms after the network went silent (keepalive ${KEEPALIVE_MS} ms)`);
    // The proxy's side gave up too, with the network still silent: its build does not hang.
    expect(await status).toMatch(/UNAVAILABLE/);
    relay.close();

    // The server's lock is free: a command from a new connection runs at once.
    const direct = f.client();
    const started = Date.now();
    const info = direct.run(request('info', 'release'));
    const finished = new Promise<number>((resolve, reject) => {
      let exitCode = -1;
      info.on('data', (r: { finished: boolean; exitCode: number }) => r.finished && (exitCode = r.exitCode));
      info.on('end', () => resolve(exitCode));
      info.on('error', reject);
    });
    expect(await finished).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    direct.close();
  } finally {
    relay.close();
    client.close();
  }
});
