/**
 * A real node for the test control plane: Debian's containerd with runc and a kubelet of the apiserver's
 * version (scripts/install-node.sh), joined beside the kwok nodes. Pods scheduled onto it really run: images
 * from the docker-archives install-node.sh saved (the agent's, built from the Dockerfile), the kubelet's own
 * probes, Pod Security `restricted`, and real mounts. Pod IPs are on a bridge of this host that nothing is
 * forwarded into or out of, so pods reach this host only.
 *
 * Needs root. One at a time per machine: the kubelet keeps some state at fixed paths (the kubepods cgroups,
 * /var/log/containers) and sets kernel settings, so a second start fails at once; kube-node-host.ts puts the
 * host back, after a killed run too.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { startChild, type Child } from '../../lib/local/child';
import { freePort } from '../../lib/local/ports';
import { cacheDir, kubeletBinary } from '../../lib/local/tools';
import type { KubeControlPlane } from './kube-control-plane';
import { type HostChanges, isolateBridge, lockHost, powerOff, powerOn, recordHostChanges, sh, shAsync, undoHostChanges } from './kube-node-host';
import { waitFor } from './wait';

export interface RealNode {
  name: string;
  /** Where a local PersistentVolume of this node may keep its directories. */
  volumesDir: string;
  /** Its machine dies (kube-node-host.ts powerOff): no kubelet, no containers, no route to its pods. */
  crash(): Promise<void>;
  /** Its machine comes back with what it kept on disk: containerd and the kubelet start again; resolves once the node is Ready. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** The images install-node.sh leaves for containerd: the agent's, and the pods' sandbox (root, no shell). */
export const AGENT_TEST_IMAGE = 'localhost/rbs/agent:test';
export const PAUSE_TEST_IMAGE = 'localhost/rbs/pause:1';
const IMAGE_ARCHIVES = ['pause.tar', 'agent.tar'];
const INSTALL_NODE = 'run `bash scripts/install-node.sh` (npm test does)';
const CNI_BIN = '/usr/lib/cni';
const START_TIMEOUT_MS = 240_000; // most of it the agent image's import (1.4 GB) on a busy machine
/** The node's lease, renewed every quarter of it, and how long a control plane lets it go unrenewed: a dead node is NotReady in 12 s, not 50. */
const REAL_NODE_LEASE_SECONDS = 8;
export const REAL_NODE_GRACE_SECONDS = 12;
/** For a test's beforeAll that starts a control plane and then a real node. */
export const REAL_NODE_START_TIMEOUT_MS = START_TIMEOUT_MS + 120_000;

export async function startRealNode(controlPlane: KubeControlPlane): Promise<RealNode> {
  if (process.getuid?.() !== 0) throw new Error('the real node needs root (containerd, runc and the kubelet)');
  const archives = IMAGE_ARCHIVES.map((file) => path.join(cacheDir(), 'node', file));
  for (const archive of archives) if (!fs.existsSync(archive)) throw new Error(`no image archive ${archive}: ${INSTALL_NODE}`);
  const kubelet = kubeletBinary();
  const lock = await lockHost();
  let node: NodeState;
  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-node-'));
    const suffix = path
      .basename(dir)
      .slice(-6)
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '0');
    node = {
      dir,
      name: `real-node-${suffix}`,
      subnet: `198.18.${Math.floor(Math.random() * 250) + 1}.0/24`, // the benchmarking range: no LAN uses it
      changes: recordHostChanges(dir, `rbs${suffix}`),
      children: [],
      nodeIp: hostAddress(),
    };
  } catch (err) {
    lock.release();
    throw err;
  }
  const { dir } = node;
  const stop = async () => {
    try {
      for (const child of [...node.children].reverse()) await child.stop(); // the kubelet first, then containerd
      await undoHostChanges(node.changes);
    } finally {
      lock.release();
    }
  };
  try {
    await start(node, controlPlane, kubelet, archives);
  } catch (err) {
    await stop();
    throw new Error(`the real node did not start (logs in ${path.join(dir, 'logs')}, removed): ${(err as Error).message}`);
  }
  let stopped: Promise<void> | undefined;
  return {
    name: node.name,
    volumesDir: path.join(dir, 'volumes'),
    async crash() {
      await powerOff(node.changes);
      await Promise.all(node.children.map((child) => child.stop(0)));
      node.children = [];
    },
    async restart() {
      powerOn(node.changes);
      const deadline = Date.now() + START_TIMEOUT_MS;
      await startContainerd(node, deadline);
      await startKubelet(node, controlPlane, kubelet, deadline);
    },
    stop: () => (stopped ??= stop()),
  };
}

