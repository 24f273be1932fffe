/**
 * A real agent server (real mTLS certificates from a throwaway CA) serving a workspace directory,
 * a developer-side source tree next to it, and a canary directory that no sync may ever touch.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import type { SyncFrame, SyncFrame__Output } from '../../gen/proto/rbs/v1/SyncFrame';
import { protos } from '../../lib/grpc/protos';
import { tlsChannelOptions, type TlsMaterial, channelCredentials } from '../../lib/grpc/tls';
import { CertificateAuthority } from '../../lib/pki/ca';
import type { Identity } from '../../lib/pki/identity';
import { type AgentServer, type AgentServerOptions, startAgentServer } from '../../services/agent/server';
import { syncWorkspace } from '../../services/proxy/sync';

export const SESSION = randomUUID();
export const OTHER_SESSION = randomUUID();
/** What the proxy's rsync asks the agent to run. */
export const PUSH_ARGS = ['--server', '-ltEre.iLsfxCIvu', '--delete', '.', '.'];

export interface Fixture {
  root: string;
  /** The agent's copy. */
  workspace: string;
  /** The developer's workspace. */
  source: string;
  /** Outside the workspace: stays empty. */
  canary: string;
  agent: AgentServer;
  proxyTls: TlsMaterial;
  otherProxyTls: TlsMaterial;
  /** The proxy's syncWorkspace from `source`, as this session's proxy unless `tls` says otherwise. */
  sync(options?: { tls?: TlsMaterial; sessionId?: string; syncId?: string; changed?: string[]; baseSyncId?: string; outputBase?: string }): Promise<{
    syncId: string;
    ms: number;
  }>;
  /** An mTLS client of the agent, as this session's proxy unless `tls` says otherwise; close it after use. */
  client(tls?: TlsMaterial): AgentClient;
  /** rawSync to this agent, as this session's proxy unless `tls` says otherwise. */
  raw(frames: SyncFrame[], tls?: TlsMaterial): ReturnType<typeof rawSync>;
  /** Empties the workspace, source and canary; the agent keeps running. */
  reset(): void;
  stop(): Promise<void>;
}

/** `agentOptions` go to the agent server as they are (e.g. a short keepalive). */
export async function startFixture(agentOptions: Partial<AgentServerOptions> = {}): Promise<Fixture> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-sync-'));
  const ca = await CertificateAuthority.loadOrCreate(path.join(root, 'ca'));
  const tlsFor = async (identity: Identity) => ({ caCertPem: ca.certPem, ...(await ca.issue(identity)) });
  const [workspace, source, canary] = ['workspace', 'source', 'canary'].map((name) => path.join(root, name));
  const dirs = [workspace, source, canary];
  dirs.forEach((dir) => fs.mkdirSync(dir));
  const proxyTls = await tlsFor({ kind: 'proxy', sessionId: SESSION, user: 'alice' });
  const agent = await startAgentServer({
    sessionId: SESSION,
    workspaceDir: workspace,
    tls: await tlsFor({ kind: 'agent', sessionId: SESSION }),
    listen: '127.0.0.1:0',
    ...agentOptions,
  });
  return {
    root,
    workspace,
    source,
    canary,
    agent,
    proxyTls,
    otherProxyTls: await tlsFor({ kind: 'proxy', sessionId: OTHER_SESSION, user: 'bob' }),
    sync: async ({ tls = proxyTls, sessionId = SESSION as string, ...options } = {}) => {
      const client = agentClient(agent.address, tls, sessionId);
      try {
        return await syncWorkspace({ workspace: source, agent: client, sessionId, ...options });
      } finally {
        client.close();
      }
    },
    client: (tls = proxyTls) => agentClient(agent.address, tls),
    raw: (frames, tls = proxyTls) => rawSync(agent.address, tls, frames),
    reset: () => dirs.forEach(empty),
    stop: async () => {
      await agent.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

export function empty(dir: string): void {
  // As bytes: a name need not be UTF-8.
  for (const entry of fs.readdirSync(dir, { encoding: 'buffer' })) fs.rmSync(Buffer.concat([Buffer.from(`${dir}/`), entry]), { recursive: true });
}

/** A client of the agent at `address` that accepts only the agent of `sessionId`. */
function agentClient(address: string, tls: TlsMaterial, sessionId: string = SESSION): AgentClient {
  const { Agent } = protos().agent.rbs.v1;
  const isAgent = (id: Identity) => id.kind === 'agent' && id.sessionId === sessionId;
  return new Agent(address, channelCredentials(tls, isAgent), tlsChannelOptions('127.0.0.1')) as unknown as AgentClient;
}

/** A Sync call spoken directly, as a client that is not rsync could. */
export function openSync(address: string, tls: TlsMaterial): grpc.ClientDuplexStream<SyncFrame, SyncFrame__Output> {
  const client = agentClient(address, tls);
  const call = client.sync();
  call.on('status', () => client.close());
  return call;
}

/** Sends `frames` and half-closes; resolves to the frames received and the final status. */
export function rawSync(address: string, tls: TlsMaterial, frames: SyncFrame[]) {
  const call = openSync(address, tls);
  const received: SyncFrame__Output[] = [];
  call.on('data', (frame: SyncFrame__Output) => received.push(frame));
  call.on('error', () => undefined); // reported by 'status'
  frames.forEach((frame) => call.write(frame));
  call.end();
  return new Promise<{ status: grpc.StatusObject; received: SyncFrame__Output[] }>((resolve) => call.on('status', (status) => resolve({ status, received })));
}

/** `count` files of `bytes(i)` random bytes, 100 to a directory. */
export function writeTree(dir: string, count: number, bytes: (i: number) => number): void {
  for (let i = 0; i < count; i++) {
    const sub = path.join(dir, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${i}.txt`), randomBytesOf(bytes(i)));
  }
}

const NOISE = Buffer.from(Array.from({ length: 1 << 16 }, () => Math.floor(Math.random() * 256)));
/** Cheap distinct content: a random window of a random buffer. */
function randomBytesOf(n: number): Buffer {
  const start = Math.floor(Math.random() * (NOISE.length - n));
  return NOISE.subarray(start, start + n);
}

/** Every entry under `dir`: a directory, a symlink's target, or a file's exec bit and SHA-256. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const name = path.join(rel, entry.name);
      const full = path.join(dir, name);
      if (entry.isDirectory()) {
        out[name] = 'dir';
        walk(name);
      } else if (entry.isSymbolicLink()) out[name] = `-> ${fs.readlinkSync(full)}`;
      else {
        const exec = fs.statSync(full).mode & 0o100 ? 'x' : '-';
        out[name] = `${exec} ${createHash('sha256').update(fs.readFileSync(full)).digest('hex')}`;
      }
    }
  };
  walk('');
  return out;
}

/** Inode numbers of the files under `dir`: rsync replaces a file it transfers with a new one. */
export function inodes(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (entry.isFile()) out.set(path.relative(dir, full), fs.statSync(full).ino);
  }
  return out;
}

/** Pids of the rsync processes working in `dir`. */
export function rsyncsIn(dir: string): number[] {
  return fs.readdirSync('/proc').flatMap((entry) => {
    try {
      const running = /^\d+$/.test(entry) && fs.readlinkSync(`/proc/${entry}/cwd`) === dir;
      return running && fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'rsync' ? [Number(entry)] : [];
    } catch {
      return []; // gone meanwhile, or not ours to inspect
    }
  });
}

export function write(dir: string, files: Record<string, string>): void {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
}
