/**
 * A real node for the test control plane: Debian's containerd with runc and a kubelet of the apiserver's
 * version (scripts/install-node.sh), joined beside the kwok nodes. Pods scheduled onto it really run: images
 * from the docker-archives install-node.sh saved (the agent's, built from the Dockerfile), the kubelet's own
 * probes, Pod Security `restricted`, and real mounts. Pod IPs are on a bridge of this host that nothing is
 * forwarded into or out of, so pods reach this host only.
 *
 * Needs root. One at a time per machine: the kubelet keeps some state at fixed paths (the kubepods cgroups,
 * /var/log/containers), so a second start waits for the first's lock or fails naming its holder.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { startChild, type Child } from '../../lib/local/child';
import { freePort } from '../../lib/local/ports';
import { cacheDir, kubeletBinary } from '../../lib/local/tools';
import type { KubeControlPlane } from './kube-control-plane';
import { waitFor } from './wait';

export interface RealNode {
  name: string;
  /** Where a local PersistentVolume of this node may keep its directories. */
  volumesDir: string;
  stop(): Promise<void>;
}

/** The images install-node.sh leaves for containerd; the agent's is AGENT_TEST_IMAGE. */
export const AGENT_TEST_IMAGE = 'localhost/rbs/agent:test';
const PAUSE_IMAGE = 'localhost/rbs/pause:1';
const IMAGE_ARCHIVES = ['pause.tar', 'agent.tar'];
const INSTALL_NODE = 'run `bash scripts/install-node.sh` (npm test does)';
const LOCK = '/run/rbs-real-node.lock';
const CNI_BIN = '/usr/lib/cni';
const START_TIMEOUT_MS = 240_000; // most of it the agent image's import (1.4 GB) on a busy machine
/** For a test's beforeAll that starts a control plane and then a real node. */
export const REAL_NODE_START_TIMEOUT_MS = START_TIMEOUT_MS + 120_000;
const FORWARD_RULE_COMMENT = 'rbs-real-node';

export async function startRealNode(controlPlane: KubeControlPlane): Promise<RealNode> {
  if (process.getuid?.() !== 0) throw new Error('the real node needs root (containerd, runc and the kubelet)');
  const archives = IMAGE_ARCHIVES.map((file) => path.join(cacheDir(), 'node', file));
  for (const archive of archives) if (!fs.existsSync(archive)) throw new Error(`no image archive ${archive}: ${INSTALL_NODE}`);
  const kubelet = kubeletBinary();
  takeLock();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-node-'));
  const suffix = path
    .basename(dir)
    .slice(-6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '0');
  const node: NodeState = {
    dir,
    name: `real-node-${suffix}`,
    bridge: `rbs${suffix}`.slice(0, 15),
    subnet: `10.88.${Math.floor(Math.random() * 250) + 1}.0/24`,
    children: [],
    forwardRules: [],
    netnsBefore: new Set(listNetns()),
  };
  try {
    await start(node, controlPlane, kubelet, archives);
  } catch (err) {
    await teardown(node);
    throw new Error(`the real node did not start (logs in ${path.join(dir, 'logs')}): ${(err as Error).message}`);
  }
  let stopped: Promise<void> | undefined;
  return {
    name: node.name,
    volumesDir: path.join(dir, 'volumes'),
    stop: () => (stopped ??= teardown(node)),
  };
}

interface NodeState {
  dir: string;
  name: string;
  bridge: string;
  subnet: string;
  children: Child[];
  forwardRules: string[][];
  netnsBefore: Set<string>;
  containerd?: Child;
}

