import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CertificateAuthority } from '../../lib/pki/ca';
import { agentCertificateExpiry } from '../../lib/pki/certificate';
import { InvalidIdentityError, describeIdentity, identityFromUris, identityUris, type Identity } from '../../lib/pki/identity';
import { InvalidInputError } from '../../lib/validate';

const SESSION = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

describe('identities', () => {
  const cases: [Identity, string[], string][] = [
    [{ kind: 'user', user: 'alice', operator: false }, ['spiffe://rbs/user/alice'], 'user "alice"'],
    [
      { kind: 'user', user: 'Zoë 山田 🦄', operator: true },
      ['spiffe://rbs/user/Zo%C3%AB%20%E5%B1%B1%E7%94%B0%20%F0%9F%A6%84', 'spiffe://rbs/role/operator'],
      'operator "Zoë 山田 🦄"',
    ],
    [{ kind: 'user', user: '100%?#', operator: false }, ['spiffe://rbs/user/100%25%3F%23'], 'user "100%?#"'],
    [{ kind: 'service', name: 'orchestrator' }, ['spiffe://rbs/service/orchestrator'], 'service orchestrator'],
    [{ kind: 'service', name: 'worker' }, ['spiffe://rbs/service/worker'], 'service worker'],
    [{ kind: 'agent', sessionId: SESSION }, [`spiffe://rbs/session/${SESSION}/agent`], `agent of session ${SESSION}`],
    [{ kind: 'proxy', sessionId: SESSION, user: 'bob' }, [`spiffe://rbs/session/${SESSION}/proxy/bob`], `proxy of session ${SESSION} for user "bob"`],
  ];
  it.each(cases)('%j round-trips through %j', (id, uris, description) => {
    expect(identityUris(id)).toEqual(uris);
    expect(identityFromUris(uris)).toEqual(id);
    expect(describeIdentity(id)).toBe(description);
  });

  it('ignores URIs outside the rbs trust domain and role order', () => {
    const uris = ['https://example.com/', 'spiffe://rbs/role/operator', 'spiffe://other/user/eve', 'spiffe://rbs/user/al'];
    expect(identityFromUris(uris)).toEqual({ kind: 'user', user: 'al', operator: true });
  });

  it('NFC-normalizes user names', () => {
    expect(identityUris({ kind: 'user', user: 'Zoe\u0308', operator: false })).toEqual(['spiffe://rbs/user/Zo%C3%AB']);
  });

  it('refuses to encode invalid names', () => {
    expect(() => identityUris({ kind: 'user', user: 'a/b', operator: false })).toThrow(InvalidInputError);
    expect(() => identityUris({ kind: 'agent', sessionId: 'session-1' })).toThrow(InvalidInputError);
  });

  it.each([
    [[], 'expected exactly one RBS principal URI (spiffe://rbs/…), found none'],
    [['spiffe://rbs/role/operator'], 'expected exactly one RBS principal URI (spiffe://rbs/…), found none'],
    [
      ['spiffe://rbs/user/a', 'spiffe://rbs/service/worker'],
      'expected exactly one RBS principal URI (spiffe://rbs/…), found spiffe://rbs/user/a, spiffe://rbs/service/worker',
    ],
    [['spiffe://rbs/service/db'], 'unrecognized RBS identity URI spiffe://rbs/service/db'],
    [['spiffe://rbs/user/a/b'], 'unrecognized RBS identity URI spiffe://rbs/user/a/b'],
    [['spiffe://rbs/user/a', 'spiffe://rbs/role/root'], 'unrecognized RBS role URI spiffe://rbs/role/root'],
    [['spiffe://rbs/user/a', 'spiffe://rbs/role/operator', 'spiffe://rbs/role/operator'], 'role URI spiffe://rbs/role/operator appears 2 times'],
    [
      ['spiffe://rbs/service/worker', 'spiffe://rbs/role/operator'],
      'role URI spiffe://rbs/role/operator is only allowed on a user certificate, not with spiffe://rbs/service/worker',
    ],
    [['spiffe://rbs/user/%E0%A4'], 'identity URI spiffe://rbs/user/%E0%A4 has a malformed percent-encoding'],
    [['spiffe://rbs/user/%61lice'], 'identity URI spiffe://rbs/user/%61lice does not encode its user name canonically'],
    [['spiffe://rbs/user/Zoe%CC%88'], 'identity URI spiffe://rbs/user/Zoe%CC%88 does not encode its user name canonically'],
    [['spiffe://rbs/user/a%2Fb'], "identity URI spiffe://rbs/user/a%2Fb names an invalid user: user name contains '/' at position 1"],
    [
      ['spiffe://rbs/session/s1/agent'],
      'identity URI spiffe://rbs/session/s1/agent names an invalid session: session id must be a lowercase UUID v4, got "s1"',
    ],
  ])('rejects %j', (uris, message) => {
    expect(() => identityFromUris(uris)).toThrow(new InvalidIdentityError(message));
  });
});

