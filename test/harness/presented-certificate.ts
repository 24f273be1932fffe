/** The certificate a server shows a new TLS connection: what a rotation test watches for. */
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';

/** `servername`: the SNI host to send (by default, none for an IP address). */
export function presentedCertificate(address: string, servername?: string): Promise<X509Certificate> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const options = { host: address.slice(0, at), port: Number(address.slice(at + 1)), rejectUnauthorized: false, ALPNProtocols: ['h2'], servername };
    const socket = tls.connect(options, () => {
      resolve(new X509Certificate(socket.getPeerCertificate(true).raw));
      socket.end();
    });
    socket.on('error', reject);
  });
}
