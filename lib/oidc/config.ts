/**
 * OpenID Connect login settings (RBS_OIDC_*; lib/config.ts reads them). The CLI needs only the
 * issuer and the client id; the orchestrator also the policy: whose ID tokens become which identity.
 */

export interface OidcConfig {
  /** Exactly as the issuer names itself in its discovery document and its tokens' `iss`. */
  issuer: string;
  /** The OAuth client RBS's CLI is registered as: the audience every accepted ID token names. */
  clientId: string;
  /** E-mail domains whose verified addresses may log in (lowercase, exact match). */
  allowedDomains: string[];
  /** The claim that becomes the RBS user name. */
  userClaim: 'email' | 'sub';
  /** The claim listing the user's groups. */
  groupsClaim: string;
  /** Members of this group get the operator role; null: nobody does through login. */
  operatorGroup: string | null;
  /** If set, only its members may log in at all. */
  requiredGroup: string | null;
  /** How long a login's user certificate lasts. */
  certificateValidityMs: number;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** An issuer URL RBS may talk to: https, or http to this machine (a provider for development or tests). */
function validateIssuer(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`RBS_OIDC_ISSUER must be a URL, got '${raw}'`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    throw new Error(`RBS_OIDC_ISSUER must be an https URL (http only on a loopback address), got '${raw}'`);
  }
  if (url.search || url.hash) throw new Error(`RBS_OIDC_ISSUER must have no query or fragment, got '${raw}'`);
  return raw;
}

const list = (raw: string | undefined) =>
  (raw ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

/** The settings, or null if RBS_OIDC_ISSUER is unset (the single-user local stack); throws naming the variable at fault. */
export function oidcConfigFromEnv(env: NodeJS.ProcessEnv, certificateValidityMs: number): OidcConfig | null {
  const issuer = env.RBS_OIDC_ISSUER?.trim();
  if (!issuer) return null;
  const clientId = env.RBS_OIDC_CLIENT_ID?.trim();
  if (!clientId) throw new Error('RBS_OIDC_CLIENT_ID is unset: it is required with RBS_OIDC_ISSUER (the client id RBS is registered as at the issuer)');
  const allowedDomains = list(env.RBS_OIDC_ALLOWED_DOMAINS).map((domain) => domain.toLowerCase().replace(/^@/, ''));
  const badDomain = allowedDomains.find((domain) => !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(domain));
  if (badDomain !== undefined) throw new Error(`RBS_OIDC_ALLOWED_DOMAINS: '${badDomain}' is not a domain name`);
  return {
    issuer: validateIssuer(issuer),
    clientId,
    allowedDomains,
    userClaim: userClaim(env.RBS_OIDC_USER_CLAIM?.trim() || 'email'),
    groupsClaim: env.RBS_OIDC_GROUPS_CLAIM?.trim() || 'groups',
    operatorGroup: env.RBS_OIDC_OPERATOR_GROUP?.trim() || null,
    requiredGroup: env.RBS_OIDC_REQUIRED_GROUP?.trim() || null,
    certificateValidityMs,
  };
}

/**
 * The claim that names the RBS user: one the user cannot edit. Many providers let users change
 * `preferred_username` or `name`, which would let anyone rename themselves into a colleague.
 */
function userClaim(claim: string): 'email' | 'sub' {
  if (claim === 'email' || claim === 'sub') return claim;
  throw new Error(`RBS_OIDC_USER_CLAIM must be 'email' or 'sub', claims a user cannot change at the issuer, got '${claim}'`);
}
