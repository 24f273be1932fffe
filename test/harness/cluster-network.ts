/**
 * A laptop's way into the test cluster's network, standing in for what a VPN or VPC-native routing gives in
 * production (no cluster DNS or kube-proxy runs here): an HTTP CONNECT proxy on loopback that resolves
 * `<service>.<namespace>.svc:<port>` as cluster DNS and a Service would, to a Ready pod the Service selects,
 * read from the apiserver at each connection; and, as public DNS would, the hosts of a gateway's wildcard records to
 * its address (WildcardRecord). Processes reach it through grpc-js's own `grpc_proxy`
 * setting (clusterNetworkEnv); the bytes are relayed untouched, so TLS is end to end.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

export interface ClusterNetwork {
  /** What a process needs in its environment to dial cluster names through this network (loopback stays direct). */
  env: Record<string, string>;
  /** The targets it connected, as `host:port -> podIP:port`, in order. */
  readonly connections: string[];
  close(): Promise<void>;
}

const SERVICE_HOST = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?$/;

/** A wildcard DNS record: every host of `domain` (one label deep) resolves to `ip`, a gateway's. */
export interface WildcardRecord {
  domain: string;
  ip: string;
}

export async function startClusterNetwork(kubeConfig: KubeConfig, records: WildcardRecord[] = []): Promise<ClusterNetwork> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const connections: string[] = [];
  const sockets = new Set<net.Socket>();

  /** podIP:port for `host:port`, as cluster DNS and the Service's endpoints would route it. */
  async function route(target: string): Promise<string> {
    const at = target.lastIndexOf(':');
    const [host, port] = [target.slice(0, at), Number(target.slice(at + 1))];
    const record = records.find((r) => host.endsWith(`.${r.domain}`) && !host.slice(0, -r.domain.length - 1).includes('.'));
    if (record) return `${record.ip}:${port}`;
    const [, name, namespace] = SERVICE_HOST.exec(host) ?? [];
    if (!name) throw new Error(`${host} is not a Service name`);
    const service = await core.readNamespacedService({ name, namespace });
    const servicePort = service.spec?.ports?.find((p) => p.port === port);
    if (!servicePort || !service.spec?.selector) throw new Error(`Service ${namespace}/${name} has no port ${port} with a selector`);
    const selector = Object.entries(service.spec.selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const pods = await core.listNamespacedPod({ namespace, labelSelector: selector });
    const ready = pods.items.find((p) => p.status?.podIP && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    if (!ready) throw new Error(`no Ready pod behind Service ${namespace}/${name}`);
    const targetPort = servicePort.targetPort ?? port;
    const podPort =
      typeof targetPort === 'number' ? targetPort : ready.spec?.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === targetPort)?.containerPort;
    if (!podPort) throw new Error(`pod ${namespace}/${ready.metadata?.name} has no port ${targetPort}`);
    return `${ready.status!.podIP}:${podPort}`;
  }

  const server = http.createServer((_req, res) => res.writeHead(405).end('CONNECT only\n'));
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    const target = req.url ?? '';
    route(target).then(
      (address) => {
        connections.push(`${target} -> ${address}`);
        const at = address.lastIndexOf(':');
        const upstream = net.connect(Number(address.slice(at + 1)), address.slice(0, at));
        sockets.add(upstream);
        upstream.on('close', () => (sockets.delete(upstream), client.destroy()));
        upstream.on('error', () => client.destroy());
        client.on('close', () => upstream.destroy());
        upstream.on('connect', () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length > 0) upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
      },
      (err: Error) => client.end(`HTTP/1.1 502 Bad Gateway\r\n\r\n${err.message}\n`),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    env: { grpc_proxy: `http://127.0.0.1:${port}`, no_grpc_proxy: '127.0.0.1,localhost' },
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
