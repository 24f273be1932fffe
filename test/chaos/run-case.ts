/**
 * One chaos case: a command is started, the fault strikes in the case's phase, and then the
 * invariants are checked. The command ends within its bound with an exit code and a message; the
 * next build succeeds by itself; nothing is left behind; the sources and outputs on both sides
 * are exactly right.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type BazelResult, bazelServersOn, isAlive } from '../data-path/fixture';
import { pidsWhere } from '../harness/processes';
import { rsyncsIn, snapshot } from '../sync/fixture';
import { waitFor } from '../harness/wait';
import { type ChaosCase, caseName } from './cases';
import { type ChaosRig, remoteServers, replaceBlob, sessionAgent } from './rig';

/** The faulted command ends within this. The slowest path: a frozen Bazel server noticed by the agent's watch (≤15 s). */
const COMMAND_BOUND_MS = 60_000;
/** Ctrl-C ends the client within this, in every state. */
const INTERRUPT_BOUND_MS = 2_000;
/** The next build succeeds within this, with no manual step (a new agent and a new Bazel server included). */
const RECOVERY_BOUND_MS = 60_000;
/** How long a frozen proxy stays frozen: the client waits for it, as it would for a frozen local server. */
const PROXY_FREEZE_MS = 1_500;

export interface CaseOutcome {
  name: string;
  /** The faulted command: its exit code, and how long it took from the fault to its end. */
  code: number | null;
  endedMs: number;
  /** From the fault to the end of the next successful build: the faulted command itself, if it succeeded. */
  recoveryMs: number;
  /** The next build alone. */
  nextBuildMs: number;
}

/** Runs one case; throws, saying which invariant broke, with the command's output. */
export async function runCase(rig: ChaosRig, chaosCase: ChaosCase, tag: string): Promise<CaseOutcome> {
  const { ws } = rig;
  const name = caseName(chaosCase);
  fs.writeFileSync(path.join(ws.workspace, 'chaos', 'stamp.txt'), `${tag}\n`); // the nap and the big output run again
  replaceBlob(rig, chaosCase.phase === 'sync' ? tag : null);
  const target = { idle: '//:gen', sync: '//:gen', run: '//chaos:nap', fetch: '//chaos:big' }[chaosCase.phase];

  let heal = () => undefined as void;
  let struckAt = Date.now();
  const strike = async (client?: ChildProcess) => {
    struckAt = Date.now();
    heal = await inject(rig, chaosCase, client);
  };
  if (chaosCase.phase === 'idle') await strike();
  const { child, done } = ws.start(['build', ...ws.buildOptions, target]);
  if (chaosCase.phase !== 'idle') {
    await waitFor(() => inPhase(rig, chaosCase) || child.exitCode !== null, 60_000, `${name}: the command to reach its ${chaosCase.phase} phase`);
    if (child.exitCode !== null) throw new Error(`${name}: the command ended before its ${chaosCase.phase} phase could be struck:\n${(await done).stderr}`);
    await strike(child);
  }
  const ended = await Promise.race([done, new Promise<null>((resolve) => setTimeout(() => resolve(null), COMMAND_BOUND_MS))]);
  heal();
  if (!ended) {
    child.kill('SIGKILL');
    throw new Error(`${name}: the command hung: still running ${COMMAND_BOUND_MS} ms after the fault\n${(await done).stderr}`);
  }
  const endedMs = Date.now() - struckAt;
  checkEnding(name, chaosCase, ended, endedMs);

  const nextStarted = Date.now();
  await recover(rig, name, tag);
  const recoveryMs = ended.code === 0 ? endedMs : Date.now() - struckAt;
  const outcome = { name, code: ended.code, endedMs, recoveryMs, nextBuildMs: Date.now() - nextStarted };
  await checkNothingLeft(rig, name);
  return outcome;
}

/** The faulted command ended by itself, with an exit code and a message that say what happened. */
function checkEnding(what: string, c: ChaosCase, result: BazelResult, ms: number): void {
  const context = `${what}: exit ${result.code} after ${ms} ms\n${result.stderr}`;
  if (result.code === null) throw new Error(`${context}\nthe client was killed by ${result.signal}: it did not end by itself`);
  if (c.point === 'interrupt') {
    if (result.code !== 8) throw new Error(`${context}\nCtrl-C must end the command with exit 8`);
    if (ms > INTERRUPT_BOUND_MS) throw new Error(`${context}\nCtrl-C took more than ${INTERRUPT_BOUND_MS} ms`);
  }
  // A command that waits for a replaced agent says so on the developer's terminal.
  if (c.point === 'agent-kill' && c.phase === 'idle' && !/RBS: the agent at \S+ did not answer .*: waiting for the session to check it/.test(result.stderr)) {
    throw new Error(`${context}\nit did not say that it waits for the session to check its agent`);
  }
  // A failure says what happened: RBS names the part, or the client names its server's end.
  if (result.code !== 0 && !/RBS|Server terminated abruptly|interrupted|ERROR:/.test(result.stderr))
    throw new Error(`${context}\nit failed without saying why`);
}

/** Whether the command is in the case's phase now. */
function inPhase(rig: ChaosRig, { phase }: ChaosCase): boolean {
  const { ws } = rig;
  if (phase === 'sync') return rsyncsIn(ws.workspace).length > 0;
  if (phase === 'fetch') return rsyncsIn(ws.outputBase).length > 0;
  if (phase === 'run') return pidsWhere((cmdline) => cmdline === `sleep\0${rig.napSeconds}\0`).length > 0;
  return true;
}

