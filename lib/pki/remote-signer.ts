/**
 * The signer service's client: a CertificateSigner for services that hold no CA key. It presents
 * the service's own (rotating) certificate and accepts only the signer's.
 */
import * as grpc from '@grpc/grpc-js';
import type { CertifyResponse__Output } from '../../gen/proto/rbs/v1/CertifyResponse';
import type { SignerClient } from '../../gen/proto/rbs/v1/Signer';
import { protos } from '../grpc/protos';
import { subjectToWire } from '../grpc/signer-subject';
import { channelCredentials, tlsChannelOptions, type RotatingTls } from '../grpc/tls';
import { InvalidPublicKeyError } from './ca';
import type { Identity } from './identity';
import type { CertificateSigner, SignOptions } from './signer';
import { traceContextInterceptor } from '../tracing/grpc';

/** Also how long a call waits for a signer that is not reachable (restarting): waitForReady. */
const CALL_TIMEOUT_MS = 10_000;

export class RemoteSigner implements CertificateSigner {
  private client: SignerClient;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly address: string,
    private readonly tls: RotatingTls,
  ) {
    this.client = this.connect();
    // A renewed certificate takes effect on a new channel; calls under way finish on the old one.
    this.unsubscribe = tls.subscribe(() => {
      const old = this.client;
      this.client = this.connect();
      setTimeout(() => old.close(), CALL_TIMEOUT_MS).unref();
    });
  }

  get caCertPem(): string {
    return this.tls.current().caCertPem;
  }

  certifyPublicKey(identity: Identity, publicKeyPem: string, options: SignOptions): Promise<string> {
    const request = { ...subjectToWire(identity), publicKeyPem, ...options };
    // waitForReady: a signer that is restarting is waited for (within the deadline), not failed at once.
    const waitForSigner = new grpc.Metadata({ waitForReady: true });
    return new Promise((resolve, reject) =>
      this.client.certify(request, waitForSigner, { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res?: CertifyResponse__Output) => {
        if (!err) return resolve(res!.certificatePem);
        if (err.code === grpc.status.INVALID_ARGUMENT) return reject(new InvalidPublicKeyError(err.details));
        reject(new Error(`the signer at ${this.address} refused to certify ${identity.kind}: ${grpc.status[err.code]}: ${err.details}`));
      }),
    );
  }

  close(): void {
    this.unsubscribe();
    this.client.close();
  }

  private connect(): SignerClient {
    const credentials = channelCredentials(this.tls.current(), (id) => id.kind === 'service' && id.name === 'signer');
    return new (protos().signer.rbs.v1.Signer)(this.address, credentials, {
      ...tlsChannelOptions(this.address),
      interceptors: [traceContextInterceptor],
    }) as unknown as SignerClient;
  }
}