function takeLock(): void {
  try {
    fs.writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const holder = Number(fs.readFileSync(LOCK, 'utf8'));
  if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
    throw new Error(`another real node runs on this machine (process ${holder} holds ${LOCK}); one at a time`);
  }
  fs.writeFileSync(LOCK, String(process.pid)); // its holder is gone
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sh = (command: string, args: string[]) => execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** This host's address towards the outside: the kubelet refuses a loopback node IP. */
function hostAddress(): string {
  const route = sh('ip', ['-4', '-o', 'route', 'get', '1.1.1.1']);
  const address = / src (\d+\.\d+\.\d+\.\d+)/.exec(route)?.[1];
  if (!address) throw new Error(`cannot tell this host's address from 'ip route get 1.1.1.1': ${route.trim()}`);
  return address;
}

function listNetns(): string[] {
  return fs.existsSync('/var/run/netns') ? fs.readdirSync('/var/run/netns').filter((n) => n.startsWith('cni-')) : [];
}

async function start(node: NodeState, controlPlane: KubeControlPlane, kubelet: string, archives: string[]): Promise<void> {
  const { dir } = node;
  const deadline = Date.now() + START_TIMEOUT_MS;
  const file = (...parts: string[]) => path.join(dir, ...parts);
  for (const sub of ['containerd', 'cni/net.d', 'cni/ipam', 'kubelet', 'pod-logs', 'volumes', 'logs']) fs.mkdirSync(file(sub), { recursive: true });
  const socket = file('containerd', 'containerd.sock');
  fs.writeFileSync(file('containerd', 'config.toml'), containerdConfig(dir, socket));
  fs.writeFileSync(file('cni', 'net.d', '10-rbs.conflist'), JSON.stringify(cniConfig(node)));
  isolateBridge(node);

  node.containerd = startChild('containerd', '/usr/bin/containerd', ['--config', file('containerd', 'config.toml')], {
    logFile: file('logs', 'containerd.log'),
  });
  node.children.push(node.containerd);
  await waitFor(() => node.containerd!.exited() !== null || fs.existsSync(socket), Math.max(0, deadline - Date.now()), 'the containerd socket');
  if (node.containerd.exited()) throw new Error(`${node.containerd.exited()}\n${node.containerd.logTail()}`);
  for (const archive of archives) sh('ctr', ['-a', socket, '-n', 'k8s.io', 'images', 'import', archive]);

  const port = await freePort();
  const healthzPort = await freePort();
  const kubeconfig = controlPlane.kubeconfigFor(`system:node:${node.name}`, ['system:nodes']);
  fs.writeFileSync(file('kubelet', 'config.yaml'), JSON.stringify(kubeletConfig(dir, socket, port, healthzPort, controlPlane.caFile)));
  const child = startChild(
    'kubelet',
    kubelet,
    [
      `--config=${file('kubelet', 'config.yaml')}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${file('kubelet')}`,
      `--cert-dir=${file('kubelet', 'pki')}`,
      `--hostname-override=${node.name}`,
      `--node-ip=${hostAddress()}`,
      '--node-labels=rbs.dev/real-node=true',
      '--v=1',
    ],
    { logFile: file('logs', 'kubelet.log') },
  );
  node.children.push(child);
  const core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
  await waitFor(
    async () => {
      if (child.exited()) return true;
      const found = await core.readNode({ name: node.name }).catch(() => null);
      return found?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    },
    Math.max(0, deadline - Date.now()),
    `node ${node.name} Ready`,
  );
  if (child.exited()) throw new Error(`${child.exited()}\n${child.logTail()}`);
}

/** containerd 1.6's config (version 2): its own root, state and sockets, the CRI with our CNI network and sandbox image. */
function containerdConfig(dir: string, socket: string): string {
  return `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # Without CAP_SYS_RESOURCE (as here) runc cannot lower oom_score_adj to the sandbox's -998: clamp to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${dir}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN}"
    conf_dir = "${dir}/cni/net.d"
`;
}

function cniConfig(node: NodeState) {
  return {
    cniVersion: '1.0.0',
    name: `rbs-${node.bridge}`,
    plugins: [
      {
        type: 'bridge',
        bridge: node.bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: node.subnet }]], dataDir: path.join(node.dir, 'cni', 'ipam') },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

/** The bridge plugin turns on IP forwarding: drop whatever would be routed into or out of this node's pods. */
function isolateBridge(node: NodeState): void {
  for (const rule of [
    ['-i', node.bridge, '!', '-o', node.bridge],
    ['-o', node.bridge, '!', '-i', node.bridge],
  ]) {
    const full = ['FORWARD', ...rule, '-m', 'comment', '--comment', FORWARD_RULE_COMMENT, '-j', 'DROP'];
    sh('iptables', ['-w', '-I', ...full]);
    node.forwardRules.push(full);
  }
}

function kubeletConfig(dir: string, socket: string, port: number, healthzPort: number, caFile: string) {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    failCgroupV1: false, // this machine is cgroup v1 (hybrid); kubelets from 1.35 refuse v1 without it
    cgroupDriver: 'cgroupfs', // no systemd here; as containerd's runc (SystemdCgroup = false)
    containerRuntimeEndpoint: `unix://${socket}`,
    imageServiceEndpoint: `unix://${socket}`,
    podLogsDir: path.join(dir, 'pod-logs'),
    address: '0.0.0.0',
    port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: caFile } },
    authorization: { mode: 'Webhook' },
    registerNode: true,
    failSwapOn: false,
    oomScoreAdj: 0, // without CAP_SYS_RESOURCE the default -999 cannot be set
    resolvConf: '/etc/resolv.conf',
    clusterDomain: 'cluster.local',
    // A shared test machine: never evict because other work fills the disk or memory; never collect images.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
    serializeImagePulls: false,
    makeIPTablesUtilChains: false, // no kube-proxy here: leave the host's iptables alone
  };
}

