/**
 * Login against a real OpenID provider, from the attacker's side: each way of getting a
 * certificate without being an allowed, verified user is refused, with the check that failed.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { protos } from '../../lib/grpc/protos';
import { LOGIN_METHOD, loginChannelCredentials, sanUris, tlsChannelOptions } from '../../lib/grpc/tls';
import { IdTokenVerifier } from '../../lib/oidc/id-token';
import { loginAtOrchestrator } from '../../lib/oidc/login-client';
import { identityFromUris } from '../../lib/pki/identity';
import { startOidcProvider } from '../harness/oidc-provider';
import { idTokenAt, OTHER_CLIENT, RBS_CLIENT, USERS, useLoginFixture } from './fixture';

const fixture = useLoginFixture();
const { stack } = fixture;

const HOUR_MS = 60 * 60 * 1000;

/** `token` with one byte of its signature changed. */
function withTamperedSignature(token: string): string {
  const [header, payload, signature] = token.split('.');
  const bytes = Buffer.from(signature, 'base64url');
  bytes[bytes.length >> 1] ^= 0x01;
  return [header, payload, bytes.toString('base64url')].join('.');
}

/** `token` with its claims rewritten by `edit`, the issuer's signature kept. */
function withRewrittenClaims(token: string, edit: (claims: Record<string, unknown>) => void): string {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  edit(claims);
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
}

test('a verified user of an allowed domain in the required group gets a 12-hour certificate for their own key, which the orchestrator accepts', async () => {
  const { response, client } = await fixture.login(await fixture.idTokenFor(USERS.ada));
  expect(response).toMatchObject({ user: 'ada@example.com', operator: false });
  const cert = new X509Certificate(response.certificatePem);
  expect(identityFromUris(sanUris(cert.subjectAltName))).toEqual({ kind: 'user', user: 'ada@example.com', operator: false });
  // 12 hours from now, give or take the signer's allowance for clock skew.
  expect(new Date(cert.validTo).getTime() - Date.now()).toBeGreaterThan(12 * HOUR_MS - 10 * 60_000);
  expect(new Date(cert.validTo).getTime() - Date.now()).toBeLessThanOrEqual(12 * HOUR_MS);
  expect(response.expiresAtMs).toBe(new Date(cert.validTo).getTime());
  expect(await client.listSessions()).toEqual([]);
  await expect(client.listSessions({ allUsers: true })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  client.close();
});

test('an operator is recognised from its group, and may list everyone’s sessions', async () => {
  const { response, client } = await fixture.login(await fixture.idTokenFor(USERS.olga));
  expect(response).toMatchObject({ user: 'olga@example.com', operator: true });
  expect(identityFromUris(sanUris(new X509Certificate(response.certificatePem).subjectAltName))).toMatchObject({ operator: true });
  expect(await client.listSessions({ allUsers: true })).toEqual(expect.any(Array));
  client.close();
});

test('a token issued to another application (wrong audience) is refused', async () => {
  const token = await fixture.idTokenFor(USERS.ada, OTHER_CLIENT);
  await expect(fixture.login(token)).rejects.toMatchObject({
    code: grpc.status.UNAUTHENTICATED,
    details: expect.stringMatching(/^ID token refused: its audience "payroll-app" is not RBS's client id "rbs-cli"/),
  });
});

test('an expired token is refused', async () => {
  const token = await fixture.idTokenFor(USERS.bo);
  const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp as number;
  // Past its expiry and the orchestrator's 5 s of clock tolerance.
  await new Promise((r) => setTimeout(r, exp * 1000 + 6000 - Date.now()));
  await expect(fixture.login(token)).rejects.toMatchObject({
    code: grpc.status.UNAUTHENTICATED,
    details: `ID token refused: it expired at ${new Date(exp * 1000).toISOString()}`,
  });
});

test('a stolen token replayed after the login window is refused, though it has not expired', async () => {
  const token = await fixture.idTokenFor(USERS.ada);
  const iat = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).iat as number;
  // The orchestrator's window is ten minutes; one of a second shows the check without the wait.
  const verifier = new IdTokenVerifier({ issuer: fixture.provider().issuer, clientId: RBS_CLIENT }, 1);
  await expect(verifier.verify(token)).resolves.toMatchObject({ email: USERS.ada.email });
  // Past the window and the 5 s of clock tolerance.
  await new Promise((r) => setTimeout(r, iat * 1000 + 7000 - Date.now()));
  await expect(verifier.verify(token)).rejects.toMatchObject({
    code: grpc.status.UNAUTHENTICATED,
    details: `ID token refused: it was issued at ${new Date(iat * 1000).toISOString()}, more than 1 s ago: sign in again`,
  });
});

test('a token with a tampered signature is refused', async () => {
  const token = await fixture.idTokenFor(USERS.ada);
  await expect(fixture.login(withTamperedSignature(token))).rejects.toMatchObject({
    code: grpc.status.UNAUTHENTICATED,
    details: "ID token refused: its signature does not verify against the issuer's keys",
  });
});

test('a token whose claims were rewritten (to join the operator group) is refused', async () => {
  const token = await fixture.idTokenFor(USERS.ada);
  const forged = withRewrittenClaims(token, (claims) => (claims.groups = ['rbs-users', 'rbs-operators']));
  await expect(fixture.login(forged)).rejects.toMatchObject({
    code: grpc.status.UNAUTHENTICATED,
    details: expect.stringContaining('signature does not verify'),
  });
});

test('a token from a provider the attacker runs, naming an allowed user, is refused', async () => {
  const rogue = await startOidcProvider({ clients: [RBS_CLIENT], users: [{ ...USERS.ada, login: 'mallory' }] });
  try {
    const token = await idTokenAt(rogue, { login: 'mallory', password: USERS.ada.password }, RBS_CLIENT);
    await expect(fixture.login(token)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(/^ID token refused: /) });
  } finally {
    await rogue.stop();
  }
});

