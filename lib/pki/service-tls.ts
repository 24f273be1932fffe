/**
 * Where a control-plane service's own certificate comes from, kept fresh without a restart:
 * issued in-process by a CA this process holds (the signer itself, the one-machine stack), or
 * read from files someone else rotates (a mounted Secret, cert-manager).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { type RotatingTls, type TlsMaterial, writeTlsMaterial } from '../grpc/tls';
import type { CertificateAuthority } from './ca';
import { keepRenewed } from './certificate';
import type { Identity, ServiceName } from './identity';
import type { SignOptions } from './signer';
import { processLog } from '../log';

const SERVICE_VALIDITY_MS = 30 * 24 * 60 * 60 * 1000;
const DEFAULT_POLL_MS = 5_000;

export interface ServiceTls extends RotatingTls {
  close(): void;
}

/** Holds the newest material and tells subscribers when it changes. */
function broadcaster(first: TlsMaterial) {
  let material = first;
  const listeners = new Set<(m: TlsMaterial) => void>();
  return {
    current: () => material,
    subscribe(listener: (m: TlsMaterial) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    publish(next: TlsMaterial) {
      material = next;
      for (const listener of listeners) listener(next);
    },
  };
}

/** A certificate for `identity` from `ca`, renewed in-process after two thirds of its life. */
export async function issuedServiceTls(
  ca: CertificateAuthority,
  identity: Identity,
  names: Omit<SignOptions, 'validityMs'> = {},
  validityMs = SERVICE_VALIDITY_MS,
): Promise<ServiceTls> {
  const issue = async (): Promise<TlsMaterial> => ({ caCertPem: ca.certPem, ...(await ca.issue(identity, { ...names, validityMs })) });
  const tls = broadcaster(await issue());
  const stop = keepRenewed(
    tls.current().certPem,
    async () => {
      const next = await issue();
      tls.publish(next);
      return next.certPem;
    },
    (err, retryMs) => processLog().error({ err, identity, retryMs }, 'renewing a certificate failed; retrying'),
  );
  return { current: tls.current, subscribe: tls.subscribe, close: stop };
}

/**
 * `<dir>/ca.crt`, `<dir>/<name>.crt` and `<dir>/<name>.key`, re-read every `pollMs`: a mounted
 * Secret changes by an atomic symlink swap, which file watches miss, so it is polled.
 */
export async function fileServiceTls(dir: string, name: string, pollMs = DEFAULT_POLL_MS): Promise<ServiceTls> {
  const files = { caCertPem: path.join(dir, 'ca.crt'), certPem: path.join(dir, `${name}.crt`), keyPem: path.join(dir, `${name}.key`) };
  const read = async (): Promise<TlsMaterial> => {
    const entries = await Promise.all(
      Object.entries(files).map(async ([field, file]) => {
        try {
          return [field, await readFile(file, 'utf8')] as const;
        } catch (e) {
          throw new Error(`the ${name} certificate in ${dir}: ${file} cannot be read: ${(e as Error).message}`);
        }
      }),
    );
    const material = Object.fromEntries(entries) as unknown as TlsMaterial;
    const cert = new X509Certificate(material.certPem);
    if (!cert.checkPrivateKey(createPrivateKey(material.keyPem))) {
      throw new Error(`the ${name} certificate in ${dir}: ${files.certPem} does not match ${files.keyPem}`);
    }
    // An empty or foreign ca.crt would trust the wrong peers (Node falls back to the public roots).
    const ca = new X509Certificate(material.caCertPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
      throw new Error(`the ${name} certificate in ${dir}: ${files.certPem} is not issued by ${files.caCertPem}`);
    }
    return material;
  };
  const tls = broadcaster(await read());
  const same = (a: TlsMaterial, b: TlsMaterial) => a.caCertPem === b.caCertPem && a.certPem === b.certPem && a.keyPem === b.keyPem;
  const timer = setInterval(() => {
    read().then(
      (next) => {
        if (!same(next, tls.current())) tls.publish(next);
      },
      // Half-written during a rotation, most likely: keep serving the last good material.
      (err) => processLog().warn({ err }, 'reading a renewed certificate failed; keeping the previous one'),
    );
  }, pollMs).unref();
  return { current: tls.current, subscribe: tls.subscribe, close: () => clearInterval(timer) };
}

/**
 * A service's certificate, issued by the CA this process holds, kept in `dir` (ca.crt, <name>.crt,
 * <name>.key) and renewed there: how the service gets its certificate without the CA key (the
 * local stack; the signer beside a service in its pod). The service re-reads it (fileServiceTls).
 */
export async function publishServiceTls(
  ca: CertificateAuthority,
  dir: string,
  name: Exclude<ServiceName, 'signer'>,
  names: Omit<SignOptions, 'validityMs'> = {},
): Promise<ServiceTls> {
  const tls = await issuedServiceTls(ca, { kind: 'service', name }, names);
  await writeTlsMaterial(dir, name, tls.current());
  tls.subscribe(
    (m) => void writeTlsMaterial(dir, name, m).catch((err) => processLog().error({ err, dir, forService: name }, 'writing a renewed certificate failed')),
  );
  return tls;
}
