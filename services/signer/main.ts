/**
 * Entry point of the signer process (config from RBS_* env): the only holder of the CA key
 * (RBS_HOME/pki), serving on RBS_SIGNER_LISTEN to the orchestrator and the worker alone. Beside a
 * service in its pod (RBS_SIGNER_PUBLISH), it also keeps that service's own certificate in
 * RBS_SERVICE_TLS_DIR, before it starts serving.
 */
import { homePaths, loadConfig } from '../../lib/config';
import { listenNames } from '../../lib/grpc/bind';
import { CertificateAuthority } from '../../lib/pki/ca';
import { issuedServiceTls, publishServiceTls } from '../../lib/pki/service-tls';
import { processLogger } from '../../lib/log';
import { exitAfterTraces, startTracing } from '../../lib/tracing/tracing';
import { startSigner } from './server';

const log = processLogger('signer');

async function main() {
  startTracing('signer');
  const config = loadConfig();
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  const tls = await issuedServiceTls(ca, { kind: 'service', name: 'signer' }, listenNames(config.signer.listen));
  const { publishFor, serviceTlsDir } = config.signer;
  if (publishFor && serviceTlsDir) await publishServiceTls(ca, serviceTlsDir, publishFor);
  const signer = await startSigner({ listen: config.signer.listen, ca, tls, log });
  log.info({ address: signer.address }, 'serving (mTLS; the orchestrator and the worker only)');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void signer.stop().then(() => exitAfterTraces(0)));
  }
}

main().catch((err) => {
  log.fatal({ err }, 'could not serve');
  process.exit(1);
});
