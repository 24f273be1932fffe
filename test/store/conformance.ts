/**
 * The behaviour every SessionStore must have, as one jest suite each store's test file runs.
 * Every test uses fresh ids and user names, so suites and tests can share one database.
 */
import { randomUUID } from 'node:crypto';
import type { SessionRecord, VolumeRecord } from '../../lib/domain';
import type { SessionStore } from '../../lib/store/session-store';

const T0 = Date.UTC(2024, 0, 15, 10, 30, 0, 123);

function at(offsetMs: number): Date {
  return new Date(T0 + offsetMs);
}

function ms(offsetMs: number): number {
  return T0 + offsetMs;
}

function uniqueUser(): string {
  return `user-${randomUUID()}`;
}

function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const sessionId = `s-${randomUUID()}`;
  return {
    sessionId,
    workflowId: `session-${sessionId}`,
    runId: `run-${sessionId}`,
    user: uniqueUser(),
    workspace: '/home/dev/src/project',
    namespace: 'dev-rbs-0123abcd',
    volume: 'dev-rbs-0123abcd-ws',
    phase: 'PROVISIONING_NAMESPACE',
    agentAddress: null,
    failureReason: null,
    endReason: null,
    createdAtMs: ms(0),
    updatedAtMs: ms(1000),
    lastActivityAtMs: ms(2000),
    generation: T0,
    seq: 1,
    ...overrides,
  };
}

function volumeRecord(overrides: Partial<VolumeRecord> = {}): VolumeRecord {
  return {
    volume: `dev-vol-${randomUUID()}`,
    user: uniqueUser(),
    workspace: '/home/dev/src/project',
    namespace: 'dev-rbs-0123abcd',
    state: 'PRESENT',
    pinned: false,
    lastUsedAtMs: ms(0),
    removeAtMs: ms(14 * 86_400_000),
    sizeBytes: 5 * 2 ** 40,
    generation: T0,
    seq: 1,
    updatedAtMs: ms(1),
    ...overrides,
  };
}

function ids(records: SessionRecord[]): string[] {
  return records.map((r) => r.sessionId);
}

/**
 * `open` must return a new, initialised store on the same data each call (so reopening can be
 * tested); `close` releases what those stores share, after every store is closed.
 */
