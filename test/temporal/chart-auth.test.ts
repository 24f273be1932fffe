/**
 * The chart (helm/rbs) wires Temporal authentication as lib/temporal/config.ts reads it: with mTLS the
 * pods' mounted files are a client certificate the real mTLS server accepts; with an API key the key
 * comes from its Secret into the environment and never into the ConfigMap; half-set values stop the render.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { KubernetesObjectApi, type KubernetesObject, type V1ConfigMap, type V1Container, type V1Deployment, type V1Volume } from '@kubernetes/client-node';
import { temporalConnectionOptions } from '../../lib/temporal/connection';
import { configUse } from '../deploy/config-env';
import { CHART, chartFixture, findObject, RELEASE, type ChartFixture } from '../kubernetes/chart-render';
import { useKubeControlPlane } from '../harness/kube-control-plane';
import { useTemporalTls } from '../harness/temporal-tls-server';

const COMPONENTS = ['orchestrator', 'worker'] as const;
const tls = useTemporalTls();
const kube = useKubeControlPlane();
let chart: ChartFixture;
beforeAll(async () => {
  chart = await chartFixture();
});
afterAll(() => chart?.remove());

const render = (...set: string[]) => chart.render([...chart.valueArgs, ...(set.length ? ['--set', set.join(',')] : [])]);
const settings = (objects: KubernetesObject[]) => findObject<V1ConfigMap>(objects, 'ConfigMap').data ?? {};
const pod = (objects: KubernetesObject[], component: string) => findObject<V1Deployment>(objects, 'Deployment', `${RELEASE}-${component}`).spec!.template.spec!;
const temporalVolumes = (volumes: V1Volume[] = []) => volumes.filter((v) => v.name.startsWith('temporal-'));

test('auth none (the default): plaintext, nothing mounted, no credentials in the environment', () => {
  const objects = render();
  const { config, unread } = configUse(settings(objects));
  expect(unread).toEqual([]);
  expect(config.temporal.auth).toEqual({ kind: 'none' });
  for (const component of COMPONENTS) {
    expect(temporalVolumes(pod(objects, component).volumes)).toEqual([]);
    expect(pod(objects, component).containers[0].env).toBeUndefined();
  }
});

test('auth mtls: the pods mount the client-certificate Secret where RBS_TEMPORAL_TLS_* point, and those files pass the real mTLS server', async () => {
  const objects = render(
    'temporal.auth.mode=mtls',
    'temporal.auth.mtls.secretName=rbs-temporal-client',
    'temporal.auth.serverCa.secretName=rbs-temporal-client',
    'temporal.auth.serverName=localhost',
  );
  const env = settings(objects);
  const { config, unread } = configUse(env);
  expect(unread).toEqual([]);
  expect(config.temporal.auth).toMatchObject({ kind: 'mtls', serverName: 'localhost' });

  // What the kubelet would write for each pod, from a Secret as cert-manager makes it (tls.crt, tls.key, ca.crt).
  const client = await tls().clientEnv();
  const secret: Record<string, string> = {
    'tls.crt': fs.readFileSync(client.RBS_TEMPORAL_TLS_CERT, 'utf8'),
    'tls.key': fs.readFileSync(client.RBS_TEMPORAL_TLS_KEY, 'utf8'),
    'ca.crt': fs.readFileSync(client.RBS_TEMPORAL_TLS_CA, 'utf8'),
  };
  for (const component of COMPONENTS) {
    const spec = pod(objects, component);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `rbs-pod-${component}-`));
    try {
      for (const mount of (spec.containers[0] as V1Container).volumeMounts ?? []) {
        const volume = temporalVolumes(spec.volumes).find((v) => v.name === mount.name);
        if (!volume) continue;
        expect({ volume: volume.name, secret: volume.secret?.secretName, readOnly: mount.readOnly }).toEqual({
          volume: volume.name,
          secret: 'rbs-temporal-client',
          readOnly: true,
        });
        for (const item of volume.secret?.items ?? []) {
          fs.mkdirSync(path.join(root, mount.mountPath), { recursive: true });
          fs.writeFileSync(path.join(root, mount.mountPath, item.path), secret[item.key]);
        }
      }
      const inPod = configUse(
        Object.fromEntries(Object.entries(env).map(([k, v]) => [k, k.startsWith('RBS_TEMPORAL_TLS_') && v.startsWith('/') ? path.join(root, v) : v])),
      );
      const options = await temporalConnectionOptions({ ...inPod.config.temporal, address: tls().server.address });
      const connection = await Connection.connect({ ...options, connectTimeout: '10s' });
      await connection.workflowService.getSystemInfo({}).finally(() => connection.close());
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
});

test('auth apiKey: the key comes from its Secret as RBS_TEMPORAL_API_KEY, never through the ConfigMap', () => {
  const objects = render('temporal.auth.mode=apiKey', 'temporal.auth.apiKey.secretName=temporal-cloud');
  const env = settings(objects);
  expect(Object.keys(env).filter((k) => k.startsWith('RBS_TEMPORAL_') && k !== 'RBS_TEMPORAL_ADDRESS' && k !== 'RBS_TEMPORAL_NAMESPACE')).toEqual([]);
  for (const component of COMPONENTS) {
    expect(pod(objects, component).containers[0].env).toEqual([
      { name: 'RBS_TEMPORAL_API_KEY', valueFrom: { secretKeyRef: { name: 'temporal-cloud', key: 'api-key' } } },
    ]);
    expect(temporalVolumes(pod(objects, component).volumes)).toEqual([]);
  }
  const { config, unread } = configUse({ ...env, RBS_TEMPORAL_API_KEY: 'from-the-secret' });
  expect(unread).toEqual([]);
  expect(config.temporal.auth).toEqual({ kind: 'api-key', apiKey: 'from-the-secret' });
});

test('half-set Temporal authentication stops the render, naming the value', () => {
  const fails = (set: string[], message: string) => {
    const result = chart.helm(['template', RELEASE, CHART, ...chart.valueArgs, '--set', set.join(',')]);
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 1, stderr: expect.stringContaining(message) });
  };
  fails(['temporal.auth.mode=mtls'], 'temporal.auth.mode=mtls needs temporal.auth.mtls.secretName');
  fails(['temporal.auth.mode=apiKey'], 'temporal.auth.mode=apiKey needs temporal.auth.apiKey.secretName');
  fails(['temporal.auth.mode=tls'], 'temporal.auth.mode must be none, mtls or apiKey, not "tls"');
  fails(['temporal.auth.serverName=temporal.internal'], 'set temporal.auth.mode to mtls or apiKey');
});

test('a real apiserver accepts the Deployments of each mode (server-side dry-run)', async () => {
  const api = KubernetesObjectApi.makeApiClient(kube().kubeConfig);
  const modes = {
    mtls: ['temporal.auth.mode=mtls', 'temporal.auth.mtls.secretName=rbs-temporal-client', 'temporal.auth.serverCa.secretName=temporal-ca'],
    apiKey: ['temporal.auth.mode=apiKey', 'temporal.auth.apiKey.secretName=temporal-cloud'],
  };
  const failures: string[] = [];
  for (const [mode, set] of Object.entries(modes)) {
    for (const component of COMPONENTS) {
      const deployment = findObject<V1Deployment>(render(...set), 'Deployment', `${RELEASE}-${component}`);
      const body = { ...deployment, apiVersion: 'apps/v1', kind: 'Deployment', metadata: { ...deployment.metadata, namespace: 'default' } };
      await api
        .create(body, undefined, 'All')
        .catch((e: { body?: unknown; message?: string }) => failures.push(`${mode} ${component}: ${e.body ?? e.message}`));
    }
  }
  expect(failures).toEqual([]);
});
