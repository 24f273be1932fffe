/**
 * Mutual TLS for every gRPC hop. Both ends trust only the RBS CA, and a peer is known by the RBS
 * identity in its certificate's SAN URIs (lib/pki/identity), never by hostname.
 *
 * Client certificates are requested but not required at the TLS handshake, so that a client
 * without a valid one gets a gRPC UNAUTHENTICATED status saying why instead of a dropped
 * connection. serverCredentials installs an interceptor that fails every such call, so no
 * handler can forget to; handlers call peerIdentity to learn who is calling.
 *
 * grpc-js (1.14) only exposes the peer certificate when the handshake verified it against the
 * CA, so the server cannot tell "no certificate" from "foreign CA" or "expired". RBS clients
 * (channelCredentials) therefore check their own certificate before each call and fail it with
 * the precise reason; the server's message covers the rest.
 */
import { X509Certificate as NodeX509 } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import * as path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { installFile } from '../files';
import { statusError } from './status';
import { describeIdentity, identityFromUris, type Identity } from '../pki/identity';

export interface TlsMaterial {
  caCertPem: string;
  certPem: string;
  keyPem: string;
}

/** The part of a server call (or server interceptor call) that knows the TLS peer. */
export interface AuthenticatedCall {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

const NO_VERIFIED_CLIENT_CERTIFICATE =
  'no client certificate issued by this RBS CA and currently valid (none was presented, or it is from another CA, or it has expired)';

const unauthenticated = (message: string) => statusError(grpc.status.UNAUTHENTICATED, message);

/**
 * The URIs in Node's rendering of a subjectAltName: entries joined by ', ', each `TYPE:value`,
 * with values holding special characters JSON-quoted (Node ≥ 17.3.1). Node's own parser instead
 * of an X.509 library keeps that library out of every agent's start-up.
 */
export function sanUris(subjectAltName: string | undefined): string[] {
  const uris: string[] = [];
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy;
  for (let m = entry.exec(subjectAltName ?? ''); m && m[0] !== ''; m = entry.exec(subjectAltName ?? '')) {
    if (m[1] === 'URI') uris.push(m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2]);
  }
  return uris;
}

/** The RBS identity in a DER certificate's SAN URIs; throws InvalidIdentityError. */
function identityOfCertificate(der: Buffer): Identity {
  return identityFromUris(sanUris(new NodeX509(der).subjectAltName));
}

/**
 * Who is calling. OpenSSL verified the chain and validity at the handshake; expiry is checked
 * again because a connection can outlive its certificate.
 */
export function peerIdentity(call: AuthenticatedCall): Identity {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (!cert) throw unauthenticated(NO_VERIFIED_CLIENT_CERTIFICATE);
  const expiry = new Date(cert.valid_to);
  if (expiry.getTime() <= Date.now()) throw unauthenticated(`client certificate expired at ${expiry.toISOString()}`);
  try {
    return identityOfCertificate(cert.raw);
  } catch (e) {
    throw unauthenticated(`client certificate has no RBS identity: ${(e as Error).message}`);
  }
}

/**
 * TLS material that is replaced while in use (certificate renewal, a rotated Secret): servers
 * present the newest to new connections, clients reconnect with it.
 */
export interface RotatingTls {
  current(): TlsMaterial;
  /** Calls `listener` with each new material; returns the unsubscribe. */
  subscribe(listener: (m: TlsMaterial) => void): () => void;
}

/** TLS material that never changes, where something expects a RotatingTls. */
export function fixedTls(m: TlsMaterial): RotatingTls {
  return { current: () => m, subscribe: () => () => {} };
}

const contextOptions = (m: TlsMaterial) => ({ ca: m.caCertPem, cert: m.certPem, key: m.keyPem });

/** TLS server credentials that ask for, but do not demand, a client certificate. */
class ClientCertificateOptionalCredentials extends grpc.ServerCredentials {
  constructor(m: TlsMaterial) {
    super({ requestCert: true, rejectUnauthorized: false }, contextOptions(m));
  }

  /** New handshakes use `m`; connections already open keep theirs. */
  rotate(m: TlsMaterial): void {
    this.updateSecureContextOptions(contextOptions(m));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** Fails every call whose client has no valid RBS certificate, before any handler runs. */
const requirePeerIdentity: grpc.ServerInterceptor = (_method, call) =>
  new grpc.ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMetadata: (metadata, forward) => {
          try {
            peerIdentity(call);
          } catch (e) {
            call.sendStatus(e as grpc.ServiceError);
            return;
          }
          forward(metadata);
        },
      }),
  });

/**
 * The one method a client without a certificate may call, on the orchestrator: how a user gets a
 * certificate. Its credential is the ID token in the request, which the handler verifies.
 */
export const LOGIN_METHOD = '/rbs.v1.Orchestrator/Login';

/** requirePeerIdentity for every method but LOGIN_METHOD. */
const requirePeerIdentityExceptLogin: grpc.ServerInterceptor = (method, call) =>
  method.path === LOGIN_METHOD ? new grpc.ServerInterceptingCall(call) : requirePeerIdentity(method, call);

