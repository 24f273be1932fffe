/**
 * A control-plane service's credentials: its own (rotating) certificate and the signer it asks for
 * others'. With a signer service configured, the CA key stays in that service; without, the CA in
 * RBS_HOME/pki signs in-process (one machine, tests).
 */
import { homePaths, type RbsConfig } from '../config';
import { CertificateAuthority } from './ca';
import type { ServiceName } from './identity';
import { RemoteSigner } from './remote-signer';
import { fileServiceTls, issuedServiceTls, type ServiceTls } from './service-tls';
import type { CertificateSigner, SignOptions } from './signer';

export interface ServiceCredentials {
  tls: ServiceTls;
  signer: CertificateSigner;
  close(): void;
}

export async function serviceCredentials(
  config: RbsConfig,
  name: Exclude<ServiceName, 'signer'>,
  names: Omit<SignOptions, 'validityMs'> = {},
): Promise<ServiceCredentials> {
  const { address, serviceTlsDir } = config.signer;
  if (address && serviceTlsDir) {
    const tls = await fileServiceTls(serviceTlsDir, name);
    const signer = new RemoteSigner(address, tls);
    return { tls, signer, close: () => (signer.close(), tls.close()) };
  }
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  const tls = await issuedServiceTls(ca, { kind: 'service', name }, names);
  return { tls, signer: ca, close: () => tls.close() };
}
