/**
 * Credentials of a test Kubernetes control plane: one CA (it signs the apiserver's serving certificate and
 * the client certificates the apiserver accepts: CN is the user, O the groups), the service-account signing
 * key, and kubeconfigs. Names and extensions are encoded by @peculiar/x509 and certificates signed with
 * node:crypto, synchronously: kubeconfigFor(user) must hand out a certificate at once, and WebCrypto's
 * signing (behind X509CertificateGenerator) is asynchronous.
 */
import 'reflect-metadata';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as x509 from '@peculiar/x509';

export interface ClientCredentials {
  certPem: string;
  keyPem: string;
}

export interface KubePki {
  caPem: string;
  files: {
    ca: string;
    servingCert: string;
    servingKey: string;
    serviceAccountKey: string;
    serviceAccountPublicKey: string;
  };
  /** A certificate the apiserver authenticates as `user` in `groups`. */
  clientCredentials(user: string, groups: string[]): ClientCredentials;
  /** etcd's, for 127.0.0.1, as server and as its own peer. */
  etcdCredentials(): ClientCredentials;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2), DER. */
const ECDSA_WITH_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');

function der(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const lengthBytes: number[] = [];
  for (let n = body.length; n > 0; n >>= 8) lengthBytes.unshift(n & 0xff);
  const length = body.length < 0x80 ? [body.length] : [0x80 | lengthBytes.length, ...lengthBytes];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

/** UTCTime (YYMMDDHHMMSSZ), which X.509 requires for dates before 2050. */
function utcTime(date: Date): Buffer {
  return der(
    0x17,
    Buffer.from(
      date
        .toISOString()
        .replace(/[-:T]|\.\d+/g, '')
        .slice(2),
      'ascii',
    ),
  );
}

function newKeys(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

function certificatePem(bytes: Buffer): string {
  const lines = bytes.toString('base64').match(/.{1,64}/g) ?? [];
  return ['-----BEGIN CERTIFICATE-----', ...lines, '-----END CERTIFICATE-----', ''].join('\n');
}

/** An X.509 v3 certificate (PEM) for `publicKey`, signed by `issuer` (ECDSA P-256, SHA-256). */
function certificate(
  subject: x509.Name,
  publicKey: KeyObject,
  extensions: x509.Extension[],
  issuer: { name: x509.Name; key: KeyObject },
  validityMs: number,
): string {
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x40; // positive, and no leading zero byte for DER to strip
  const notBefore = new Date(Date.now() - CLOCK_SKEW_MS);
  const tbs = der(
    0x30,
    der(0xa0, der(0x02, Buffer.from([2]))), // version v3
    der(0x02, serial),
    ECDSA_WITH_SHA256,
    Buffer.from(issuer.name.toArrayBuffer()),
    der(0x30, utcTime(notBefore), utcTime(new Date(notBefore.getTime() + validityMs))),
    Buffer.from(subject.toArrayBuffer()),
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, der(0x30, ...extensions.map((e) => Buffer.from(e.rawData)))),
  );
  const signature = sign('sha256', tbs, issuer.key); // DER (r, s), as X.509 wants it
  return certificatePem(der(0x30, tbs, ECDSA_WITH_SHA256, der(0x03, Buffer.from([0]), signature)));
}

function keyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function writeSecret(file: string, content: string): string {
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** The apiserver takes the names verbatim; no X.520 length bound, which ServiceAccount user names exceed. */
function checkSubjectName(what: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0 || /\p{Cc}/u.test(value)) {
    throw new Error(`${what} must be a non-empty string without control characters, got ${JSON.stringify(value)}`);
  }
}

/** Creates the CA, the serving certificate for 127.0.0.1 and the service-account key pair in `dir`. */
export function createKubePki(dir: string): KubePki {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caKeys = newKeys();
  const ca = { name: new x509.Name([{ CN: [`RBS test Kubernetes CA ${randomBytes(4).toString('hex')}`] }]), key: caKeys.privateKey };
  const caPem = certificate(
    ca.name,
    caKeys.publicKey,
    [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
    ca,
    30 * DAY_MS,
  );
  const leaf = (subject: x509.JsonName, usage: x509.ExtendedKeyUsage[], extra: x509.Extension[] = []) => {
    const keys = newKeys();
    const certPem = certificate(
      new x509.Name(subject),
      keys.publicKey,
      [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(usage),
        ...extra,
      ],
      ca,
      DAY_MS,
    );
    return { certPem, keyPem: keyPem(keys.privateKey) };
  };
  const loopback = new x509.SubjectAlternativeNameExtension([
    { type: 'ip', value: '127.0.0.1' },
    { type: 'dns', value: 'localhost' },
  ]);
  const serving = leaf([{ CN: ['kube-apiserver'] }], [x509.ExtendedKeyUsage.serverAuth], [loopback]);
  const serviceAccount = newKeys();
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('ca.crt'), caPem);
  fs.writeFileSync(file('apiserver.crt'), serving.certPem);
  fs.writeFileSync(file('service-account.pub'), serviceAccount.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  return {
    caPem,
    files: {
      ca: file('ca.crt'),
      servingCert: file('apiserver.crt'),
      servingKey: writeSecret(file('apiserver.key'), serving.keyPem),
      serviceAccountKey: writeSecret(file('service-account.key'), keyPem(serviceAccount.privateKey)),
      serviceAccountPublicKey: file('service-account.pub'),
    },
    clientCredentials(user, groups) {
      checkSubjectName('user name', user);
      for (const group of groups) checkSubjectName('group name', group);
      return leaf([...groups.map((g) => ({ O: [g] })), { CN: [user] }], [x509.ExtendedKeyUsage.clientAuth]);
    },
    etcdCredentials: () => leaf([{ CN: ['etcd'] }], [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], [loopback]),
  };
}

/** Writes `<name>.crt` and `<name>.key` (private) into `dir`; returns their files. */
export function writeCredentials(dir: string, name: string, credentials: ClientCredentials): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  fs.writeFileSync(cert, credentials.certPem);
  return { cert, key: writeSecret(path.join(dir, `${name}.key`), credentials.keyPem) };
}

/** Writes a kubeconfig (JSON, which every kubeconfig reader accepts) for `server` as the holder of `client`. */
export function writeKubeconfig(file: string, server: string, caPem: string, client: ClientCredentials): string {
  const base64 = (text: string) => Buffer.from(text).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'rbs-test', cluster: { server, 'certificate-authority-data': base64(caPem) } }],
    users: [{ name: 'rbs-test', user: { 'client-certificate-data': base64(client.certPem), 'client-key-data': base64(client.keyPem) } }],
    contexts: [{ name: 'rbs-test', context: { cluster: 'rbs-test', user: 'rbs-test' } }],
    'current-context': 'rbs-test',
  };
  return writeSecret(file, JSON.stringify(config, null, 2));
}
