/**
 * A peer that vanishes without closing its connection (a laptop that sleeps, a dropped network)
 * would hold its calls open for hours, and with them a running Bazel command and the server's lock.
 * Servers ping every connection that is this quiet and drop it when a ping goes unanswered, which
 * cancels its calls like a client hanging up. Clients of long calls (the proxy's Run) ping too, so
 * a build does not hang on an agent that can no longer answer. (grpc-js servers accept such pings.)
 */
import type * as grpc from '@grpc/grpc-js';

export const DEFAULT_KEEPALIVE_MS = 15_000;

/** Under a second, live connections get dropped; past 2^31-1 ms, Node's timers fire at once. */
const KEEPALIVE_RANGE_MS = { min: 1_000, max: 2_147_483_647 };

/** `value` if it is a keepalive interval RBS accepts, else an error naming `source`. */
export function checkKeepaliveMs(value: number, source: string): number {
  if (!Number.isSafeInteger(value) || value < KEEPALIVE_RANGE_MS.min || value > KEEPALIVE_RANGE_MS.max) {
    throw new Error(`${source} must be a whole number of milliseconds from ${KEEPALIVE_RANGE_MS.min} to ${KEEPALIVE_RANGE_MS.max}, got ${value}`);
  }
  return value;
}

/** Server options that drop a connection within about 1.5 × `intervalMs` of its peer vanishing. */
export function serverKeepalive(intervalMs = DEFAULT_KEEPALIVE_MS): grpc.ServerOptions {
  return { 'grpc.keepalive_time_ms': intervalMs, 'grpc.keepalive_timeout_ms': Math.ceil(intervalMs / 2) };
}

/** Channel options with which a client notices, the same way, a server that went silent mid-call. */
export function clientKeepalive(intervalMs = DEFAULT_KEEPALIVE_MS): grpc.ChannelOptions {
  return { 'grpc.keepalive_time_ms': intervalMs, 'grpc.keepalive_timeout_ms': Math.ceil(intervalMs / 2) };
}
