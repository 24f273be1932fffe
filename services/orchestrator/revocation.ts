/**
 * Revoking users: an operator's revocation refuses the user's every later call at every replica
 * (one point read of the store per call) and ends the user's live sessions, which stops their
 * agents, so the session certificates of their proxies no longer reach anything either.
 */
import * as grpc from '@grpc/grpc-js';
import { isTerminal } from '../../lib/domain';
import type { SessionStore } from '../../lib/store/session-store';
import { validateUserName } from '../../lib/validate';
import { RpcError } from './errors';
import type { Caller, Sessions } from './sessions';
import type { Logger } from '../../lib/log';

/**
 * A GetServer admitted just before the revocation was written may still be starting a session
 * when the first sweep looks: sweep until one finds nothing live, this many times at most.
 */
const MAX_SWEEPS = 3;

export class Revocations {
  constructor(
    private readonly store: SessionStore,
    private readonly sessions: Pick<Sessions, 'end'>,
    private readonly log: Logger,
  ) {}

  /** Refuses a revoked caller. Read on every call, never cached. */
  async admit(caller: Caller): Promise<void> {
    const revocation = await this.store.revocation(caller.user);
    if (revocation) {
      // Which operator revoked is for the audit trail (the store, the log), not for the revoked.
      throw new RpcError(
        grpc.status.UNAUTHENTICATED,
        `user '${caller.user}' has been revoked since ${revocation.revokedAt.toISOString()}: only an operator can lift it`,
      );
    }
  }

  /** Revokes `rawUser` and ends their live sessions; returns the ids of the sessions ended. */
  async revoke(caller: Caller, rawUser: string): Promise<string[]> {
    const user = this.operatorAction(caller, rawUser, 'revoke');
    await this.store.revoke({ user, revokedBy: caller.user, revokedAt: new Date() });
    const ended: string[] = [];
    for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
      const live = (await this.store.list({ user })).filter((s) => !isTerminal(s.phase));
      if (live.length === 0) break;
      // Through the operator's own end path: the workflow tears the session down.
      await Promise.all(live.map((s) => this.sessions.end(caller, s.sessionId)));
      ended.push(...live.map((s) => s.sessionId));
    }
    this.log.info({ audit: 'operator', action: 'revoke', operator: caller.user, targetUser: user, endedSessionIds: ended }, 'user revoked');
    return ended;
  }

  /** Lifts the revocation of `rawUser`; false if they were not revoked. */
  async unrevoke(caller: Caller, rawUser: string): Promise<boolean> {
    const user = this.operatorAction(caller, rawUser, 'unrevoke');
    const lifted = await this.store.unrevoke(user);
    if (lifted) this.log.info({ audit: 'operator', action: 'unrevoke', operator: caller.user, targetUser: user }, 'revocation lifted');
    return lifted;
  }

  private operatorAction(caller: Caller, rawUser: string, action: string): string {
    if (!caller.operator) {
      throw new RpcError(grpc.status.PERMISSION_DENIED, `user '${caller.user}' is not an operator: cannot ${action} users`);
    }
    return validateUserName(rawUser);
  }
}
