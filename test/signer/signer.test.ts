/**
 * The signer service, attacked from every side: only the orchestrator gets user and proxy
 * certificates, only the worker gets agent certificates, nobody gets a service identity, and
 * lifetimes are capped whatever is asked.
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fixedTls, sanUris } from '../../lib/grpc/tls';
import { CertificateAuthority } from '../../lib/pki/ca';
import { identityFromUris, type Identity } from '../../lib/pki/identity';
import { RemoteSigner } from '../../lib/pki/remote-signer';
import { issuedServiceTls, type ServiceTls } from '../../lib/pki/service-tls';
import { MAX_VALIDITY_MS } from '../../services/signer/policy';
import { startSigner, type SignerServer } from '../../services/signer/server';

let dir: string;
let ca: CertificateAuthority;
let signer: SignerServer;
let signerTls: ServiceTls;
const remotes: RemoteSigner[] = [];

const HOUR = 60 * 60 * 1000;
const key = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
const ALICE: Identity = { kind: 'user', user: 'alice', operator: false };
const PROXY: Identity = { kind: 'proxy', sessionId: '8a0e0c2e-4b1c-4d8e-9c6b-1f6a1d2f3e4a', user: 'alice' };
const AGENT: Identity = { kind: 'agent', sessionId: '8a0e0c2e-4b1c-4d8e-9c6b-1f6a1d2f3e4a' };

/** A signer client that presents a certificate for `caller`, from `authority`. */
async function as(caller: Identity, authority = ca): Promise<RemoteSigner> {
  const tls = fixedTls({ caCertPem: ca.certPem, ...(await authority.issue(caller)) });
  const remote = new RemoteSigner(signer.address, tls);
  remotes.push(remote);
  return remote;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rbs-signer-'));
  ca = await CertificateAuthority.loadOrCreate(dir);
  signerTls = await issuedServiceTls(ca, { kind: 'service', name: 'signer' }, { ipAddresses: ['127.0.0.1'] });
  signer = await startSigner({ listen: '127.0.0.1:0', ca, tls: signerTls });
});
afterAll(async () => {
  for (const remote of remotes) remote.close();
  await signer.stop();
  signerTls.close();
  await rm(dir, { recursive: true, force: true });
});

test('the orchestrator gets user and proxy certificates for the keys it sends, signed by the CA', async () => {
  const orchestrator = await as({ kind: 'service', name: 'orchestrator' });
  for (const subject of [ALICE, { ...ALICE, operator: true }, PROXY]) {
    const pem = await orchestrator.certifyPublicKey(subject, key(), { validityMs: HOUR });
    const cert = new X509Certificate(pem);
    expect(identityFromUris(sanUris(cert.subjectAltName))).toEqual(subject);
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
  }
  expect(orchestrator.caCertPem).toBe(ca.certPem);
});

test('the worker gets agent certificates with the names it asks for', async () => {
  const worker = await as({ kind: 'service', name: 'worker' });
  const cert = new X509Certificate(await worker.certifyPublicKey(AGENT, key(), { validityMs: HOUR, dnsNames: ['agent.ns.svc'], ipAddresses: ['127.0.0.1'] }));
  expect(identityFromUris(sanUris(cert.subjectAltName))).toEqual(AGENT);
  expect(cert.subjectAltName).toContain('DNS:agent.ns.svc');
});

test('a compromised worker cannot mint a user or proxy certificate, nor the orchestrator an agent one', async () => {
  const worker = await as({ kind: 'service', name: 'worker' });
  const orchestrator = await as({ kind: 'service', name: 'orchestrator' });
  await expect(worker.certifyPublicKey(ALICE, key(), { validityMs: HOUR })).rejects.toThrow(
    /PERMISSION_DENIED: service worker may not have a user certificate issued/,
  );
  await expect(worker.certifyPublicKey(PROXY, key(), { validityMs: HOUR })).rejects.toThrow(/PERMISSION_DENIED/);
  await expect(orchestrator.certifyPublicKey(AGENT, key(), { validityMs: HOUR })).rejects.toThrow(/PERMISSION_DENIED/);
});

