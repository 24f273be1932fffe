/**
 * What a transport between two machines can reach here, for the outputs benchmark to show beside
 * RBS: the same rsync pull as RBS's fetch, its remote end an rsync daemon behind a relay at each
 * end. `tcp`: socat, no encryption. `socat-tls`: socat's mutual TLS (OpenSSL, no Node). `node-tls`:
 * Node's mutual TLS at both ends, raw bytes (RBS's own path, less gRPC). Every byte crosses two
 * more processes, as with RBS, and with TLS is encrypted and decrypted in them: on a small machine
 * they share the cores with both rsyncs.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitForPort } from '../lib/local/ports';
import { CertificateAuthority } from '../lib/pki/ca';

export type Relay = 'tcp' | 'socat-tls' | 'node-tls';
export const RELAYS: Relay[] = ['socat-tls', 'node-tls', 'tcp'];

export interface TransportCeiling {
  /** Pulls everything under the served directory into `into` over `relay`; resolves with the milliseconds. */
  pull(relay: Relay, into: string): Promise<number>;
  stop(): void;
}

/**
 * socat copies in blocks of this size (its default, 8 KiB, costs it more system calls than rsync),
 * and ends a relay this soon after one side's end (its default, 0.5 s, would be timed too): rsync
 * has said all it had to by then.
 */
const SOCAT_OPTIONS = ['-b', String(256 * 1024), '-t', '0.01'];

/** The relay's client end for rsync's -e, after the port and the directory holding the TLS files: rsync's own words are ignored. */
const NODE_CLIENT = `
const fs = require('node:fs'), tls = require('node:tls');
const [port, dir] = process.argv.slice(2);
const read = (name) => fs.readFileSync(dir + '/' + name);
const socket = tls.connect({ host: '127.0.0.1', port: Number(port), servername: 'localhost', ca: read('ca.pem'), cert: read('client.pem'), key: read('client.key') });
process.stdin.pipe(socket);
socket.pipe(process.stdout);
socket.on('end', () => process.exit(0));
socket.on('error', (err) => (console.error(err.message), process.exit(1)));
`;

/** The relay's server end: serves the rsync daemon of `<config>` to clients of the CA in `<dir>`; prints its port. */
const NODE_SERVER = `
const fs = require('node:fs'), tls = require('node:tls'), { spawn } = require('node:child_process');
const [dir, config] = process.argv.slice(2);
const read = (name) => fs.readFileSync(dir + '/' + name);
const server = tls.createServer({ ca: read('ca.pem'), cert: read('server.pem'), key: read('server.key'), requestCert: true, rejectUnauthorized: true }, (socket) => {
  const rsync = spawn('rsync', ['--server', '--daemon', '--config=' + config, '.'], { stdio: ['pipe', 'pipe', 'ignore'] });
  socket.pipe(rsync.stdin);
  rsync.stdout.pipe(socket);
  socket.on('error', () => rsync.kill());
  rsync.stdin.on('error', () => undefined);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port)));
`;

/** Serves `dir` read-only through every relay until stop(). */
export async function startTransportCeiling(dir: string): Promise<TransportCeiling> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-relay-'));
  const ca = await CertificateAuthority.loadOrCreate(path.join(root, 'ca'));
  const files = (name: string, material: { certPem: string; keyPem: string }) => {
    fs.writeFileSync(path.join(root, `${name}.pem`), material.certPem);
    fs.writeFileSync(path.join(root, `${name}.key`), material.keyPem, { mode: 0o600 });
    return `cert=${path.join(root, `${name}.pem`)},key=${path.join(root, `${name}.key`)},cafile=${path.join(root, 'ca.pem')}`;
  };
  fs.writeFileSync(path.join(root, 'ca.pem'), ca.certPem);
  const sessionId = randomUUID();
  const serverTls = files('server', await ca.issue({ kind: 'agent', sessionId }, { dnsNames: ['localhost'] }));
  const clientTls = files('client', await ca.issue({ kind: 'proxy', sessionId, user: 'bench' }));
  const config = path.join(root, 'rsyncd.conf');
  // As root, a daemon would serve as nobody unless told otherwise.
  fs.writeFileSync(config, `use chroot = no\nuid = ${process.getuid!()}\ngid = ${process.getgid!()}\n[out]\npath = ${dir}\nread only = yes\n`);
  const daemon = `EXEC:rsync --server --daemon --config=${config} .`;

  const relays: ChildProcess[] = [];
  const listen = async (address: string) => {
    const port = await freePort();
    const relay = spawn('socat', [...SOCAT_OPTIONS, `${address.replace('PORT', String(port))},bind=127.0.0.1,reuseaddr,fork`, daemon], { stdio: 'ignore' });
    relays.push(relay);
    await waitForPort('127.0.0.1', port, 10_000, () => (relay.exitCode !== null ? `socat exited ${relay.exitCode} (is socat installed?)` : null));
    return port;
  };
  // In a process of its own, as an agent's would be: the benchmark's event loop is busy with the stack.
  fs.writeFileSync(path.join(root, 'server.js'), NODE_SERVER);
  const nodeServer = spawn(process.execPath, [path.join(root, 'server.js'), root, config], { stdio: ['ignore', 'pipe', 'ignore'] });
  relays.push(nodeServer);
  const nodePort = await new Promise<number>((resolve, reject) => {
    nodeServer.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString())));
    nodeServer.once('exit', (code) => reject(new Error(`the Node relay exited ${code}`)));
  });
  fs.writeFileSync(path.join(root, 'client.js'), NODE_CLIENT);
  const ports = { tcp: await listen('TCP-LISTEN:PORT'), tls: await listen(`OPENSSL-LISTEN:PORT,${serverTls},verify=1`) };
  const shell: Record<Relay, string> = {
    tcp: `exec socat ${SOCAT_OPTIONS.join(' ')} - TCP:127.0.0.1:${ports.tcp}`,
    'socat-tls': `exec socat ${SOCAT_OPTIONS.join(' ')} - OPENSSL:127.0.0.1:${ports.tls},${clientTls},commonname=localhost`,
    'node-tls': `exec ${process.execPath} ${path.join(root, 'client.js')} ${nodePort} ${root}`,
  };

  return {
    async pull(relay, into) {
      // rsync appends the host and the daemon's command line to -e: the shell drops them. Without
      // --blocking-io, a relay meets a non-blocking stdout and stalls on EAGAIN, as RBS's would.
      const rsh = `sh -c '${shell[relay]}' relay`;
      const started = performance.now();
      await promisify(execFile)('rsync', ['--blocking-io', '--recursive', '--links', '--times', '--executability', '-e', rsh, 'localhost::out/', `${into}/`]);
      return performance.now() - started;
    },
    stop() {
      relays.forEach((relay) => relay.kill());
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
