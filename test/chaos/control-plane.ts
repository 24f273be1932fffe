/**
 * Chaos in the control plane. `npm start`'s stack (lib/local/stack.ts: Temporal requiring mTLS, the
 * signer, a worker and the orchestrator, each a process its supervisor restarts, as Kubernetes
 * would) loses one process to SIGKILL, or has it frozen (SIGSTOP) for a while: between commands, as
 * a new proxy asks for its session, or while a new session is provisioned. Each case checks that
 * the command succeeds within its bound (the stack is back within seconds: nothing to fail for);
 * that the next build succeeds too, with the right output; and that nothing is left behind: one
 * agent per session, one proxy per workspace, every process of the stack running.
 *   RBS_CHAOS_ONLY=worker-kill@provision npx jest test/chaos/control-plane
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { homePaths, loadConfig, type RbsConfig } from '../../lib/config';
import { LocalBackend, defaultAgentCommand } from '../../lib/compute/local-backend';
import { OrchestratorClient } from '../../lib/grpc/orchestrator-client';
import { freePort } from '../../lib/local/ports';
import { startLocalStack, type LocalStack } from '../../lib/local/stack';
import { CertificateAuthority } from '../../lib/pki/ca';
import { type BazelResult, type BazelWorkspace, bazelServersOn, workspaceOfUser } from '../data-path/fixture';
import { waitFor } from '../harness/wait';
import { CHAOS_KEEPALIVE_MS } from './rig';

const PROCESSES = ['orchestrator', 'worker', 'temporal-server', 'signer'] as const;
const FAULTS = ['kill', 'freeze'] as const;
/** Between commands; a new proxy's first command (GetServer of a READY session); a new session's first command. */
const PHASES = ['idle', 'connect', 'provision'] as const;
type Case = { process: (typeof PROCESSES)[number]; fault: (typeof FAULTS)[number]; phase: (typeof PHASES)[number] };
const name = (c: Case) => `${c.process}-${c.fault}@${c.phase}`;

const ALL = PROCESSES.flatMap((process) => FAULTS.flatMap((fault) => PHASES.map((phase) => ({ process, fault, phase }))));
const ONLY = process.env.RBS_CHAOS_ONLY?.split(',').map((n) => n.trim());
const CASES = ONLY ? ALL.filter((c) => ONLY.includes(name(c))) : ALL;

/** How long a frozen process stays frozen: a long stall, not a hang (a hang is a kill that nobody restarts). */
const FREEZE_MS = 5_000;
const COMMAND_BOUND_MS = 90_000;
const RESTORED_BOUND_MS = 60_000;

jest.setTimeout(240_000);

let config: RbsConfig;
let stack: LocalStack;
let ca: CertificateAuthority;
let ws: BazelWorkspace;
const supervisorLog: string[] = [];
const outcomes: string[] = [];

beforeAll(async () => {
  config = loadConfig({
    RBS_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-chaos-cp-')),
    RBS_TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
    RBS_ORCHESTRATOR_LISTEN: `127.0.0.1:${await freePort()}`,
    RBS_SIGNER_LISTEN: `127.0.0.1:${await freePort()}`,
    RBS_TASK_QUEUE: 'rbs-chaos-control-plane',
  });
  // The stack's processes take their settings from this environment: agents notice silent proxies quickly.
  process.env.RBS_KEEPALIVE_MS = String(CHAOS_KEEPALIVE_MS);
  const started = Date.now();
  stack = await startLocalStack(config, { ui: false, persist: false, log: (m) => supervisorLog.push(`${((Date.now() - started) / 1000).toFixed(1)} s: ${m}`) });
  ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  ws = await newWorkspace('cora');
  const first = await ws.bazel(['build', ...ws.buildOptions, '//:gen']);
  if (first.code !== 0) throw new Error(`the first build failed: ${first.stderr}`);
}, 180_000);

afterAll(async () => {
  console.log([`control-plane chaos, ${CASES.length} cases:`, ...outcomes, 'supervisor:', ...supervisorLog.map((m) => `  ${m}`)].join('\n'));
  ws?.destroy();
  await stack?.stop();
  await new LocalBackend({ home: config.home, agentCommand: defaultAgentCommand() }).listAgents().then((agents) => Promise.all(agents.map((a) => process.kill(Number(a.id), 'SIGKILL'))));
  delete process.env.RBS_KEEPALIVE_MS;
  fs.rmSync(config.home, { recursive: true, force: true });
});

