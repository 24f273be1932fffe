/**
 * OpenTelemetry traces, one provider per process. Context always travels (W3C traceparent on gRPC
 * metadata and Temporal headers), so a process that exports nothing still links its neighbours'
 * spans. Spans are exported over OTLP/HTTP only when the standard OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; the exporter reads the rest of the OTEL_* settings
 * (headers, timeout) and OTEL_BSP_* tunes the batching.
 */
import { type Attributes, context, diag, propagation, SpanStatusCode, trace, type DiagLogger, DiagLogLevel, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { processLog } from '../log';

export interface Tracing {
  /** Where spans go: OTLP, or nowhere. */
  readonly exporting: string | null;
  /** Exports what is still buffered. */
  shutdown(): Promise<void>;
}

let current: Tracing | undefined;

/** A URL as it may be shown: without credentials (user:password@) or a query (a token). */
export function redacted(value: string): string {
  return value.replace(/\/\/[^/@]*@/, '//…@').replace(/\?.*$/, '?…');
}

/** `value` as a URL if it is an http(s) one, else null. */
export function httpUrl(value: string): URL | null {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}

/**
 * The collector's traces URL the standard variables name, or null: none named, or traces turned off
 * (OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none). A setting RBS cannot honour is an error
 * naming the variable: a malformed URL, or a protocol other than OTLP's http/json.
 */
export function otlpTracesEndpoint(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' || env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return null;
  const [name, value] = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    ? ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT]
    : env.OTEL_EXPORTER_OTLP_ENDPOINT
      ? ['OTEL_EXPORTER_OTLP_ENDPOINT', env.OTEL_EXPORTER_OTLP_ENDPOINT]
      : [null, null];
  if (!name || !value) return null;
  if (!httpUrl(value)) {
    throw new Error(`${name} must be an http(s) URL of an OTLP collector, got '${redacted(value)}'`);
  }
  for (const variable of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const protocol = env[variable]?.trim();
    if (protocol && protocol !== 'http/json') throw new Error(`${variable} is '${protocol}': RBS exports traces over OTLP http/json only`);
    if (protocol) break; // the traces-specific one wins
  }
  // The general variable names the collector; the signal's own names the traces path itself (the OTLP spec).
  return name === 'OTEL_EXPORTER_OTLP_ENDPOINT' ? `${value.replace(/\/+$/, '')}/v1/traces` : value;
}

/** A collector that stays down would otherwise get a line per batch. */
const DIAGNOSTICS_EVERY_MS = 60_000;

/**
 * The SDK's own complaints as this process's warnings: a collector that is down or silent costs
 * the spans of that batch (the exporter gives up after its timeout), never a call, and says so
 * here, at most once a minute with the count of those left unsaid.
 */
function diagnostics(): DiagLogger {
  let lastAt = -Infinity;
  let unsaid = 0;
  const warn = (message: string, ...args: unknown[]) => {
    const now = performance.now();
    if (now - lastAt < DIAGNOSTICS_EVERY_MS) return void unsaid++;
    lastAt = now;
    const detail = { detail: args.map(String), ...(unsaid > 0 ? { unsaidSinceLast: unsaid } : {}) };
    unsaid = 0;
    processLog().child({ component: 'opentelemetry' }).warn(detail, `spans not exported or dropped: ${message}`);
  };
  return { error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} };
}

/**
 * Once per process, before its first span or call: registers context propagation and, if a
 * collector is configured, a provider that exports to it as `rbs-<service>`.
 */
export function startTracing(service: string, env: NodeJS.ProcessEnv = process.env): Tracing {
  if (current) return current;
  const endpoint = otlpTracesEndpoint(env);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const resource = new Resource({ 'service.name': `rbs-${service}`, 'process.pid': process.pid });
  const spanProcessor = endpoint ? new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint })) : new NoopSpanProcessor();
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  if (endpoint) {
    diag.setLogger(diagnostics(), DiagLogLevel.WARN);
    trace.setGlobalTracerProvider(provider);
  }
  current = { exporting: endpoint, shutdown: () => provider.shutdown() };
  return current;
}

/** Before startTracing, or in a process that never calls it: nothing exported, nothing registered. */
const NOT_STARTED: Tracing = { exporting: null, shutdown: async () => {} };

/** This process's tracing, as startTracing set it up. */
export function processTracing(): Tracing {
  return current ?? NOT_STARTED;
}

/** RBS's own spans (the SDK interceptors name theirs). */
export function tracer(): Tracer {
  return trace.getTracer('rbs');
}

/** Runs `work` in a span of its own, child of the active one; the span ends with it, failed if it throws. */
export function inSpan<T>(name: string, attributes: Attributes, work: () => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** How long an exiting process waits for its last spans to reach the collector. */
const EXPORT_ON_EXIT_MS = 2_000;

/** Exits with `code` once the buffered spans are exported, or EXPORT_ON_EXIT_MS later. */
export async function exitAfterTraces(code: number): Promise<never> {
  await Promise.race([
    processTracing()
      .shutdown()
      .catch(() => undefined),
    new Promise((r) => setTimeout(r, EXPORT_ON_EXIT_MS).unref()),
  ]);
  process.exit(code);
}
