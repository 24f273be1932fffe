/**
 * What a proxy cannot make the agent's rsync do: run other than as a receiver into the workspace,
 * or write outside the workspace through symlinks.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { REMOTE_SHELL, rsyncToAgent } from '../../services/proxy/rsync-transport';
import { type Fixture, PUSH_ARGS, snapshot, startFixture, write } from './fixture';

const CLUSTER = '-ltEre.iLsfxCIvu';

let f: Fixture;

beforeAll(async () => {
  f = await startFixture();
});
afterAll(() => f.stop());
beforeEach(() => f.reset());

describe('hostile server_args are refused before anything runs', () => {
  const c = CLUSTER;
  /** What is sent (`<canary>` stands for the canary directory), and the argument to be named. */
  const cases: [string, string[], string][] = [
    ['a sender', ['--server', '--sender', c, '.', '.'], '--sender'],
    ['an absolute destination', ['--server', c, '--delete', '.', '<canary>'], '<canary>'],
    ['a destination above the workspace', ['--server', c, '.', '../canary'], '../canary'],
    ['a second destination', ['--server', c, '.', '.', '../canary'], '../canary'],
    ['--rsync-path', ['--server', c, '--rsync-path=/bin/sh', '.', '.'], '--rsync-path=/bin/sh'],
    ['-e with a shell', ['--server', '-ltEr', '-e', 'sh -c "touch canary/x"', '.', '.'], '-e'],
    ['--files-from', ['--server', c, '--files-from=/etc/passwd', '.', '.'], '--files-from=/etc/passwd'],
    ['--log-file', ['--server', c, '--log-file=<canary>/log', '.', '.'], '--log-file=<canary>/log'],
    ['--temp-dir', ['--server', c, '--temp-dir=<canary>', '.', '.'], '--temp-dir=<canary>'],
    ['-T in the cluster', ['--server', '-ltErT<canary>', '.', '.'], '-ltErT<canary>'],
    ['--backup-dir', ['--server', '-ltErbe.iLsfxCIvu', '--backup-dir=<canary>', '.', '.'], '-ltErbe.iLsfxCIvu'],
    ['--partial-dir', ['--server', c, '--partial-dir=<canary>', '.', '.'], '--partial-dir=<canary>'],
    ['--relative', ['--server', '-ltErRe.iLsfxCIvu', '--no-implied-dirs', '.', '.'], '-ltErRe.iLsfxCIvu'],
    ['keeping dir symlinks', ['--server', '-KltEre.iLsfxCIvu', '.', '.'], '-KltEre.iLsfxCIvu'],
    ['arguments over the protocol', ['--server', '-sltEre.iLsfxCIvu'], '-sltEre.iLsfxCIvu'],
    ["rsync -a's ids and devices", ['--server', '-logDtpre.iLsfxCIvu', '--delete', '.', '.'], '-logDtpre.iLsfxCIvu'],
    ['--delete-excluded', ['--server', c, '--delete-excluded', '.', '.'], '--delete-excluded'],
    ['a shell in the compat flags', ['--server', '-ltEre.i;touch x', '.', '.'], '-ltEre.i;touch x'],
    ['no --server', [c, '.', '.'], c],
  ];

  test.each(cases)('%s', async (_what, serverArgs, refused) => {
    const inCanary = (arg: string) => arg.replace('<canary>', f.canary);
    const { status } = await f.raw([{ start: { syncId: 'hostile', serverArgs: serverArgs.map(inCanary) } }]);
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toContain(`refused rsync server argument ${JSON.stringify(inCanary(refused))}`);
    expect(fs.readdirSync(f.canary)).toEqual([]);
    expect(fs.readdirSync(f.workspace)).toEqual([]);
  });

  test('a malformed sync_id or a first frame that is not a SyncStart', async () => {
    const badId = await f.raw([{ start: { syncId: '../x', serverArgs: PUSH_ARGS } }]);
    const invalid = (what: string) => ({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining(what) });
    expect(badId.status).toMatchObject(invalid('"../x"'));
    const data = await f.raw([{ data: Buffer.from('hello') }]);
    expect(data.status).toMatchObject(invalid('SyncStart'));
  });
});

