/** Calls the orchestrator's Login, the one call made without a client certificate (the ID token is the credential). */
import type { OrchestratorClient as RawClient } from '../../gen/proto/rbs/v1/Orchestrator';
import type { LoginResponse__Output } from '../../gen/proto/rbs/v1/LoginResponse';
import { protos } from '../grpc/protos';
import { loginChannelCredentials, tlsChannelOptions } from '../grpc/tls';

const LOGIN_TIMEOUT_MS = 30_000;

/**
 * `caCertPem` must be known beforehand: the orchestrator is verified before the ID token, a bearer
 * credential, is sent to it.
 */
export async function loginAtOrchestrator(address: string, caCertPem: string, idToken: string, publicKeyPem: string): Promise<LoginResponse__Output> {
  const credentials = loginChannelCredentials(caCertPem, (id) => id.kind === 'service' && id.name === 'orchestrator');
  const raw = new (protos().orchestrator.rbs.v1.Orchestrator)(address, credentials, tlsChannelOptions(address)) as unknown as RawClient;
  try {
    return await new Promise<LoginResponse__Output>((resolve, reject) =>
      raw.login({ idToken, publicKeyPem }, { deadline: Date.now() + LOGIN_TIMEOUT_MS }, (err, res) => (err ? reject(err) : resolve(res!))),
    );
  } finally {
    raw.close();
  }
}
