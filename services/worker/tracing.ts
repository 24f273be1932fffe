/**
 * The worker's part of a trace. Activities run in spans of the SDK's OpenTelemetry interceptor
 * (@temporalio/interceptors-opentelemetry, pinned to the SDK's own version), children of the
 * context the workflow hands them (workflows/trace-context.ts, always in the bundle so that no
 * history depends on whether a collector is configured).
 */
import { ROOT_CONTEXT, propagation } from '@opentelemetry/api';
import { type Payload, defaultPayloadConverter } from '@temporalio/common';
import { OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor } from '@temporalio/interceptors-opentelemetry/lib/worker';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { SessionPhase } from '../../lib/domain';
import { tracer } from '../../lib/tracing/tracing';
import { TRACE_HEADER, wellFormed } from '../../workflows/trace-context';

/** Bundled with the workflows, and given to every replay of them. */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../../workflows/trace-context')];

/**
 * The SDK's interceptor fails an activity whose trace header it cannot decode. Our workflows pass
 * on only well-formed ones, but whoever reaches Temporal can schedule an activity directly (a
 * standalone activity, a rogue workflow-task poller): the header is checked here too.
 */
export const activityInterceptors: ActivityInterceptorsFactory = (ctx) => {
  const traced = new OpenTelemetryActivityInboundInterceptor(ctx);
  return {
    inbound: {
      execute(input, next) {
        const { [TRACE_HEADER]: header, ...others } = input.headers;
        const checked = wellFormed(header);
        const run = ctx.info.workflowExecution?.runId;
        if (checked && run) remember(run, checked);
        return traced.execute({ ...input, headers: checked ? { ...others, [TRACE_HEADER]: checked } : others }, next);
      },
    },
    outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
  };
};

/** Runs whose trace context is kept, the least recently used forgotten first. */
const MAX_RUNS = 10_000;
/** The trace context each workflow run last handed an activity: the trace its steps join. */
const runContexts = new Map<string, Payload>();

function remember(runId: string, header: Payload): void {
  runContexts.delete(runId);
  runContexts.set(runId, header);
  if (runContexts.size > MAX_RUNS) runContexts.delete(runContexts.keys().next().value!);
}

/**
 * A span for a step (phase) a session's workflow left at `atMs` after `seconds` in it, beside the
 * activities of the caller that made it take the step. The workflow reports the step through its
 * metrics sink, never while a history replays; it adds nothing to the workflow's history or timing.
 * The context is the one this worker process last handed an activity of the run: a run that has
 * handed it none (it ran on another worker until now) has no trace to join here, and no span.
 */
export function phaseSpan(run: { workflowId: string; runId: string }, phase: SessionPhase, next: SessionPhase, seconds: number, atMs?: number): void {
  const header = runContexts.get(run.runId);
  const end = atMs ?? Date.now();
  if (!header || !Number.isFinite(seconds) || seconds < 0 || !Number.isFinite(end)) return;
  const parent = propagation.extract(ROOT_CONTEXT, defaultPayloadConverter.fromPayload(header));
  const attributes = { 'rbs.workflow_id': run.workflowId, 'rbs.run_id': run.runId, 'rbs.phase': phase, 'rbs.next_phase': next };
  tracer()
    .startSpan(`session phase ${phase}`, { startTime: end - seconds * 1000, attributes }, parent)
    .end(end);
}
