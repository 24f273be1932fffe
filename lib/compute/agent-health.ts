import * as grpc from '@grpc/grpc-js';
import { protos } from '../grpc/protos';
import { channelCredentials, tlsChannelOptions, type TlsMaterial } from '../grpc/tls';
import { traceContextInterceptor } from '../tracing/grpc';

/**
 * Asks the agent at `address` for its health over mTLS, accepting only the agent certificate of
 * `sessionId`. Returns null when it serves, else what is wrong.
 */
export async function agentIsServing(address: string, sessionId: string, tls: TlsMaterial): Promise<string | null> {
  const credentials = channelCredentials(tls, (id) => id.kind === 'agent' && id.sessionId === sessionId);
  const client = new (protos().health.grpc.health.v1.Health)(address, credentials, { ...tlsChannelOptions(address), interceptors: [traceContextInterceptor] });
  try {
    const response = await new Promise<{ status: string }>((resolve, reject) =>
      client.check({ service: '' }, { deadline: Date.now() + 2000 }, (err, res) => (err ? reject(err) : resolve(res!))),
    );
    return response.status === 'SERVING' ? null : `health is ${response.status}`;
  } catch (err) {
    return `health check failed: ${(err as grpc.ServiceError).details ?? String(err)}`;
  } finally {
    client.close();
  }
}
