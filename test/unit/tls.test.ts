import 'reflect-metadata';
import { X509Certificate, webcrypto } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as nodeTls from 'node:tls';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import {
  type TlsMaterial,
  channelCredentials,
  peerIdentity,
  sanUris,
  readTlsMaterial,
  serverCredentials,
  tlsChannelOptions,
  writeTlsMaterial,
} from '../../lib/grpc/tls';
import { CertificateAuthority, type IssueOptions } from '../../lib/pki/ca';
import { identityUris, type Identity } from '../../lib/pki/identity';

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString()),
};
const method = (name: string) => ({
  path: `/rbs.test.Probe/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
/** WhoAmI answers the caller's identity; Ping trusts the credentials' interceptor to keep strangers out. */
const PROBE: grpc.ServiceDefinition = { whoAmI: method('WhoAmI'), ping: method('Ping') };
const ProbeClient = grpc.makeGenericClientConstructor(PROBE, 'Probe');

const NO_VALID_CERT = /^no client certificate issued by this RBS CA and currently valid/;
const ORCHESTRATOR: Identity = { kind: 'service', name: 'orchestrator' };
const ALICE: Identity = { kind: 'user', user: 'alice', operator: false };
const isOrchestrator = (id: Identity) => id.kind === 'service' && id.name === 'orchestrator';

let root: string;
let ca: CertificateAuthority;
let foreignCa: CertificateAuthority;
let server: grpc.Server;
let address: string;
const clients: grpc.Client[] = [];

async function material(authority: CertificateAuthority, id: Identity, options?: IssueOptions): Promise<TlsMaterial> {
  return { caCertPem: ca.certPem, ...(await authority.issue(id, options)) };
}

/** Calls `name` on the test server, resolving to the response or the status error. */
function call(credentials: grpc.ChannelCredentials, name: 'whoAmI' | 'ping' = 'whoAmI', client?: grpc.Client) {
  const c = client ?? new ProbeClient(address, credentials);
  if (!client) clients.push(c);
  return new Promise<unknown>((resolve) => {
    const fn = (c as unknown as Record<string, (...args: unknown[]) => void>)[name].bind(c);
    fn({}, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: unknown) => resolve(err ?? res));
  });
}

/** Raw grpc-js credentials, as a non-RBS client would build them. */
function rawCredentials(m?: TlsMaterial): grpc.ChannelCredentials {
  return m
    ? grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(m.keyPem), Buffer.from(m.certPem))
    : grpc.credentials.createSsl(Buffer.from(ca.certPem));
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'rbs-tls-'));
  ca = await CertificateAuthority.loadOrCreate(path.join(root, 'ca'));
  foreignCa = await CertificateAuthority.loadOrCreate(path.join(root, 'foreign-ca'));
  server = new grpc.Server();
  server.addService(PROBE, {
    whoAmI: (c: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      try {
        done(null, peerIdentity(c));
      } catch (e) {
        done(e as grpc.ServiceError);
      }
    },
    ping: (_c: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => done(null, 'pong'),
  });
  const tls = await material(ca, ORCHESTRATOR, { ipAddresses: ['127.0.0.1'] });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', serverCredentials(tls), (err, p) => (err ? reject(err) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
});

afterAll(async () => {
  clients.forEach((c) => c.close());
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  await rm(root, { recursive: true, force: true });
});

describe('mTLS between RBS parties', () => {
  it('tells the server who the client is', async () => {
    const alice = await material(ca, { kind: 'user', user: 'Zoë', operator: true });
    expect(await call(channelCredentials(alice, isOrchestrator))).toEqual({ kind: 'user', user: 'Zoë', operator: true });
  });

  it('refuses a server whose identity is not the expected one', async () => {
    const alice = await material(ca, ALICE);
    const err = (await call(channelCredentials(alice, (id) => id.kind === 'agent'))) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toContain('server is service orchestrator, not the expected peer');
  });

  it('refuses a server certified by another CA', async () => {
    const impostor = new grpc.Server();
    const tls = { ...(await foreignCa.issue(ORCHESTRATOR)), caCertPem: foreignCa.certPem };
    const port = await new Promise<number>((resolve, reject) =>
      impostor.bindAsync('127.0.0.1:0', serverCredentials(tls), (err, p) => (err ? reject(err) : resolve(p))),
    );
    try {
      const client = new ProbeClient(`127.0.0.1:${port}`, channelCredentials(await material(ca, ALICE), isOrchestrator));
      clients.push(client);
      const err = (await call(grpc.credentials.createInsecure(), 'whoAmI', client)) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      impostor.forceShutdown();
    }
  });
});

describe('the TLS server name (SNI) a client sends, by which gateways route', () => {
  /** The server names of the connections `dial` makes to a TLS server at 127.0.0.1:<port>. */
  async function serverNames(dial: (port: number) => Promise<grpc.Client>): Promise<string[]> {
    const names: string[] = [];
    const tls = await material(ca, ORCHESTRATOR);
    const context = nodeTls.createSecureContext({ cert: tls.certPem, key: tls.keyPem });
    const listener = nodeTls.createServer({
      cert: tls.certPem,
      key: tls.keyPem,
      ALPNProtocols: ['h2'],
      SNICallback: (name, done) => (names.push(name), done(null, context)),
    });
    listener.on('secureConnection', (socket) => socket.destroy());
    listener.on('tlsClientError', () => undefined);
    const port = await new Promise<number>((resolve) => listener.listen(0, '127.0.0.1', () => resolve((listener.address() as { port: number }).port)));
    const client = await dial(port);
    try {
      await call(grpc.credentials.createInsecure(), 'ping', client);
      return names;
    } finally {
      client.close();
      listener.close();
    }
  }
  const dialing = (host: string) => async (port: number) =>
    new ProbeClient(`${host}:${port}`, channelCredentials(await material(ca, ALICE), isOrchestrator), tlsChannelOptions(`${host}:${port}`));

  it('is the host of a DNS address, as an SNI-routing gateway needs it', async () => {
    const names = await serverNames(dialing('localhost'));
    expect(names.length).toBeGreaterThan(0);
    expect(new Set(names)).toEqual(new Set(['localhost']));
  });

  it("is a fixed 'rbs' for an IP address, which may not be sent as a server name", async () => {
    expect(new Set(await serverNames(dialing('127.0.0.1')))).toEqual(new Set(['rbs']));
    for (const address of [
      '[::1]:7443',
      '::1',
      'dns:[::1]:443',
      'dns:///[::1]:443',
      'dns:///10.0.0.1:443',
      'ipv4:10.0.0.1:443,10.0.0.2:443',
      'ipv6:[::1]:443',
      'unix:/run/rbs.sock',
    ]) {
      expect({ address, options: tlsChannelOptions(address) }).toEqual({ address, options: { 'grpc.ssl_target_name_override': 'rbs' } });
    }
    for (const address of ['dns:///rbs.example.com:443', 'dns:rbs.example.com:443', 'rbs.example.com', 'localhost:7443']) {
      expect({ address, options: tlsChannelOptions(address) }).toEqual({ address, options: {} });
    }
  });

  it('does not matter to verification: a DNS address reaches a server certified for none of its names', async () => {
    const alice = await material(ca, ALICE);
    const byName = new ProbeClient(address.replace('127.0.0.1', 'localhost'), channelCredentials(alice, isOrchestrator), tlsChannelOptions('localhost:1'));
    clients.push(byName);
    expect(await call(grpc.credentials.createInsecure(), 'whoAmI', byName)).toEqual(ALICE);
  });
});

describe('clients without a valid certificate get UNAUTHENTICATED', () => {
  it('without a certificate, even for methods that never ask who calls', async () => {
    for (const name of ['whoAmI', 'ping'] as const) {
      const err = (await call(rawCredentials(), name)) as grpc.ServiceError;
      expect([err.code, err.details]).toEqual([grpc.status.UNAUTHENTICATED, expect.stringMatching(NO_VALID_CERT)]);
    }
  });

  it('with a certificate of another CA', async () => {
    const stranger = await material(foreignCa, ALICE);
    const fromServer = (await call(rawCredentials(stranger))) as grpc.ServiceError;
    expect([fromServer.code, fromServer.details]).toEqual([grpc.status.UNAUTHENTICATED, expect.stringMatching(NO_VALID_CERT)]);
    // An RBS client knows the CA and says precisely what is wrong.
    const fromClient = (await call(channelCredentials(stranger, isOrchestrator))) as grpc.ServiceError;
    expect(fromClient.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(fromClient.details).toMatch(/: client certificate is not issued by this RBS CA \(issuer: CN=RBS CA [0-9a-f]{8}\)$/);
  });

  it('with an expired certificate', async () => {
    const expired = await material(ca, ALICE, { notBefore: new Date('2020-01-01T00:00:00Z'), validityMs: 3_600_000 });
    const fromServer = (await call(rawCredentials(expired))) as grpc.ServiceError;
    expect([fromServer.code, fromServer.details]).toEqual([grpc.status.UNAUTHENTICATED, expect.stringMatching(NO_VALID_CERT)]);
    const fromClient = (await call(channelCredentials(expired, isOrchestrator))) as grpc.ServiceError;
    expect(fromClient.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(fromClient.details).toMatch(/: client certificate expired at 2020-01-01T01:00:00.000Z$/);
  });

  it('whose certificate expires while connected', async () => {
    const shortLived = await material(ca, ALICE, { notBefore: new Date(Date.now() - 1000), validityMs: 3000 });
    const client = new ProbeClient(address, rawCredentials(shortLived));
    clients.push(client);
    expect(await call(grpc.credentials.createInsecure(), 'whoAmI', client)).toEqual(ALICE);
    const expiry = new Date(new X509Certificate(shortLived.certPem).validTo);
    await new Promise((resolve) => setTimeout(resolve, expiry.getTime() - Date.now() + 100));
    const err = (await call(grpc.credentials.createInsecure(), 'whoAmI', client)) as grpc.ServiceError;
    expect([err.code, err.details]).toEqual([grpc.status.UNAUTHENTICATED, `client certificate expired at ${expiry.toISOString()}`]);
  });

  it('with a certificate of this CA that carries no RBS identity', async () => {
    const caKey = await x509.PemConverter.decodeFirst(await readFile(path.join(root, 'ca', 'ca.key'), 'utf8'));
    const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
    const signingKey = await webcrypto.subtle.importKey('pkcs8', caKey, algorithm, false, ['sign']);
    const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.create({
      subject: 'CN=nobody',
      issuer: new x509.X509Certificate(ca.certPem).subject,
      notAfter: new Date(Date.now() + 3_600_000),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      signingKey,
      publicKey: keys.publicKey,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://elsewhere/user/eve' }])],
    });
    const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    const err = (await call(rawCredentials({ caCertPem: ca.certPem, certPem: cert.toString('pem'), keyPem }))) as grpc.ServiceError;
    expect([err.code, err.details]).toEqual([
      grpc.status.UNAUTHENTICATED,
      'client certificate has no RBS identity: expected exactly one RBS principal URI (spiffe://rbs/…), found none',
    ]);
  });
});

describe('TLS material files', () => {
  it('round-trip, with the key private', async () => {
    const dir = path.join(root, 'material');
    const m = await material(ca, ALICE);
    await writeTlsMaterial(dir, 'alice', m);
    await writeTlsMaterial(dir, 'alice', m); // replacing is fine
    expect(await readTlsMaterial(dir, 'alice')).toEqual(m);
    expect((await stat(path.join(dir, 'alice.key'))).mode & 0o777).toBe(0o600);
  });

  it('name the missing file', async () => {
    const dir = path.join(root, 'material');
    await expect(readTlsMaterial(dir, 'bob')).rejects.toThrow(`TLS material for bob: ${path.join(dir, 'bob.crt')} is missing`);
  });
});

describe('sanUris', () => {
  test.each([
    ['URI:spiffe://rbs/user/alice, URI:spiffe://rbs/role/operator', ['spiffe://rbs/user/alice', 'spiffe://rbs/role/operator']],
    ['IP Address:127.0.0.1, URI:spiffe://rbs/service/worker, DNS:localhost', ['spiffe://rbs/service/worker']],
    ['DNS:"a,b", URI:"spiffe://rbs/user/x,y"', ['spiffe://rbs/user/x,y']],
    ['DNS:localhost', []],
    ['', []],
  ])('%j', (rendered, uris) => {
    expect(sanUris(rendered)).toEqual(uris);
  });

  test('agrees with Node on a certificate the CA issued', async () => {
    const ca = await CertificateAuthority.loadOrCreate(await mkdtemp(path.join(tmpdir(), 'rbs-san-')));
    const { certPem } = await ca.issue({ kind: 'user', user: 'Zoë, "the" admin', operator: true }, { ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
    expect(sanUris(new X509Certificate(certPem).subjectAltName)).toEqual(identityUris({ kind: 'user', user: 'Zoë, "the" admin', operator: true }));
  });
});
