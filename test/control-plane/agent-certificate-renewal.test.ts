/**
 * An agent outlives its certificate: with agent certificates valid for 9 s, a session kept busy
 * (never suspended) gets its agent's certificate renewed in place, and the running agent serves the
 * new one, so a proxy connecting after the first one expired still gets in.
 */
import { generateKeyPairSync } from 'node:crypto';
import { agentIsServing } from '../../lib/compute/agent-health';
import { presentedCertificate } from '../harness/presented-certificate';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const VALIDITY_MS = 9000;
const stack = useStack({ RBS_AGENT_CERT_VALIDITY_MS: String(VALIDITY_MS) });

test("a busy session's agent certificate is renewed in place and served by the running agent", async () => {
  const user = await stack().client('busy');
  const session = await user.getServer(stack().workspace());
  const first = await presentedCertificate(session.agentAddress);
  // Busy past the first certificate's expiry; then a new connection meets a renewed, valid one.
  // (With 9 s certificates the agent's 5 s re-read can lag a renewal: look until it has caught up.)
  await waitFor(
    async () => {
      await new Promise((r) => setTimeout(r, 500));
      await user.heartbeat(session.sessionId);
      if (Date.now() < new Date(first.validTo).getTime()) return false;
      const now = await presentedCertificate(session.agentAddress);
      return now.fingerprint256 !== first.fingerprint256 && new Date(now.validTo).getTime() > Date.now() + 1000;
    },
    VALIDITY_MS + 20_000,
    'the agent to serve a renewed certificate after the first expired',
  );

  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const issued = await user.issueProxyCertificate(session.sessionId, key.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const proxyTls = {
    caCertPem: issued.caCertificatePem,
    certPem: issued.certificatePem,
    keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
  expect(await agentIsServing(session.agentAddress, session.sessionId, proxyTls)).toBeNull();
  // The same agent all along: renewed, not restarted.
  expect((await user.describeSession(session.sessionId)).agentAddress).toBe(session.agentAddress);
  await user.endSession(session.sessionId);
});
