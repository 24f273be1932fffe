/**
 * lib/tracing: which collector the environment names, and trace context over gRPC (a real grpc-js
 * server and client on loopback, spans recorded by the real SDK). The caller's traceparent is
 * untrusted bytes: a malformed or hostile one must neither fail the call nor become a parent.
 */
import * as grpc from '@grpc/grpc-js';
import { SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { traceContextInterceptor, traced } from '../../lib/tracing/grpc';
import { otlpTracesEndpoint, tracer } from '../../lib/tracing/tracing';

describe('otlpTracesEndpoint', () => {
  test('none without either variable; the general one gets the traces path, the traces one is taken as it is', () => {
    expect(otlpTracesEndpoint({})).toBeNull();
    expect(otlpTracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe('http://collector:4318/v1/traces');
    expect(otlpTracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4318/' })).toBe('https://collector:4318/v1/traces');
    expect(otlpTracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/custom' })).toBe(
      'http://collector:4318/custom',
    );
  });

  test('a malformed one is an error that names the variable and the value', () => {
    expect(() => otlpTracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      "OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL of an OTLP collector, got 'collector:4318'",
    );
    expect(() => otlpTracesEndpoint({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://collector:4317' })).toThrow(/OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be/);
  });

  test("the message repeats no credentials: neither a URL's user:password nor its query", () => {
    expect(() => otlpTracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://user:hunter2@collector:4318/x?token=abc' })).toThrow(
      "OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL of an OTLP collector, got 'ftp://…@collector:4318/x?…'",
    );
  });

  test('OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn exporting off', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    expect(otlpTracesEndpoint({ ...endpoint, OTEL_SDK_DISABLED: 'true' })).toBeNull();
    expect(otlpTracesEndpoint({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' })).toBeNull();
    expect(otlpTracesEndpoint({ ...endpoint, OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' })).toBe('http://collector:4318/v1/traces');
  });

  test('a protocol other than http/json is refused by name, the traces-specific setting first', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317' };
    expect(() => otlpTracesEndpoint({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      "OTEL_EXPORTER_OTLP_PROTOCOL is 'grpc': RBS exports traces over OTLP http/json only",
    );
    expect(() => otlpTracesEndpoint({ ...endpoint, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' })).toThrow(
      /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL is 'http\/protobuf'/,
    );
    expect(otlpTracesEndpoint({ ...endpoint, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBe(
      'http://collector:4317/v1/traces',
    );
  });
});

describe('trace context over gRPC', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const bytes = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
  const method = (responseStream: boolean, name = responseStream ? 'Stream' : 'Echo') => ({
    path: `/t.T/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  });
  const service = { Echo: method(false), Stream: method(true), Throw: method(false, 'Throw') };
  let server: grpc.Server;
  let client: grpc.Client;

  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    server = new grpc.Server();
    server.addService(
      service,
      traced('t.T', {
        // Answers with the trace id it runs in, as the handler sees it.
        Echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
          callback(null, Buffer.from(trace.getActiveSpan()?.spanContext().traceId ?? 'none')),
        Throw: () => {
          throw new Error('the handler threw');
        },
        Stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
          call.write(Buffer.from('x'));
          call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: 'refused' });
        },
      }),
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { interceptors: [traceContextInterceptor] });
  });
  afterAll(async () => {
    client.close();
    server.forceShutdown();
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });
  beforeEach(() => exporter.reset());

  const echo = (metadata = new grpc.Metadata()) =>
    new Promise<string>((resolve, reject) =>
      client.makeUnaryRequest(service.Echo.path, bytes.serialize, bytes.deserialize, Buffer.alloc(0), metadata, (err, res) =>
        err ? reject(err) : resolve(res!.toString()),
      ),
    );
  const serverSpans = () => exporter.getFinishedSpans().filter((s) => s.name.startsWith('t.T/'));

  test("a call made inside a span is served in a child of it: same trace, that span the server span's parent", async () => {
    const { traceId, spanId, seen } = await tracer().startActiveSpan('caller', async (span) => {
      const seen = await echo();
      span.end();
      return { ...span.spanContext(), seen };
    });
    expect(seen).toBe(traceId);
    const [served] = serverSpans();
    expect({ name: served.name, traceId: served.spanContext().traceId, parent: served.parentSpanId }).toEqual({ name: 't.T/Echo', traceId, parent: spanId });
  });

  test.each([
    ['not a traceparent at all', 'garbage'],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01`],
    ['an all-zero span id', `00-${'a'.repeat(32)}-${'0'.repeat(16)}-01`],
    ['the forbidden version ff', `ff-${'a'.repeat(32)}-${'b'.repeat(16)}-01`],
    ['upper-case hex', `00-${'A'.repeat(32)}-${'B'.repeat(16)}-01`],
    ['8 KiB of it', `00-${'a'.repeat(8192)}-${'b'.repeat(16)}-01`],
    ['not hex', `00-${'g'.repeat(32)}-${'b'.repeat(16)}-01`],
  ])('a hostile traceparent (%s) neither fails the call nor becomes a parent', async (_what, value) => {
    const metadata = new grpc.Metadata();
    metadata.set('traceparent', value);
    metadata.set('tracestate', 'x='.repeat(4096));
    const seen = await echo(metadata);
    const [served] = serverSpans();
    expect({ parent: served.parentSpanId, traceId: served.spanContext().traceId }).toEqual({ parent: undefined, traceId: seen });
    expect(seen).toMatch(/^[0-9a-f]{32}$/);
    expect(seen).not.toBe('0'.repeat(32));
  });

  test('a handler that throws still ends its span, marked failed; the caller gets UNKNOWN as before', async () => {
    const failed = await new Promise<grpc.ServiceError>((resolve) =>
      client.makeUnaryRequest(service.Throw.path, bytes.serialize, bytes.deserialize, Buffer.alloc(0), (err) => resolve(err!)),
    );
    expect(failed.code).toBe(grpc.status.UNKNOWN);
    const [served] = serverSpans();
    expect({ name: served.name, status: served.status }).toEqual({ name: 't.T/Throw', status: { code: SpanStatusCode.ERROR, message: 'the handler threw' } });
  });

  test('a stream that ends in an error status ends its span, marked failed with the status', async () => {
    const call = client.makeServerStreamRequest(service.Stream.path, bytes.serialize, bytes.deserialize, Buffer.alloc(0));
    call.on('data', () => undefined);
    call.on('error', () => undefined); // the status below says it
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    expect(status.code).toBe(grpc.status.FAILED_PRECONDITION);
    await new Promise((r) => setTimeout(r, 50));
    const [served] = serverSpans();
    expect({ name: served.name, status: served.status, code: served.attributes['rpc.grpc.status_code'] }).toEqual({
      name: 't.T/Stream',
      status: { code: SpanStatusCode.ERROR, message: 'refused' },
      code: grpc.status.FAILED_PRECONDITION,
    });
  });
});
