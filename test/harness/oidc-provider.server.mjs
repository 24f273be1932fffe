// A real OpenID provider for tests: panva's oidc-provider (OpenID Certified), with the device
// flow, public clients and a few users with e-mail and group claims. ESM-only, so it runs in its
// own process: `node oidc-provider.server.mjs SETUP.json`; it prints {"issuer": …} once it is serving
// on a free loopback port. Users sign in with their password at the interaction pages below.
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

/** { clients: string[], users: [{ login, password, email, emailVerified, groups, idTokenTtlSeconds? }], pollIntervalSeconds } */
const setup = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map(setup.users.map((user) => [user.login, user]));

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
// Not generateKeyPairSync(...).privateKey.export({ format: 'jwk' }): on Node 20 a garbage collection
// during that export can destroy the key-generation job, which locks the mutex the export holds, and
// the process hangs for good (seen in CI, in gdb: ~KeyGenJob under ExportJWKRsaKey). A key parsed
// from PEM shares nothing with the job.
const { privateKey: pem } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});
const signingKey = createPrivateKey(pem).export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: setup.clients.map((clientId) => ({
    client_id: clientId,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
    response_types: [],
    redirect_uris: [],
  })),
  jwks: { keys: [{ ...signingKey, kid: 'test-signing-key', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: { devInteractions: { enabled: false }, deviceFlow: { enabled: true } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  scopes: ['openid', 'email', 'groups'],
  claims: { email: ['email', 'email_verified'], groups: ['groups'] },
  // Put the scopes' claims in the ID token, as RBS reads them there (as Okta or Entra ID can).
  conformIdTokenClaims: false,
  ttl: { IdToken: (_ctx, token) => users.get(token.available.sub)?.idTokenTtlSeconds ?? 3600 },
  async findAccount(_ctx, sub) {
    const user = users.get(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      claims: () => ({ sub, email: user.email, email_verified: user.emailVerified, groups: user.groups }),
    };
  },
});

// RFC 8628 lets the provider name the polling interval; a short one keeps the tests quick.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/device/auth' && ctx.status === 200) ctx.body = { ...ctx.body, interval: setup.pollIntervalSeconds };
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!DOCTYPE html><html><body>${body}</body></html>`);
};
const form = (uid, step, inner) => `<form method="post" action="/interaction/${escape(uid)}/${step}">${inner}<button type="submit">Continue</button></form>`;
const loginForm = (uid, message = '') => form(uid, 'login', `${message}<input type="text" name="login"/><input type="password" name="password"/>`);

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return Object.fromEntries(new URLSearchParams(body));
}

/** The provider's login and consent prompts, as an identity provider's own pages would be. */
async function interaction(req, res, uid, step) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, 'interaction mismatch');
  const { prompt, params, session, grantId } = details;
  if (req.method === 'GET') {
    if (prompt.name === 'login') return page(res, 200, `<h1>Sign in</h1>${loginForm(uid)}`);
    return page(res, 200, `<h1>Allow ${escape(params.client_id)}?</h1>${form(uid, 'confirm', '')}`);
  }
  if (step === 'login' && prompt.name === 'login') {
    const { login, password } = await readForm(req);
    const user = users.get(login);
    if (!user || user.password !== password) return page(res, 200, `<h1>Sign in</h1>${loginForm(uid, '<p>Wrong login or password.</p>')}`);
    return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  }
  if (step === 'confirm' && prompt.name === 'consent') {
    const grant = grantId ? await provider.Grant.find(grantId) : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }
  return page(res, 400, `unexpected ${step} at prompt ${escape(prompt.name)}`);
}

const callback = provider.callback();
server.on('request', (req, res) => {
  const match = /^\/interaction\/([^/?]+)(?:\/(login|confirm))?$/.exec(new URL(req.url, issuer).pathname);
  if (!match) return callback(req, res);
  interaction(req, res, match[1], match[2]).catch((err) => page(res, 500, escape(err.message)));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
console.log(JSON.stringify({ issuer }));
