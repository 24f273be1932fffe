/** Where the project's install scripts (scripts/setup.sh, scripts/install-kube.sh) cache the tools they install. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO_ROOT = findRepoRoot(__dirname);

function findRepoRoot(from: string): string {
  for (let dir = from; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'scripts', 'versions.env'))) return dir;
  }
  throw new Error(`cannot find the RBS repository root above ${from}`);
}

function versions(): Record<string, string> {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'versions.env'), 'utf8');
  return Object.fromEntries(
    text
      .split('\n')
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => line.split('=', 2) as [string, string]),
  );
}

export function repoRoot(): string {
  return REPO_ROOT;
}

export function cacheDir(): string {
  return process.env.RBS_CACHE ?? path.join(os.homedir(), '.cache', 'rbs');
}

/** A tool the install scripts cached under cacheDir()/dir; `install` says how to get it. */
function cachedTool(dir: string, name: string, install: string): string {
  const file = path.join(cacheDir(), dir, name);
  if (!fs.existsSync(file)) throw new Error(`${name} not found at ${file}: ${install}`);
  return file;
}

export function temporalBinary(): string {
  if (process.env.RBS_TEMPORAL_BIN) return process.env.RBS_TEMPORAL_BIN;
  return cachedTool(`temporal-${versions().TEMPORAL_CLI_VERSION}`, 'temporal', 'run `npm run setup`');
}

/** The real Kubernetes control plane the tests and benchmarks run (installed by scripts/install-kube.sh). */
export interface KubeTools {
  apiserver: string;
  controllerManager: string;
  scheduler: string;
  kwok: string;
  etcd: string;
}

const INSTALL_KUBE = 'run `bash scripts/install-kube.sh` (npm test and npm run bench do)';

/** A tool from a Debian package (etcd), found on PATH as a shell would. */
function onPath(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      /* not in this directory */
    }
  }
  throw new Error(`${name} not found on PATH: ${INSTALL_KUBE}`);
}

export function kubeTools(): KubeTools {
  const kube = `kubernetes-${versions().KUBERNETES_VERSION}`;
  return {
    apiserver: cachedTool(kube, 'kube-apiserver', INSTALL_KUBE),
    controllerManager: cachedTool(kube, 'kube-controller-manager', INSTALL_KUBE),
    scheduler: cachedTool(kube, 'kube-scheduler', INSTALL_KUBE),
    kwok: cachedTool(`kwok-${versions().KWOK_VERSION}`, 'kwok', INSTALL_KUBE),
    etcd: onPath('etcd'),
  };
}

/** The real node's kubelet, the apiserver's version (scripts/install-kube.sh). */
export function kubeletBinary(): string {
  return cachedTool(`kubelet-${versions().KUBERNETES_VERSION}`, 'kubelet', INSTALL_KUBE);
}

export function helmBinary(): string {
  return cachedTool(`helm-${versions().HELM_VERSION}`, 'helm', INSTALL_KUBE);
}

/** Gateway API's standard-channel CRD files (scripts/install-kube.sh takes them from the Go module). */
export function gatewayApiCrdFiles(): string[] {
  const dir = path.join(cacheDir(), `gateway-api-${versions().GATEWAY_API_VERSION}`);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')) : [];
  if (!files.includes('gateway.networking.k8s.io_tlsroutes.yaml')) throw new Error(`the Gateway API CRDs are not in ${dir}: ${INSTALL_KUBE}`);
  return files.sort().map((f) => path.join(dir, f));
}

/** Traefik, the route tests' SNI-passthrough gateway (scripts/install-kube.sh builds it from its Go module). */
export function traefikBinary(): string {
  return cachedTool(`traefik-${versions().TRAEFIK_VERSION}`, 'traefik', INSTALL_KUBE);
}

/** go.temporal.io/server's cmd/server, which unlike the CLI's dev server can require mTLS (scripts/install-temporal-server.sh). */
export function temporalServerBinary(): string {
  return cachedTool(`temporal-server-${versions().TEMPORAL_SERVER_VERSION}`, 'temporal-server', 'run `npm run setup`');
}

/** The Temporal Web UI's server, which reaches a frontend that requires mTLS (scripts/install-temporal-server.sh). */
export function temporalUiServerBinary(): string {
  return cachedTool(`temporal-ui-server-${versions().TEMPORAL_UI_SERVER_VERSION}`, 'temporal-ui-server', 'run `npm run setup`');
}

/** promlint (scripts/promlint: what `promtool check metrics` checks), built by scripts/install-promlint.sh for `npm test`. */
export function promlintBinary(): string {
  const goMod = fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'promlint', 'go.mod'), 'utf8');
  const version = /^require github\.com\/prometheus\/client_golang (v\S+)$/m.exec(goMod)?.[1];
  if (!version) throw new Error('scripts/promlint/go.mod names no client_golang version');
  return cachedTool(`promlint-${version}`, 'promlint', 'run `bash scripts/install-promlint.sh` (npm test does)');
}
