/**
 * Half-configured Temporal authentication fails at start with an error naming the variable and the
 * file, instead of silently connecting in plaintext or with the wrong credentials.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../lib/config';
import { CertificateAuthority } from '../../lib/pki/ca';
import { temporalConnectionOptions } from '../../lib/temporal/connection';

let dir: string;
let files: { cert: string; key: string; otherKey: string; ca: string; expired: string; expiredKey: string };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-temporal-config-'));
  const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
  const write = (name: string, text: string) => {
    fs.writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  const good = await ca.issue({ kind: 'service', name: 'worker' });
  const other = await ca.issue({ kind: 'service', name: 'worker' });
  const expired = await ca.issue({ kind: 'service', name: 'worker' }, { notBefore: new Date(Date.now() - 7_200_000), validityMs: 3_600_000 });
  files = {
    cert: write('cert.pem', good.certPem),
    key: write('key.pem', good.keyPem),
    otherKey: write('other-key.pem', other.keyPem),
    ca: write('ca.pem', ca.certPem),
    expired: write('expired.pem', expired.certPem),
    expiredKey: write('expired-key.pem', expired.keyPem),
  };
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const config = (env: Record<string, string>) => loadConfig({ RBS_HOME: dir, ...env });
const connect = (env: Record<string, string>) => temporalConnectionOptions(config(env).temporal);

test('no RBS_TEMPORAL_* authentication: plaintext, as against the local dev server', async () => {
  expect(config({}).temporal.auth).toEqual({ kind: 'none' });
  expect(await connect({})).toEqual({ address: '127.0.0.1:7233' });
});

test('a client certificate with its key and CA: mTLS options with both files read', async () => {
  const options = await connect({
    RBS_TEMPORAL_TLS_CERT: files.cert,
    RBS_TEMPORAL_TLS_KEY: files.key,
    RBS_TEMPORAL_TLS_CA: files.ca,
    RBS_TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
  });
  expect(options.apiKey).toBeUndefined();
  expect(options.tls?.serverNameOverride).toBe('temporal.internal');
  expect(Buffer.from(options.tls!.clientCertPair!.crt).toString()).toBe(fs.readFileSync(files.cert, 'utf8'));
  expect(Buffer.from(options.tls!.serverRootCACertificate!).toString()).toBe(fs.readFileSync(files.ca, 'utf8'));
});

test('half-configured input is refused, naming the variables', () => {
  expect(() => config({ RBS_TEMPORAL_TLS_CERT: files.cert })).toThrow(`RBS_TEMPORAL_TLS_CERT is set (${files.cert}) but RBS_TEMPORAL_TLS_KEY is not`);
  expect(() => config({ RBS_TEMPORAL_TLS_KEY: files.key })).toThrow(`RBS_TEMPORAL_TLS_KEY is set (${files.key}) but RBS_TEMPORAL_TLS_CERT is not`);
  expect(() => config({ RBS_TEMPORAL_API_KEY: 'k', RBS_TEMPORAL_TLS_CERT: files.cert, RBS_TEMPORAL_TLS_KEY: files.key })).toThrow(
    /RBS_TEMPORAL_API_KEY and a client certificate \(RBS_TEMPORAL_TLS_CERT, RBS_TEMPORAL_TLS_KEY\) are both set/,
  );
  expect(() => config({ RBS_TEMPORAL_TLS_CA: files.ca })).toThrow(/RBS_TEMPORAL_TLS_CA configures TLS to Temporal, which needs a client certificate/);
  expect(() => config({ RBS_TEMPORAL_API_KEY: 'key\n' })).toThrow(/RBS_TEMPORAL_API_KEY contains whitespace/);
});

test('an unreadable or wrong file is refused, naming the variable and the file', async () => {
  const missing = path.join(dir, 'missing.pem');
  await expect(connect({ RBS_TEMPORAL_TLS_CERT: missing, RBS_TEMPORAL_TLS_KEY: files.key })).rejects.toThrow(`RBS_TEMPORAL_TLS_CERT: cannot read ${missing}`);
  await expect(connect({ RBS_TEMPORAL_API_KEY: 'k', RBS_TEMPORAL_TLS_CA: missing })).rejects.toThrow(`RBS_TEMPORAL_TLS_CA: cannot read ${missing}`);
  await expect(connect({ RBS_TEMPORAL_TLS_CERT: files.key, RBS_TEMPORAL_TLS_KEY: files.key })).rejects.toThrow(
    `RBS_TEMPORAL_TLS_CERT: ${files.key} is not a PEM certificate`,
  );
  await expect(connect({ RBS_TEMPORAL_TLS_CERT: files.cert, RBS_TEMPORAL_TLS_KEY: files.cert })).rejects.toThrow(
    `RBS_TEMPORAL_TLS_KEY: ${files.cert} is not a PEM private key`,
  );
  await expect(connect({ RBS_TEMPORAL_TLS_CERT: files.cert, RBS_TEMPORAL_TLS_KEY: files.otherKey })).rejects.toThrow(
    `RBS_TEMPORAL_TLS_KEY (${files.otherKey}) is not the private key of the certificate in RBS_TEMPORAL_TLS_CERT (${files.cert})`,
  );
  await expect(connect({ RBS_TEMPORAL_TLS_CERT: files.expired, RBS_TEMPORAL_TLS_KEY: files.expiredKey })).rejects.toThrow(
    `RBS_TEMPORAL_TLS_CERT (${files.expired}) expired at`,
  );
});
