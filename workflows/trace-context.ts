/**
 * Workflow interceptors that carry the trace through a workflow without adding spans of its own:
 * the trace context of the newest message that brought one (the start, a signal, an update) goes
 * on every activity and child the workflow schedules, and the activity's spans (the SDK's
 * OpenTelemetry activity interceptor) join the caller's trace. That is an approximation: work a
 * timer starts (a probe of a quiet session) joins the last caller's trace too. A run that
 * continued as new starts without one, so no trace outlives a run.
 *
 * Not the SDK's OpenTelemetry workflow interceptors: they wrap each command in async functions,
 * and those extra microtask turns change when a timer is cancelled, so our recorded histories no
 * longer replay (continued-as-new: "No command scheduled for event TimerCanceled"). Here every
 * call returns `next(input)` itself, in the same turn, and only headers change, which replay ignores.
 */
import type { Payload } from '@temporalio/common';
import { type WorkflowInterceptorsFactory, defaultPayloadConverter } from '@temporalio/workflow';

/** Where the SDK's OpenTelemetry interceptors keep the context (its TRACE_HEADER). */
export const TRACE_HEADER = '_tracer-data';

type Headers = Record<string, Payload>;

/** W3C traceparent, version 00, ids not all zero (the propagator's own check, before anything is carried). */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;
const MAX_TRACESTATE = 512;

/**
 * The header re-encoded from a well-formed traceparent (and tracestate), or undefined. Whoever can
 * signal the workflow through Temporal writes these headers: a payload the activity interceptor
 * could not decode would fail every activity the workflow schedules after it.
 */
export function wellFormed(header: Payload | undefined): Payload | undefined {
  if (!header) return undefined;
  let carrier: unknown;
  try {
    carrier = defaultPayloadConverter.fromPayload(header);
  } catch {
    return undefined;
  }
  if (typeof carrier !== 'object' || carrier === null) return undefined;
  const { traceparent, tracestate } = carrier as Record<string, unknown>;
  if (typeof traceparent !== 'string' || !TRACEPARENT.test(traceparent)) return undefined;
  const state = typeof tracestate === 'string' && tracestate.length <= MAX_TRACESTATE ? { tracestate } : {};
  return defaultPayloadConverter.toPayload({ traceparent, ...state });
}

export const interceptors: WorkflowInterceptorsFactory = () => {
  let carried: Payload | undefined;
  const remember = (headers: Headers) => {
    carried = wellFormed(headers[TRACE_HEADER]) ?? carried;
  };
  const withTrace = <I extends { headers: Headers }>(input: I): I => (carried ? { ...input, headers: { ...input.headers, [TRACE_HEADER]: carried } } : input);
  return {
    inbound: [
      {
        execute: (input, next) => (remember(input.headers), next(input)),
        handleSignal: (input, next) => (remember(input.headers), next(input)),
        handleUpdate: (input, next) => (remember(input.headers), next(input)),
      },
    ],
    outbound: [
      {
        scheduleActivity: (input, next) => next(withTrace(input)),
        scheduleLocalActivity: (input, next) => next(withTrace(input)),
        startChildWorkflowExecution: (input, next) => next(withTrace(input)),
      },
    ],
  };
};
