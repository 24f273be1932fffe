/**
 * What the orchestrator measures for Prometheus: GetServer latency by the path it took, every call
 * that ended with an error status (refusals and faults, by code), and the live sessions by phase
 * as the store shows them at scrape time.
 */
import type * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { SESSION_PHASES, TERMINAL_PHASES } from '../../lib/domain';
import { DURATION_BUCKETS_SECONDS, processRegistry } from '../../lib/metrics/registry';
import type { SessionStore } from '../../lib/store/session-store';
import { statusName } from './audit';

/** fast: a READY session found in the store; slow: through the session's workflow (start, attach, or wait). */
export type GetServerPath = 'fast' | 'slow';

/** How long one reading of the store answers scrapes. */
const SESSIONS_READ_MS = 2000;
const LIVE_PHASES = SESSION_PHASES.filter((phase) => !TERMINAL_PHASES.includes(phase));

export class OrchestratorMetrics {
  readonly registry: Registry = processRegistry();
  private readonly getServerSeconds = new Histogram({
    name: 'rbs_orchestrator_get_server_duration_seconds',
    help: 'GetServer latency, by path: fast (READY in the store) or slow (through the session workflow).',
    labelNames: ['path'] as const,
    buckets: DURATION_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'rbs_orchestrator_call_errors_total',
    help: 'Calls that ended with an error status, by RPC and gRPC code: refusals (PERMISSION_DENIED, RESOURCE_EXHAUSTED, ...) and faults (INTERNAL).',
    labelNames: ['rpc', 'code'] as const,
    registers: [this.registry],
  });

  constructor(store: SessionStore) {
    for (const path of ['fast', 'slow'] as const) this.getServerSeconds.labels(path); // present before the first call
    // Read at most every SESSIONS_READ_MS however often the endpoint is scraped: it answers anyone who reaches its port.
    let counted: { at: number; counts: Promise<Map<string, number>> } | undefined;
    const count = async () => {
      const counts = new Map<string, number>(LIVE_PHASES.map((phase) => [phase, 0]));
      for (const record of await store.list({ phases: LIVE_PHASES })) counts.set(record.phase, (counts.get(record.phase) ?? 0) + 1);
      return counts;
    };
    new Gauge({
      name: 'rbs_sessions',
      help: 'Sessions that have not ended, by phase, as the session store (a projection of their workflows) shows them. Every replica reports them all: aggregate with max, not sum.',
      labelNames: ['phase'] as const,
      registers: [this.registry],
      async collect() {
        if (!counted || performance.now() - counted.at >= SESSIONS_READ_MS) counted = { at: performance.now(), counts: count() };
        const counts = counted.counts;
        counts.catch(() => (counted = undefined)); // a failed read is not remembered
        for (const [phase, n] of await counts) this.set({ phase }, n);
      },
    });
  }

  getServerDone(path: GetServerPath, seconds: number): void {
    this.getServerSeconds.observe({ path }, seconds);
  }

  /** `rpc` is one of the service's method names; `code` a gRPC status. */
  callFailed(rpc: string, code: grpc.status | undefined): void {
    this.errors.inc({ rpc, code: statusName(code) });
  }
}
