/** Long activities report that they are alive, so that a lost worker's work is retried soon. */
import { Context } from '@temporalio/activity';

/**
 * Runs `work` while heartbeating with the latest detail it reported: at once on each report, and
 * meanwhile five times per heartbeat timeout (the SDK sends the server at most one per 80% of it; a
 * beat a second cost the worker CPU for each of hundreds of agents starting at once). The worker's
 * event loop may then stall up to 8 s before a 10 s heartbeat timeout passes.
 */
export async function heartbeating<T>(work: (report: (detail: unknown) => void) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  let latest: unknown;
  const beat = setInterval(() => ctx.heartbeat(latest), keepaliveMs(ctx.info.heartbeatTimeoutMs));
  try {
    return await work((detail) => {
      latest = detail;
      ctx.heartbeat(detail);
    });
  } finally {
    clearInterval(beat);
  }
}

/** A fifth of the heartbeat timeout, within 1 s and 10 s; every second for an activity scheduled without one. */
function keepaliveMs(heartbeatTimeoutMs: number | undefined): number {
  return heartbeatTimeoutMs ? Math.min(10_000, Math.max(1000, heartbeatTimeoutMs / 5)) : 1000;
}