/** Stops everything, and undoes what it did to this host: mounts, network namespaces, the bridge, the rules. */
async function teardown(node: NodeState): Promise<void> {
  const socket = path.join(node.dir, 'containerd', 'containerd.sock');
  const kubelet = node.children.find((c) => c.name === 'kubelet');
  await kubelet?.stop();
  if (node.containerd && !node.containerd.exited()) {
    // The containers' shims outlive containerd: kill the tasks through it first.
    const ctr = (...args: string[]) => {
      try {
        return sh('ctr', ['-a', socket, '-n', 'k8s.io', ...args]);
      } catch {
        return '';
      }
    };
    const tasks = () => ctr('tasks', 'ls', '-q').split('\n').filter(Boolean);
    for (const id of tasks()) ctr('tasks', 'kill', '-s', 'KILL', id);
    await waitFor(() => tasks().length === 0, 5000, 'tasks killed').catch(() => undefined);
    for (const id of tasks()) ctr('tasks', 'delete', '-f', id);
    await node.containerd.stop();
  }
  for (const line of shims(socket)) {
    try {
      process.kill(Number(line), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  unmountUnder(node.dir);
  for (const ns of listNetns().filter((n) => !node.netnsBefore.has(n))) {
    const file = path.join('/var/run/netns', ns);
    quietly('umount', [file]);
    fs.rmSync(file, { force: true });
  }
  for (const rule of node.forwardRules) quietly('iptables', ['-w', '-D', ...rule]);
  quietly('ip', ['link', 'del', node.bridge]);
  removeContainerLogLinks(node.dir);
  removeEmptyKubepods();
  fs.rmSync(node.dir, { recursive: true, force: true, maxRetries: 3 });
  if (fs.existsSync(LOCK) && fs.readFileSync(LOCK, 'utf8') === String(process.pid)) fs.rmSync(LOCK);
}

/** The shims of this node's containerd, found by the socket on their command line. */
function shims(socket: string): string[] {
  try {
    return sh('pgrep', ['-f', `containerd-shim-runc-v2 .*-address ${socket}`])
      .split('\n')
      .filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
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

/** The kubelet's pod cgroups, in every v1 hierarchy (and v2's), deepest first; a busy one stays. */
function removeEmptyKubepods(): void {
  for (const hierarchy of fs.readdirSync('/sys/fs/cgroup')) {
    const root = path.join('/sys/fs/cgroup', hierarchy, 'kubepods');
    if (fs.existsSync(root)) quietly('find', [root, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
  }
}
