import type { TemporalDevServer } from '../../lib/local/temporal-dev-server';

export default async function globalTeardown(): Promise<void> {
  const servers = (globalThis as Record<string, unknown>).__rbsTestServers as { temporal: TemporalDevServer; spanner: { stop(): Promise<void> } } | undefined;
  if (!servers) return;
  await Promise.allSettled([servers.temporal.child.stop(), servers.spanner.stop()]);
}
