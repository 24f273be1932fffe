/** The certificate a server shows a new TLS connection: what a rotation test watches for. */
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';

export function presentedCertificate(address: string): Promise<X509Certificate> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const options = { host: address.slice(0, at), port: Number(address.slice(at + 1)), rejectUnauthorized: false, ALPNProtocols: ['h2'] };
    const socket = tls.connect(options, () => {
      resolve(new X509Certificate(socket.getPeerCertificate(true).raw));
      socket.end();
    });
    socket.on('error', reject);
  });
}