test('an e-mail address of a disallowed domain is refused', async () => {
  await expect(fixture.login(await fixture.idTokenFor(USERS.eve))).rejects.toMatchObject({
    code: grpc.status.PERMISSION_DENIED,
    details: "login refused: e-mail domain 'evil.example' is not allowed to use RBS",
  });
});

test('a user outside the required group is refused', async () => {
  await expect(fixture.login(await fixture.idTokenFor(USERS.ned))).rejects.toMatchObject({
    code: grpc.status.PERMISSION_DENIED,
    details: "login refused: not a member of group 'rbs-users' (claim 'groups'), which RBS requires",
  });
});

test('an unverified e-mail address is refused', async () => {
  await expect(fixture.login(await fixture.idTokenFor(USERS.uma))).rejects.toMatchObject({
    code: grpc.status.PERMISSION_DENIED,
    details: 'login refused: the e-mail address uma@example.com is not verified at the issuer',
  });
});

test('a private key, or a key other than P-256, is refused before the token is looked at', async () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const bad = [
    ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    '-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n',
  ];
  for (const publicKeyPem of bad) {
    await expect(loginAtOrchestrator(stack().orchestrator.address, stack().ca.certPem, 'x.y.z', publicKeyPem)).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/^public key /),
    });
  }
});

test('without a client certificate, every method but Login is refused before its handler runs', async () => {
  const service = protos().orchestrator.rbs.v1.Orchestrator.service;
  const anonymous = new grpc.Client(
    stack().orchestrator.address,
    loginChannelCredentials(stack().ca.certPem, (id) => id.kind === 'service' && id.name === 'orchestrator'),
    tlsChannelOptions('127.0.0.1'),
  );
  const call = (method: grpc.MethodDefinition<object, object>) =>
    new Promise<grpc.ServiceError | null>((resolve) => {
      if (method.responseStream) {
        const stream = anonymous.makeServerStreamRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          {},
          { deadline: Date.now() + 10_000 },
        );
        stream.on('error', resolve);
        stream.on('end', () => resolve(null));
        stream.on('data', () => {});
      } else {
        anonymous.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, {}, { deadline: Date.now() + 10_000 }, (err) =>
          resolve(err),
        );
      }
    });
  const others = Object.values(service).filter((method) => method.path !== LOGIN_METHOD);
  expect(others.length).toBeGreaterThanOrEqual(7);
  for (const method of others) {
    expect({ method: method.path, error: await call(method) }).toMatchObject({
      method: method.path,
      error: { code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(/^no client certificate issued by this RBS CA/) },
    });
  }
  // Login itself reaches its handler, which checks the request.
  expect(await call(service.Login)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'ID token is missing' });
  anonymous.close();
});

test('a revoked user gets no new certificate by logging in again', async () => {
  const operator = await fixture.stack().client('root', { operator: true });
  await operator.revokeUser('ada@example.com');
  try {
    await expect(fixture.login(await fixture.idTokenFor(USERS.ada))).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      details: expect.stringMatching(/^user 'ada@example.com' has been revoked since/),
    });
  } finally {
    await operator.unrevokeUser('ada@example.com');
  }
});
