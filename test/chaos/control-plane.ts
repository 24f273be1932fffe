/**
 * Chaos in the control plane. `npm start`'s stack (lib/local/stack.ts: Temporal requiring mTLS, the
 * signer, a worker and the orchestrator, each a process its supervisor restarts, as Kubernetes
 * would) loses one process to SIGKILL, or has it frozen (SIGSTOP) for 5 s: between commands, as a
 * new proxy asks for its session (struck once that proxy is up), or while a new session is
 * provisioned (struck once its workflow provisions). Each case checks that the command succeeds
 * within its bound (the stack is back within seconds: nothing to fail for), that the struck process
 * and only it was restarted (kill) or none was (freeze), that the next build succeeds too, with the
 * right output, and that nothing is left behind: one agent per session, one proxy per workspace.
 * Registered by chaos.test.ts after the command-path cases, so the two never run at once.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { homePaths, loadConfig, type RbsConfig } from '../../lib/config';
import { LocalBackend, defaultAgentCommand } from '../../lib/compute/local-backend';
import { OrchestratorClient, type Session } from '../../lib/grpc/orchestrator-client';
import { freePort } from '../../lib/local/ports';
import { startLocalStack, type LocalStack } from '../../lib/local/stack';
import { CertificateAuthority } from '../../lib/pki/ca';
import { type BazelResult, type BazelWorkspace, bazelServersOn, isAlive, workspaceOfUser } from '../data-path/fixture';
import { waitFor } from '../harness/wait';
import { CHAOS_KEEPALIVE_MS } from './rig';

const PROCESSES = ['orchestrator', 'worker', 'temporal-server', 'signer'] as const;
const FAULTS = ['kill', 'freeze'] as const;
/** Between commands; a new proxy's first command (GetServer of a READY session); a new session's first command. */
const PHASES = ['idle', 'connect', 'provision'] as const;
type Case = { process: (typeof PROCESSES)[number]; fault: (typeof FAULTS)[number]; phase: (typeof PHASES)[number] };
const caseName = (c: Case) => `${c.process}-${c.fault}@${c.phase}`;
const ALL: Case[] = PROCESSES.flatMap((process) => FAULTS.flatMap((fault) => PHASES.map((phase) => ({ process, fault, phase }))));

/** How long a frozen process stays frozen: a long stall, not a hang (a hang is a kill that nobody restarts). */
const FREEZE_MS = 5_000;
const COMMAND_BOUND_MS = 90_000;
const RESTORED_BOUND_MS = 60_000;

/** Registers the cases (those `only` names, if given) with their stack's hooks, in a describe block. */
export function describeControlPlaneChaos(only?: string[]): void {
  const cases = only ? ALL.filter((c) => only.includes(caseName(c))) : ALL;
  if (cases.length === 0) return; // RBS_CHAOS_ONLY named only command-path cases
  describe('the control plane', () => {
    let plane: ControlPlane;
    const outcomes: string[] = [];
    beforeAll(async () => (plane = await startControlPlane()), 180_000);
    afterAll(async () => {
      console.log([`control-plane chaos, ${cases.length} cases:`, ...outcomes, 'supervisor:', ...(plane?.log ?? []).map((m) => `  ${m}`)].join('\n'));
      await plane?.stop();
    });
    test.each(cases.map((c) => [caseName(c), c] as const))('%s', async (_name, c) => {
      outcomes.push(await runCase(plane, c));
    });
  });
}

interface ControlPlane {
  config: RbsConfig;
  stack: LocalStack;
  ca: CertificateAuthority;
  /** The long-lived developer's workspace, built once already. */
  ws: BazelWorkspace;
  /** The supervisor's messages, each with its time. */
  log: string[];
  workspace(user: string): Promise<BazelWorkspace>;
  stop(): Promise<void>;
}

