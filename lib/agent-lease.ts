/**
 * The timings of the agent's volume lease (services/agent/volume-lease.ts), which the control plane
 * must allow for: an agent replacing one that may still run waits it out before it serves.
 */

/** A pod's agent: long enough that a Filestore stall does not make a healthy agent give up its volume. */
export const DEFAULT_AGENT_LEASE_MS = 30_000;
/** A local agent's volume is a local directory, which does not stall as a network share may. */
export const LOCAL_AGENT_LEASE_MS = 10_000;
/**
 * A holder's margin is a tenth of its lease (a successor's extra check) less its watchdog's 100 ms: thinner than
 * at 5 s, two agents could briefly share the volume, and a share's stall of a second would make healthy agents quit.
 */
export const MIN_AGENT_LEASE_MS = 5_000;
/** A holder's own lease is waited out up to this long, whatever its file says; no agent's is longer. */
export const MAX_AGENT_LEASE_MS = 5 * 60_000;
/** What an agent needs after its wait to serve: the aim for a cold start is 5 s, a probe period 2 s. */
const AGENT_START_ALLOWANCE_MS = 10_000;

/** The lease a backend's agents hold, and where it is set. */
export interface AgentLease {
  ms: number;
  source: string;
}

/** How often a holder reads its claim back. */
export const leaseCheckIntervalMs = (leaseMs: number) => Math.max(10, Math.floor(leaseMs / 10));

/**
 * How long a new agent waits for a previous holder that may still run, `leaseMs` being the longer lease of
 * the two: that lease plus one check of it. The control plane allows for its own agents' lease; a holder
 * whose file claims a longer one (started before the setting was lowered, or forged by a build on the
 * volume) is waited out longer, up to MAX_AGENT_LEASE_MS, and may fail its own session's deadline.
 */
export const takeoverWaitMs = (leaseMs: number) => leaseMs + leaseCheckIntervalMs(leaseMs);

/**
 * Refuses a readiness deadline that no replacement agent could meet after a node loss: it would fail
 * every session whose agent's node went away, with a timeout that does not say why.
 */
export function checkReadyTimeoutCoversTakeover(readyTimeoutMs: number, lease: AgentLease): void {
  const wait = takeoverWaitMs(lease.ms);
  const least = wait + AGENT_START_ALLOWANCE_MS;
  if (readyTimeoutMs < least) {
    throw new Error(
      `RBS_AGENT_READY_TIMEOUT_MS=${readyTimeoutMs} is too short: an agent replacing one that may still run waits ${wait} ms ` +
        `for it on the volume (its lease: ${lease.ms} ms, ${lease.source}), then starts; allow at least ${least} ms`,
    );
  }
}
