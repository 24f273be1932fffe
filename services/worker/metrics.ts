/**
 * The worker's Prometheus endpoint is the Temporal SDK's own exporter (Runtime.install telemetry):
 * the SDK's metrics (workflow and activity tasks, polls, latencies) and RBS's, which workflows report
 * through a sink (workflows/metrics.ts) and this module records on the runtime's meter.
 */
import { type InjectedSinks, Runtime, type RuntimeOptions } from '@temporalio/worker';
import type { BackendConfig } from '../../lib/config';
import type { SessionPhase } from '../../lib/domain';
import { DURATION_BUCKETS_SECONDS } from '../../lib/metrics/registry';
import type { CleanupCounts, MetricsSinks } from '../../workflows/metrics';
import { phaseSpan } from './tracing';

const PHASE_SECONDS = 'rbs_session_phase_duration_seconds';
const READY_SECONDS = 'rbs_session_time_to_ready_seconds';

/** Phases a session rests in for as long as it is used or idle: their length says nothing about speed. */
const RESTING: ReadonlySet<SessionPhase> = new Set(['READY', 'SUSPENDED', 'ENDED', 'FAILED']);

const CLEANUP_KINDS: Record<Exclude<keyof CleanupCounts, 'orphanedShares'>, string> = {
  namespaces: 'namespace',
  agents: 'agent',
  sessionRows: 'session_row',
  adoptedVolumes: 'adopted_volume',
  restartedOwners: 'restarted_volume_owner',
  expiredRows: 'expired_row',
};

/**
 * Runtime telemetry serving Prometheus on `listen`, named the Prometheus way: base units (seconds)
 * in the names, `_total` on counters. The SDK's meter takes labels as given; RBS's are snake_case.
 */
export function prometheusTelemetry(listen: string): RuntimeOptions['telemetryOptions'] {
  return {
    metrics: {
      prometheus: {
        bindAddress: listen,
        countersTotalSuffix: true,
        unitSuffix: true,
        useSecondsForDurations: true,
        histogramBucketOverrides: { [PHASE_SECONDS]: DURATION_BUCKETS_SECONDS, [READY_SECONDS]: DURATION_BUCKETS_SECONDS },
      },
    },
  };
}

/** The sink workflows report to; `backend` labels every session measurement. */
export function metricsSinks(backend: BackendConfig['kind']): InjectedSinks<MetricsSinks> {
  const meter = Runtime.instance().metricMeter.withTags({ backend });
  const phaseSeconds = meter.createHistogram(
    PHASE_SECONDS,
    'float',
    undefined,
    'Time sessions spent in each step (phase), by backend, and the phase that came next (FAILED: the step failed, its time including the undoing).',
  );
  const readySeconds = meter.createHistogram(
    READY_SECONDS,
    'float',
    undefined,
    "Time to READY, by backend and start: new (from the run's start), resume (a suspended session), replace (an agent that stopped answering).",
  );
  const passes = meter.createCounter('rbs_cleanup_passes', undefined, 'Cleanup passes that ran to the end.');
  const reconciled = meter.createCounter('rbs_cleanup_reconciled', undefined, 'Leftovers the cleanup removed or gave an owner, by kind.');
  const orphanedShares = meter.createGauge(
    'rbs_cleanup_orphaned_shares',
    'int',
    undefined,
    'Filestore instances of RBS that no session accounts for, as the last cleanup pass found them (reported, never deleted: an operator decides).',
  );
  return {
    metrics: {
      phaseLeft: {
        fn: (info, phase, next, seconds, atMs) => {
          if (RESTING.has(phase)) return;
          phaseSeconds.record(seconds, { phase, next });
          phaseSpan(info, phase, next, seconds, atMs);
        },
      },
      ready: { fn: (_info, seconds, start) => readySeconds.record(seconds, { start }) },
      cleanupPass: {
        fn: (_info, counts) => {
          passes.add(1);
          for (const [field, kind] of Object.entries(CLEANUP_KINDS)) reconciled.add(counts[field as keyof typeof CLEANUP_KINDS], { kind });
          orphanedShares.set(counts.orphanedShares);
        },
      },
    },
  };
}
