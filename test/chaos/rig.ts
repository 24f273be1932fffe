/**
 * What a chaos run works on: one developer's workspace on a whole local stack, driven by the stock
 * client, with a relay the test controls between the proxy and the orchestrator and between the
 * proxy and every agent (the backend hands out the relay's address). Proxies here notice a silent
 * peer after RBS_KEEPALIVE_MS, shortened so that a case takes seconds, not half a minute.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestStack } from '../harness/stack';
import { type TcpRelay, startTcpRelay } from '../harness/tcp-relay';
import { type BazelWorkspace, bazelServersOn, remoteOf, workspaceOfNewUser, writeFiles } from '../data-path/fixture';

export const CHAOS_KEEPALIVE_MS = 2_000;

/** The size of what a sync-phase case sends and a fetch-phase case brings back: a window to strike in. */
const BIG_BYTES = 64 * 1024 * 1024;

export interface ChaosRig {
  stack: TestStack;
  ws: BazelWorkspace;
  orchestratorRelay: TcpRelay;
  /** By the address the session hands out. */
  agentRelays: Map<string, TcpRelay>;
  /** A duration only our `//chaos:nap` action sleeps, to find it. */
  napSeconds: string;
  close(): void;
}

/**
 * Routes every agent address the stack's backend hands out through a relay of its own. The
 * backend's own health checks (the session's probe) still go straight to the agent: a partition
 * between laptop and agent is not one between worker and agent.
 */
function relayAgents(stack: TestStack, relays: Map<string, TcpRelay>): void {
  const backend = stack.worker.backend;
  const waitForAgent = backend.waitForAgent.bind(backend);
  backend.waitForAgent = async (spec, wait) => {
    const relay = await startTcpRelay(await waitForAgent(spec, wait));
    relays.set(relay.address, relay);
    return relay.address;
  };
}

export async function startChaosRig(stack: TestStack, user: string): Promise<ChaosRig> {
  const orchestratorRelay = await startTcpRelay(stack.orchestrator.address);
  const agentRelays = new Map<string, TcpRelay>();
  relayAgents(stack, agentRelays);
  const ws = await workspaceOfNewUser(stack, user, { RBS_ORCHESTRATOR: orchestratorRelay.address, RBS_KEEPALIVE_MS: String(CHAOS_KEEPALIVE_MS) });
  const napSeconds = `3.${process.pid}${Date.now() % 1000}`;
  writeFiles(ws.workspace, {
    'chaos/stamp.txt': 'first\n',
    'chaos/BUILD': [
      `genrule(name = "nap", srcs = ["stamp.txt"], outs = ["nap.txt"], cmd = "sleep ${napSeconds}; cp $< $@")`,
      `genrule(name = "big", srcs = ["stamp.txt"], outs = ["big.bin"], cmd = "head -c ${BIG_BYTES} /dev/zero > $@; cat $< >> $@")`,
      '',
    ].join('\n'),
  });
  return {
    stack,
    ws,
    orchestratorRelay,
    agentRelays,
    napSeconds,
    close() {
      orchestratorRelay.close();
      agentRelays.forEach((relay) => relay.close());
      ws.destroy();
    },
  };
}

/** The session's agent as the stack sees it now: its pid (the local backend's id) and the relay to it. */
export async function sessionAgent(rig: ChaosRig): Promise<{ pid: number; relay: TcpRelay; outputBase: string; workspace: string; sessionId: string }> {
  const { session, outputBase, workspace } = await remoteOf(rig.stack, rig.ws);
  const agents = (await rig.stack.worker.backend.listAgents()).filter((agent) => agent.sessionId === session.sessionId);
  if (agents.length !== 1) throw new Error(`session ${session.sessionId} has ${agents.length} agents, not 1`);
  const relay = session.agentAddress ? rig.agentRelays.get(session.agentAddress) : undefined;
  if (!relay) throw new Error(`session ${session.sessionId}'s agent address ${session.agentAddress} is not one of the rig's relays`);
  return { pid: Number(agents[0].id), relay, outputBase, workspace, sessionId: session.sessionId };
}

/** The Bazel servers of the session's output base (normally one). */
export async function remoteServers(rig: ChaosRig): Promise<number[]> {
  return bazelServersOn((await remoteOf(rig.stack, rig.ws)).outputBase);
}

/** A fresh 64 MiB file for the next sync to send (the last one goes), or none. */
export function replaceBlob(rig: ChaosRig, tag: string | null): void {
  const dir = path.join(rig.ws.workspace, 'blob');
  fs.rmSync(dir, { recursive: true, force: true });
  if (tag === null) return;
  fs.mkdirSync(dir);
  const block = Buffer.alloc(1024 * 1024, tag);
  const fd = fs.openSync(path.join(dir, `${tag}.bin`), 'w');
  try {
    for (let written = 0; written < BIG_BYTES; written += block.length) fs.writeSync(fd, block);
  } finally {
    fs.closeSync(fd);
  }
}