test('symlinks out of the workspace: our proxy refuses them by name, the agent never creates them, in-tree ones arrive', async () => {
  write(f.source, { 'pkg/real.txt': 'real' });
  fs.symlinkSync(f.canary, path.join(f.source, 'canary-link'));
  fs.symlinkSync('/etc', path.join(f.source, 'etc'));
  fs.symlinkSync('../..', path.join(f.source, 'pkg', 'up'));
  fs.symlinkSync('real.txt', path.join(f.source, 'pkg', 'alias.txt'));

  await expect(f.sync()).rejects.toThrow(/3 symlink\(s\).*canary-link -> .*etc -> \/etc.*pkg\/up -> \.\.\/\.\./s);
  // A proxy that sends them all the same.
  const agent = f.client();
  const args = ['--recursive', '--links', '--times', '--executability', '--delete', './', 'agent:.'];
  await rsyncToAgent({ agent, syncId: 'unchecked', args, cwd: f.source, describe: 'a sync without the proxy checks' }).finally(() => agent.close());

  const { 'pkg/real.txt': real } = snapshot(f.source);
  expect(snapshot(f.workspace)).toEqual({ pkg: 'dir', 'pkg/real.txt': real, 'pkg/alias.txt': '-> real.txt' });

  // The same names as real directories arrive as such, and nothing lands in the canary.
  for (const link of ['canary-link', 'etc', 'pkg/up']) fs.rmSync(path.join(f.source, link));
  write(f.source, { 'canary-link/passwd': 'owned', 'etc/passwd': 'owned' });
  await f.sync();
  expect(fs.readFileSync(path.join(f.workspace, 'canary-link', 'passwd'), 'utf8')).toBe('owned');
  expect(fs.readdirSync(f.canary)).toEqual([]);
});

test('a symlink planted in the workspace (as a build might) is replaced, not written through', async () => {
  fs.symlinkSync(f.canary, path.join(f.workspace, 'planted'));
  write(f.source, { 'planted/file': 'owned' });

  await f.sync();

  expect(fs.lstatSync(path.join(f.workspace, 'planted')).isDirectory()).toBe(true);
  expect(fs.readdirSync(f.canary)).toEqual([]);
});

/**
 * A sender can name `planted/file` without naming `planted` (what --relative --no-implied-dirs
 * does), so the receiver never replaces the planted link. The agent refuses those options, so this
 * client hides them from it: the stream carries a file list only a hostile sender would produce.
 */
test('a file list naming a path through a planted symlink does not write through it', async () => {
  fs.symlinkSync(f.canary, path.join(f.workspace, 'planted'));
  write(f.source, { 'planted/file': 'owned' });
  const hidingRsh = path.join(f.root, 'hiding-rsh.sh');
  const script = [
    '#!/bin/bash',
    'args=()',
    'for a in "$@"; do case "$a" in --no-implied-dirs) ;; -*R*) args+=("${a//R/}") ;; *) args+=("$a") ;; esac; done',
    `exec ${REMOTE_SHELL.map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ')} "\${args[@]}"`,
  ];
  fs.writeFileSync(hidingRsh, `${script.join('\n')}\n`, { mode: 0o755 });
  const agent = f.client();
  const outcome = await rsyncToAgent({
    agent,
    syncId: 'hostile',
    args: ['-rltE', '--relative', '--no-implied-dirs', './planted/file', 'agent:.'],
    cwd: f.source,
    describe: 'a hostile sync',
    remoteShell: [hidingRsh],
  }).then(
    () => 'succeeded',
    (err: Error) => err.message,
  );
  agent.close();

  console.log(`rsync through a planted symlink: ${outcome}`);
  expect(fs.readdirSync(f.canary)).toEqual([]);
  expect(f.agent.syncs.lastCompleted()).toBeNull();
});
