/**
 * Trace context across gRPC: a client interceptor writes the caller's context into the call's
 * metadata (W3C traceparent), and a server wraps each handler in a SERVER span whose parent is
 * that context. The metadata is the caller's word, so it only links spans; it grants nothing, and
 * the propagator drops what is not well-formed.
 */
import * as grpc from '@grpc/grpc-js';
import { type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { tracer } from './tracing';

const metadataSetter = { set: (carrier: grpc.Metadata, key: string, value: string) => carrier.set(key, value) };
const metadataGetter = {
  keys: (carrier: grpc.Metadata) => Object.keys(carrier.getMap()),
  get: (carrier: grpc.Metadata, key: string) => {
    const values = carrier.get(key).filter((v): v is string => typeof v === 'string');
    return values.length > 0 ? values : undefined;
  },
};

/** A client interceptor: each call carries the context it was made in. */
export const traceContextInterceptor: grpc.Interceptor = (options, nextCall) => {
  const caller = context.active(); // now, while the call is made; start() may run later
  return new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      propagation.inject(caller, metadata, metadataSetter);
      next(metadata, listener);
    },
  });
};

/** The context a call's metadata carries. */
function contextOf(metadata: grpc.Metadata): Context {
  return propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
}

type Handler = (call: { metadata: grpc.Metadata } & NodeJS.EventEmitter, callback?: grpc.sendUnaryData<unknown>) => void;

/**
 * Each handler of `handlers` runs in a SERVER span `<service>/<method>`, child of the caller's
 * context. A unary call's span ends with its callback; a stream's when it finishes, errs or is
 * cancelled.
 */
export function traced<H extends object>(service: string, handlers: H): H {
  const wrapped: Record<string, Handler> = {};
  for (const [method, handler] of Object.entries(handlers) as Array<[string, Handler]>) {
    wrapped[method] = (call, callback) => {
      const parent = contextOf(call.metadata);
      const span = tracer().startSpan(
        `${service}/${method}`,
        { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method } },
        parent,
      );
      const end = endOnce(span);
      const within = trace.setSpan(parent, span);
      // Listeners the handler adds (a stream's 'data') run in its span too.
      context.bind(within, call);
      if (callback) call.once('cancelled', () => end({ code: grpc.status.CANCELLED, details: 'cancelled by the caller' }));
      else {
        call.once('error', (err: grpc.ServiceError) => end(err));
        for (const event of ['finish', 'cancelled', 'close']) call.once(event, () => end(null));
      }
      try {
        return context.with(within, () => (callback ? handler(call, (err, ...rest) => (end(err), callback(err, ...rest))) : handler(call)));
      } catch (err) {
        end(err as Error); // grpc-js answers UNKNOWN for it
        throw err;
      }
    };
  }
  return wrapped as H;
}

function endOnce(span: Span) {
  let ended = false;
  return (err: Partial<grpc.StatusObject> | Error | null | undefined) => {
    if (ended) return;
    ended = true;
    if (err) {
      const code = (err as Partial<grpc.StatusObject>).code;
      if (code !== undefined) span.setAttribute('rpc.grpc.status_code', code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as grpc.StatusObject).details ?? (err as Error).message });
    }
    span.end();
  };
}
