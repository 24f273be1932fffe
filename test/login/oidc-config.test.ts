/** RBS_OIDC_* settings: a bad value stops the service at start with the variable's name; without them, Login says what to do instead. */
import { identityFromClaims } from '../../lib/oidc/claims';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '../../lib/config';
import { CertificateAuthority } from '../../lib/pki/ca';
import { Login, loginHandler } from '../../services/orchestrator/login';
import { toServiceError } from '../../services/orchestrator/errors';
import pino from 'pino';

const ISSUER = { RBS_OIDC_ISSUER: 'https://login.example.com', RBS_OIDC_CLIENT_ID: 'rbs-cli' };

test('without an issuer there is no login configuration (the single-user local stack)', () => {
  expect(loadConfig({}).oidc).toBeNull();
});

test('defaults: the e-mail claim names the user, groups come from `groups`, certificates last 12 hours', () => {
  expect(loadConfig({ ...ISSUER, RBS_OIDC_ALLOWED_DOMAINS: 'Example.com, @corp.example.org' }).oidc).toEqual({
    issuer: 'https://login.example.com',
    clientId: 'rbs-cli',
    allowedDomains: ['example.com', 'corp.example.org'],
    userClaim: 'email',
    groupsClaim: 'groups',
    operatorGroup: null,
    requiredGroup: null,
    certificateValidityMs: 12 * 60 * 60 * 1000,
  });
});

test.each([
  [{ RBS_OIDC_ISSUER: 'https://login.example.com' }, /^RBS_OIDC_CLIENT_ID is unset/],
  [{ ...ISSUER, RBS_OIDC_ISSUER: 'http://login.example.com' }, /^RBS_OIDC_ISSUER must be an https URL \(http only on a loopback address\)/],
  [{ ...ISSUER, RBS_OIDC_ISSUER: 'login.example.com' }, /^RBS_OIDC_ISSUER must be a URL/],
  [{ ...ISSUER, RBS_OIDC_ISSUER: 'https://login.example.com/?tenant=x' }, /^RBS_OIDC_ISSUER must have no query or fragment/],
  [{ ...ISSUER, RBS_OIDC_ALLOWED_DOMAINS: 'example.com,*.example.org' }, /^RBS_OIDC_ALLOWED_DOMAINS: '\*\.example\.org' is not a domain name/],
  [{ ...ISSUER, RBS_OIDC_CERT_VALIDITY_MS: '12h' }, /^RBS_OIDC_CERT_VALIDITY_MS must be a positive integer/],
  // A claim users edit themselves would let anyone rename themselves into a colleague.
  [{ ...ISSUER, RBS_OIDC_USER_CLAIM: 'preferred_username' }, /^RBS_OIDC_USER_CLAIM must be 'email' or 'sub'/],
])('%j is refused', (env, message) => {
  expect(() => loadConfig(env)).toThrow(message);
});

test('an orchestrator with an issuer but no allowed domains refuses to start: anyone with an account there could log in', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-pki-'));
  try {
    const ca = await CertificateAuthority.loadOrCreate(dir);
    expect(() => new Login(loadConfig(ISSUER).oidc!, ca, { admit: async () => {} }, pino({ level: 'silent' }))).toThrow(/^RBS_OIDC_ALLOWED_DOMAINS is unset/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an orchestrator without an issuer refuses Login, and says how to log in on the local stack', async () => {
  const handle = loginHandler(null, toServiceError);
  const call = { request: { idToken: 'x.y.z', publicKeyPem: '' } } as unknown as Parameters<typeof handle>[0];
  const error = await new Promise((resolve) => handle(call, (err) => resolve(err)));
  expect(error).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining('use `rbs login --user NAME`') });
});

test('an e-mail address names one user whatever its case: Ada@Example.com is ada@example.com', () => {
  const policy = { allowedDomains: ['example.com'], userClaim: 'email' as const, groupsClaim: 'groups', operatorGroup: null, requiredGroup: null };
  const claims = (email: string) => ({ email, email_verified: true, groups: [] });
  expect(identityFromClaims(claims('Ada@Example.com'), policy)).toEqual(identityFromClaims(claims('ada@example.com'), policy));
  expect(identityFromClaims(claims('Ada@Example.com'), policy).user).toBe('ada@example.com');
});
