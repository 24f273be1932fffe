/**
 * The control plane as it deploys: the signer alone holds the CA key; the orchestrator and the
 * worker run from certificate files, ask the signer for every certificate, and never find, read or
 * make a CA of their own. Rotated certificate files are served without a restart.
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { agentIsServing } from '../../lib/compute/agent-health';
import { homePaths } from '../../lib/config';
import { OrchestratorClient } from '../../lib/grpc/orchestrator-client';
import { writeTlsMaterial } from '../../lib/grpc/tls';
import { CertificateAuthority } from '../../lib/pki/ca';
import { issuedServiceTls } from '../../lib/pki/service-tls';
import { runOrchestrator } from '../../services/orchestrator/orchestrator';
import type { Orchestrator } from '../../services/orchestrator/server';
import { startSigner, type SignerServer } from '../../services/signer/server';
import { cleanupScheduleId } from '../../services/worker/cleanup-schedule';
import { createSessionWorker, type SessionWorker } from '../../services/worker/worker';
import { presentedCertificate } from '../harness/presented-certificate';
import { testConfig } from '../harness/stack';
import { waitFor } from '../harness/wait';

const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  dirs.push(dir);
  return dir;
};

let ca: CertificateAuthority;
let signer: SignerServer;
let serviceTlsDir: string;
let config: ReturnType<typeof testConfig>;
let worker: SessionWorker;
let running: Promise<void>;
let orchestrator: Orchestrator;

const issueTo = async (name: 'orchestrator' | 'worker', validityMs?: number) =>
  writeTlsMaterial(serviceTlsDir, name, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'service', name }, { ipAddresses: ['127.0.0.1'], validityMs })) });

beforeAll(async () => {
  ca = await CertificateAuthority.loadOrCreate(tempDir('rbs-signer-ca-'));
  const signerTls = await issuedServiceTls(ca, { kind: 'service', name: 'signer' }, { ipAddresses: ['127.0.0.1'] });
  signer = await startSigner({ listen: '127.0.0.1:0', ca, tls: signerTls });
  serviceTlsDir = tempDir('rbs-service-tls-');
  await issueTo('orchestrator');
  await issueTo('worker');
  config = testConfig({ RBS_SIGNER_ADDRESS: signer.address, RBS_SERVICE_TLS_DIR: serviceTlsDir });
  worker = await createSessionWorker(config);
  running = worker.run();
  orchestrator = await runOrchestrator(config);
});

afterAll(async () => {
  await orchestrator?.stop();
  worker?.shutdown();
  await running;
  for (const agent of (await worker?.backend.listAgents()) ?? []) await worker.backend.killAgent(agent);
  await signer?.stop();
  const connection = await Connection.connect({ address: config.temporal.address });
  await new Client({ connection, namespace: config.temporal.namespace }).schedule.getHandle(cleanupScheduleId(config.temporal.taskQueue)).delete();
  await connection.close();
  for (const dir of [...dirs, config?.home]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The fingerprint of the certificate a new TLS connection to `address` is shown. */
const presented = async (address: string) => (await presentedCertificate(address)).fingerprint256;

test('a session reaches READY and its proxy is certified with no CA key anywhere near the orchestrator or the worker', async () => {
  const user = new OrchestratorClient(orchestrator.address, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user: 'dora', operator: false })) });
  try {
    const session = await user.getServer(fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-ws-')));
    expect(session.phase).toBe('READY');
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const issued = await user.issueProxyCertificate(session.sessionId, key.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    expect(issued.caCertificatePem).toBe(ca.certPem);
    const proxyTls = { caCertPem: ca.certPem, certPem: issued.certificatePem, keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    expect(await agentIsServing(session.agentAddress, session.sessionId, proxyTls)).toBeNull();
    await user.endSession(session.sessionId);
  } finally {
    user.close();
  }
  // Neither service made (or looked for) a CA in RBS_HOME.
  expect(fs.existsSync(homePaths(config.home).pki)).toBe(false);
});

test('a rotated orchestrator certificate is what new connections see, without a restart', async () => {
  const before = await presented(orchestrator.address);
  await issueTo('orchestrator');
  const rotated = new X509Certificate(fs.readFileSync(path.join(serviceTlsDir, 'orchestrator.crt'))).fingerprint256;
  expect(rotated).not.toBe(before);
  await waitFor(async () => (await presented(orchestrator.address)) === rotated, 15_000, 'the rotated certificate to be served');
  const user = new OrchestratorClient(orchestrator.address, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user: 'dora', operator: false })) });
  await expect(user.listSessions()).resolves.toEqual(expect.any(Array));
  user.close();
});

test('a half-written rotation (a certificate without its key) is not served: the last good one stays', async () => {
  const before = await presented(orchestrator.address);
  const { certPem } = await ca.issue({ kind: 'service', name: 'orchestrator' }, { ipAddresses: ['127.0.0.1'] });
  fs.writeFileSync(path.join(serviceTlsDir, 'orchestrator.crt'), certPem); // the key file is the old one
  await new Promise((r) => setTimeout(r, 6000)); // past a poll
  expect(await presented(orchestrator.address)).toBe(before);
  await issueTo('orchestrator'); // put right for whatever runs next
});

test('a rotation whose ca.crt is empty or another CA is not served: the service would trust the wrong peers', async () => {
  const before = await presented(orchestrator.address);
  await issueTo('orchestrator');
  const foreign = await CertificateAuthority.loadOrCreate(tempDir('rbs-foreign-ca-'));
  for (const caPem of ['', foreign.certPem]) {
    fs.writeFileSync(path.join(serviceTlsDir, 'ca.crt'), caPem);
    await new Promise((r) => setTimeout(r, 6000)); // past a poll
    expect(await presented(orchestrator.address)).toBe(before);
  }
  fs.writeFileSync(path.join(serviceTlsDir, 'ca.crt'), ca.certPem);
  await waitFor(async () => (await presented(orchestrator.address)) !== before, 15_000, 'the good rotation to be served');
});
