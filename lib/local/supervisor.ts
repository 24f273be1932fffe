/**
 * Keeps a process of the local stack running, as Kubernetes keeps a Deployment's pod: one that exits
 * without being asked to is started again after a back-off, so that the next build comes back by
 * itself. One that keeps dying (CRASH_LIMIT exits within CRASH_WINDOW_MS) is given up on, and says why.
 */
import type { Child } from './child';

const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 120_000;
/** A process that ran this long had settled: its next exit is a new incident, restarted after the first back-off. */
const SETTLED_MS = 10_000;

export interface Supervised {
  readonly name: string;
  /** The process now running (or the last one, while it is being restarted). */
  current(): Child;
  /** Why it was given up on; null while it is kept running. */
  failed(): string | null;
  /** Resolves with failed() once it is given up on. */
  readonly givenUp: Promise<string>;
  stop(): Promise<void>;
}

export interface SuperviseOptions {
  /** Restarts and giving up, for whoever runs the stack. */
  log(message: string): void;
  /** The first wait before a restart (doubled after each, up to 10 s). */
  firstBackoffMs?: number;
}

/** Starts `name` with `start` (resolving once it serves) and supervises it from then on. */
export async function supervise(name: string, start: () => Promise<Child>, options: SuperviseOptions): Promise<Supervised> {
  let child = await start();
  let stopping = false;
  let failure: string | null = null;
  let giveUp!: (why: string) => void;
  const givenUp = new Promise<string>((resolve) => (giveUp = resolve));
  const exits: number[] = [];
  const firstBackoffMs = options.firstBackoffMs ?? FIRST_BACKOFF_MS;
  let backoffMs = firstBackoffMs;
  let restartTimer: NodeJS.Timeout | undefined;
  let restarting: Promise<void> = Promise.resolve();

  /** One more exit (or failed restart): back off and start again, or give up. */
  const exited = (why: string, logTail: string, upMs: number) => {
    if (stopping) return;
    const now = Date.now();
    if (upMs >= SETTLED_MS) backoffMs = firstBackoffMs;
    exits.push(now);
    while (exits[0] < now - CRASH_WINDOW_MS) exits.shift();
    if (exits.length >= CRASH_LIMIT) {
      failure = `${why}, the ${CRASH_LIMIT}th time within ${CRASH_WINDOW_MS / 1000} s: not restarted again\n${logTail}`;
      options.log(failure);
      giveUp(failure);
      return;
    }
    options.log(`${why}: restarting it in ${backoffMs} ms`);
    restartTimer = setTimeout(() => (restarting = restart()), backoffMs);
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
  };

  const watch = (watched: Child) => {
    const startedAt = Date.now();
    let seen = false;
    const gone = () => {
      if (seen) return;
      seen = true;
      void watched.stop(0); // what it started goes with it, as a container's processes do
      exited(watched.exited() ?? `${name} exited`, watched.logTail(), Date.now() - startedAt);
    };
    // A spawn that failed emits 'error' and no 'exit'.
    watched.process.once('exit', gone).once('error', gone);
    if (watched.exited() !== null) gone();
  };

  const restart = async () => {
    if (stopping) return;
    try {
      child = await start();
    } catch (err) {
      return exited(`${name} did not restart: ${err instanceof Error ? err.message : String(err)}`, '', 0);
    }
    if (stopping) return void (await child.stop());
    options.log(`${name} restarted (pid ${child.process.pid})`);
    watch(child);
  };

  watch(child);
  return {
    name,
    current: () => child,
    failed: () => failure,
    givenUp,
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      await restarting;
      await child.stop();
    },
  };
}
