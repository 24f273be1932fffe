/**
 * What a real node (kube-node.ts) changes on this host, and how it is put back: a machine-wide lock, the
 * kernel settings the kubelet and the CNI bridge set, the bridge and its forwarding rules, network namespaces,
 * mounts, the containers' processes and the kubelet's cgroups. The lock is a flock held by a child process that
 * exits when this one does, however it dies; the state is written beside it, so the next node to start puts
 * back what a killed run left.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { pidsWhere } from './processes';

const LOCK = '/run/rbs-real-node.lock';
const STATE = '/run/rbs-real-node.json';
/** The kubelet sets these (its defaults for a node's kernel) and the bridge turns on forwarding: all go back. */
const SYSCTLS = [
  'kernel/panic',
  'kernel/panic_on_oops',
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward',
];
const FORWARD_RULE_COMMENT = 'rbs-real-node';
const COMMAND_TIMEOUT_MS = 30_000;

/** What must be undone, as written to STATE. */
export interface HostChanges {
  dir: string;
  bridge: string;
  /** Each sysctl's value before the node started. */
  sysctls: Record<string, string>;
  /** Network namespaces that were there before it started (the CRI of containerd 1.6 keeps them in /var/run/netns). */
  netnsBefore: string[];
}

export const sh = (command: string, args: string[]) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: COMMAND_TIMEOUT_MS });
export const shAsync = promisify(execFile);

/** Takes the machine's lock (or fails naming why), then puts back what a previous holder left. */
export async function lockHost(): Promise<{ release(): void }> {
  const holder: ChildProcess = spawn('flock', ['--nonblock', '--conflict-exit-code', '75', LOCK, 'sh', '-c', 'echo locked; exec cat'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const locked = await new Promise<boolean>((resolve, reject) => {
    holder.stdout!.once('data', () => resolve(true));
    holder.once('exit', (code) => (code === 75 ? resolve(false) : reject(new Error(`flock ${LOCK} exited with ${code}`))));
    holder.once('error', reject);
  });
  if (!locked) throw new Error(`another real node runs on this machine (${LOCK} is locked); one at a time`);
  const release = () => holder.stdin!.end(); // cat ends, and the lock with it (as when this process dies)
  if (fs.existsSync(STATE)) {
    try {
      await undoHostChanges(JSON.parse(fs.readFileSync(STATE, 'utf8')) as HostChanges);
    } catch (err) {
      release();
      throw new Error(`a real node that was killed left ${STATE}, and putting it back failed: ${(err as Error).message}`);
    }
  }
  return { release };
}

export function recordHostChanges(dir: string, bridge: string): HostChanges {
  const changes: HostChanges = { dir, bridge, sysctls: Object.fromEntries(SYSCTLS.map((s) => [s, readSysctl(s)])), netnsBefore: listNetns() };
  fs.writeFileSync(STATE, JSON.stringify(changes));
  return changes;
}

function readSysctl(name: string): string {
  return fs.readFileSync(path.join('/proc/sys', name), 'utf8').trim();
}

function listNetns(): string[] {
  return fs.existsSync('/var/run/netns') ? fs.readdirSync('/var/run/netns').filter((n) => n.startsWith('cni-')) : [];
}

/** The bridge plugin turns on IP forwarding: drop whatever would be routed into or out of this node's pods. */
export function isolateBridge(bridge: string): void {
  for (const rule of forwardRules(bridge)) sh('iptables', ['-w', '5', '-I', ...rule]);
}

const forwardRules = (bridge: string) =>
  [
    ['-i', bridge, '!', '-o', bridge],
    ['-o', bridge, '!', '-i', bridge],
  ].map((match) => ['FORWARD', ...match, '-m', 'comment', '--comment', FORWARD_RULE_COMMENT, '-j', 'DROP']);

/** While the node is off: this host's packets to its pods go nowhere, as to a machine that is gone (no refusal). */
const cutOffRule = (bridge: string) => ['OUTPUT', '-o', bridge, '-m', 'comment', '--comment', FORWARD_RULE_COMMENT, '-j', 'DROP'];

/**
 * The node's machine dies: it is cut off from this host, and its containers and processes (containerd, the
 * kubelet, the shims) are killed, the runtime's state of its containers lost as in a reboot. Its directory,
 * the images and the volumes stay, for powerOn.
 */
export async function powerOff(changes: HostChanges): Promise<void> {
  sh('iptables', ['-w', '5', '-I', ...cutOffRule(changes.bridge)]);
  await killContainers(path.join(changes.dir, 'runc'));
  killProcessesNaming(changes.dir);
}

/** The machine is back on the network (its processes are the node's to start again). */
export function powerOn(changes: HostChanges): void {
  quietly('iptables', ['-w', '5', '-D', ...cutOffRule(changes.bridge)]);
}

/**
 * Stops every process of the node and undoes its changes. Each step runs whatever the others did; the first
 * failure is thrown at the end. STATE goes once everything went back.
 */
export async function undoHostChanges(changes: HostChanges): Promise<void> {
  const failures: string[] = [];
  const step = async (what: string, work: () => unknown) => {
    try {
      await work();
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
    }
  };
  const { dir, bridge } = changes;
  // Containers first (their processes are runc's, not children of the node's), then the node's own processes.
  await step('kill the containers', () => killContainers(path.join(dir, 'runc')));
  await step('kill the processes', () => killProcessesNaming(dir));
  await step('unmount', () => unmountUnder(dir));
  await step('remove network namespaces', () => {
    for (const ns of listNetns().filter((n) => !changes.netnsBefore.includes(n))) {
      const file = path.join('/var/run/netns', ns);
      quietly('umount', [file]);
      fs.rmSync(file, { force: true });
    }
  });
  for (const rule of [...forwardRules(bridge), cutOffRule(bridge)]) await step('remove a rule', () => quietly('iptables', ['-w', '5', '-D', ...rule]));
  await step('remove the bridge', () => quietly('ip', ['link', 'del', bridge]));
  await step('remove log links', () => removeContainerLogLinks(dir));
  await step('remove cgroups', removeEmptyKubepods);
  for (const [name, value] of Object.entries(changes.sysctls)) {
    await step(`restore ${name}`, () => readSysctl(name) === value || fs.writeFileSync(path.join('/proc/sys', name), value));
  }
  await step('remove the node directory', () => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 }));
  if (failures.length > 0) throw new Error(failures.join('; '));
  fs.rmSync(STATE, { force: true });
}

