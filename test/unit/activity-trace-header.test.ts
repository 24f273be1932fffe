/**
 * The worker's activity interceptor checks the trace header itself: an activity scheduled by
 * whoever reaches Temporal (not by our workflows, which pass on only well-formed headers) runs
 * whatever bytes that header holds, untraced, instead of failing in the SDK's decoder.
 */
import { Context } from '@temporalio/activity';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { activityInterceptors } from '../../services/worker/tracing';
import { TRACE_HEADER } from '../../workflows/trace-context';

const bytes = (text: string) => new TextEncoder().encode(text);

test.each<[string, Payload]>([
  ['an encoding nobody decodes', { metadata: { encoding: bytes('binary/hostile') }, data: new Uint8Array([1, 2, 3]) }],
  ['JSON that does not parse', { metadata: { encoding: bytes('json/plain') }, data: bytes('{"traceparent":') }],
  ['null', defaultPayloadConverter.toPayload(null)!],
])('an activity whose trace header is %s runs', async (_what, header) => {
  const ran = await new MockActivityEnvironment().run(async () => {
    const { inbound } = activityInterceptors(Context.current());
    return inbound!.execute!({ args: [], headers: { [TRACE_HEADER]: header } }, async () => 'ran');
  });
  expect(ran).toBe('ran');
});
