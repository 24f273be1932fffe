/**
 * `rbs login` end to end, as a developer runs it: the compiled CLI in its own process, the device
 * flow approved at the real provider, the certificate written where every other command reads it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { OidcUser } from '../harness/oidc-provider';
import { USERS, useLoginFixture } from './fixture';

const RBS = path.resolve(__dirname, '../../cli/rbs.js');

const fixture = useLoginFixture();
const { stack } = fixture;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `rbs args`; `approveAs` signs in at the provider once the CLI shows its code. */
function rbs(args: string[], env: Record<string, string>, approveAs?: OidcUser): Promise<Run> {
  const child = spawn(process.execPath, [RBS, ...args], {
    env: { ...process.env, RBS_HOME: stack().config.home, RBS_ORCHESTRATOR: stack().orchestrator.address, ...env },
  });
  let stdout = '';
  let stderr = '';
  let approval: Promise<void> = Promise.resolve();
  let approving = false;
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    const shown = /open (\S+) and enter the code (\S+)/.exec(stdout);
    if (shown && approveAs && !approving) {
      approving = true;
      approval = fixture.provider().approve(shown[1], shown[2], approveAs);
      approval.catch(() => child.kill());
    }
  });
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => child.on('close', (code) => approval.then(() => resolve({ code, stdout, stderr }), reject)));
}

const freshCredentials = () => fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-credentials-'));
/** All a developer's laptop needs to know about the provider. */
const laptopEnv = (credentials: string) => {
  const { RBS_OIDC_ISSUER, RBS_OIDC_CLIENT_ID } = fixture.oidcEnv();
  return { RBS_OIDC_ISSUER, RBS_OIDC_CLIENT_ID, RBS_CREDENTIALS: credentials };
};

test('`rbs login` signs in with the device flow and writes a certificate the orchestrator accepts for ListSessions', async () => {
  const credentials = freshCredentials();
  const login = await rbs(['login'], laptopEnv(credentials), USERS.ada);
  expect(login).toMatchObject({ code: 0, stdout: expect.stringContaining("logged in as 'ada@example.com': certificate in") });
  expect(login.stdout).toMatch(/To sign in, open http:\/\/127\.0\.0\.1:\d+\/device and enter the code \S+/);

  const cert = new X509Certificate(fs.readFileSync(path.join(credentials, 'user.crt')));
  expect(cert.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(credentials, 'user.key'))))).toBe(true);
  expect(fs.statSync(path.join(credentials, 'user.key')).mode & 0o777).toBe(0o600);

  expect(await rbs(['sessions', '--json'], laptopEnv(credentials))).toMatchObject({ code: 0, stdout: '[]\n' });
});

test('a refused sign-in says why and writes nothing', async () => {
  const credentials = freshCredentials();
  expect(await rbs(['login'], laptopEnv(credentials), USERS.eve)).toMatchObject({
    code: 1,
    stderr: expect.stringContaining("PERMISSION_DENIED: login refused: e-mail domain 'evil.example' is not allowed to use RBS"),
  });
  expect(fs.readdirSync(credentials)).toEqual([]);
});

test('with an issuer configured, `rbs login --user` (a certificate for any name from the local CA) is refused', async () => {
  const credentials = freshCredentials();
  expect(await rbs(['login', '--user', 'olga@example.com', '--operator'], laptopEnv(credentials))).toMatchObject({
    code: 2,
    stderr: expect.stringContaining('--user is only for the single-user local stack'),
  });
  expect(fs.readdirSync(credentials)).toEqual([]);
});

test('without an issuer, `rbs login --user` says it is the single-user local stack’s, and `rbs login` says what to set', async () => {
  const credentials = freshCredentials();
  expect(await rbs(['login', '--user', 'jo'], { RBS_CREDENTIALS: credentials })).toMatchObject({
    code: 0,
    stdout: expect.stringContaining("logged in as 'jo' on the single-user local stack"),
  });
  expect(await rbs(['login'], { RBS_CREDENTIALS: freshCredentials() })).toMatchObject({
    code: 2,
    stderr: expect.stringContaining('set RBS_OIDC_ISSUER and RBS_OIDC_CLIENT_ID'),
  });
});
