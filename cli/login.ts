/** `rbs login --user NAME [--operator]`: a per-user client certificate from the local CA. */
import { X509Certificate } from 'node:crypto';
import { homePaths, loadConfig } from '../lib/config';
import { writeTlsMaterial } from '../lib/grpc/tls';
import { CertificateAuthority } from '../lib/pki/ca';
import { validateUserName } from '../lib/validate';
import { credentialsDir } from '../lib/client-config';

export async function login(options: { user?: string; operator?: boolean }): Promise<void> {
  const user = validateUserName(options.user ?? '');
  const ca = await CertificateAuthority.loadOrCreate(homePaths(loadConfig().home).pki);
  const issued = await ca.issue({ kind: 'user', user, operator: !!options.operator });
  const dir = credentialsDir();
  await writeTlsMaterial(dir, 'user', { caCertPem: ca.certPem, ...issued });
  const validTo = new X509Certificate(issued.certPem).validTo;
  console.log(`logged in as '${user}'${options.operator ? ' (operator)' : ''}: certificate in ${dir}, valid until ${validTo}`);
}
