/**
 * The certificate check's one exemption is exactly the orchestrator's Login path, and only on the
 * orchestrator's credentials: no look-alike path and no other server (agents) is reachable without one.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LOGIN_METHOD, loginChannelCredentials, serverCredentials, tlsChannelOptions } from '../../lib/grpc/tls';
import { CertificateAuthority } from '../../lib/pki/ca';

const PATHS = {
  login: LOGIN_METHOD,
  loginOnAnotherService: '/rbs.v1.Agent/Login',
  loginLookAlike: `${LOGIN_METHOD}X`,
  loginOtherCase: LOGIN_METHOD.toLowerCase(),
};
const passThrough = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const PROBE: grpc.ServiceDefinition = Object.fromEntries(
  Object.entries(PATHS).map(([name, methodPath]) => [
    name,
    {
      path: methodPath,
      requestStream: false,
      responseStream: false,
      requestSerialize: passThrough.serialize,
      requestDeserialize: passThrough.deserialize,
      responseSerialize: passThrough.serialize,
      responseDeserialize: passThrough.deserialize,
    },
  ]),
);

let root: string;
let ca: CertificateAuthority;
const servers: grpc.Server[] = [];

/** A server with every probe path answering 'reached', on credentials made with `options`. */
async function serve(options: { anonymousLogin?: boolean }): Promise<grpc.Client> {
  const server = new grpc.Server();
  const reached = (_call: unknown, done: grpc.sendUnaryData<Buffer>) => done(null, Buffer.from('reached'));
  server.addService(PROBE, Object.fromEntries(Object.keys(PATHS).map((name) => [name, reached])));
  const tls = { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'service', name: 'orchestrator' }, { ipAddresses: ['127.0.0.1'] })) };
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', serverCredentials(tls, options), (err, p) => (err ? reject(err) : resolve(p))),
  );
  servers.push(server);
  return new grpc.Client(
    `127.0.0.1:${port}`,
    loginChannelCredentials(ca.certPem, () => true),
    tlsChannelOptions('127.0.0.1'),
  );
}

const call = (client: grpc.Client, methodPath: string) =>
  new Promise<string>((resolve) =>
    client.makeUnaryRequest(methodPath, passThrough.serialize, passThrough.deserialize, Buffer.alloc(0), { deadline: Date.now() + 5000 }, (err, res) =>
      resolve(err ? `${grpc.status[err.code]}` : res!.toString()),
    ),
  );

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'rbs-exemption-'));
  ca = await CertificateAuthority.loadOrCreate(root);
});

afterAll(async () => {
  for (const server of servers) server.forceShutdown();
  await rm(root, { recursive: true, force: true });
});

test('on the orchestrator, only the exact Login path is reachable without a client certificate, not a look-alike', async () => {
  const client = await serve({ anonymousLogin: true });
  expect({
    login: await call(client, PATHS.login),
    loginOnAnotherService: await call(client, PATHS.loginOnAnotherService),
    loginLookAlike: await call(client, PATHS.loginLookAlike),
    loginOtherCase: await call(client, PATHS.loginOtherCase),
  }).toEqual({ login: 'reached', loginOnAnotherService: 'UNAUTHENTICATED', loginLookAlike: 'UNAUTHENTICATED', loginOtherCase: 'UNAUTHENTICATED' });
  client.close();
});

test('on any other server (an agent), even the Login path needs a client certificate', async () => {
  const client = await serve({});
  expect(await call(client, PATHS.login)).toBe('UNAUTHENTICATED');
  client.close();
});