describe('CertificateAuthority', () => {
  let dir: string;
  beforeEach(async () => {
    dir = path.join(await mkdtemp(path.join(tmpdir(), 'rbs-ca-')), 'ca');
  });
  afterEach(() => rm(path.dirname(dir), { recursive: true, force: true }));

  it('creates a private CA once and reloads it', async () => {
    const ca = await CertificateAuthority.loadOrCreate(dir);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(dir, 'ca.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(path.join(dir, 'ca.crt'), 'utf8')).toBe(ca.certPem);
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect((await CertificateAuthority.loadOrCreate(dir)).certPem).toBe(ca.certPem);
  });

  it('ends with one CA when many race to create it', async () => {
    const cas = await Promise.all(Array.from({ length: 8 }, () => CertificateAuthority.loadOrCreate(dir)));
    expect(new Set(cas.map((ca) => ca.certPem)).size).toBe(1);
    const leaf = await cas[3].issue({ kind: 'service', name: 'worker' });
    expect(new X509Certificate(leaf.certPem).verify(new X509Certificate(cas[0].certPem).publicKey)).toBe(true);
  });

  it('completes a CA whose certificate was never written', async () => {
    const first = await CertificateAuthority.loadOrCreate(dir);
    await rm(path.join(dir, 'ca.crt'));
    const second = await CertificateAuthority.loadOrCreate(dir);
    expect(second.certPem).not.toBe(first.certPem);
    const key = createPrivateKey(await readFile(path.join(dir, 'ca.key'), 'utf8'));
    expect(new X509Certificate(second.certPem).checkPrivateKey(key)).toBe(true);
  });

  it('refuses a certificate that does not belong to the key', async () => {
    const other = await CertificateAuthority.loadOrCreate(path.join(dir, 'other'));
    await CertificateAuthority.loadOrCreate(dir);
    await writeFile(path.join(dir, 'ca.crt'), other.certPem);
    await expect(CertificateAuthority.loadOrCreate(dir)).rejects.toThrow(
      `CA certificate ${path.join(dir, 'ca.crt')} does not match the CA key ${path.join(dir, 'ca.key')}`,
    );
  });

  it('issues leaf certificates for an identity and its addresses', async () => {
    const ca = await CertificateAuthority.loadOrCreate(dir);
    const id: Identity = { kind: 'proxy', sessionId: SESSION, user: 'Zoë' };
    const issued = await ca.issue(id, { dnsNames: ['agent.local'], ipAddresses: ['127.0.0.1', '::1'] });
    const cert = new X509Certificate(issued.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.checkIssued(caCert) && cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']); // serverAuth, clientAuth
    expect(cert.subjectAltName).toBe(`URI:spiffe://rbs/session/${SESSION}/proxy/Zo%C3%AB, DNS:agent.local, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`);
    expect(issued.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(cert.checkPrivateKey(createPrivateKey(issued.keyPem))).toBe(true);
    // Valid from five minutes back (clock skew) until 30 days from now: never born nearly expired.
    expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(Date.now() - 4 * 60_000);
    expect(Math.abs(Date.parse(cert.validTo) - (Date.now() + 30 * 86_400_000))).toBeLessThan(5000);
    expect(cert.serialNumber).not.toBe(new X509Certificate((await ca.issue(id)).certPem).serialNumber);
  });

  it('a certificate valid for seconds is valid for those seconds from now, though back-dated', async () => {
    const ca = await CertificateAuthority.loadOrCreate(dir);
    const cert = new X509Certificate((await ca.issue({ kind: 'service', name: 'worker' }, { validityMs: 6000 })).certPem);
    expect(Date.parse(cert.validTo)).toBeGreaterThan(Date.now() + 4000);
  });

  it('lets tests choose the validity window', async () => {
    const ca = await CertificateAuthority.loadOrCreate(dir);
    const notBefore = new Date('2020-01-01T00:00:00Z');
    const issued = await ca.issue({ kind: 'service', name: 'worker' }, { notBefore, validityMs: 3_600_000 });
    const cert = new X509Certificate(issued.certPem);
    expect(new Date(cert.validFrom)).toEqual(notBefore);
    expect(new Date(cert.validTo)).toEqual(new Date('2020-01-01T01:00:00Z'));
  });
});

describe("agentCertificateExpiry: whether an installed agent certificate is the session's own", () => {
  it("dates only the session's own agent certificate", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'rbs-ca-'));
    try {
      const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
      const session = '9f0b6c1e-8d2a-4a57-9c1b-2f4e5d6a7b8c';
      const own = await ca.issue({ kind: 'agent', sessionId: session });
      expect(agentCertificateExpiry(own.certPem, session)).toEqual(new Date(new X509Certificate(own.certPem).validTo));
      // A previous session's, left in a reused namespace by a late retry: as good as none.
      const previous = await ca.issue({ kind: 'agent', sessionId: '0d6c5b4a-3e2f-4a1b-8c9d-7e6f5a4b3c2d' });
      expect(agentCertificateExpiry(previous.certPem, session)).toBeNull();
      const user = await ca.issue({ kind: 'user', user: 'alice', operator: false });
      expect(agentCertificateExpiry(user.certPem, session)).toBeNull();
      expect(agentCertificateExpiry('not a certificate', session)).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
