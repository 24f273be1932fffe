/**
 * A real OpenID provider with RBS's client, another application's client and users of every kind,
 * and a test stack whose orchestrator trusts that provider for login.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { LoginResponse__Output } from '../../gen/proto/rbs/v1/LoginResponse';
import { OrchestratorClient } from '../../lib/grpc/orchestrator-client';
import { deviceFlowIdToken, type DevicePrompt } from '../../lib/oidc/device-flow';
import { loginAtOrchestrator } from '../../lib/oidc/login-client';
import { type OidcProvider, type OidcUser, startOidcProvider } from '../harness/oidc-provider';
import { type TestStack, useStack } from '../harness/stack';

export const RBS_CLIENT = 'rbs-cli';
export const OTHER_CLIENT = 'payroll-app';
export const USERS_GROUP = 'rbs-users';
export const OPERATORS_GROUP = 'rbs-operators';

const user = (login: string, email: string, groups: string[], extra: Partial<OidcUser> = {}): OidcUser => ({
  login,
  password: `${login}-password`,
  email,
  emailVerified: true,
  groups,
  ...extra,
});

export const USERS = {
  ada: user('ada', 'ada@example.com', [USERS_GROUP]),
  olga: user('olga', 'olga@example.com', [USERS_GROUP, OPERATORS_GROUP]),
  eve: user('eve', 'eve@evil.example', [USERS_GROUP]),
  ned: user('ned', 'ned@example.com', []),
  uma: user('uma', 'uma@example.com', [USERS_GROUP], { emailVerified: false }),
  bo: user('bo', 'bo@example.com', [USERS_GROUP], { idTokenTtlSeconds: 1 }),
};

/** An ID token of `provider` for `who`, through the device flow RBS's CLI runs, approved at the provider. */
export async function idTokenAt(provider: OidcProvider, who: Pick<OidcUser, 'login' | 'password'>, clientId: string): Promise<string> {
  // A failed approval stops the polling, and its error is the one reported.
  const abort = new AbortController();
  const approvals: Promise<void>[] = [];
  const approve = (prompt: DevicePrompt) => {
    const approval = provider.approve(prompt.verificationUri, prompt.userCode, who);
    approval.catch((e) => abort.abort(e));
    approvals.push(approval);
  };
  try {
    return await deviceFlowIdToken({ issuer: provider.issuer, clientId }, approve, abort.signal);
  } finally {
    await Promise.all(approvals);
  }
}

export interface LoginFixture {
  provider(): OidcProvider;
  stack(): TestStack;
  /** Env naming the provider, for the orchestrator and the CLI. */
  oidcEnv(): Record<string, string>;
  /** idTokenAt the fixture's provider. */
  idTokenFor(who: OidcUser, clientId?: string): Promise<string>;
  /** Login with `idToken` over a fresh P-256 key: the response, and a client holding that certificate. */
  login(idToken: string): Promise<{ response: LoginResponse__Output; client: OrchestratorClient }>;
}

export function useLoginFixture(): LoginFixture {
  let provider: OidcProvider | undefined;
  // Filled in before useStack's beforeAll (registered after this one) starts the stack with it.
  const env: Record<string, string> = {};
  beforeAll(async () => {
    provider = await startOidcProvider({ clients: [RBS_CLIENT, OTHER_CLIENT], users: Object.values(USERS) });
    Object.assign(env, {
      RBS_OIDC_ISSUER: provider.issuer,
      RBS_OIDC_CLIENT_ID: RBS_CLIENT,
      RBS_OIDC_ALLOWED_DOMAINS: 'example.com',
      RBS_OIDC_REQUIRED_GROUP: USERS_GROUP,
      RBS_OIDC_OPERATOR_GROUP: OPERATORS_GROUP,
    });
  });
  const stack = useStack(env);
  afterAll(() => provider?.stop());
  const theProvider = () => {
    if (!provider) throw new Error('the OpenID provider did not start (see beforeAll)');
    return provider;
  };
  return {
    provider: theProvider,
    stack,
    oidcEnv: () => ({ ...env }),
    idTokenFor: (who, clientId = RBS_CLIENT) => idTokenAt(theProvider(), who, clientId),
    async login(idToken) {
      const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const publicKeyPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const { address } = stack().orchestrator;
      const response = await loginAtOrchestrator(address, stack().ca.certPem, idToken, publicKeyPem);
      const keyPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      return { response, client: new OrchestratorClient(address, { caCertPem: response.caCertificatePem, certPem: response.certificatePem, keyPem }) };
    },
  };
}
