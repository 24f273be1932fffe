/** The identity a Certify request asks for, both ways between lib/pki's Identity and the wire. */
import type { CertifyRequest, CertifyRequest__Output } from '../../gen/proto/rbs/v1/CertifyRequest';
import type { Identity } from '../pki/identity';

export function subjectToWire(identity: Identity): Pick<CertifyRequest, 'user' | 'proxy' | 'agent'> {
  switch (identity.kind) {
    case 'user':
      return { user: { user: identity.user, operator: identity.operator } };
    case 'proxy':
      return { proxy: { sessionId: identity.sessionId, user: identity.user } };
    case 'agent':
      return { agent: { sessionId: identity.sessionId } };
    case 'service':
      throw new Error(`service identities are never certified on request (asked for ${identity.name})`);
  }
}

/** Null when the request names no subject. Names are validated where the certificate is made. */
export function subjectFromWire(request: CertifyRequest__Output): Identity | null {
  if (request.subject === 'user' && request.user) return { kind: 'user', user: request.user.user, operator: request.user.operator };
  if (request.subject === 'proxy' && request.proxy) return { kind: 'proxy', sessionId: request.proxy.sessionId, user: request.proxy.user };
  if (request.subject === 'agent' && request.agent) return { kind: 'agent', sessionId: request.agent.sessionId };
  return null;
}
