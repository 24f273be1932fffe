/**
 * A fresh ECDSA P-256 key pair, as PEM. The key generation encodes it itself: exporting from the
 * KeyObjects it would otherwise return can deadlock on Node 20, when a garbage collection during the
 * export destroys the generation job, which waits for the lock the export holds (seen in a test's
 * process, frozen for good: ~KeyGenJob under ExportJWKRsaKey).
 */
import { generateKeyPairSync } from 'node:crypto';

export function newKeyPair(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}
