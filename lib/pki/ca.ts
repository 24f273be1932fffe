/**
 * A local certificate authority (ECDSA P-256) that issues the mTLS certificates of every RBS
 * party. Certificates are built with @peculiar/x509 over Node's WebCrypto.
 */
// @peculiar/x509 needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as x509 from '@peculiar/x509';
import { installFile } from '../files';
import { describeIdentity, identityUris, type Identity } from './identity';
import type { CertificateSigner } from './signer';

x509.cryptoProvider.set(webcrypto);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export interface IssuedCertificate {
  certPem: string;
  /** PKCS#8. */
  keyPem: string;
}

export interface IssueOptions {
  dnsNames?: string[];
  ipAddresses?: string[];
  validityMs?: number;
  /** Defaults to a little in the past, to tolerate clock skew between machines. */
  notBefore?: Date;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const CA_VALIDITY_MS = 10 * 365 * DAY_MS;
const LEAF_VALIDITY_MS = 30 * DAY_MS;
const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** X.520 upper bound for a common name. */
const MAX_CN_LENGTH = 64;
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' };

/** Reads `file`, first creating it with `make()` unless it exists or another process wins the race. */
async function readOrCreate(file: string, mode: number, make: () => Promise<string>): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await installFile(file, await make(), mode, false);
  return readFile(file, 'utf8');
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function keysFromPem(pem: string, file: string): Promise<CryptoKeyPair> {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`${file} is not an ECDSA P-256 private key`);
  }
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  return {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, EC_KEY, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', spki, EC_KEY, true, ['verify']),
  };
}

async function createCaCertificate(keys: CryptoKeyPair): Promise<string> {
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    // Unique per CA, so certificates of different RBS installations are told apart by issuer.
    name: [{ CN: [`RBS CA ${randomBytes(4).toString('hex')}`] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + CA_VALIDITY_MS),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return cert.toString('pem');
}

export class CertificateAuthority implements CertificateSigner {
  private constructor(
    readonly certPem: string,
    private readonly cert: x509.X509Certificate,
    private readonly signingKey: CryptoKey,
  ) {}

  /**
   * Loads the CA in `dir` (ca.crt, ca.key), creating what is missing. The key is created first
   * and the certificate derived from it, each installed without overwriting, so racing processes
   * (or one that crashed between the two files) converge on the first key and certificate written.
   */
  static async loadOrCreate(dir: string): Promise<CertificateAuthority> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const keyFile = path.join(dir, 'ca.key');
    const certFile = path.join(dir, 'ca.crt');
    const caKeyPem = await readOrCreate(keyFile, 0o600, async () => keyPem((await generateKeys()).privateKey));
    const keys = await keysFromPem(caKeyPem, keyFile);
    const certPem = await readOrCreate(certFile, 0o644, () => createCaCertificate(keys));
    if (!new NodeX509(certPem).checkPrivateKey(createPrivateKey(caKeyPem))) {
      throw new Error(`CA certificate ${certFile} does not match the CA key ${keyFile}`);
    }
    return new CertificateAuthority(certPem, new x509.X509Certificate(certPem), keys.privateKey);
  }

  /** As a CertificateSigner: the CA certificate is its own. */
  get caCertPem(): string {
    return this.certPem;
  }

  /** A key pair and a leaf certificate for `identity`, usable as a TLS server and as a TLS client. */
  async issue(identity: Identity, options: IssueOptions = {}): Promise<IssuedCertificate> {
    const keys = await generateKeys();
    return { certPem: await this.certify(identity, keys.publicKey, options), keyPem: await keyPem(keys.privateKey) };
  }

  /**
   * A leaf certificate for a key pair someone else holds (an SPKI PEM public key, ECDSA P-256), so
   * the private key never leaves its owner. Throws InvalidPublicKeyError for anything else.
   */
  async certifyPublicKey(identity: Identity, publicKeyPem: string, options: IssueOptions = {}): Promise<string> {
    let publicKey: CryptoKey;
    try {
      const spki = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
      publicKey = await webcrypto.subtle.importKey('spki', spki, EC_KEY, true, ['verify']);
    } catch (e) {
      throw new InvalidPublicKeyError(`public key must be an ECDSA P-256 key in SPKI PEM: ${(e as Error).message}`);
    }
    return this.certify(identity, publicKey, options);
  }

  private async certify(identity: Identity, publicKey: CryptoKey, options: IssueOptions): Promise<string> {
    // Back-dated for clock skew, but valid for validityMs from now: a short-lived certificate is not born expired.
    const notBefore = options.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
    const validFrom = options.notBefore ?? new Date();
    const names: x509.JsonGeneralName[] = [
      ...identityUris(identity).map((value) => ({ type: 'url' as const, value })),
      ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    const cert = await x509.X509CertificateGenerator.create({
      // The identity lives in the SAN URIs; the CN only helps humans reading the certificate.
      subject: [{ CN: [[...describeIdentity(identity)].slice(0, MAX_CN_LENGTH).join('')] }],
      issuer: this.cert.subjectName,
      notBefore,
      notAfter: new Date(validFrom.getTime() + (options.validityMs ?? LEAF_VALIDITY_MS)),
      signingAlgorithm: SIGNING,
      signingKey: this.signingKey,
      publicKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(names),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert.publicKey),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ],
    });
    return cert.toString('pem');
  }
}

export class InvalidPublicKeyError extends Error {
  override name = 'InvalidPublicKeyError';
}
