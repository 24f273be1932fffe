/**
 * docker-compose.yml and the Dockerfile it builds, checked against the code. There is no Docker engine here
 * and no `docker compose` to render the file, so it is parsed as YAML and interpolated the way Compose does
 * (`${VAR}`, `${VAR:-default}`, nested), for a laptop whose environment sets only HOME.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadYaml } from '@kubernetes/client-node';
import { repoRoot } from '../../lib/local/tools';
import { ALL_SEARCH_ATTRIBUTES } from '../../lib/temporal/search-attributes';
import { configUse } from './config-env';

interface Service {
  image?: string;
  build?: { context: string; target?: string; args?: Record<string, string> };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: (string | { type: string; source: string; target: string; read_only?: boolean })[];
  network_mode?: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const ROOT = repoRoot();
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
const LAPTOP = { HOME: '/home/dev' };
/** The emulator image's gateway listens for gRPC here (its CMD, which the file keeps). */
const SPANNER_EMULATOR_GRPC_PORT = 9010;

/** Compose's interpolation of one value; a variable without a default must be set. */
function interpolate(value: string, env: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < value.length;) {
    if (value.startsWith('$$', i)) {
      out += '$';
      i += 2;
    } else if (value.startsWith('${', i)) {
      let depth = 0;
      let end = i;
      for (; end < value.length; end++) {
        if (value[end] === '{') depth++;
        if (value[end] === '}' && --depth === 0) break;
      }
      const expression = value.slice(i + 2, end);
      const match = /^([A-Za-z_]\w*)(?::-([\s\S]*))?$/.exec(expression);
      if (end === value.length || !match) throw new Error(`unsupported interpolation in '${value}'`);
      const [, name, fallback] = match;
      if (env[name]) out += env[name];
      else if (fallback !== undefined) out += interpolate(fallback, env);
      else throw new Error(`'${value}' needs ${name}, which has no default`);
      i = end + 1;
    } else if (value[i] === '$') {
      throw new Error(`write \${…} or $$ in '${value}'`);
    } else {
      out += value[i++];
    }
  }
  return out;
}

function interpolateAll<T>(node: T, env: Record<string, string>): T {
  if (typeof node === 'string') return interpolate(node, env) as T;
  if (Array.isArray(node)) return node.map((item) => interpolateAll(item, env)) as T;
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, interpolateAll(value, env)])) as T;
  }
  return node;
}

function composeFile(env: Record<string, string> = LAPTOP): Record<string, Service> {
  const file = loadYaml<{ services: Record<string, Service> }>(read('docker-compose.yml'));
  return interpolateAll(file, env).services;
}

/** Dockerfile stages by name, each with the stage it starts from and its text. */
function dockerStages(): Map<string, { from: string; text: string }> {
  const stages = new Map<string, { from: string; text: string }>();
  for (const text of read('Dockerfile')
    .split(/^(?=FROM )/m)
    .slice(1)) {
    const [, from, name] = /^FROM (\S+) AS (\S+)/.exec(text) ?? [];
    if (name) stages.set(name, { from, text });
  }
  return stages;
}

/** The user a stage's image runs as: its last USER, else that of the stage it starts from. */
function stageUser(stages: Map<string, { from: string; text: string }>, name: string): string | undefined {
  const stage = stages.get(name);
  if (!stage) return undefined;
  return [...stage.text.matchAll(/^USER (\S+)$/gm)].pop()?.[1] ?? stageUser(stages, stage.from);
}

const splitAddress = (address: string) => {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
};

/** `[host:]published:container` */
function publishedPorts(service: Service) {
  return (service.ports ?? []).map((entry) => {
    const parts = entry.split(':');
    if (parts.length !== 3) throw new Error(`publish '${entry}' on an explicit host address`);
    return { host: parts[0], published: Number(parts[1]), container: Number(parts[2]) };
  });
}

