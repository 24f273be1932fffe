/**
 * `rbs login`: signs in at the OpenID provider (RBS_OIDC_ISSUER) with the device flow, and has the
 * orchestrator certify a key made here. `rbs login --user NAME [--operator]` is only for the
 * single-user local stack: anyone holding the local CA key mints any name with it.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { homePaths, loadConfig } from '../lib/config';
import { writeTlsMaterial } from '../lib/grpc/tls';
import { deviceFlowIdToken, type DevicePrompt } from '../lib/oidc/device-flow';
import { loginAtOrchestrator } from '../lib/oidc/login-client';
import { CertificateAuthority } from '../lib/pki/ca';
import { newKeyPair } from '../lib/pki/key-pair';
import { validateUserName } from '../lib/validate';
import { credentialsDir, orchestratorAddress, SetupError } from '../lib/client-config';
import { UsageError } from './usage';

export async function login(options: { user?: string; operator?: boolean }): Promise<void> {
  const config = loadConfig();
  if (options.user !== undefined || options.operator) {
    if (config.oidc) {
      throw new UsageError(
        `--user is only for the single-user local stack; with RBS_OIDC_ISSUER set (${config.oidc.issuer}), run \`rbs login\` and sign in there`,
      );
    }
    return localLogin(config.home, options.user ?? '', !!options.operator);
  }
  if (!config.oidc) {
    throw new UsageError(
      'no OpenID provider configured: set RBS_OIDC_ISSUER and RBS_OIDC_CLIENT_ID, or on the single-user local stack use `rbs login --user NAME`',
    );
  }
  const address = orchestratorAddress();
  const caCertPem = await orchestratorCa(config.home);
  const idToken = await deviceFlowIdToken(config.oidc, showPrompt);
  // The key is made here and only its public half leaves this machine.
  const { publicKeyPem, privateKeyPem } = newKeyPair();
  const issued = await loginAtOrchestrator(address, caCertPem, idToken, publicKeyPem);
  const dir = credentialsDir();
  await writeTlsMaterial(dir, 'user', {
    caCertPem: issued.caCertificatePem,
    certPem: issued.certificatePem,
    keyPem: privateKeyPem,
  });
  console.log(
    `logged in as '${issued.user}'${issued.operator ? ' (operator)' : ''}: certificate in ${dir}, valid until ${new Date(issued.expiresAtMs).toISOString()}`,
  );
}

function showPrompt(prompt: DevicePrompt): void {
  console.log(`To sign in, open ${prompt.verificationUri} and enter the code ${prompt.userCode}`);
  if (prompt.verificationUriComplete) console.log(`(or open ${prompt.verificationUriComplete})`);
  console.log(`Waiting for the sign-in (the code expires in ${Math.round(prompt.expiresInS / 60)} min)…`);
}

/** The CA the orchestrator's certificate must chain to: RBS_ORCHESTRATOR_CA, else the local stack's. */
async function orchestratorCa(home: string): Promise<string> {
  const file = process.env.RBS_ORCHESTRATOR_CA || path.join(homePaths(home).pki, 'ca.crt');
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new SetupError(`cannot read the orchestrator's CA certificate ${file} (set RBS_ORCHESTRATOR_CA): ${(e as Error).message}`);
  }
}

/** A certificate from the local CA for any name: only where the CA key is this user's own. */
async function localLogin(home: string, name: string, operator: boolean): Promise<void> {
  const user = validateUserName(name);
  const ca = await CertificateAuthority.loadOrCreate(homePaths(home).pki);
  const issued = await ca.issue({ kind: 'user', user, operator });
  const dir = credentialsDir();
  await writeTlsMaterial(dir, 'user', { caCertPem: ca.certPem, ...issued });
  const validTo = new X509Certificate(issued.certPem).validTo;
  console.log(
    `logged in as '${user}'${operator ? ' (operator)' : ''} on the single-user local stack (certificate from the local CA, no sign-in): certificate in ${dir}, valid until ${validTo}`,
  );
}
