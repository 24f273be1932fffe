/** Long activities report that they are alive, so that a lost worker's work is retried soon. */
import { Context } from '@temporalio/activity';

/** Runs `work` while heartbeating every second with the latest detail it reported. */
export async function heartbeating<T>(work: (report: (detail: unknown) => void) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  let latest: unknown;
  const beat = setInterval(() => ctx.heartbeat(latest), 1000);
  try {
    return await work((detail) => {
      latest = detail;
      ctx.heartbeat(detail);
    });
  } finally {
    clearInterval(beat);
  }
}
