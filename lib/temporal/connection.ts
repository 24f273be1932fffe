/**
 * Connection options for Temporal from the configuration, one shape for both @temporalio/client's
 * `Connection.connect` and @temporalio/worker's `NativeConnection.connect`: plaintext (the local dev
 * server), mTLS with a client certificate, or an API key over TLS (Temporal Cloud).
 *
 * Files are read and checked at every connect, so a new connection picks up rotated files. A live
 * connection keeps the TLS material it started with: SDK 1.24 can swap an API key in place
 * (`setApiKey`) but has no way to swap a certificate.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TLSConfig } from '@temporalio/client';
import { TEMPORAL_AUTH_VARIABLES as V, type TemporalAuth, type TemporalServerTrust } from './config';

export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

export async function temporalConnectionOptions(temporal: { address: string; auth: TemporalAuth }): Promise<TemporalConnectionOptions> {
  const { address, auth } = temporal;
  switch (auth.kind) {
    case 'none':
      return { address };
    case 'api-key':
      return { address, apiKey: auth.apiKey, tls: await serverTrust(auth) };
    case 'mtls': {
      const [crt, key] = await Promise.all([readPem(V.cert, auth.certFile), readPem(V.key, auth.keyFile)]);
      checkClientPair(auth, crt, key);
      return { address, tls: { ...(await serverTrust(auth)), clientCertPair: { crt, key } } };
    }
  }
}

async function serverTrust(trust: TemporalServerTrust): Promise<TLSConfig> {
  const tls: TLSConfig = {};
  if (trust.serverName) tls.serverNameOverride = trust.serverName;
  if (trust.caFile) {
    tls.serverRootCACertificate = await readPem(V.ca, trust.caFile);
    parse(V.ca, trust.caFile, () => new X509Certificate(tls.serverRootCACertificate!));
  }
  return tls;
}

/** The certificate parses, has not expired, and the key is its key: else an error naming both files. */
function checkClientPair(auth: { certFile: string; keyFile: string }, crt: Buffer, key: Buffer): void {
  const cert = parse(V.cert, auth.certFile, () => new X509Certificate(crt));
  const privateKey = parse(V.key, auth.keyFile, () => createPrivateKey(key));
  if (!cert.checkPrivateKey(privateKey)) {
    throw new Error(`${V.key} (${auth.keyFile}) is not the private key of the certificate in ${V.cert} (${auth.certFile})`);
  }
  const now = new Date();
  if (new Date(cert.validTo) < now) throw new Error(`${V.cert} (${auth.certFile}) expired at ${cert.validTo}`);
  if (new Date(cert.validFrom) > now) throw new Error(`${V.cert} (${auth.certFile}) is not valid before ${cert.validFrom}`);
}

async function readPem(variable: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new Error(`${variable}: cannot read ${file}: ${(e as Error).message}`);
  }
}

function parse<T>(variable: string, file: string, parser: () => T): T {
  try {
    return parser();
  } catch (e) {
    throw new Error(`${variable}: ${file} is not a PEM ${variable === V.key ? 'private key' : 'certificate'}: ${(e as Error).message}`);
  }
}