/** The service and container port that `address` reaches from `from`, across the compose network or the host's. */
function resolve(services: Record<string, Service>, from: Service, address: string): { service: string; port: number } {
  const { host, port } = splitAddress(address);
  if (from.network_mode !== 'host') {
    if (!services[host]) throw new Error(`${address}: no service '${host}' on the compose network`);
    return { service: host, port };
  }
  if (host !== '127.0.0.1') throw new Error(`${address}: a host-network service reaches the others on 127.0.0.1`);
  for (const [name, service] of Object.entries(services)) {
    const published = publishedPorts(service).find((p) => p.published === port);
    if (published) return { service: name, port: published.container };
  }
  throw new Error(`${address}: no service publishes port ${port}`);
}

function flagValue(command: string[] | undefined, flag: string): string[] {
  return (command ?? []).filter((arg) => arg.startsWith(`${flag}=`)).map((arg) => arg.slice(flag.length + 1));
}

/** The port each server listens on inside its container, from its own configuration. */
function listenPort(services: Record<string, Service>, name: string): number {
  if (name === 'temporal') return Number(flagValue(services.temporal.command, '--port')[0]);
  if (name === 'spanner') return SPANNER_EMULATOR_GRPC_PORT;
  if (name === 'orchestrator') return splitAddress(configUse(services.orchestrator.environment ?? {}).config.orchestrator.listen).port;
  throw new Error(`no known listen port for ${name}`);
}

const CONTROL_PLANE = ['orchestrator', 'worker'] as const;

