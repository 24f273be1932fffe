/**
 * Verifies an ID token from the configured issuer with jose: signature against the issuer's JWKS
 * (from discovery), issuer, audience, expiry. A token that fails is UNAUTHENTICATED with the check
 * that failed; the token itself never appears in a message.
 */
import * as grpc from '@grpc/grpc-js';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { statusError } from '../grpc/status';
import { discover } from './discovery';

/** Seconds of clock difference with the issuer tolerated on exp, nbf and iat. */
const CLOCK_TOLERANCE_S = 5;
/**
 * `rbs login` presents its ID token the moment it has it. An older one was kept somewhere, and
 * whoever finds it should not get certificates for the rest of its lifetime (often an hour).
 */
const LOGIN_WINDOW_S = 10 * 60;

interface IssuerKeys {
  jwks: ReturnType<typeof createRemoteJWKSet>;
  algorithms: string[];
}

const refused = (message: string) => statusError(grpc.status.UNAUTHENTICATED, `ID token refused: ${message}`);

export class IdTokenVerifier {
  private keys: Promise<IssuerKeys> | null = null;

  constructor(
    private readonly settings: { issuer: string; clientId: string },
    private readonly loginWindowS = LOGIN_WINDOW_S,
  ) {}

  /** The token's claims once every check has passed; throws a gRPC status error otherwise. */
  async verify(idToken: string): Promise<JWTPayload> {
    const { jwks, algorithms } = await this.issuerKeys();
    const { issuer, clientId } = this.settings;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, jwks, {
        issuer,
        audience: clientId,
        algorithms,
        clockTolerance: CLOCK_TOLERANCE_S,
        maxTokenAge: this.loginWindowS,
        requiredClaims: ['sub', 'iat', 'exp'],
      }));
    } catch (e) {
      throw this.describe(e);
    }
    // OpenID Connect Core 3.1.3.7: an authorized party must be us, and several audiences need one.
    if (payload.azp !== undefined && payload.azp !== clientId) throw refused(`it was issued to client ${JSON.stringify(payload.azp)}, not RBS's client id`);
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp === undefined) {
      throw refused('it names several audiences and no authorized party (azp)');
    }
    return payload;
  }

  /** The issuer's key set, discovered once; a failed discovery is retried by the next call. */
  private issuerKeys(): Promise<IssuerKeys> {
    this.keys ??= discover(this.settings).then((config) => {
      const metadata = config.serverMetadata();
      if (!metadata.jwks_uri) throw new Error('its discovery document has no jwks_uri');
      // Only asymmetric signatures: a MAC would be keyed with a secret, and 'none' is no signature.
      const algorithms = (metadata.id_token_signing_alg_values_supported ?? ['RS256']).filter((alg) => alg !== 'none' && !alg.startsWith('HS'));
      return { jwks: createRemoteJWKSet(new URL(metadata.jwks_uri)), algorithms };
    });
    return this.keys.catch((e) => {
      this.keys = null;
      throw statusError(grpc.status.UNAVAILABLE, `cannot verify ID tokens: discovery of issuer ${this.settings.issuer} failed: ${(e as Error).message}`);
    });
  }

  private describe(e: unknown): grpc.ServiceError {
    if (e instanceof errors.JWTExpired && e.claim === 'iat') {
      return refused(`it was issued at ${new Date(Number(e.payload.iat) * 1000).toISOString()}, more than ${this.loginWindowS} s ago: sign in again`);
    }
    if (e instanceof errors.JWTExpired) return refused(`it expired at ${new Date(Number(e.payload.exp) * 1000).toISOString()}`);
    if (e instanceof errors.JWTClaimValidationFailed) {
      if (e.claim === 'aud') return refused(`its audience ${JSON.stringify(e.payload.aud)} is not RBS's client id ${JSON.stringify(this.settings.clientId)}`);
      if (e.claim === 'iss') return refused(`its issuer ${JSON.stringify(e.payload.iss)} is not ${JSON.stringify(this.settings.issuer)}`);
      return refused(`claim '${e.claim}' failed validation (${e.reason})`);
    }
    if (e instanceof errors.JWSSignatureVerificationFailed) return refused("its signature does not verify against the issuer's keys");
    if (e instanceof errors.JWKSNoMatchingKey) return refused('it is signed with a key the issuer does not publish');
    if (e instanceof errors.JOSEAlgNotAllowed) return refused("its signature algorithm is not one of the issuer's asymmetric ID token algorithms");
    if (e instanceof errors.JOSEError && !(e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid)) {
      return refused(`it is not a valid signed JWT (${e.message})`);
    }
    // Not the token's fault: the issuer's key set could not be had (timeout, network, bad JSON).
    return statusError(
      grpc.status.UNAVAILABLE,
      `cannot verify ID tokens: the keys of issuer ${this.settings.issuer} could not be fetched: ${(e as Error).message}`,
    );
  }
}
