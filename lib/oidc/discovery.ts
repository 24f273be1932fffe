/** The issuer's metadata, found through OpenID Connect Discovery (openid-client checks that the issuer names itself). */
import * as client from 'openid-client';

/** Plain http only reaches this far for a loopback issuer: lib/oidc/config refuses it elsewhere. */
export function discover(settings: { issuer: string; clientId: string }): Promise<client.Configuration> {
  const issuer = new URL(settings.issuer);
  return client.discovery(issuer, settings.clientId, undefined, client.None(), {
    execute: issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [],
    timeout: 10,
  });
}
