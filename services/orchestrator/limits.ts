/**
 * Per-user maxima, so that one certificate cannot take the cluster: active sessions and retained
 * volumes (counted from the store, so every replica agrees), GetServer calls per minute and open
 * WatchSession streams (counted by each orchestrator replica on its own). Past a limit the call
 * fails with RESOURCE_EXHAUSTED, naming the limit, the current use and the variable that raises it.
 */
import * as grpc from '@grpc/grpc-js';
import type { LimitsConfig } from '../../lib/config';
import { isTerminal } from '../../lib/domain';
import { knownVolumes } from '../../lib/retained-volumes';
import type { SessionStore } from '../../lib/store/session-store';
import { RpcError } from './errors';

const MINUTE_MS = 60_000;

/** What a new session would take: its workflow (one per user and workspace) and its volume. */
export interface SessionClaim {
  workflowId: string;
  volume: string;
}

/** Gives back what was admitted; calling it again does nothing. */
export type Release = () => void;

function exhausted(limit: string, use: string, max: number, variable: string, hint = ''): RpcError {
  return new RpcError(grpc.status.RESOURCE_EXHAUSTED, `${limit} limit reached: ${use} (limit ${max}; ${variable} raises it)${hint}`);
}

function once(release: () => void): Release {
  let done = false;
  return () => {
    if (!done) release();
    done = true;
  };
}

export class Limits {
  /** New sessions this replica is starting: their rows may not be in the store yet. */
  private readonly starting = new Map<string, Map<string, SessionClaim & { calls: number }>>();
  /** Per user, the times of its GetServer calls in the last minute, oldest first. */
  private readonly getServerCalls = new Map<string, number[]>();
  private readonly watchStreams = new Map<string, number>();
  private lastSweepMs = 0;

  constructor(
    private readonly config: LimitsConfig,
    private readonly store: SessionStore,
  ) {}

  /** Counts a GetServer call: a sliding minute per user. Calls over the rate do not count; a revoked caller's do (GetServer checks its rate before its revocation). */
  countGetServer(user: string, nowMs = Date.now()): void {
    this.sweep(nowMs);
    const calls = (this.getServerCalls.get(user) ?? []).filter((t) => t > nowMs - MINUTE_MS);
    this.getServerCalls.set(user, calls);
    const max = this.config.getServerPerMinute;
    if (calls.length >= max) {
      throw exhausted(
        'GetServer rate',
        `user '${user}' made ${calls.length} GetServer calls in the last minute at this orchestrator replica`,
        max,
        'RBS_LIMIT_GET_SERVER_PER_MINUTE',
      );
    }
    calls.push(nowMs);
  }

  /**
   * Admits a GetServer that may start a session, before it starts one. Attaching to the user's
   * live session for the workspace takes nothing new; otherwise the session must fit under the
   * active-session limit and, unless its volume still exists, under the retained-volume limit.
   * Sessions this replica is starting count too, so a burst of calls cannot overshoot here.
   */
  async admitSession(user: string, claim: SessionClaim): Promise<Release> {
    const [rows, owned] = await Promise.all([this.store.list({ user }), this.store.listVolumes({ user })]);
    const starting = [...(this.starting.get(user)?.values() ?? [])];
    const active = new Set([...rows.filter((r) => !isTerminal(r.phase)).map((r) => r.workflowId), ...starting.map((s) => s.workflowId)]);
    if (!active.has(claim.workflowId)) {
      const max = this.config.activeSessions;
      if (active.size >= max) {
        throw exhausted(
          'active sessions',
          `user '${user}' has ${active.size} active sessions`,
          max,
          'RBS_LIMIT_ACTIVE_SESSIONS',
          `; end one with 'rbs end SESSION'`,
        );
      }
      const volumes = new Set([...knownVolumes(rows, owned), ...starting.map((s) => s.volume)]);
      const maxVolumes = this.config.retainedVolumes;
      if (!volumes.has(claim.volume) && volumes.size >= maxVolumes) {
        throw exhausted(
          'retained volumes',
          `user '${user}' has ${volumes.size} retained volumes`,
          maxVolumes,
          'RBS_LIMIT_RETAINED_VOLUMES',
          "; a volume is removed once unused for RBS_VOLUME_RETENTION_MS (see 'rbs volumes')",
        );
      }
    }
    return this.hold(user, claim);
  }

  /** Admits a WatchSession stream; the release closes it. */
  openWatch(user: string): Release {
    const open = this.watchStreams.get(user) ?? 0;
    const max = this.config.watchStreams;
    if (open >= max) {
      throw exhausted(
        'WatchSession streams',
        `user '${user}' has ${open} open WatchSession streams at this orchestrator replica`,
        max,
        'RBS_LIMIT_WATCH_STREAMS',
      );
    }
    this.watchStreams.set(user, open + 1);
    return once(() => {
      const left = (this.watchStreams.get(user) ?? 1) - 1;
      if (left > 0) this.watchStreams.set(user, left);
      else this.watchStreams.delete(user);
    });
  }

  private hold(user: string, claim: SessionClaim): Release {
    const mine = this.starting.get(user) ?? new Map<string, SessionClaim & { calls: number }>();
    this.starting.set(user, mine);
    const held = mine.get(claim.workflowId) ?? { ...claim, calls: 0 };
    held.calls++;
    mine.set(claim.workflowId, held);
    return once(() => {
      if (--held.calls > 0) return;
      mine.delete(claim.workflowId);
      if (mine.size === 0 && this.starting.get(user) === mine) this.starting.delete(user);
    });
  }

  /** Forgets users without a GetServer call in the last minute, at most once a minute. */
  private sweep(nowMs: number): void {
    if (nowMs - this.lastSweepMs < MINUTE_MS) return;
    this.lastSweepMs = nowMs;
    for (const [user, calls] of this.getServerCalls) {
      if ((calls.at(-1) ?? 0) <= nowMs - MINUTE_MS) this.getServerCalls.delete(user);
    }
  }
}
