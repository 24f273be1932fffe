/**
 * Who a certificate speaks for, encoded as SPIFFE-style SAN URIs in the `spiffe://rbs/` trust
 * domain. Each certificate carries exactly one principal URI, plus role URIs for users.
 */
import { validateSessionId, validateUserName } from '../validate';

export type Identity =
  | { kind: 'user'; user: string; operator: boolean }
  | { kind: 'service'; name: ServiceName }
  | { kind: 'agent'; sessionId: string }
  | { kind: 'proxy'; sessionId: string; user: string };

export class InvalidIdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidIdentityError';
  }
}

const PREFIX = 'spiffe://rbs/';
const OPERATOR_ROLE = `${PREFIX}role/operator`;
/** The control plane's services: the signer holds the CA key; the others ask it for signatures. */
export const SERVICES = ['orchestrator', 'worker', 'signer'] as const;
export type ServiceName = (typeof SERVICES)[number];

export function identityUris(id: Identity): string[] {
  switch (id.kind) {
    case 'user':
      return [`${PREFIX}user/${encodeURIComponent(validateUserName(id.user))}`, ...(id.operator ? [OPERATOR_ROLE] : [])];
    case 'service':
      return [`${PREFIX}service/${id.name}`];
    case 'agent':
      return [`${PREFIX}session/${validateSessionId(id.sessionId)}/agent`];
    case 'proxy':
      return [`${PREFIX}session/${validateSessionId(id.sessionId)}/proxy/${encodeURIComponent(validateUserName(id.user))}`];
  }
}

/**
 * Decodes a user name from a URI path segment. Only the exact encoding identityUris produces is
 * accepted, so one user has one URI and string comparisons of URIs stay meaningful.
 */
function decodeUser(segment: string, uri: string): string {
  let user: string;
  try {
    user = decodeURIComponent(segment);
  } catch {
    throw new InvalidIdentityError(`identity URI ${uri} has a malformed percent-encoding`);
  }
  try {
    if (validateUserName(user) === user && encodeURIComponent(user) === segment) return user;
  } catch (e) {
    throw new InvalidIdentityError(`identity URI ${uri} names an invalid user: ${(e as Error).message}`);
  }
  throw new InvalidIdentityError(`identity URI ${uri} does not encode its user name canonically`);
}

function sessionOf(segment: string, uri: string): string {
  try {
    return validateSessionId(segment);
  } catch (e) {
    throw new InvalidIdentityError(`identity URI ${uri} names an invalid session: ${(e as Error).message}`);
  }
}

function parsePrincipal(uri: string, operator: boolean): Identity {
  const path = uri.slice(PREFIX.length).split('/');
  if (path[0] !== 'user' && operator) {
    throw new InvalidIdentityError(`role URI ${OPERATOR_ROLE} is only allowed on a user certificate, not with ${uri}`);
  }
  if (path.length === 2 && path[0] === 'user') return { kind: 'user', user: decodeUser(path[1], uri), operator };
  if (path.length === 2 && path[0] === 'service') {
    const name = SERVICES.find((s) => s === path[1]);
    if (name) return { kind: 'service', name };
  }
  if (path.length === 3 && path[0] === 'session' && path[2] === 'agent') {
    return { kind: 'agent', sessionId: sessionOf(path[1], uri) };
  }
  if (path.length === 4 && path[0] === 'session' && path[2] === 'proxy') {
    return { kind: 'proxy', sessionId: sessionOf(path[1], uri), user: decodeUser(path[3], uri) };
  }
  throw new InvalidIdentityError(`unrecognized RBS identity URI ${uri}`);
}

/** The identity of a certificate's SAN URIs; URIs outside the rbs trust domain are ignored. */
export function identityFromUris(uris: readonly string[]): Identity {
  const ours = uris.filter((u) => u.startsWith(PREFIX));
  const roles = ours.filter((u) => u.startsWith(`${PREFIX}role/`));
  const principals = ours.filter((u) => !roles.includes(u));
  const unknownRole = roles.find((r) => r !== OPERATOR_ROLE);
  if (unknownRole) throw new InvalidIdentityError(`unrecognized RBS role URI ${unknownRole}`);
  if (roles.length > 1) throw new InvalidIdentityError(`role URI ${OPERATOR_ROLE} appears ${roles.length} times`);
  if (principals.length !== 1) {
    const found = principals.length === 0 ? 'none' : principals.join(', ');
    throw new InvalidIdentityError(`expected exactly one RBS principal URI (${PREFIX}…), found ${found}`);
  }
  return parsePrincipal(principals[0], roles.length === 1);
}

export function describeIdentity(id: Identity): string {
  switch (id.kind) {
    case 'user':
      return `${id.operator ? 'operator' : 'user'} ${JSON.stringify(id.user)}`;
    case 'service':
      return `service ${id.name}`;
    case 'agent':
      return `agent of session ${id.sessionId}`;
    case 'proxy':
      return `proxy of session ${id.sessionId} for user ${JSON.stringify(id.user)}`;
  }
}