test('a user or proxy certificate names no hosts: it could pose as a server', async () => {
  const orchestrator = await as({ kind: 'service', name: 'orchestrator' });
  for (const subject of [ALICE, PROXY]) {
    await expect(orchestrator.certifyPublicKey(subject, key(), { validityMs: HOUR, dnsNames: ['orchestrator.example'] })).rejects.toThrow(
      /names no DNS names or IP addresses/,
    );
    await expect(orchestrator.certifyPublicKey(subject, key(), { validityMs: HOUR, ipAddresses: ['127.0.0.1'] })).rejects.toThrow(/PERMISSION_DENIED/);
  }
});

test('nobody gets a service identity, whatever it sends', async () => {
  const orchestrator = await as({ kind: 'service', name: 'orchestrator' });
  expect(() => orchestrator.certifyPublicKey({ kind: 'service', name: 'signer' }, key(), { validityMs: HOUR })).toThrow(/never certified/);
});

test('users, proxies, agents and certificates of another CA are refused', async () => {
  const foreign = await CertificateAuthority.loadOrCreate(path.join(dir, 'foreign'));
  const callers: Array<[Identity, CertificateAuthority, RegExp]> = [
    [ALICE, ca, /PERMISSION_DENIED: only the control plane may ask/],
    [{ ...ALICE, operator: true }, ca, /PERMISSION_DENIED/],
    [PROXY, ca, /PERMISSION_DENIED/],
    [AGENT, ca, /PERMISSION_DENIED/],
    [{ kind: 'service', name: 'orchestrator' }, foreign, /not issued by this RBS CA|UNAUTHENTICATED|UNAVAILABLE/],
  ];
  for (const [caller, authority, refused] of callers) {
    await expect((await as(caller, authority)).certifyPublicKey(ALICE, key(), { validityMs: HOUR })).rejects.toThrow(refused);
  }
});

test('lifetimes are capped per kind, and nonsense lifetimes and keys are refused', async () => {
  const orchestrator = await as({ kind: 'service', name: 'orchestrator' });
  for (const validityMs of [MAX_VALIDITY_MS.user + 1, 0, -5, 365 * 24 * HOUR]) {
    await expect(orchestrator.certifyPublicKey(ALICE, key(), { validityMs })).rejects.toThrow(/PERMISSION_DENIED: a user certificate may be valid for/);
  }
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  for (const bad of ['', 'not a key', rsa]) {
    await expect(orchestrator.certifyPublicKey(ALICE, bad, { validityMs: HOUR })).rejects.toMatchObject({ name: 'InvalidPublicKeyError' });
  }
  await expect(orchestrator.certifyPublicKey({ kind: 'user', user: 'bad/name\n', operator: false }, key(), { validityMs: HOUR })).rejects.toMatchObject({
    name: 'InvalidPublicKeyError',
  });
});

test('a renewed signer certificate is served to new connections without a restart', async () => {
  const renewing = await issuedServiceTls(ca, { kind: 'service', name: 'signer' }, { ipAddresses: ['127.0.0.1'] }, 3000);
  const server = await startSigner({ listen: '127.0.0.1:0', ca, tls: renewing });
  try {
    const first = renewing.current().certPem;
    await new Promise((r) => setTimeout(r, 2500)); // renewed at two thirds of 3 s
    expect(renewing.current().certPem).not.toBe(first);
    await new Promise((r) => setTimeout(r, 1000)); // the first one has expired by now
    const remote = new RemoteSigner(server.address, fixedTls({ caCertPem: ca.certPem, ...(await ca.issue({ kind: 'service', name: 'worker' })) }));
    remotes.push(remote);
    await expect(remote.certifyPublicKey(AGENT, key(), { validityMs: HOUR })).resolves.toMatch(/BEGIN CERTIFICATE/);
  } finally {
    await server.stop();
    renewing.close();
  }
});
