/** The signer's gRPC server: mTLS, the caller known by its certificate, the policy before every signature. */
import * as grpc from '@grpc/grpc-js';
import type { SignerHandlers } from '../../gen/proto/rbs/v1/Signer';
import { bindServer } from '../../lib/grpc/bind';
import { serverKeepalive } from '../../lib/grpc/keepalive';
import { protos } from '../../lib/grpc/protos';
import { shutdownGracefully } from '../../lib/grpc/shutdown';
import { subjectFromWire } from '../../lib/grpc/signer-subject';
import { statusError } from '../../lib/grpc/status';
import { type RotatingTls, peerIdentity, serverCredentials } from '../../lib/grpc/tls';
import { InvalidPublicKeyError, type CertificateAuthority } from '../../lib/pki/ca';
import { describeIdentity } from '../../lib/pki/identity';
import { InvalidInputError } from '../../lib/validate';
import { refusal } from './policy';
import { type Logger, processLogger } from '../../lib/log';
import { traced } from '../../lib/tracing/grpc';

export interface SignerServer {
  address: string;
  stop(): Promise<void>;
}

function handlers(ca: CertificateAuthority, log: Logger): SignerHandlers {
  return {
    Certify: (call, callback) => {
      const fail = (code: grpc.status, message: string) => callback(statusError(code, message));
      let caller;
      try {
        caller = peerIdentity(call);
      } catch (err) {
        return callback(err as grpc.ServiceError);
      }
      const request = call.request;
      const subject = subjectFromWire(request);
      if (!subject) return fail(grpc.status.INVALID_ARGUMENT, 'the request names no subject to certify');
      const refused = refusal(caller, subject, request.validityMs, request.dnsNames.length + request.ipAddresses.length);
      if (refused) {
        log.warn(
          { audit: 'refused', rpc: 'Certify', code: 'PERMISSION_DENIED', caller, subject, reason: refused },
          `refused ${describeIdentity(caller)} a certificate`,
        );
        return fail(grpc.status.PERMISSION_DENIED, refused);
      }
      const names = { dnsNames: request.dnsNames, ipAddresses: request.ipAddresses, validityMs: request.validityMs };
      ca.certifyPublicKey(subject, request.publicKeyPem, names).then(
        (certificatePem) => callback(null, { certificatePem, caCertificatePem: ca.certPem }),
        (err) => {
          if (err instanceof InvalidPublicKeyError || err instanceof InvalidInputError) fail(grpc.status.INVALID_ARGUMENT, err.message);
          else fail(grpc.status.INTERNAL, `signing failed: ${(err as Error).message}`);
        },
      );
    },
  };
}

/** `log`: where its JSON lines go (stderr unless given). */
export async function startSigner(options: { listen: string; ca: CertificateAuthority; tls: RotatingTls; log?: Logger }): Promise<SignerServer> {
  const server = new grpc.Server(serverKeepalive());
  server.addService(protos().signer.rbs.v1.Signer.service, traced('rbs.v1.Signer', handlers(options.ca, options.log ?? processLogger('signer'))));
  const address = await bindServer(server, options.listen, serverCredentials(options.tls));
  return { address, stop: () => shutdownGracefully(server) };
}
