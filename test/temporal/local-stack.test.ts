/**
 * `npm start`'s stack on a shared machine: another user reaches every loopback port, but must not be
 * able to drive the session workflows through Temporal. Its frontend requires a client certificate
 * whose keys only this user can read; its Web UI looks but refuses to act.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tlsSocket from 'node:tls';
import { Connection } from '@temporalio/client';
import { homePaths, loadConfig, type RbsConfig } from '../../lib/config';
import { OrchestratorClient, type Session } from '../../lib/grpc/orchestrator-client';
import { freePort } from '../../lib/local/ports';
import { startLocalStack, type LocalStack } from '../../lib/local/stack';
import { CertificateAuthority } from '../../lib/pki/ca';
import { sessionQuery } from '../../workflows/messages';
import { Browser } from '../harness/browser';
import { waitFor } from '../harness/wait';

let config: RbsConfig;
let stack: LocalStack;
let alice: OrchestratorClient;
let session: Session;

beforeAll(async () => {
  config = loadConfig({
    RBS_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-local-stack-')),
    RBS_TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
    RBS_ORCHESTRATOR_LISTEN: `127.0.0.1:${await freePort()}`,
    RBS_SIGNER_LISTEN: `127.0.0.1:${await freePort()}`, // not the default port, which another test's stack may hold
    RBS_TASK_QUEUE: 'rbs-local-stack-test',
  });
  process.env.RBS_TEMPORAL_UI_PORT = String(await freePort());
  stack = await startLocalStack(config, { ui: true, persist: false, log: () => undefined });
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  alice = new OrchestratorClient(stack.orchestrator, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user: 'alice', operator: false })) });
}, 120_000);

afterAll(async () => {
  // Agents outlive the stack by design: end the session so that its agent goes.
  if (session) await alice.endSession(session.sessionId);
  alice?.close();
  await stack?.stop();
  delete process.env.RBS_TEMPORAL_UI_PORT;
  fs.rmSync(config.home, { recursive: true, force: true });
});

/** The TLS alert the frontend answers a client without a certificate with (the server's verdict is the first read). */
function handshakeWithoutCertificate(address: string): Promise<string> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = tlsSocket.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)), rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    socket.on('data', () => resolve('accepted'));
    socket.on('close', () => resolve('closed without an alert'));
  });
}

test('the services reach READY through the stack’s mTLS Temporal', async () => {
  // A workspace name that is markdown and HTML: the Web UI must show it as text (the last test).
  const workspace = fs.mkdtempSync(path.join(config.home, 'ws-[click](evil.example)<b>bold<img src=x>-'));
  fs.writeFileSync(path.join(workspace, 'BUILD'), '');
  session = await alice.getServer(workspace);
  expect(session).toMatchObject({ phase: 'READY', user: 'alice' });
});

test('another local user without a client certificate is refused by the stack’s Temporal', async () => {
  await expect(Connection.connect({ address: stack.temporal, connectTimeout: '3s' })).rejects.toThrow();
  expect(await handshakeWithoutCertificate(stack.temporal)).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
});

test('another local user cannot read the Temporal CA key or any client key', () => {
  const dir = path.join(config.home, 'temporal');
  expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
  const keys: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(path.join(d, entry.name));
      else if (entry.name.endsWith('.key') || entry.name === 'key.pem') keys.push(path.join(d, entry.name));
    }
  };
  walk(dir);
  expect(keys.length).toBeGreaterThanOrEqual(4); // the CA, the server, the services, the UI, the operator
  for (const key of keys) expect({ key, mode: fs.statSync(key).mode & 0o077 }).toEqual({ key, mode: 0 });
});

test('the stack’s Web UI shows sessions to anyone on the machine but refuses to signal, update or terminate them', async () => {
  const api = `${stack.temporalUi}/api/v1/namespaces/default/workflows`;
  const id = encodeURIComponent(session.workflowId);
  const page = await fetch(stack.temporalUi!);
  expect({ status: page.status, html: (await page.text()).includes('<html') }).toEqual({ status: 200, html: true });
  // Looking works: the UI reaches Temporal with its own client certificate.
  const listed = await fetch(`${api}?query=${encodeURIComponent(`WorkflowId = '${session.workflowId}'`)}`);
  expect(listed.status).toBe(200);
  expect(await listed.text()).toContain(`"workflowId": "${session.workflowId}"`);
  // An Authorization header skips the UI's CSRF check: a query (read-only) passes with it...
  const headers = { authorization: 'Bearer anyone', 'content-type': 'application/json' };
  const queried = await fetch(`${api}/${id}/query/${sessionQuery.name}`, { method: 'POST', headers, body: '{}' });
  expect(queried.status).toBe(200);
  // ...and every action is refused by the UI server itself.
  for (const action of ['signal/heartbeat', 'update/end', 'terminate', 'cancel']) {
    const response = await fetch(`${api}/${id}/${action}`, { method: 'POST', headers, body: '{}' });
    expect({ action, status: response.status }).toEqual({ action, status: 405 });
  }
  expect((await alice.describeSession(session.sessionId)).phase).toBe('READY');
});

test("the stack's Web UI, opened in a real headless browser, shows a READY session's summary and current details", async () => {
  const described = await fetch(`${stack.temporalUi}/api/v1/namespaces/default/workflows/${encodeURIComponent(session.workflowId)}`);
  const execution = (await described.json()) as {
    workflowExecutionInfo: { execution: { runId: string } };
    executionConfig: { userMetadata: { summary: { data: string } } };
  };
  const runId = execution.workflowExecutionInfo.execution.runId;
  const browser = Browser.launch();
  try {
    const tab = await browser.open(`${stack.temporalUi}/namespaces/default/workflows/${encodeURIComponent(session.workflowId)}/${runId}/user-metadata`);
    let text = '';
    await waitFor(
      async () => (text = await tab.text()).includes('Suspended if idle until'),
      60_000,
      `the UI's page of ${session.workflowId} to show its current details`,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the page read: ${text.slice(0, 3000)}`);
    });
    expect(text).toContain(`alice: ${session.workspace}`);
    expect(text).toContain(`Namespace: ${session.namespace}`);
    expect(text).toContain('READY');
    expect(text).toContain(`Agent: ${session.agentAddress} (local backend)`);
    expect(text).toContain(`Session: ${session.sessionId}`);
    // The workspace's markdown and HTML stay text where the UI renders markdown: its own renderer,
    // given the summary, shows it as typed and makes no link, bold or image of it.
    const summary = JSON.parse(Buffer.from(execution.executionConfig.userMetadata.summary.data, 'base64').toString('utf8')) as string;
    const rendered = await browser.open(`${stack.temporalUi}/render?content=${encodeURIComponent(summary)}`);
    await waitFor(async () => (await rendered.text()).includes('alice'), 30_000, 'the UI to render the summary');
    expect(await rendered.text()).toContain('[click](evil.example)<b>bold<img src=x>');
    expect(await rendered.count('a[href*="evil"], img[src="x"], b')).toBe(0);
  } finally {
    await browser.close();
  }
}, 120_000);
