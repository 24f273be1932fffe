/**
 * A compromised agent tells the proxy what to fetch and sends the bytes: nothing it says may put a
 * file or a link outside the laptop's output base, and each attempt fails the command loudly. The
 * agent is a fake (test/fakes/hostile-agent.ts) running the real rsync; the proxy's code is real.
 * And a proxy cannot make a real agent's Fetch run rsync other than as a sender of its output base.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ListOutputsResponse } from '../../gen/proto/rbs/v1/ListOutputsResponse';
import type { SyncFrame__Output } from '../../gen/proto/rbs/v1/SyncFrame';
import type { RunResponse } from '../../services/proxy/command-server';
import { commandOutputs } from '../../services/proxy/outputs';
import { startHostileAgent } from '../fakes/hostile-agent';
import { type Fixture, startFixture } from '../sync/fixture';

const BIN = 'execroot/__main__/bazel-out/k8-fastbuild/bin';
/** What the hostile agent's rsync runs: a sender of its own directory, without the agent's forced options. */
const SENDER = ['--server', '--sender', '-ltrRe.iLsfxCIvu', '--safe-links', '--files-from=-', '--from0', '.', '.'];

let root: string;
let laptop: { workspace: string; outputBase: string; home: string };
let attacker: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-hostile-outputs-'));
  laptop = { workspace: path.join(root, 'ws'), outputBase: path.join(root, 'ob'), home: path.join(root, 'home') };
  attacker = path.join(root, 'attacker');
  for (const dir of [...Object.values(laptop), path.join(laptop.home, '.ssh'), path.join(attacker, BIN)]) fs.mkdirSync(dir, { recursive: true });
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** Everything on the laptop outside its output base. */
const outsideOutputBase = () =>
  [laptop.workspace, laptop.home].flatMap((dir) => fs.readdirSync(dir, { recursive: true }).map((name) => path.join(dir, String(name))));

/** The proxy's end of a `bazel build` that succeeded on the hostile agent: what the client receives. */
async function buildAgainst(listing: ListOutputsResponse, sender = SENDER) {
  const agent = await startHostileAgent(listing, attacker, sender);
  try {
    const received: RunResponse[] = [];
    const outputs = commandOutputs({ arg: [Buffer.from('build'), Buffer.from('//:x')] } as never, (r) => received.push(r), {
      ...laptop,
      agent: agent.client,
      log: () => undefined,
    });
    outputs.onResponse({ commandId: 'c1', standardError: Buffer.from('INFO: Build completed successfully\n') });
    outputs.onResponse({ commandId: 'c1', finished: true, exitCode: 0 });
    await outputs.finish(new AbortController().signal);
    const stderr = received.map((r) => Buffer.from(r.standardError ?? []).toString()).join('');
    return { exitCode: received.at(-1)?.exitCode, finished: received.at(-1)?.finished, stderr, fetches: agent.fetches };
  } finally {
    await agent.stop();
  }
}

const file = (relative: string, more: object = {}) => ({ path: relative, regular: true, size: 1, mtimeSeconds: 1, mtimeNanos: 0, executable: false, ...more });

test.each([
  ['a path climbing out', '../../home/.ssh/authorized_keys'],
  ['a path climbing out from inside bazel-out', `${BIN}/../../../../../home/.ssh/authorized_keys`],
  ['an absolute path', '/root/.ssh/authorized_keys'],
  ['a source file in the execroot', 'execroot/__main__/main/hello-world.cc'],
  ['a name with a newline', `${BIN}/x\n../../../../../home/.ssh/authorized_keys`],
])('refuses an output list naming %s, before fetching anything', async (_what, name) => {
  const result = await buildAgainst({ execroot: 'execroot/__main__', files: [file(name)], links: [] });
  expect(result).toMatchObject({ exitCode: 36, finished: true, fetches: 0 });
  expect(result.stderr).toContain(`RBS: outputs did not reach this machine: refused the agent's output ${JSON.stringify(name)}`);
  expect(outsideOutputBase()).toEqual([path.join(laptop.home, '.ssh')]);
});

