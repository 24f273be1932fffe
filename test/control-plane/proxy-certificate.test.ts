import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { agentIsServing } from '../../lib/compute/agent-health';
import { sanUris } from '../../lib/grpc/tls';
import { identityFromUris } from '../../lib/pki/identity';
import { useStack } from '../harness/stack';

const stack = useStack();

const ecKey = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const pem = (key: ReturnType<typeof ecKey>) => key.publicKey.export({ type: 'spki', format: 'pem' }).toString();

test("the orchestrator certifies the proxy's own key for its session's owner, and the agent accepts that certificate", async () => {
  const olga = await stack().client('olga');
  const session = await olga.getServer(stack().workspace());
  const key = ecKey();

  const { certificatePem, caCertificatePem } = await olga.issueProxyCertificate(session.sessionId, pem(key));
  const cert = new X509Certificate(certificatePem);
  expect(identityFromUris(sanUris(cert.subjectAltName))).toEqual({ kind: 'proxy', sessionId: session.sessionId, user: 'olga' });
  expect(cert.checkPrivateKey(key.privateKey)).toBe(true);
  expect(cert.verify(new X509Certificate(caCertificatePem).publicKey)).toBe(true);

  const tls = { caCertPem: caCertificatePem, certPem: certificatePem, keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  expect(await agentIsServing(session.agentAddress, session.sessionId, tls)).toBeNull();
  await olga.endSession(session.sessionId);
});

test('only the owner gets one, for a live session and a valid key', async () => {
  const pat = await stack().client('pat');
  const session = await pat.getServer(stack().workspace());
  const other = await stack().client('quinn');
  const operator = await stack().client('root', { operator: true });

  for (const stranger of [other, operator]) {
    await expect(stranger.issueProxyCertificate(session.sessionId, pem(ecKey()))).rejects.toMatchObject({ code: status.NOT_FOUND });
  }
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  for (const bad of ['', 'not a key', rsa, 'x'.repeat(5000)]) {
    await expect(pat.issueProxyCertificate(session.sessionId, bad)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  }
  await pat.endSession(session.sessionId);
  await expect(pat.issueProxyCertificate(session.sessionId, pem(ecKey()))).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
});