describe('docker-compose.yml', () => {
  const services = composeFile();

  test('runs Temporal, its Web UI, the Spanner emulator, the orchestrator and the worker', () => {
    expect(Object.keys(services).sort()).toEqual(['orchestrator', 'spanner', 'temporal', 'temporal-ui', 'worker']);
  });

  test('pins every pulled image by version, Temporal to the CLI version `npm start` uses', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build) continue;
      expect({ name, tag: /:([\w.-]+)$/.exec(service.image ?? '')?.[1] }).toEqual({ name, tag: expect.stringMatching(/^v?\d+\.\d+\.\d+$/) });
    }
    const cliVersion = /^TEMPORAL_CLI_VERSION=v(.+)$/m.exec(read('scripts/versions.env'))?.[1];
    expect(services.temporal.image).toBe(`temporalio/temporal:${cliVersion}`);
  });

  test('registers the search attributes the session workflows set', () => {
    const registered = flagValue(services.temporal.command, '--search-attribute').sort();
    expect(registered).toEqual(ALL_SEARCH_ATTRIBUTES.map((key) => `${key.name}=Keyword`).sort());
  });

  test('builds the control plane from Dockerfile stages, the worker from the one with Bazel for its agents', () => {
    const stages = dockerStages();
    for (const name of CONTROL_PLANE) {
      expect(services[name].build?.context).toBe('.');
      expect(stages.has(services[name].build?.target ?? '')).toBe(true);
    }
    expect(stages.get(services.worker.build!.target!)?.text).toMatch(/\bbazel-bootstrap\b/);
  });

  test('starts entry points that the build produces', () => {
    for (const name of CONTROL_PLANE) {
      const [node, main] = services[name].command ?? [];
      expect(node).toBe('node');
      expect(fs.existsSync(path.join(ROOT, main))).toBe(true);
      expect(main).toBe(`dist/services/${name}/main.js`);
    }
  });

  test('sets only RBS_* variables that lib/config.ts reads, with values it accepts, and the Spanner store', () => {
    for (const name of CONTROL_PLANE) {
      const env = services[name].environment ?? {};
      const { config, unread } = configUse(env);
      expect({ name, unread }).toEqual({ name, unread: [] });
      expect(config.store.kind).toBe('spanner');
      expect(resolve(services, services[name], env.SPANNER_EMULATOR_HOST).service).toBe('spanner');
    }
  });

  test('points every address at a service listening on that port', () => {
    for (const name of CONTROL_PLANE) {
      const env = services[name].environment ?? {};
      for (const [expected, address] of [
        ['temporal', configUse(env).config.temporal.address],
        ['spanner', env.SPANNER_EMULATOR_HOST],
      ]) {
        const target = resolve(services, services[name], address);
        expect({ from: name, address, ...target }).toEqual({ from: name, address, service: expected, port: listenPort(services, expected) });
      }
    }
    expect(services['temporal-ui'].environment?.TEMPORAL_ADDRESS).toBe(`temporal:${listenPort(services, 'temporal')}`);
  });

  test('publishes the orchestrator where it listens and its metrics, on loopback only, and probes that port', () => {
    const port = listenPort(services, 'orchestrator');
    const metricsPort = Number(configUse(services.orchestrator.environment ?? {}).config.metrics.orchestrator?.split(':')[1]);
    expect(publishedPorts(services.orchestrator)).toEqual([
      { host: '127.0.0.1', published: port, container: port },
      { host: '127.0.0.1', published: metricsPort, container: metricsPort },
    ]);
    expect(services.orchestrator.healthcheck?.test.join(' ')).toContain(`connect(${port}, '127.0.0.1')`);
    for (const [name, service] of Object.entries(services)) {
      for (const published of publishedPorts(service)) expect({ name, host: published.host }).toEqual({ name, host: '127.0.0.1' });
    }
  });

  test('runs the worker on the host network, so the 127.0.0.1 addresses its local agents publish reach them', () => {
    expect(configUse(services.worker.environment ?? {}).config.backend.kind).toBe('local');
    expect(services.worker.network_mode).toBe('host');
    expect(services.worker.ports).toBeUndefined();
  });

  test('starts the control plane once Temporal is healthy, Temporal having a health check', () => {
    expect(services.temporal.healthcheck?.test[0]).toBe('CMD');
    for (const name of CONTROL_PLANE) {
      expect(services[name].depends_on?.temporal).toEqual({ condition: 'service_healthy' });
      expect(services[name].depends_on?.spanner).toBeDefined();
    }
  });

  test.each([
    ['the default RBS_HOME', LAPTOP, '/home/dev/.rbs'],
    ['RBS_HOME from the environment', { ...LAPTOP, RBS_HOME: '/srv/rbs' }, '/srv/rbs'],
  ])('mounts %s at the same path in both services, so the laptop CLI shares the CA', (_, env, home) => {
    const withEnv = composeFile(env);
    for (const name of CONTROL_PLANE) {
      expect(withEnv[name].environment?.RBS_HOME).toBe(home);
      expect(withEnv[name].volumes).toContainEqual({ type: 'bind', source: home, target: home });
    }
  });

  test('shows the worker the laptop home read-only, where the initial sync finds workspaces', () => {
    expect(services.worker.volumes).toContainEqual({ type: 'bind', source: '/home/dev', target: '/home/dev', read_only: true });
  });
});

describe('Dockerfile', () => {
  test('is built from every source directory tsconfig.json compiles (tests, benchmarks and generated code aside)', () => {
    const allowed = read('.dockerignore')
      .split('\n')
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1));
    const sources = (JSON.parse(read('tsconfig.json')) as { include: string[] }).include;
    const needed = sources.filter((dir) => !['test', 'bench', 'gen'].includes(dir));
    expect(allowed).toEqual(expect.arrayContaining(needed));
  });

  test('runs the Node major version package.json requires', () => {
    const nodeMajor = /^ARG NODE_IMAGE=node:(\d+)\./m.exec(read('Dockerfile'))?.[1];
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    expect(engines).toMatch(new RegExp(`^>=${nodeMajor}\\.\\d+ <${Number(nodeMajor) + 1}$`));
  });

  test('runs as a numeric non-root user, as Pod Security `restricted` requires', () => {
    const stages = dockerStages();
    expect(Number(/^ARG UID=(\d+)$/m.exec(read('Dockerfile'))?.[1])).toBeGreaterThan(0);
    for (const target of ['agent', 'control-plane']) expect({ target, user: stageUser(stages, target) }).toEqual({ target, user: '${UID}:${GID}' });
  });
});
