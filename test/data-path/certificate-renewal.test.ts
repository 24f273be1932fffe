/**
 * A proxy outlives its certificate: with proxy certificates valid for 6 s, a proxy that keeps
 * building for three times that renews its own (fresh key, from the orchestrator) and never fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeTlsMaterial } from '../../lib/grpc/tls';
import { useStack } from '../harness/stack';
import { BazelWorkspace } from './fixture';

jest.setTimeout(120_000);

const VALIDITY_MS = 6000;
const stack = useStack({ RBS_PROXY_CERT_VALIDITY_MS: String(VALIDITY_MS) });
let ws: BazelWorkspace;

beforeEach(async () => {
  const credentials = path.join(stack().config.home, 'credentials', 'renewer');
  const issued = await stack().ca.issue({ kind: 'user', user: 'renewer', operator: false });
  await writeTlsMaterial(credentials, 'user', { caCertPem: stack().ca.certPem, ...issued });
  ws = new BazelWorkspace({ ...process.env, RBS_HOME: stack().config.home, RBS_ORCHESTRATOR: stack().orchestrator.address, RBS_CREDENTIALS: credentials });
});
afterEach(() => ws.destroy());

it('a proxy that builds for longer than its certificate lives keeps working', async () => {
  const started = Date.now();
  const proxyPids = new Set<number>();
  for (let i = 0; Date.now() - started < 3 * VALIDITY_MS; i++) {
    fs.writeFileSync(path.join(ws.workspace, 'in.txt'), `edit ${i}\n`);
    const result = await ws.bazel(['build', ...ws.buildOptions, '//:gen']);
    expect({ build: i, code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ build: i, code: 0, stderr: '' });
    proxyPids.add(ws.proxyPid());
    await new Promise((r) => setTimeout(r, 1000));
  }
  expect(proxyPids.size).toBe(1); // one proxy all along: it renewed, it was not restarted
  const [session] = (await stack().worker.store.list()).filter((s) => s.workspace === ws.workspace);
  const out = path.join(stack().config.home, 'volumes', session.volume, 'workspace', 'bazel-bin', 'gen.txt');
  expect(fs.readFileSync(out, 'utf8')).toMatch(/^edit \d+\n$/);
});