const signal = (pid: number, sig: NodeJS.Signals) => {
  if (isAlive(pid)) process.kill(pid, sig);
};

/** Strikes; resolves with what undoes a freeze or a partition (nothing undoes a kill). */
async function inject(rig: ChaosRig, { point, phase }: ChaosCase, client?: ChildProcess): Promise<() => void> {
  switch (point) {
    case 'agent-kill':
    case 'agent-freeze': {
      const { pid } = await sessionAgent(rig);
      if (point === 'agent-kill') return (signal(pid, 'SIGKILL'), () => undefined);
      signal(pid, 'SIGSTOP');
      return () => signal(pid, 'SIGCONT');
    }
    case 'bazel-kill':
    case 'bazel-freeze': {
      const pids = await remoteServers(rig);
      if (pids.length !== 1) throw new Error(`${point}: the session has ${pids.length} Bazel servers, not 1`);
      if (point === 'bazel-kill') return (signal(pids[0], 'SIGKILL'), () => undefined);
      signal(pids[0], 'SIGSTOP');
      return () => signal(pids[0], 'SIGCONT');
    }
    case 'proxy-kill':
    case 'proxy-freeze': {
      const pid = rig.ws.proxyPid();
      if (point === 'proxy-kill') return (signal(pid, 'SIGKILL'), () => undefined);
      signal(pid, 'SIGSTOP');
      const thaw = setTimeout(() => signal(pid, 'SIGCONT'), PROXY_FREEZE_MS);
      return () => (clearTimeout(thaw), signal(pid, 'SIGCONT'));
    }
    case 'interrupt':
      client!.kill('SIGINT');
      return () => undefined;
    case 'agent-partition': {
      const { relay } = await sessionAgent(rig);
      relay.blackhole();
      return () => relay.heal();
    }
    case 'orchestrator-partition':
      rig.orchestratorRelay.blackhole();
      // Between commands, a new proxy too: its command must reach the orchestrator through the partition.
      if (phase === 'idle') signal(rig.ws.proxyPid(), 'SIGKILL');
      return () => rig.orchestratorRelay.heal();
  }
}

/** The next build, with an edit: it succeeds, and its output and the agent's copy are exactly right. */
async function recover(rig: ChaosRig, name: string, tag: string): Promise<BazelResult> {
  const { ws } = rig;
  fs.writeFileSync(path.join(ws.workspace, 'in.txt'), `after ${tag}\n`);
  const next = await ws.bazel(['build', ...ws.buildOptions, '//:gen']);
  const context = `${name}: the next build: exit ${next.code} after ${next.ms} ms\n${next.stderr}`;
  if (next.code !== 0) throw new Error(`${context}\nit did not come back by itself`);
  if (next.ms > RECOVERY_BOUND_MS) throw new Error(`${context}\nit took more than ${RECOVERY_BOUND_MS} ms`);
  const built = fs.readFileSync(path.join(ws.workspace, 'bazel-bin', 'gen.txt'), 'utf8');
  if (built !== `after ${tag}\n`) throw new Error(`${context}\nbazel-bin/gen.txt on the laptop holds ${JSON.stringify(built)}`);
  const { workspace } = await sessionAgent(rig);
  const sources = (dir: string) => Object.fromEntries(Object.entries(snapshot(dir)).filter(([file]) => !/^bazel-[^/]*$/.test(file)));
  const [here, there] = [sources(ws.workspace), sources(workspace)];
  const differ = [...new Set([...Object.keys(here), ...Object.keys(there)])].filter((file) => here[file] !== there[file]);
  if (differ.length > 0) throw new Error(`${context}\nthe agent's copy differs from the workspace at ${differ.slice(0, 5).join(', ')}`);
  return next;
}

/** One agent, one remote Bazel server, one proxy; no rsync, no action, no frozen process of ours left. */
async function checkNothingLeft(rig: ChaosRig, name: string): Promise<void> {
  const { ws } = rig;
  const agent = await sessionAgent(rig); // exactly one agent
  const left = async () => ({
    rsyncs: Object.fromEntries(
      [ws.workspace, ws.outputBase, agent.workspace, agent.outputBase].map((dir) => [dir, rsyncsIn(dir)]).filter(([, pids]) => pids.length > 0),
    ),
    naps: pidsWhere((cmdline) => cmdline === `sleep\0${rig.napSeconds}\0`),
    remoteServers: await remoteServers(rig),
    proxies: bazelServersOn(ws.outputBase),
  });
  // A cancelled action or a replaced server may take a moment to go; an agent's end of a stream cut
  // by a partition goes once the agent's own keepalive (15 s) gives up on the silent connection.
  let now = await left();
  const clean = () => Object.keys(now.rsyncs).length === 0 && now.naps.length === 0 && now.remoteServers.length === 1 && now.proxies.length === 1;
  await waitFor(async () => ((now = await left()), clean()), 30_000, 'leftovers to go').catch(() => {
    throw new Error(`${name}: left behind: ${JSON.stringify(now)}`);
  });
  const frozen = [...now.remoteServers, ...now.proxies].filter((pid) => /^\d+ \(.*\) [Tt]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'latin1')));
  if (frozen.length > 0) throw new Error(`${name}: processes still stopped: ${frozen.join(', ')}`);
}
