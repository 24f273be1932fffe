/**
 * A process's Prometheus registry: Node's own process metrics, then whatever the service adds.
 * Names follow Prometheus' conventions (base units, `_total` counters), checked by promlint in tests.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

/** prom-client's gauges that end in `_total`, which Prometheus reserves for counters; each has a by-type twin without it. */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  return registry;
}

/** Latency buckets from a millisecond to five minutes: warm calls and cold starts in one histogram. */
export const DURATION_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** `value` if it is one of `known`, else 'other': a label never takes an unbounded set of values from input. */
export function boundedLabel(value: string, known: ReadonlySet<string>): string {
  return known.has(value) ? value : 'other';
}