export function describeSessionStoreConformance(name: string, open: () => Promise<SessionStore>, close?: () => Promise<void>): void {
  describe(`${name} conformance`, () => {
    let store: SessionStore;

    beforeAll(async () => {
      store = await open();
    });

    afterAll(async () => {
      await store?.close();
      await close?.();
    });

    test('init is idempotent', async () => {
      await store.init();
      await store.init();
    });

    test.each<[string, Partial<SessionRecord>]>([
      ['null agent address and failure reason', {}],
      ['a READY session with an agent address', { phase: 'READY', agentAddress: '10.0.0.7:50051' }],
      ['a FAILED session with a failure reason', { phase: 'FAILED', failureReason: 'volume quota exceeded: 💥', endReason: 'provisioning-failed' }],
      ['an ENDED session with its end reason', { phase: 'ENDED', endReason: 'expired' }],
      ['a Unicode user name', { user: `Zoë-Ångström-用户-🚀-${randomUUID()}` }],
      ['a long workspace path', { workspace: `/home/dev/${'very-deep-directory/'.repeat(200)}workspace` }],
    ])('put then get round-trips every field: %s', async (_, overrides) => {
      const r = record(overrides);
      await store.put(r);
      expect(await store.get(r.sessionId)).toEqual(r);
    });

    test('put replaces the row with the same sessionId', async () => {
      const first = record({ phase: 'PROVISIONING_AGENT', failureReason: 'transient' });
      const second: SessionRecord = {
        ...first,
        phase: 'READY',
        agentAddress: '127.0.0.1:9000',
        failureReason: null,
        updatedAtMs: ms(60_000),
        lastActivityAtMs: ms(60_000),
        seq: 2,
      };
      await store.put(first);
      await store.put(second);
      expect(await store.get(first.sessionId)).toEqual(second);
      expect(ids(await store.list({ user: first.user }))).toEqual([first.sessionId]);
    });

    test('a write older than the stored row (a retried record, a frozen worker waking) changes nothing, and says so', async () => {
      const ready = record({ phase: 'READY', agentAddress: '10.0.0.7:1', generation: T0 + 5000, seq: 7 });
      expect(await store.put(ready)).toBe(true);
      const stale = [
        { ...ready, phase: 'PROVISIONING_AGENT' as const, agentAddress: null, seq: 6 }, // an earlier write of the same moment
        { ...ready, phase: 'PROVISIONING_SYNC' as const, agentAddress: null, generation: T0 + 4000, seq: 9 }, // decided earlier
        { ...ready, phase: 'SUSPENDED' as const, agentAddress: null }, // the same version: a retry of what is there
      ];
      for (const write of stale) expect(await store.put(write)).toBe(false);
      expect(await store.get(ready.sessionId)).toEqual(ready);
      // A reset run decides later, however few writes it made.
      const reset = { ...ready, phase: 'RESUMING' as const, agentAddress: null, generation: T0 + 9000, seq: 1 };
      expect(await store.put(reset)).toBe(true);
      expect(await store.get(ready.sessionId)).toEqual(reset);
    });

    test('of two racing writes of one session, the newer stays, whichever lands last', async () => {
      const base = record();
      const writes = Array.from({ length: 20 }, (_, i) => ({ ...base, seq: i + 1, phase: i === 19 ? ('READY' as const) : ('PROVISIONING_SYNC' as const) }));
      await Promise.all([...writes].reverse().map((w) => store.put(w)));
      expect(await store.get(base.sessionId)).toMatchObject({ seq: 20, phase: 'READY' });
    });

    test('get of an unknown session is null', async () => {
      expect(await store.get(`unknown-${randomUUID()}`)).toBeNull();
    });

    describe('list', () => {
      // One user's sessions created at distinct times, put out of order, in a spread of phases.
      const user = uniqueUser();
      const oldest = record({ user, createdAtMs: ms(-30_000), phase: 'ENDED' });
      const middle = record({ user, createdAtMs: ms(-20_000), phase: 'READY', agentAddress: '10.0.0.1:1' });
      const newest = record({ user, createdAtMs: ms(-10_000), phase: 'SUSPENDED' });
      const otherUser = record({ createdAtMs: ms(-15_000), phase: 'READY', agentAddress: '10.0.0.2:1' });

      beforeAll(async () => {
        for (const r of [middle, otherUser, newest, oldest]) await store.put(r);
      });

      test('without a filter: everything, newest first', async () => {
        const all = await store.list();
        const times = all.map((r) => r.createdAtMs);
        expect(times).toEqual([...times].sort((a, b) => b - a));
        const ours = new Set(ids([oldest, middle, newest, otherUser]));
        expect(ids(all).filter((id) => ours.has(id))).toEqual(ids([newest, otherUser, middle, oldest]));
      });

      test('by user, newest first, whole records', async () => {
        expect(await store.list({ user })).toEqual([newest, middle, oldest]);
      });

      test('by phases', async () => {
        const found = await store.list({ phases: ['READY', 'SUSPENDED'] });
        expect(found.every((r) => r.phase === 'READY' || r.phase === 'SUSPENDED')).toBe(true);
        expect(ids(found)).toEqual(expect.arrayContaining(ids([newest, middle, otherUser])));
        expect(ids(found)).not.toContain(oldest.sessionId);
      });

      test('by user and phases', async () => {
        expect(ids(await store.list({ user, phases: ['READY', 'ENDED'] }))).toEqual(ids([middle, oldest]));
      });

      test('by an empty phase list: nothing', async () => {
        expect(await store.list({ user, phases: [] })).toEqual([]);
      });

      test('by an unknown user: nothing', async () => {
        expect(await store.list({ user: uniqueUser() })).toEqual([]);
      });
    });

    test('delete removes the row; deleting again or an unknown session is a no-op', async () => {
      const kept = record();
      const deleted = record({ user: kept.user, createdAtMs: ms(1) });
      await store.put(kept);
      await store.put(deleted);

      await store.delete(deleted.sessionId);
      await store.delete(deleted.sessionId);
      await store.delete(`unknown-${randomUUID()}`);

      expect(await store.get(deleted.sessionId)).toBeNull();
      expect(await store.list({ user: kept.user })).toEqual([kept]);
    });

    test('50 concurrent puts of different sessions all land', async () => {
      const user = uniqueUser();
      const records = Array.from({ length: 50 }, (_, i) => record({ user, createdAtMs: ms(i) }));
      await Promise.all(records.map((r) => store.put(r)));
      expect(await store.list({ user })).toEqual([...records].reverse());
    });

    describe('revocations', () => {
      test('revoke then revocation round-trips; unrevoke lifts it and says whether there was one', async () => {
        const user = `Zoë-${uniqueUser()}`;
        expect(await store.revocation(user)).toBeNull();
        await store.revoke({ user, revokedBy: 'ops', revokedAt: at(0) });
        expect(await store.revocation(user)).toEqual({ user, revokedBy: 'ops', revokedAt: at(0) });
        expect(await store.unrevoke(user)).toBe(true);
        expect(await store.revocation(user)).toBeNull();
        expect(await store.unrevoke(user)).toBe(false);
      });

      test('revoking again replaces the revocation', async () => {
        const user = uniqueUser();
        await store.revoke({ user, revokedBy: 'ops', revokedAt: at(0) });
        await store.revoke({ user, revokedBy: 'security', revokedAt: at(5000) });
        expect(await store.revocation(user)).toEqual({ user, revokedBy: 'security', revokedAt: at(5000) });
      });

      test("one user's revocation is not another's", async () => {
        const [revoked, other] = [uniqueUser(), uniqueUser()];
        await store.revoke({ user: revoked, revokedBy: 'ops', revokedAt: at(0) });
        expect(await store.revocation(other)).toBeNull();
        expect(await store.revocation(revoked.toUpperCase())).toBeNull();
      });

      test('a revocation made through one store is seen by another store on the same data at once', async () => {
        const user = uniqueUser();
        const replica = await open();
        try {
          expect(await replica.revocation(user)).toBeNull();
          await store.revoke({ user, revokedBy: 'ops', revokedAt: at(0) });
          expect(await replica.revocation(user)).toEqual({ user, revokedBy: 'ops', revokedAt: at(0) });
          await store.unrevoke(user);
          expect(await replica.revocation(user)).toBeNull();
        } finally {
          await replica.close();
        }
      });
    });

    describe('volumes', () => {
      test('a volume row reads back exactly, null fields included', async () => {
        const v = volumeRecord();
        expect(await store.putVolume(v)).toBe(true);
        expect(await store.getVolume(v.volume)).toEqual(v);
        const unused = volumeRecord({ removeAtMs: null, pinned: true, state: 'TRASHED', sizeBytes: null });
        await store.putVolume(unused);
        expect(await store.getVolume(unused.volume)).toEqual(unused);
        expect(await store.getVolume('no-such-volume')).toBeNull();
      });

      test('a write older by (generation, seq) than the stored one is refused and changes nothing', async () => {
        const v = volumeRecord({ seq: 5, state: 'TRASHED' });
        await store.putVolume(v);
        expect(await store.putVolume({ ...v, seq: 4, state: 'PRESENT' })).toBe(false);
        expect(await store.putVolume({ ...v, seq: 5, state: 'PRESENT' })).toBe(false);
        expect(await store.putVolume({ ...v, generation: v.generation - 1, seq: 99, state: 'PRESENT' })).toBe(false);
        expect(await store.getVolume(v.volume)).toEqual(v);
        // A later generation (the owner of a volume made after the last was removed) starts its seq anew.
        const successor = { ...v, generation: v.generation + 1, seq: 1, state: 'PRESENT' as const };
        expect(await store.putVolume(successor)).toBe(true);
        expect(await store.getVolume(v.volume)).toEqual(successor);
      });

      test("only a REMOVED volume's row is deleted; deleting an unknown one is no error", async () => {
        const v = volumeRecord();
        await store.putVolume(v);
        expect(await store.deleteRemovedVolume(v.volume)).toBe(false);
        expect(await store.getVolume(v.volume)).toEqual(v);
        await store.putVolume({ ...v, state: 'REMOVED', seq: v.seq + 1 });
        expect(await store.deleteRemovedVolume(v.volume)).toBe(true);
        expect(await store.getVolume(v.volume)).toBeNull();
        expect(await store.deleteRemovedVolume(v.volume)).toBe(false);
      });

      test('a pin round-trips, replaces an earlier one, and is lifted; unpinning says whether there was one', async () => {
        const volume = `dev-vol-${randomUUID()}`;
        expect(await store.volumePin(volume)).toBeNull();
        await store.pinVolume({ volume, pinnedBy: 'ops', pinnedAt: at(0) });
        await store.pinVolume({ volume, pinnedBy: 'sre', pinnedAt: at(5) });
        expect(await store.volumePin(volume)).toEqual({ volume, pinnedBy: 'sre', pinnedAt: at(5) });
        expect(await store.unpinVolume(volume)).toBe(true);
        expect(await store.unpinVolume(volume)).toBe(false);
        expect(await store.volumePin(volume)).toBeNull();
      });

      test('of concurrent writes, the newest stays', async () => {
        const v = volumeRecord();
        await Promise.all([3, 1, 5, 2, 4].map((seq) => store.putVolume({ ...v, seq, lastUsedAtMs: ms(seq) })));
        expect(await store.getVolume(v.volume)).toEqual({ ...v, seq: 5, lastUsedAtMs: ms(5) });
      });

      test("listing by user gives that user's volumes only, most recently used first", async () => {
        const user = uniqueUser();
        const older = volumeRecord({ user, lastUsedAtMs: ms(1) });
        const newer = volumeRecord({ user, lastUsedAtMs: ms(2) });
        await store.putVolume(older);
        await store.putVolume(newer);
        await store.putVolume(volumeRecord());
        expect((await store.listVolumes({ user })).map((v) => v.volume)).toEqual([newer.volume, older.volume]);
        expect((await store.listVolumes()).map((v) => v.volume)).toEqual(expect.arrayContaining([newer.volume, older.volume]));
      });
    });

    test('data survives closing and reopening', async () => {
      const r = record({ phase: 'READY', agentAddress: '10.1.2.3:4' });
      const first = await open();
      await first.put(r);
      await first.close();

      const second = await open();
      try {
        expect(await second.get(r.sessionId)).toEqual(r);
      } finally {
        await second.close();
      }
    });
  });
}