async function startControlPlane(): Promise<ControlPlane> {
  const config = loadConfig({
    RBS_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-chaos-cp-')),
    RBS_TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
    RBS_ORCHESTRATOR_LISTEN: `127.0.0.1:${await freePort()}`,
    RBS_SIGNER_LISTEN: `127.0.0.1:${await freePort()}`,
    RBS_TASK_QUEUE: 'rbs-chaos-control-plane',
  });
  // The stack's processes take their settings from this environment: agents notice silent proxies quickly.
  process.env.RBS_KEEPALIVE_MS = String(CHAOS_KEEPALIVE_MS);
  const log: string[] = [];
  const started = Date.now();
  const stack = await startLocalStack(config, { ui: false, persist: false, log: (m) => log.push(`${((Date.now() - started) / 1000).toFixed(1)} s: ${m}`) });
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  const workspace = (user: string) =>
    workspaceOfUser({ home: config.home, ca, orchestrator: stack.orchestrator }, user, { RBS_KEEPALIVE_MS: String(CHAOS_KEEPALIVE_MS) });
  const ws = await workspace('cora');
  const first = await ws.bazel(['build', ...ws.buildOptions, '//:gen']);
  if (first.code !== 0) throw new Error(`the first build failed: ${first.stderr}`);
  return {
    config,
    stack,
    ca,
    ws,
    log,
    workspace,
    async stop() {
      ws.destroy();
      await stack.stop();
      const agents = await new LocalBackend({ home: config.home, agentCommand: defaultAgentCommand() }).listAgents();
      for (const agent of agents) process.kill(Number(agent.id), 'SIGKILL');
      delete process.env.RBS_KEEPALIVE_MS;
      fs.rmSync(config.home, { recursive: true, force: true });
    },
  };
}

/** An orchestrator client of `user`, for `use`. */
async function asUser<T>(plane: ControlPlane, user: string, use: (client: OrchestratorClient) => Promise<T>): Promise<T> {
  const { ca, stack } = plane;
  const client = new OrchestratorClient(stack.orchestrator, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user, operator: false })) });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

const liveSessions = async (client: OrchestratorClient, workspace: string): Promise<Session[]> =>
  (await client.listSessions()).filter((s) => s.workspace === workspace);

/** Waits until the command reaches the case's phase: its new proxy is up, or its new session provisions. */
async function reachPhase(plane: ControlPlane, c: Case, target: BazelWorkspace, user: string, killedProxy: number): Promise<void> {
  if (c.phase === 'connect') {
    const newProxy = () => {
      const pid = Number(target.serverFile('server.pid.txt'));
      return pid > 0 && pid !== killedProxy && isAlive(pid);
    };
    return waitFor(newProxy, 60_000, `${caseName(c)}: the new proxy`);
  }
  if (c.phase === 'provision') {
    await asUser(plane, user, (client) =>
      waitFor(
        async () => (await liveSessions(client, target.workspace)).some((s) => s.phase.startsWith('PROVISIONING')),
        60_000,
        `${caseName(c)}: provisioning`,
      ),
    );
  }
}

/** Strikes; returns what undoes a freeze (the supervisor undoes a kill). */
function strike(plane: ControlPlane, c: Case): () => void {
  const child = plane.stack.services.find((s) => s.name === c.process)!.current();
  if (child.exited() !== null) throw new Error(`${caseName(c)}: ${c.process} is not running: ${child.exited()}`);
  if (c.fault === 'kill') {
    child.process.kill('SIGKILL');
    return () => undefined;
  }
  child.process.kill('SIGSTOP');
  const thaw = () => child.process.kill('SIGCONT');
  const timer = setTimeout(thaw, FREEZE_MS);
  return () => (clearTimeout(timer), thaw());
}

/** Every process of the stack runs again; one given up on fails the case at once. */
async function stackWhole(plane: ControlPlane): Promise<void> {
  await waitFor(
    () => {
      const failed = plane.stack.services.find((s) => s.failed() !== null);
      if (failed) throw new Error(`${failed.name} was given up on: ${failed.failed()}`);
      return plane.stack.services.every((s) => s.current().exited() === null);
    },
    RESTORED_BOUND_MS,
    'the stack to be whole again',
  );
}

async function build(workspace: BazelWorkspace, tag: string): Promise<BazelResult> {
  fs.writeFileSync(path.join(workspace.workspace, 'in.txt'), `${tag}\n`);
  return workspace.bazel(['build', ...workspace.buildOptions, '//:gen']);
}

