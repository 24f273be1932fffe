/** Facts read from a certificate PEM, with Node's own parser (no X.509 library at start-up). */
import { X509Certificate } from 'node:crypto';

export function certificateExpiry(pem: string): Date {
  return new Date(new X509Certificate(pem).validTo);
}

/**
 * How long until a certificate just received should be replaced: after two thirds of the life it
 * has left, so a renewal that fails has the last third to be retried in. (Its notBefore is
 * back-dated for clock skew, so it says nothing about when it was issued.)
 */
export function renewalDelayMs(pem: string, now = Date.now()): number {
  return Math.max(0, ((certificateExpiry(pem).getTime() - now) * 2) / 3);
}
