/**
 * The OAuth 2.0 Device Authorization Grant (RFC 8628) with openid-client: the user approves at the
 * issuer in any browser; this side polls at the interval the issuer asks for and gets an ID token.
 */
import * as client from 'openid-client';
import { discover } from './discovery';

export interface DevicePrompt {
  verificationUri: string;
  /** The URI with the code filled in, if the issuer offers one. */
  verificationUriComplete?: string;
  userCode: string;
  expiresInS: number;
}

/** Scopes beyond `openid email` that the issuer supports and RBS's claims may come from. */
const OPTIONAL_SCOPES = ['profile', 'groups'];

/** Why polling ended, in the user's words (RFC 8628 3.5). */
function explain(e: unknown, issuer: string): Error {
  const code = e instanceof client.ResponseBodyError ? e.error : undefined;
  if (code === 'access_denied') return new Error(`the sign-in was denied at ${issuer}`);
  if (code === 'expired_token') return new Error('the code expired before the sign-in was approved: run `rbs login` again');
  return new Error(`device sign-in at ${issuer} failed: ${(e as Error).message}`, { cause: e });
}

export async function deviceFlowIdToken(
  settings: { issuer: string; clientId: string },
  show: (prompt: DevicePrompt) => void,
  signal?: AbortSignal,
): Promise<string> {
  const config = await discover(settings);
  const supported = config.serverMetadata().scopes_supported ?? [];
  const scope = ['openid', 'email', ...OPTIONAL_SCOPES.filter((s) => supported.includes(s))].join(' ');
  const authorization = await client.initiateDeviceAuthorization(config, { scope });
  show({
    verificationUri: authorization.verification_uri,
    verificationUriComplete: authorization.verification_uri_complete,
    userCode: authorization.user_code,
    expiresInS: authorization.expires_in,
  });
  let tokens: Awaited<ReturnType<typeof client.pollDeviceAuthorizationGrant>>;
  try {
    tokens = await client.pollDeviceAuthorizationGrant(config, authorization, undefined, { signal });
  } catch (e) {
    throw explain(e, settings.issuer);
  }
  if (!tokens.id_token) throw new Error(`${settings.issuer} returned no ID token (was scope 'openid' granted?)`);
  return tokens.id_token;
}
