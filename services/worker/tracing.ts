/**
 * The worker's part of a trace. Activities run in spans of the SDK's OpenTelemetry interceptor
 * (@temporalio/interceptors-opentelemetry, pinned to the SDK's own version), children of the
 * context the workflow hands them (workflows/trace-context.ts, always in the bundle so that no
 * history depends on whether a collector is configured).
 */
import { OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor } from '@temporalio/interceptors-opentelemetry/lib/worker';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
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
        return traced.execute({ ...input, headers: checked ? { ...others, [TRACE_HEADER]: checked } : others }, next);
      },
    },
    outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
  };
};
