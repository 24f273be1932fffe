/**
 * Someone who reaches the Temporal frontend but holds no client certificate of Temporal's CA cannot
 * drive the session workflows: the server refuses the connection. RBS's own services connect with
 * their client certificates and run sessions through it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tlsSocket from 'node:tls';
import { Connection } from '@temporalio/client';
import { loadConfig } from '../../lib/config';
import { CertificateAuthority } from '../../lib/pki/ca';
import { temporalConnectionOptions } from '../../lib/temporal/connection';
import { startStack } from '../harness/stack';
import { useTemporalTls } from '../harness/temporal-tls-server';

const tls = useTemporalTls();

/** Lists workflows over a connection made from `options`: what an attacker would do first. */
async function listWorkflows(options: Parameters<typeof Connection.connect>[0]): Promise<number> {
  const connection = await Connection.connect({ ...options, connectTimeout: '5s' });
  try {
    const { executions } = await connection.workflowService.listWorkflowExecutions({ namespace: 'default' });
    return executions.length;
  } finally {
    await connection.close();
  }
}

/**
 * The TLS alert the server ends a handshake with, for a client presenting `tls`'s certificate (or
 * none): after a TLS 1.3 handshake the server's verdict on the client arrives as the first read.
 */
function handshakeRefusal(address: string, tls: NonNullable<Awaited<ReturnType<typeof temporalConnectionOptions>>['tls']>): Promise<string> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = tlsSocket.connect({
      host: address.slice(0, at),
      port: Number(address.slice(at + 1)),
      servername: tls.serverNameOverride,
      ca: Buffer.from(tls.serverRootCACertificate!),
      ...(tls.clientCertPair && { cert: Buffer.from(tls.clientCertPair.crt), key: Buffer.from(tls.clientCertPair.key) }),
      ALPNProtocols: ['h2'],
    });
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    socket.on('data', () => resolve('accepted: the server sent data'));
    socket.on('close', () => resolve('closed without an alert'));
  });
}

const optionsFor = async (env: Record<string, string>) => {
  const config = loadConfig({ RBS_HOME: os.tmpdir(), ...env });
  return temporalConnectionOptions(config.temporal);
};

test('Temporal without a client certificate is refused (plaintext, or TLS without a certificate)', async () => {
  const { server } = tls();
  const trusted = await optionsFor(await tls().clientEnv());
  await expect(listWorkflows(trusted)).resolves.toBeGreaterThanOrEqual(0); // the same call with a certificate works

  await expect(listWorkflows({ address: server.address })).rejects.toThrow();
  const { clientCertPair: _none, ...noCertificate } = trusted.tls!;
  await expect(listWorkflows({ address: server.address, tls: noCertificate })).rejects.toThrow();
  expect(await handshakeRefusal(server.address, noCertificate)).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
});

test('Temporal with a client certificate from another CA is refused', async () => {
  const otherCaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-other-ca-'));
  try {
    const other = await CertificateAuthority.loadOrCreate(otherCaDir);
    const foreign = await optionsFor(await tls().clientEnv(other));
    await expect(listWorkflows(foreign)).rejects.toThrow();
    expect(await handshakeRefusal(foreign.address, foreign.tls!)).toMatch(/^ERR_SSL_.*(BAD_CERTIFICATE|UNKNOWN_CA)$/);
  } finally {
    fs.rmSync(otherCaDir, { recursive: true, force: true });
  }
});

test('the worker and the orchestrator, connected with client certificates, run a session to READY through the mTLS server', async () => {
  const stack = await startStack(await tls().clientEnv());
  try {
    expect(stack.config.temporal.auth.kind).toBe('mtls');
    const alice = await stack.client('alice');
    const session = await alice.getServer(stack.workspace());
    expect(session).toMatchObject({ phase: 'READY', user: 'alice' });

    // The workflow lives on the mTLS server, visible by its search attributes.
    const found: string[] = [];
    for await (const wf of stack.temporal.workflow.list({ query: `RbsSessionId = '${session.sessionId}'` })) found.push(wf.workflowId);
    expect(found).toEqual([session.workflowId]);

    expect((await alice.endSession(session.sessionId)).phase).toBe('ENDED');
  } finally {
    await stack.stop();
  }
});