interface NodeState {
  dir: string;
  name: string;
  subnet: string;
  changes: HostChanges;
  children: Child[];
  /** This host's address towards the outside: the kubelet refuses a loopback node IP. */
  nodeIp: string;
}

const nodeFile = (node: NodeState, ...parts: string[]) => path.join(node.dir, ...parts);
const containerdSocket = (node: NodeState) => nodeFile(node, 'containerd', 'containerd.sock');

function hostAddress(): string {
  const route = sh('ip', ['-4', '-o', 'route', 'get', '1.1.1.1']);
  const address = / src (\d+\.\d+\.\d+\.\d+)/.exec(route)?.[1];
  if (!address) throw new Error(`cannot tell this host's address from 'ip route get 1.1.1.1': ${route.trim()}`);
  return address;
}

async function start(node: NodeState, controlPlane: KubeControlPlane, kubelet: string, archives: string[]): Promise<void> {
  const { dir } = node;
  const deadline = Date.now() + START_TIMEOUT_MS;
  const file = (...parts: string[]) => nodeFile(node, ...parts);
  for (const sub of ['containerd', 'cni/net.d', 'cni/ipam', 'kubelet', 'pod-logs', 'volumes', 'logs']) fs.mkdirSync(file(sub), { recursive: true });
  fs.writeFileSync(file('containerd', 'config.toml'), containerdConfig(dir, containerdSocket(node)));
  fs.writeFileSync(file('cni', 'net.d', '10-rbs.conflist'), JSON.stringify(cniConfig(node)));
  isolateBridge(node.changes.bridge);
  await startContainerd(node, deadline);
  const left = Math.max(0, deadline - Date.now());
  for (const archive of archives) await shAsync('ctr', ['-a', containerdSocket(node), '-n', 'k8s.io', 'images', 'import', archive], { timeout: left });
  const at = { nodeIp: node.nodeIp, port: await freePort(), healthzPort: await freePort() };
  fs.writeFileSync(file('kubelet', 'config.yaml'), JSON.stringify(kubeletConfig(dir, containerdSocket(node), at, controlPlane.caFile)));
  await startKubelet(node, controlPlane, kubelet, deadline);
}

async function startContainerd(node: NodeState, deadline: number): Promise<void> {
  const socket = containerdSocket(node);
  fs.rmSync(socket, { force: true }); // a killed containerd's
  const containerd = startChild('containerd', '/usr/bin/containerd', ['--config', nodeFile(node, 'containerd', 'config.toml')], {
    logFile: nodeFile(node, 'logs', 'containerd.log'),
  });
  node.children.push(containerd);
  await waitFor(() => containerd.exited() !== null || fs.existsSync(socket), Math.max(0, deadline - Date.now()), 'the containerd socket');
  if (containerd.exited()) throw new Error(`${containerd.exited()}\n${containerd.logTail()}`);
}

/** The kubelet, with the configuration start() wrote; resolves once its node is Ready. */
async function startKubelet(node: NodeState, controlPlane: KubeControlPlane, kubelet: string, deadline: number): Promise<void> {
  const file = (...parts: string[]) => nodeFile(node, ...parts);
  const kubeconfig = controlPlane.kubeconfigFor(`system:node:${node.name}`, ['system:nodes']);
  const child = startChild(
    'kubelet',
    kubelet,
    [
      `--config=${file('kubelet', 'config.yaml')}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${file('kubelet')}`,
      `--cert-dir=${file('kubelet', 'pki')}`,
      `--hostname-override=${node.name}`,
      `--node-ip=${node.nodeIp}`,
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
  sandbox_image = "${PAUSE_TEST_IMAGE}"
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
    name: `rbs-${node.changes.bridge}`,
    plugins: [
      {
        type: 'bridge',
        bridge: node.changes.bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: node.subnet }]], dataDir: path.join(node.dir, 'cni', 'ipam') },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

function kubeletConfig(dir: string, socket: string, at: { nodeIp: string; port: number; healthzPort: number }, caFile: string) {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    failCgroupV1: false, // this machine is cgroup v1 (hybrid); kubelets from 1.35 refuse v1 without it
    cgroupDriver: 'cgroupfs', // no systemd here; as containerd's runc (SystemdCgroup = false)
    containerRuntimeEndpoint: `unix://${socket}`,
    imageServiceEndpoint: `unix://${socket}`,
    podLogsDir: path.join(dir, 'pod-logs'),
    address: at.nodeIp, // the apiserver's calls (logs, exec) come there
    port: at.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: at.healthzPort,
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
    nodeLeaseDurationSeconds: REAL_NODE_LEASE_SECONDS, // renewed every quarter of it
    syncFrequency: '10s',
    serializeImagePulls: false,
    makeIPTablesUtilChains: false, // no kube-proxy here: leave the host's iptables alone
  };
}