/** Every container of the node's runc (its root directory is the node's own), killed and deleted. */
async function killContainers(runcRoot: string): Promise<void> {
  if (!fs.existsSync(runcRoot)) return;
  for (const namespace of fs.readdirSync(runcRoot)) {
    const root = path.join(runcRoot, namespace);
    const ids = (await shAsync('runc', ['--root', root, 'list', '-q'], { timeout: COMMAND_TIMEOUT_MS })).stdout.split('\n').filter(Boolean);
    for (const id of ids) {
      await shAsync('runc', ['--root', root, 'kill', id, 'KILL'], { timeout: COMMAND_TIMEOUT_MS }).catch(() => undefined);
      await shAsync('runc', ['--root', root, 'delete', '--force', id], { timeout: COMMAND_TIMEOUT_MS }).catch(() => undefined);
    }
  }
}

/** containerd, the kubelet and the shims all name the node's directory in their command line. */
function killProcessesNaming(dir: string): void {
  for (const pid of pidsWhere((cmdline) => cmdline.includes(dir))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function quietly(command: string, args: string[]): void {
  try {
    sh(command, args);
  } catch {
    /* already gone */
  }
}

function unmountUnder(dir: string): void {
  const mounts = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(dir + '/')))
    .sort()
    .reverse();
  for (const mount of mounts) quietly('umount', ['-l', mount]);
}

/** The kubelet links each container's log into /var/log/containers. */
function removeContainerLogLinks(dir: string): void {
  const links = '/var/log/containers';
  if (!fs.existsSync(links)) return;
  for (const name of fs.readdirSync(links)) {
    const link = path.join(links, name);
    try {
      if (fs.readlinkSync(link).startsWith(dir + '/')) fs.rmSync(link);
    } catch {
      /* not a link */
    }
  }
}

/** The kubelet's pod cgroups (kubepods), in every hierarchy, deepest first; one still in use stays. */
function removeEmptyKubepods(): void {
  const roots = ['/sys/fs/cgroup/kubepods', ...fs.readdirSync('/sys/fs/cgroup').map((h) => path.join('/sys/fs/cgroup', h, 'kubepods'))];
  for (const root of roots) if (fs.existsSync(root)) quietly('find', [root, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
}
