/** Facts read from a certificate PEM, with Node's own parser (no X.509 library at start-up). */
import { X509Certificate } from 'node:crypto';
import { sanUris } from '../grpc/tls';
import { identityFromUris } from './identity';

export function certificateExpiry(pem: string): Date {
  return new Date(new X509Certificate(pem).validTo);
}

/**
 * When `pem` expires, if it is the agent certificate of session `sessionId`; null if it is not
 * (another session's, left in a reused namespace by a late retry of that session's install), or
 * cannot be read: either way the session's proxy would refuse an agent presenting it.
 */
export function agentCertificateExpiry(pem: string, sessionId: string): Date | null {
  try {
    const cert = new X509Certificate(pem);
    const identity = identityFromUris(sanUris(cert.subjectAltName));
    return identity.kind === 'agent' && identity.sessionId === sessionId ? new Date(cert.validTo) : null;
  } catch {
    return null;
  }
}

/**
 * How long until a certificate just received should be replaced: after two thirds of the life it
 * has left, so a renewal that fails has the last third to be retried in. (Its notBefore is
 * back-dated for clock skew, so it says nothing about when it was issued.)
 */
export function renewalDelayMs(pem: string, now = Date.now()): number {
  return Math.max(0, ((certificateExpiry(pem).getTime() - now) * 2) / 3);
}

/** After a failed renewal, the next try: within a minute, sooner for a short-lived certificate. */
const RETRY_MAX_MS = 60_000;

/**
 * Renews a certificate for as long as it is wanted: `renew` is called after two thirds of the
 * current certificate's remaining life and resolves to the next one; a failure is reported and
 * retried while the current one still holds. Returns the stop.
 */
export function keepRenewed(firstPem: string, renew: () => Promise<string>, onFailure: (err: Error, retryMs: number) => void): () => void {
  let current = firstPem;
  let timer: NodeJS.Timeout;
  const schedule = (delayMs: number) => {
    timer = setTimeout(() => {
      renew().then(
        (next) => {
          current = next;
          schedule(renewalDelayMs(next));
        },
        (err: Error) => {
          const retryMs = Math.max(1000, Math.min(RETRY_MAX_MS, renewalDelayMs(current) / 2));
          onFailure(err, retryMs);
          schedule(retryMs);
        },
      );
    }, delayMs).unref();
  };
  schedule(renewalDelayMs(firstPem));
  return () => clearTimeout(timer);
}