/** `anonymousLogin`: only the orchestrator's, whose LOGIN_METHOD is callable without a certificate. */
export function serverCredentials(tls: TlsMaterial | RotatingTls, options: { anonymousLogin?: boolean } = {}): grpc.ServerCredentials {
  const source = 'current' in tls ? tls : fixedTls(tls);
  const credentials = new ClientCertificateOptionalCredentials(source.current());
  source.subscribe((m) => credentials.rotate(m));
  return grpc.experimental.createServerCredentialsWithInterceptors(credentials, [
    options.anonymousLogin ? requirePeerIdentityExceptLogin : requirePeerIdentity,
  ]);
}

/** Why `m.certPem` would be refused by a server of `m.caCertPem`, or null if it would not be. */
function ownCertificateProblem(m: TlsMaterial): () => string | null {
  const ca = new NodeX509(m.caCertPem);
  const cert = new NodeX509(m.certPem);
  const issued = cert.checkIssued(ca) && cert.verify(ca.publicKey);
  const validFrom = new Date(cert.validFrom);
  const validTo = new Date(cert.validTo);
  return () => {
    if (!issued) return `client certificate is not issued by this RBS CA (issuer: ${cert.issuer.replace(/\n/g, ', ')})`;
    const now = Date.now();
    if (now < validFrom.getTime()) return `client certificate is not valid before ${validFrom.toISOString()}`;
    if (now >= validTo.getTime()) return `client certificate expired at ${validTo.toISOString()}`;
    return null;
  };
}

/**
 * Channel options for dialing `address` with channelCredentials. A DNS host goes out as the TLS
 * server name (SNI): a passthrough gateway or ingress routes by it (the agents' TLSRoutes, the
 * orchestrator's ingress). An IP address may not be sent as a server name (RFC 6066, DEP0123), so
 * a fixed 'rbs' stands in. Either way peers are verified by their identity URI, not by the name.
 */
export function tlsChannelOptions(address: string): grpc.ChannelOptions {
  const fixed = { 'grpc.ssl_target_name_override': 'rbs' };
  // grpc-js's own schemes; any other `x:` is a host (localhost:443), which grpc-js reads as dns.
  const [, scheme, rest] = /^(dns|ipv4|ipv6|unix|unix-abstract):(?:\/\/[^/]*\/)?(.*)$/.exec(address) ?? [undefined, 'dns', address];
  if (scheme !== 'dns') return fixed; // IP address lists and sockets have no host name
  const host = isIP(rest) !== 0 ? rest : (/^\[(.*)\](?::\d+)?$/.exec(rest)?.[1] ?? rest.replace(/:\d+$/, ''));
  return host === '' || isIP(host) !== 0 ? fixed : {};
}

/**
 * Client credentials presenting `m`'s certificate and accepting only a server whose RBS identity
 * satisfies `expectServer`.
 */
export function channelCredentials(m: TlsMaterial, expectServer: (id: Identity) => boolean): grpc.ChannelCredentials {
  const problem = ownCertificateProblem(m);
  const selfCheck = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
    const message = problem();
    if (message) callback(unauthenticated(message));
    else callback(null, new grpc.Metadata());
  });
  const tls = grpc.credentials.createSsl(Buffer.from(m.caCertPem), Buffer.from(m.keyPem), Buffer.from(m.certPem), serverCheck(expectServer));
  return tls.compose(selfCheck);
}

/** Accepts only a server whose RBS identity satisfies `expectServer`. */
function serverCheck(expectServer: (id: Identity) => boolean): grpc.VerifyOptions {
  return {
    checkServerIdentity: (_hostname, cert) => {
      try {
        const id = identityOfCertificate(cert.raw);
        return expectServer(id) ? undefined : new Error(`server is ${describeIdentity(id)}, not the expected peer`);
      } catch (e) {
        return new Error(`server certificate has no RBS identity: ${(e as Error).message}`);
      }
    },
  };
}

/** Client credentials without a client certificate, for LOGIN_METHOD: the server is checked as by channelCredentials. */
export function loginChannelCredentials(caCertPem: string, expectServer: (id: Identity) => boolean): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(caCertPem), null, null, serverCheck(expectServer));
}

const FILES = (dir: string, name: string) => ({
  caCertPem: path.join(dir, 'ca.crt'),
  certPem: path.join(dir, `${name}.crt`),
  keyPem: path.join(dir, `${name}.key`),
});

export async function readTlsMaterial(dir: string, name: string): Promise<TlsMaterial> {
  const read = async (file: string) => {
    try {
      return await readFile(file, 'utf8');
    } catch (e) {
      const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `cannot be read: ${(e as Error).message}`;
      throw new Error(`TLS material for ${name}: ${file} ${reason}`);
    }
  };
  const files = FILES(dir, name);
  // Settled in order, so that of several missing files the same one is named every time.
  const [caCertPem, certPem, keyPem] = (await Promise.allSettled([read(files.caCertPem), read(files.certPem), read(files.keyPem)])).map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
  return { caCertPem, certPem, keyPem };
}

/** Writes each file atomically; the key readable by its owner only. */
export async function writeTlsMaterial(dir: string, name: string, m: TlsMaterial): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files = FILES(dir, name);
  await Promise.all([
    installFile(files.caCertPem, m.caCertPem, 0o644, true),
    installFile(files.certPem, m.certPem, 0o644, true),
    installFile(files.keyPem, m.keyPem, 0o600, true),
  ]);
}