test('refuses a convenience link leading out of the output base; makes no link', async () => {
  const result = await buildAgainst({ execroot: 'execroot/__main__', files: [], links: [{ role: 'bin', target: 'execroot/../../home' }] });
  expect(result.exitCode).toBe(36);
  expect(result.stderr).toContain(`refused the agent's convenience link "bin" -> "execroot/../../home"`);
  expect(fs.readdirSync(laptop.workspace)).toEqual([]);
});

test('a link sent for an output that leads out of the output base does not land; the command fails naming it', async () => {
  fs.symlinkSync(path.join(laptop.home, '.ssh'), path.join(attacker, BIN, 'absolute'));
  fs.symlinkSync('../../../../../../home/.ssh', path.join(attacker, BIN, 'climbing')); // bin is 5 deep in ob/
  for (const name of ['absolute', 'climbing']) {
    const result = await buildAgainst({ execroot: 'execroot/__main__', files: [file(`${BIN}/${name}`, { regular: false })], links: [] });
    expect(result.exitCode).toBe(36);
    expect(result.stderr).toContain(`the agent did not send ${BIN}/${name}`);
    expect(fs.existsSync(path.join(laptop.outputBase, BIN, name))).toBe(false);
  }
  expect(outsideOutputBase()).toEqual([path.join(laptop.home, '.ssh')]);
});

test('names the proxy did not ask for are not written', async () => {
  fs.writeFileSync(path.join(attacker, BIN, 'asked'), 'asked\n');
  fs.writeFileSync(path.join(attacker, BIN, 'extra'), 'extra\n');
  const list = path.join(root, 'attacker-list');
  fs.writeFileSync(list, `${BIN}/asked\0${BIN}/extra\0`);
  // The sender ignores the proxy's list and sends its own.
  const sender = ['--server', '--sender', '-ltrRe.iLsfxCIvu', `--files-from=${list}`, '--from0', '.', '.'];
  const result = await buildAgainst({ execroot: 'execroot/__main__', files: [file(`${BIN}/asked`)], links: [] }, sender);
  expect(result.exitCode).toBe(36);
  expect(result.stderr).toContain('RBS: outputs did not reach this machine: fetch ');
  expect(fs.existsSync(path.join(laptop.outputBase, BIN, 'extra'))).toBe(false);
});

describe("a real agent's Fetch runs only a sender of its output base", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await startFixture();
  });
  afterAll(() => f.stop());

  const c = '-ltrRe.iLsfxCIvu';
  const fetchArgs = (...middle: string[]) => ['--server', '--sender', c, ...middle, '--files-from=-', '--from0', '.', '.'];
  test.each<[string, string[], string]>([
    ['a receiver', ['--server', c, '--files-from=-', '--from0', '.', '.'], c],
    ['another directory', ['--server', '--sender', c, '--files-from=-', '--from0', '.', '/'], '/'],
    ['following links', ['--server', '--sender', '-Lltre.iLsfxCIvu', '--files-from=-', '--from0', '.', '.'], '-Lltre.iLsfxCIvu'],
    ['a files-from list of its choice', ['--server', '--sender', c, '--files-from=/etc/passwd', '--from0', '.', '.'], '--files-from=/etc/passwd'],
    ['a log file', fetchArgs('--log-file=/tmp/x'), '--log-file=/tmp/x'],
    ['--rsync-path', fetchArgs('--rsync-path=/bin/sh'), '--rsync-path=/bin/sh'],
  ])('refuses %s', async (_what, serverArgs, refused) => {
    const client = f.client();
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      const call = client.fetch();
      call.on('data', (_frame: SyncFrame__Output) => undefined);
      call.on('error', () => undefined);
      call.on('status', resolve);
      call.write({ start: { syncId: 'hostile', serverArgs } });
      call.end();
    });
    client.close();
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toContain(`refused rsync server argument ${JSON.stringify(refused)}`);
  });
});
