/**
 * Trace context through Temporal is the sender's word. Someone who reaches Temporal can signal a
 * session with any `_tracer-data` header; the workflow carries only a well-formed traceparent on to
 * its activities, so hostile bytes there can never fail the activities that come after them.
 */
import { Client, type WorkflowClientInterceptor } from '@temporalio/client';
import { type Payload, defaultPayloadConverter } from '@temporalio/common';
import { heartbeatSignal } from '../../workflows/messages';
import { TRACE_HEADER, wellFormed } from '../../workflows/trace-context';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const stack = useStack({ RBS_IDLE_TIMEOUT_MS: '3000' });

const json = (value: unknown): Payload => defaultPayloadConverter.toPayload(value)!;
const traceparent = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
const HOSTILE: Array<[string, Payload]> = [
  ['an encoding nobody decodes', { metadata: { encoding: new TextEncoder().encode('binary/hostile') }, data: new Uint8Array([1, 2, 3]) }],
  ['no encoding at all', { metadata: {}, data: new TextEncoder().encode('{') }],
  ['JSON that does not parse', { metadata: { encoding: new TextEncoder().encode('json/plain') }, data: new TextEncoder().encode('{"traceparent":') }],
  ['null', json(null)],
  ['a traceparent that is not a string', json({ traceparent: { toString: 1 } })],
  ['a malformed traceparent', json({ traceparent: 'garbage' })],
  ['an all-zero trace id', json({ traceparent: `00-${'0'.repeat(32)}-${'b'.repeat(16)}-01` })],
];

describe('wellFormed', () => {
  test.each(HOSTILE)('refuses %s', (_what, payload) => expect(wellFormed(payload)).toBeUndefined());

  test('keeps a valid traceparent and a bounded tracestate, and nothing else the sender added', () => {
    const kept = wellFormed(json({ traceparent, tracestate: 'vendor=1', extra: 'x'.repeat(10_000) }));
    expect(defaultPayloadConverter.fromPayload(kept!)).toEqual({ traceparent, tracestate: 'vendor=1' });
    expect(defaultPayloadConverter.fromPayload(wellFormed(json({ traceparent, tracestate: 'x'.repeat(513) }))!)).toEqual({ traceparent });
  });
});

test('a session signalled through Temporal with hostile trace headers still runs the activities that come after: it suspends when idle, and ends', async () => {
  const eve = await stack().client('eve');
  const session = await eve.getServer(stack().workspace());
  let header: Payload | undefined;
  const forge: WorkflowClientInterceptor = {
    signal: (input, next) => next({ ...input, headers: { ...input.headers, [TRACE_HEADER]: header! } }),
  };
  const temporal = new Client({ connection: stack().temporal.connection, namespace: stack().config.temporal.namespace, interceptors: { workflow: [forge] } });
  const handle = temporal.workflow.getHandle(session.workflowId);
  // The last one sent is one no payload converter decodes.
  for (const [, payload] of [...HOSTILE].reverse()) {
    header = payload;
    await handle.signal(heartbeatSignal, session.sessionId);
  }
  // The idle suspend is the next thing the workflow does: its activities come after the headers
  // above and before any other message.
  await waitFor(async () => (await eve.describeSession(session.sessionId)).phase === 'SUSPENDED', 20_000, 'the idle suspend');
  expect(await eve.endSession(session.sessionId)).toMatchObject({ phase: 'ENDED' });
}, 60_000);
