/**
 * A proxy's certificate needs a live session, not a worker: with the worker down (or frozen, or its
 * workflow task failing until Temporal retries it), the workflow cannot answer a query, and
 * Temporal's own record of the run says whether the session lives.
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { useStack } from '../harness/stack';

const stack = useStack();

const pem = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

test("with the worker down, a live session's owner still gets a proxy certificate; another user and an ended session still get none", async () => {
  const una = await stack().client('una');
  const session = await una.getServer(stack().workspace());
  const ended = await una.getServer(stack().workspace());
  await una.endSession(ended.sessionId);
  await stack().stopWorker();
  try {
    const started = Date.now();
    const { certificatePem } = await una.issueProxyCertificate(session.sessionId, pem());
    expect(new X509Certificate(certificatePem).subjectAltName).toContain(session.sessionId);
    // Within the query's deadline and a describe, far inside what the proxy waits for an answer.
    expect(Date.now() - started).toBeLessThan(15_000);
    await expect((await stack().client('vik')).issueProxyCertificate(session.sessionId, pem())).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(una.issueProxyCertificate(ended.sessionId, pem())).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
  } finally {
    await stack().startWorker();
  }
  await una.endSession(session.sessionId);
}, 120_000);
