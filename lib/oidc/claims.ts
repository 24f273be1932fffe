/**
 * Whose verified ID token becomes which RBS identity: a verified e-mail address of an allowed
 * domain, membership of the required group if one is configured, a valid user name from the user
 * claim, and the operator role from the operator group. A valid token that fails is PERMISSION_DENIED.
 */
import * as grpc from '@grpc/grpc-js';
import type { JWTPayload } from 'jose';
import { statusError } from '../grpc/status';
import type { Identity } from '../pki/identity';
import { validateUserName } from '../validate';
import type { OidcConfig } from './config';

type Policy = Pick<OidcConfig, 'allowedDomains' | 'userClaim' | 'groupsClaim' | 'operatorGroup' | 'requiredGroup'>;

const denied = (message: string) => statusError(grpc.status.PERMISSION_DENIED, `login refused: ${message}`);

/** The groups the token lists; none if the claim is absent. */
function groupsOf(claims: JWTPayload, claim: string): string[] {
  const groups = claims[claim];
  if (groups === undefined) return [];
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) throw denied(`the ID token's '${claim}' claim is not a list of group names`);
  return groups;
}

export function identityFromClaims(claims: JWTPayload, policy: Policy): Identity & { kind: 'user' } {
  const email = claims.email;
  if (typeof email !== 'string' || !email.includes('@')) throw denied("the ID token has no e-mail address (claim 'email'; ask for scope 'email')");
  if (claims.email_verified !== true) throw denied(`the e-mail address ${email} is not verified at the issuer`);
  const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
  if (!policy.allowedDomains.includes(domain)) throw denied(`e-mail domain '${domain}' is not allowed to use RBS`);
  const groups = groupsOf(claims, policy.groupsClaim);
  if (policy.requiredGroup !== null && !groups.includes(policy.requiredGroup)) {
    throw denied(`not a member of group '${policy.requiredGroup}' (claim '${policy.groupsClaim}'), which RBS requires`);
  }
  const claimed = claims[policy.userClaim];
  // E-mail addresses are compared without case, as mail is delivered: one person, one RBS user.
  const name = policy.userClaim === 'email' && typeof claimed === 'string' ? claimed.toLowerCase() : claimed;
  if (typeof name !== 'string') throw denied(`the ID token has no '${policy.userClaim}' claim, which names the RBS user`);
  let user: string;
  try {
    user = validateUserName(name);
  } catch (e) {
    throw denied(`the ID token's '${policy.userClaim}' claim is not a valid RBS user name: ${(e as Error).message}`);
  }
  return { kind: 'user', user, operator: policy.operatorGroup !== null && groups.includes(policy.operatorGroup) };
}
