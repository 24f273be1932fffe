/**
 * Who may have what certified, and for how long at most. The orchestrator vouches for users (after
 * login) and for proxies (after checking session ownership); the worker for its agents. Nobody gets
 * a service identity or an identity of another kind, whatever it asks.
 */
import type { Identity, ServiceName } from '../../lib/pki/identity';

const HOUR_MS = 60 * 60 * 1000;

type CertifiedKind = Exclude<Identity['kind'], 'service'>;

export const MAX_VALIDITY_MS: Record<CertifiedKind, number> = {
  user: 24 * HOUR_MS,
  proxy: 24 * HOUR_MS,
  agent: 31 * 24 * HOUR_MS,
};

const VOUCHES_FOR: Record<ServiceName, readonly CertifiedKind[]> = {
  orchestrator: ['user', 'proxy'],
  worker: ['agent'],
  signer: [],
};

/** Why `caller` may not have `subject` certified for `validityMs` (and host names), or null if it may. */
export function refusal(caller: Identity, subject: Identity, validityMs: number, hostNames = 0): string | null {
  if (caller.kind !== 'service') return 'only the control plane may ask for certificates';
  if (subject.kind === 'service' || !VOUCHES_FOR[caller.name].includes(subject.kind)) {
    return `service ${caller.name} may not have a ${subject.kind} certificate issued`;
  }
  if (!Number.isSafeInteger(validityMs) || validityMs <= 0 || validityMs > MAX_VALIDITY_MS[subject.kind]) {
    return `a ${subject.kind} certificate may be valid for 1 ms to ${MAX_VALIDITY_MS[subject.kind]} ms, not ${validityMs}`;
  }
  // Only an agent is dialled by address; a user's or proxy's certificate naming hosts could pose as a server.
  if (hostNames > 0 && subject.kind !== 'agent') return `a ${subject.kind} certificate names no DNS names or IP addresses`;
  return null;
}