/** A failed case's error, naming a copy of the stack's logs (its home is removed when the suite ends). */
function withLogsKept(plane: ControlPlane, name: string, err: unknown): Error {
  const kept = fs.mkdtempSync(path.join(os.tmpdir(), `rbs-chaos-${name.replace(/[^a-z-]/g, '-')}-logs-`));
  fs.cpSync(homePaths(plane.config.home).logs, kept, { recursive: true });
  const error = err instanceof Error ? err : new Error(String(err));
  error.message += `\n(the stack's logs are kept in ${kept})`;
  return error;
}

/** Runs one case; throws, saying which invariant broke; returns its line for the summary. */
async function runCase(plane: ControlPlane, c: Case): Promise<string> {
  const name = caseName(c);
  const user = c.phase === 'provision' ? `new-${name.replace(/[^a-z]/g, '-')}` : 'cora';
  const target = user === 'cora' ? plane.ws : await plane.workspace(user);
  const logFrom = plane.log.length;
  try {
    const killedProxy = c.phase === 'connect' ? target.proxyPid() : 0;
    if (killedProxy) process.kill(killedProxy, 'SIGKILL'); // the command starts a new proxy
    const command = build(target, `during ${name}`);
    await reachPhase(plane, c, target, user, killedProxy);
    const heal = strike(plane, c);
    const ended = await Promise.race([command, new Promise<null>((resolve) => setTimeout(resolve, COMMAND_BOUND_MS, null))]);
    heal();
    if (!ended) throw new Error(`${name}: the command hung: still running ${COMMAND_BOUND_MS} ms after the fault`);
    const context = `${name}: exit ${ended.code} after ${ended.ms} ms\n${ended.stderr}`;
    // A restart takes seconds, and so does a stall: the proxy waits them out, so the command succeeds.
    if (ended.code !== 0) throw new Error(`${context}\nit failed: a control-plane process that is back within seconds must not fail a build`);
    // An orchestrator killed under a proxy's GetServer: the proxy said it was trying again.
    if (
      c.process === 'orchestrator' &&
      c.fault === 'kill' &&
      c.phase !== 'idle' &&
      !/^RBS: the orchestrator(: cannot connect| dropped GetServer).*: trying again/m.test(ended.stderr)
    ) {
      throw new Error(`${context}\nit did not say that it was trying the orchestrator again`);
    }

    await stackWhole(plane);
    const restarted = plane.log.slice(logFrom).flatMap((m) => /: (\S+) restarted/.exec(m)?.[1] ?? []);
    expect({ name, restarted }).toEqual({ name, restarted: c.fault === 'kill' ? [c.process] : [] });
    const next = await build(target, `after ${name}`);
    if (next.code !== 0) throw new Error(`${context}\nthe next build: exit ${next.code}\n${next.stderr}\nit did not come back by itself`);
    const built = fs.readFileSync(path.join(target.workspace, 'bazel-bin', 'gen.txt'), 'utf8');
    if (built !== `after ${name}\n`) throw new Error(`${context}\nbazel-bin/gen.txt holds ${JSON.stringify(built)}`);

    // Nothing left behind: one live session for the workspace, one agent for each session, one proxy.
    const live = await asUser(plane, user, (client) => liveSessions(client, target.workspace));
    expect(live.map((s) => s.phase)).toEqual(['READY']);
    const agents = (await new LocalBackend({ home: plane.config.home, agentCommand: defaultAgentCommand() }).listAgents()).map((a) => a.sessionId);
    expect(agents.filter((id) => id === live[0].sessionId)).toHaveLength(1);
    expect(new Set(agents).size).toBe(agents.length);
    expect(bazelServersOn(target.outputBase)).toHaveLength(1);
    const said = ended.stderr.split('\n').filter((line) => line.startsWith('RBS: '));
    return `  ${name.padEnd(32)} ${ended.ms} ms; next build ${next.ms} ms${said.map((line) => `\n    ${line}`).join('')}`;
  } catch (err) {
    throw withLogsKept(plane, name, err);
  } finally {
    if (target !== plane.ws) {
      await target.bazel(['shutdown']);
      await asUser(plane, user, async (client) => {
        for (const session of await liveSessions(client, target.workspace)) await client.endSession(session.sessionId);
      });
      target.destroy();
    }
  }
}
