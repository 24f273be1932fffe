/**
 * The Login RPC: an ID token from the configured OpenID provider and the caller's public key become
 * a short-lived user certificate. The only call without a client certificate (lib/grpc/tls), so it
 * checks its input before anything else and signs only after the token and the policy have passed.
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { LoginRequest } from '../../gen/proto/rbs/v1/LoginRequest';
import type { LoginResponse } from '../../gen/proto/rbs/v1/LoginResponse';
import type { OidcConfig } from '../../lib/oidc/config';
import { identityFromClaims } from '../../lib/oidc/claims';
import { IdTokenVerifier } from '../../lib/oidc/id-token';
import type { CertificateSigner } from '../../lib/pki/signer';
import { InvalidInputError } from '../../lib/validate';
import type { Failed } from './audit';
import { RpcError } from './errors';
import type { Revocations } from './revocation';
import type { Logger } from '../../lib/log';

/** Far above any real ID token or P-256 key, far below what would cost the orchestrator. */
const MAX_ID_TOKEN_BYTES = 32 * 1024;
const MAX_PUBLIC_KEY_BYTES = 1024;

function checkPublicKey(pem: string): void {
  const fail = (message: string): never => {
    throw new InvalidInputError('publicKeyPem', `public key ${message}`);
  };
  if (pem.length > MAX_PUBLIC_KEY_BYTES) fail(`must be at most ${MAX_PUBLIC_KEY_BYTES} bytes, got ${pem.length}`);
  if (!pem.trimStart().startsWith('-----BEGIN PUBLIC KEY-----'))
    fail('must be an SPKI PEM (-----BEGIN PUBLIC KEY-----): only the public half leaves the laptop');
  let curve: string | undefined;
  try {
    curve = createPublicKey(pem).asymmetricKeyDetails?.namedCurve;
  } catch (e) {
    fail(`cannot be read: ${(e as Error).message}`);
  }
  if (curve !== 'prime256v1') fail('must be an ECDSA P-256 key');
}

export class Login {
  private readonly verifier: IdTokenVerifier;

  constructor(
    private readonly config: OidcConfig,
    private readonly signer: CertificateSigner,
    /** A revoked user gets no new certificate either. */
    private readonly revocations: Pick<Revocations, 'admit'>,
    private readonly log: Logger,
  ) {
    if (config.allowedDomains.length === 0) {
      throw new Error(
        `RBS_OIDC_ALLOWED_DOMAINS is unset: with RBS_OIDC_ISSUER, name the e-mail domains that may log in, or anyone with an account at ${config.issuer} could`,
      );
    }
    this.verifier = new IdTokenVerifier(config);
  }

  async login(idToken: string, publicKeyPem: string): Promise<LoginResponse> {
    if (idToken === '') throw new InvalidInputError('idToken', 'ID token is missing');
    if (idToken.length > MAX_ID_TOKEN_BYTES)
      throw new InvalidInputError('idToken', `ID token must be at most ${MAX_ID_TOKEN_BYTES} bytes, got ${idToken.length}`);
    checkPublicKey(publicKeyPem);
    const identity = identityFromClaims(await this.verifier.verify(idToken), this.config);
    await this.revocations.admit(identity);
    const certificatePem = await this.signer.certifyPublicKey(identity, publicKeyPem, { validityMs: this.config.certificateValidityMs });
    const expiresAtMs = new Date(new X509Certificate(certificatePem).validTo).getTime();
    this.log.info({ audit: 'login', user: identity.user, operator: identity.operator, expiresAt: new Date(expiresAtMs).toISOString() }, 'login certified');
    return { certificatePem, caCertificatePem: this.signer.caCertPem, user: identity.user, operator: identity.operator, expiresAtMs };
  }
}

/** The handler; without an issuer configured (the single-user local stack) every call is refused. */
/** `failed`: how a failure is answered (and counted). */
export function loginHandler(login: Login | null, failed: Failed): grpc.handleUnaryCall<LoginRequest, LoginResponse> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => {
        if (!login)
          throw new RpcError(
            grpc.status.FAILED_PRECONDITION,
            'this orchestrator has no OpenID provider (RBS_OIDC_ISSUER): on the single-user local stack, use `rbs login --user NAME`',
          );
        return login.login(call.request.idToken ?? '', call.request.publicKeyPem ?? '');
      })
      .then((response) => callback(null, response))
      .catch((err) => callback(failed(err, 'Login', call)));
  };
}
