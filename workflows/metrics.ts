/**
 * What workflows tell the worker's metrics (services/worker/metrics.ts), through a sink: it writes
 * nothing to history, and is not called while a history replays (a worker restart counts nothing
 * again). A workflow task that fails after its call and is retried does count twice: rare, and a
 * metric, not a record.
 */
import { type Sinks, proxySinks } from '@temporalio/workflow';
import type { SessionPhase } from '../lib/domain';

/** Counts of what one cleanup pass reconciled, by kind of leftover. */
export type CleanupCounts = Record<'namespaces' | 'agents' | 'sessionRows' | 'adoptedVolumes' | 'restartedOwners' | 'expiredRows' | 'orphanedShares', number>;

export type ReadyStart = 'new' | 'resume' | 'replace';

export interface MetricsSinks extends Sinks {
  metrics: {
    /**
     * A session left `phase` for `next` after `seconds` in it (a failed step's time includes undoing
     * the steps before it), at `atMs` (workflow time, epoch ms; absent from workers before it).
     */
    phaseLeft(phase: SessionPhase, next: SessionPhase, seconds: number, atMs?: number): void;
    /** A session became READY `seconds` after its run started, its resume began, or its unanswering agent was found. */
    ready(seconds: number, start: ReadyStart): void;
    cleanupPass(counts: CleanupCounts): void;
  };
}

export const { metrics } = proxySinks<MetricsSinks>();
