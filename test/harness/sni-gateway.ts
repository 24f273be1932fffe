/**
 * A real SNI-passthrough gateway for the route from laptops: Traefik (built by scripts/install-kube.sh from its Go
 * module) as the Gateway API controller of one GatewayClass, watching the test apiserver from outside the cluster as a
 * cloud load balancer's controller does. It reads each TLSRoute, writes its status, and relays connections by their
 * SNI host to the Ready endpoints of the route's Service, never decrypting them.
 *
 * Traefik serves a Gateway listener on the entry point of the listener's port, so the entry point takes that port on
 * a loopback address of its own (127.0.0.0/8 is all loopback): a privileged port such as 443 needs root, as the real
 * node does.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { startChild, type Child } from '../../lib/local/child';
import { traefikBinary } from '../../lib/local/tools';
import { GATEWAY_API_GROUP } from '../../lib/compute/kubernetes/objects';
import type { KubeControlPlane } from './kube-control-plane';
import { waitFor } from './wait';

/** What Traefik's Gateway provider answers to in a GatewayClass. */
export const TRAEFIK_CONTROLLER = 'traefik.io/gateway-controller';

export interface SniGateway {
  /** The loopback address its entry point listens on: what a wildcard DNS record for the agents' domain points at. */
  ip: string;
  /** Waits until the controller has accepted the Gateway and programmed its listeners, as its status says. */
  programmed(gateway: { namespace: string; name: string }): Promise<void>;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

/** Starts Traefik as the controller of GatewayClass `className` (made here), its entry point on `port`. */
export async function startSniGateway(controlPlane: KubeControlPlane, className: string, port: number): Promise<SniGateway> {
  const binary = traefikBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-sni-gateway-'));
  const ip = `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
  const objects = controlPlane.kubeConfig.makeApiClient(CustomObjectsApi);
  await objects.createClusterCustomObject({
    group: GATEWAY_API_GROUP,
    version: 'v1',
    plural: 'gatewayclasses',
    body: { apiVersion: `${GATEWAY_API_GROUP}/v1`, kind: 'GatewayClass', metadata: { name: className }, spec: { controllerName: TRAEFIK_CONTROLLER } },
  });
  const child: Child = startChild(
    'traefik',
    binary,
    [
      `--entryPoints.agents.address=${ip}:${port}`,
      '--providers.kubernetesGateway=true',
      '--log.level=DEBUG',
      '--global.checkNewVersion=false',
      '--global.sendAnonymousUsage=false',
    ],
    { logFile: path.join(dir, 'traefik.log'), env: { ...process.env, KUBECONFIG: controlPlane.kubeconfigPath } },
  );
  const condition = (status: any, type: string) => status?.conditions?.find((c: { type: string }) => c.type === type)?.status === 'True';
  return {
    ip,
    async programmed({ namespace, name }) {
      await waitFor(
        async () => {
          if (child.exited()) throw new Error(`${child.exited()}:\n${child.logTail()}`);
          const gateway = (await objects.getNamespacedCustomObject({ group: GATEWAY_API_GROUP, version: 'v1', plural: 'gateways', namespace, name })) as any;
          return condition(gateway.status, 'Accepted') && condition(gateway.status, 'Programmed');
        },
        60_000,
        `Traefik to program Gateway ${namespace}/${name}`,
      );
    },
    logTail: (lines) => child.logTail(lines),
    async stop() {
      await child.stop();
      await objects.deleteClusterCustomObject({ group: GATEWAY_API_GROUP, version: 'v1', plural: 'gatewayclasses', name: className }).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
