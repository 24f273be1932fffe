/**
 * helm/rbs as the tests see it: the real helm binary (scripts/install-kube.sh) linting, rendering and installing
 * the chart with values a production install would give, and a real CA made by lib/pki/ca.ts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAllYaml, type KubernetesObject } from '@kubernetes/client-node';
import { helmBinary, repoRoot } from '../../lib/local/tools';
import { CertificateAuthority } from '../../lib/pki/ca';

export const CHART = path.join(repoRoot(), 'helm', 'rbs');
export const RELEASE = 'rbs';
export const NAMESPACE = 'rbs-system';

/** What an operator sets (every required value), in the shape of values.yaml. */
export const PRODUCTION_VALUES = {
  image: { repository: 'registry.example/rbs', tag: 'test' },
  agents: { image: { repository: 'registry.example/rbs-agent', tag: 'test' }, clients: { cidrs: ['10.8.0.0/16'] } },
  temporal: { address: 'temporal-frontend.temporal.svc:7233' },
  spanner: { projectId: 'rbs-test', instanceId: 'rbs' },
  orchestrator: { ingress: { enabled: true, host: 'rbs.example.com' } },
};

export interface ChartFixture {
  /** The CA's files, as `rbs login` leaves them in RBS_HOME/pki. */
  ca: { certFile: string; keyFile: string; certPem: string };
  /** PRODUCTION_VALUES as a values file. */
  valuesFile: string;
  /** --values and --set-file arguments for PRODUCTION_VALUES and the CA. */
  valueArgs: string[];
  /** Runs helm; a non-zero exit is returned, not thrown. */
  helm(args: string[], kubeconfig?: string): { status: number | null; stdout: string; stderr: string };
  /** Renders the chart with `args` (valueArgs unless given); throws with helm's message if it fails. */
  render(args?: string[]): KubernetesObject[];
  remove(): void;
}

export async function chartFixture(): Promise<ChartFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-chart-'));
  const pki = path.join(dir, 'pki');
  const { certPem } = await CertificateAuthority.loadOrCreate(pki);
  const ca = { certFile: path.join(pki, 'ca.crt'), keyFile: path.join(pki, 'ca.key'), certPem };
  const valuesFile = path.join(dir, 'values.json'); // JSON is YAML
  fs.writeFileSync(valuesFile, JSON.stringify(PRODUCTION_VALUES));
  const valueArgs = ['--values', valuesFile, '--set-file', `ca.certificate=${ca.certFile}`, '--set-file', `ca.key=${ca.keyFile}`];
  const helm: ChartFixture['helm'] = (args, kubeconfig) => runHelm(dir, args, kubeconfig);
  return {
    ca,
    valuesFile,
    valueArgs,
    helm,
    render: (args = valueArgs) => template(dir, RELEASE, NAMESPACE, args),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** A release of the chart: its name and namespace. */
export interface ChartRelease {
  name: string;
  namespace: string;
}

/**
 * The objects of the chart's `templates` (e.g. templates/rbac.yaml) as `release` renders them with PRODUCTION_VALUES,
 * `set` over them, and an existing CA Secret named (so no CA is needed).
 */
export function renderRelease(release: ChartRelease, templates: string[], set: Record<string, string> = {}): KubernetesObject[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-chart-'));
  try {
    const valuesFile = path.join(dir, 'values.json');
    fs.writeFileSync(valuesFile, JSON.stringify(PRODUCTION_VALUES));
    const sets = Object.entries({ 'ca.existingSecret': 'rbs-ca', ...set }).flatMap(([key, value]) => ['--set', `${key}=${value}`]);
    const only = templates.flatMap((t) => ['--show-only', t]);
    return template(dir, release.name, release.namespace, ['--values', valuesFile, ...sets, ...only]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs helm with its own state (repositories, caches) in `dir`, away from the user's home; a non-zero exit is returned. */
function runHelm(dir: string, args: string[], kubeconfig?: string): { status: number | null; stdout: string; stderr: string } {
  const helmEnv = Object.fromEntries(['HELM_CACHE_HOME', 'HELM_CONFIG_HOME', 'HELM_DATA_HOME'].map((name) => [name, path.join(dir, name)]));
  const env = { ...process.env, ...helmEnv, ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}) };
  const { status, stdout, stderr, error } = spawnSync(helmBinary(), args, { encoding: 'utf8', env, timeout: 60_000 });
  if (error) throw new Error(`helm ${args[0]}: ${error.message}`);
  return { status, stdout, stderr };
}

function template(dir: string, release: string, namespace: string, args: string[]): KubernetesObject[] {
  const result = runHelm(dir, ['template', release, CHART, '--namespace', namespace, ...args]);
  if (result.status !== 0) throw new Error(`helm template failed (exit ${result.status}): ${result.stderr}`);
  return loadAllYaml(result.stdout).filter(Boolean) as KubernetesObject[];
}

/** The one rendered object of `kind` (and `name`, if given); fails naming what was rendered otherwise. */
export function findObject<T extends KubernetesObject>(objects: KubernetesObject[], kind: string, name?: string): T {
  const matches = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
  if (matches.length !== 1) {
    const rendered = objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ');
    throw new Error(`expected one ${kind}${name ? `/${name}` : ''}, found ${matches.length} among ${rendered}`);
  }
  return matches[0] as T;
}
