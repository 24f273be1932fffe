/**
 * The signer process as it runs beside a service in its pod: it keeps that service's certificate
 * in a shared directory before it serves, and the service, holding only that certificate, gets
 * what it may have signed. Misconfigurations are refused, naming the variable.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../lib/config';
import { repoRoot } from '../../lib/local/tools';
import { CertificateAuthority } from '../../lib/pki/ca';
import { RemoteSigner } from '../../lib/pki/remote-signer';
import { fileServiceTls } from '../../lib/pki/service-tls';

const HOUR = 60 * 60 * 1000;
/** How long the signer may take to say where it serves. */
const START_MS = 30_000;

// A test that times out skips its `finally`: whatever it started is stopped here all the same.
const started: ChildProcess[] = [];
afterAll(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

test('beside the orchestrator, the signer publishes its certificate first; with it alone, proxies get certified and agents do not', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-signer-home-'));
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-service-tls-'));
  const ca = await CertificateAuthority.loadOrCreate(path.join(home, 'pki'));
  const child = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'services', 'signer', 'main.js')], {
    env: { ...process.env, RBS_HOME: home, RBS_SIGNER_LISTEN: '127.0.0.1:0', RBS_SIGNER_PUBLISH: 'orchestrator', RBS_SERVICE_TLS_DIR: shared },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  started.push(child);
  try {
    const address = await new Promise<string>((resolve, reject) => {
      let err = '';
      setTimeout(() => reject(new Error(`the signer did not say where it serves within ${START_MS} ms: ${err}`)), START_MS).unref();
      child.stderr!.on('data', (chunk) => {
        err += chunk;
        // Its JSON line saying where it serves.
        const m = /"address":"([^"]+)".*"msg":"serving/.exec(err);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`signer exited ${code}: ${err}`)));
    });
    expect(fs.readdirSync(shared).sort()).toEqual(['ca.crt', 'orchestrator.crt', 'orchestrator.key']);
    const tls = await fileServiceTls(shared, 'orchestrator');
    const signer = new RemoteSigner(address, tls);
    try {
      const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const sessionId = '8a0e0c2e-4b1c-4d8e-9c6b-1f6a1d2f3e4a';
      await expect(signer.certifyPublicKey({ kind: 'proxy', sessionId, user: 'ann' }, key, { validityMs: HOUR })).resolves.toMatch(/BEGIN CERTIFICATE/);
      await expect(signer.certifyPublicKey({ kind: 'agent', sessionId }, key, { validityMs: HOUR })).rejects.toThrow(/PERMISSION_DENIED/);
      expect(signer.caCertPem).toBe(ca.certPem);
    } finally {
      signer.close();
      tls.close();
    }
  } finally {
    child.kill('SIGTERM');
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(shared, { recursive: true, force: true });
  }
});

test.each([
  [{ RBS_SIGNER_ADDRESS: '127.0.0.1:7445' }, /^RBS_SIGNER_ADDRESS=127.0.0.1:7445 needs RBS_SERVICE_TLS_DIR/],
  [{ RBS_SIGNER_PUBLISH: 'orchestrator' }, /^RBS_SIGNER_PUBLISH=orchestrator needs RBS_SERVICE_TLS_DIR/],
  [{ RBS_SIGNER_PUBLISH: 'signer', RBS_SERVICE_TLS_DIR: '/tmp/x' }, /^RBS_SIGNER_PUBLISH must be 'orchestrator' or 'worker'/],
])('%j is refused', (env, message) => {
  expect(() => loadConfig(env)).toThrow(message);
});