/** The user's sessions of `workspace` that have not ended; `end` ends them. */
async function sessionsOf(user: string, workspace: string, end = false) {
  const client = new OrchestratorClient(stack.orchestrator, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user, operator: false })) });
  try {
    const live = (await client.listSessions()).filter((s) => s.workspace === workspace);
    if (end) for (const session of live) await client.endSession(session.sessionId);
    return live;
  } finally {
    client.close();
  }
}

function newWorkspace(user: string): Promise<BazelWorkspace> {
  return workspaceOfUser({ home: config.home, ca, orchestrator: stack.orchestrator }, user, { RBS_KEEPALIVE_MS: String(CHAOS_KEEPALIVE_MS) });
}

const pidOf = (processName: string) => stack.services.find((s) => s.name === processName)!.current().process.pid!;

/** Strikes; resolves with what undoes a freeze (a kill is undone by the supervisor). */
function strike({ process: target, fault }: Case): () => void {
  const pid = pidOf(target);
  if (fault === 'kill') {
    process.kill(pid, 'SIGKILL');
    return () => undefined;
  }
  process.kill(pid, 'SIGSTOP');
  const thaw = () => process.kill(pid, 'SIGCONT');
  const timer = setTimeout(thaw, FREEZE_MS);
  return () => (clearTimeout(timer), thaw());
}

/** Every process of the stack runs again (the one struck restarted or thawed), and answers. */
async function stackWhole(): Promise<void> {
  const running = () => stack.services.every((s) => s.failed() === null && s.current().exited() === null);
  await waitFor(running, RESTORED_BOUND_MS, 'the stack to be whole again');
}

async function build(workspace: BazelWorkspace, tag: string): Promise<BazelResult> {
  fs.writeFileSync(path.join(workspace.workspace, 'in.txt'), `${tag}\n`);
  return workspace.bazel(['build', ...workspace.buildOptions, '//:gen']);
}

test.each(CASES.map((c) => [name(c), c] as const))('%s', async (caseName, chaosCase) => {
  const user = chaosCase.phase === 'provision' ? `new-${caseName.replace(/[^a-z]/g, '-')}` : 'cora';
  const target = user === 'cora' ? ws : await newWorkspace(user);
  try {
    if (chaosCase.phase === 'connect') process.kill(target.proxyPid(), 'SIGKILL'); // the command starts a new proxy
    const struckAt = Date.now();
    const heal = strike(chaosCase);
    const command = build(target, `during ${caseName}`);
    const ended = await Promise.race([command, new Promise<null>((resolve) => setTimeout(resolve, COMMAND_BOUND_MS, null))]);
    heal();
    if (!ended) throw new Error(`${caseName}: the command hung: still running ${COMMAND_BOUND_MS} ms after the fault`);
    const context = `${caseName}: exit ${ended.code} after ${Date.now() - struckAt} ms\n${ended.stderr}`;
    if (ended.code === null) throw new Error(`${context}\nthe client did not end by itself`);
    // A restart takes seconds, and so does a stall: the proxy waits them out (GetServer through a
    // restarting orchestrator included), so the command itself succeeds.
    if (ended.code !== 0) throw new Error(`${context}\nit failed: a control-plane process that is back within seconds must not fail a build`);

    await stackWhole();
    const next = await build(target, `after ${caseName}`);
    if (next.code !== 0) throw new Error(`${context}\nthe next build: exit ${next.code}\n${next.stderr}\nit did not come back by itself`);
    const built = fs.readFileSync(path.join(target.workspace, 'bazel-bin', 'gen.txt'), 'utf8');
    if (built !== `after ${caseName}\n`) throw new Error(`${context}\nbazel-bin/gen.txt holds ${JSON.stringify(built)}`);
    const said = ended.stderr.split('\n').filter((line) => line.startsWith('RBS: '));
    outcomes.push(`  ${caseName.padEnd(32)} ${ended.ms} ms; next build ${next.ms} ms${said.map((line) => `\n    ${line}`).join('')}`);

    // Nothing left behind: one live session for the workspace, one agent for each session, one proxy.
    const live = await sessionsOf(user, target.workspace);
    expect(live.map((s) => s.phase)).toEqual(['READY']);
    const agents = (await new LocalBackend({ home: config.home, agentCommand: defaultAgentCommand() }).listAgents()).map((a) => a.sessionId);
    expect(agents.filter((id) => id === live[0].sessionId)).toHaveLength(1);
    expect(new Set(agents).size).toBe(agents.length);
    expect(bazelServersOn(target.outputBase)).toHaveLength(1);
  } finally {
    if (target !== ws) {
      await target.bazel(['shutdown']);
      await sessionsOf(user, target.workspace, true);
      target.destroy();
    }
  }
});
