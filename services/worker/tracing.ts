/**
 * The worker's part of a trace. Activities run in spans of the SDK's OpenTelemetry interceptor
 * (@temporalio/interceptors-opentelemetry, pinned to the SDK's own version), children of the
 * context the workflow hands them (workflows/trace-context.ts, always in the bundle so that no
 * history depends on whether a collector is configured).
 */
import { OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor } from '@temporalio/interceptors-opentelemetry/lib/worker';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/** Bundled with the workflows, and given to every replay of them. */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../../workflows/trace-context')];

export const activityInterceptors: ActivityInterceptorsFactory = (ctx) => ({
  inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
  outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
});
