/**
 * The one seam through which RBS gets certificates signed. Whoever holds a CertificateSigner can
 * mint identities, so only the control plane's inner services get one: the orchestrator after it
 * has verified the caller (login, session ownership), the worker for its agents. Temporal never
 * does: no workflow message leads to a signature.
 *
 * Implementations: the local CertificateAuthority (lib/pki/ca, holds the key in-process) and the
 * signer service's client (lib/pki/remote-signer), so the internet-facing orchestrator holds no key.
 */
import { newKeyPair } from './key-pair';
import type { Identity } from './identity';

export interface SignOptions {
  validityMs: number;
  dnsNames?: string[];
  ipAddresses?: string[];
}

export interface CertificateSigner {
  /** The CA certificate (PEM) that every party trusts, and that signs what this signer returns. */
  readonly caCertPem: string;
  /**
   * A leaf certificate for `identity` over a key its owner holds (ECDSA P-256 SPKI PEM); the
   * private key never reaches the signer. Throws InvalidPublicKeyError for anything else.
   */
  certifyPublicKey(identity: Identity, publicKeyPem: string, options: SignOptions): Promise<string>;
}

/** A fresh key pair and its certificate from `signer`: the key is made here and never leaves. */
export async function issueCertificate(signer: CertificateSigner, identity: Identity, options: SignOptions): Promise<{ certPem: string; keyPem: string }> {
  const { publicKeyPem, privateKeyPem } = newKeyPair();
  const certPem = await signer.certifyPublicKey(identity, publicKeyPem, options);
  return { certPem, keyPem: privateKeyPem };
}
