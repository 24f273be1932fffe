/**
 * The agent's end of Sync: the developer's rsync pushes the workspace as it would over ssh, the
 * stream standing in for the ssh channel. The agent runs the receiving `rsync --server` in the
 * workspace, without a shell, on arguments it has vetted (sync-args), and relays its stdio. Fetch
 * is the same the other way: a sending `rsync --server --sender` in the output base.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { constants } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { statusError } from '../../lib/grpc/status';
import type { SyncFrame, SyncFrame__Output } from '../../gen/proto/rbs/v1/SyncFrame';
import type { SyncStart__Output } from '../../gen/proto/rbs/v1/SyncStart';
import type { DriftWatch } from './drift-watch';
import type { TransferMeasure } from './metrics';
import { RefusedSyncError, checkFetchStart, checkSyncStart } from './sync-args';

export type SyncCall = grpc.ServerDuplexStream<SyncFrame__Output, SyncFrame>;

/** rsync's diagnostics end with the reason it failed; this much of their tail is reported. */
const STDERR_TAIL_BYTES = 8 * 1024;
/** How long after rsync's exit its streams may stay open before the copy is released without them. */
const RECEIVE_END_GRACE_MS = 10_000;

/**
 * Which sync the workspace matches. One sync writes at a time, and while it does the workspace
 * matches none: a command must not start on a half-updated tree.
 */
export class SyncLedger {
  private completed: string | null = null;
  private running: string | null = null;
  /** Why the copy matches no sync although one completed (drift), for the refusals. */
  private spoiled: string | null = null;

  /** The sync_id of the last sync that completed, unless another has started since or the copy drifted. */
  lastCompleted(): string | null {
    return this.completed;
  }

  /** Why lastCompleted() is null after a completed sync, if it is. */
  whyNone(): string | null {
    return this.spoiled;
  }

  /**
   * Throws a gRPC ABORTED status if another sync is writing the workspace, FAILED_PRECONDITION if
   * an incremental sync's base is not what the workspace holds.
   */
  begin(syncId: string, baseSyncId = ''): void {
    if (this.running !== null) {
      const why = `sync ${this.running} is still writing the workspace; retry sync ${syncId} after it`;
      throw statusError(grpc.status.ABORTED, why);
    }
    if (baseSyncId && baseSyncId !== this.completed) {
      const holds = this.spoiled ?? `the workspace holds sync ${this.completed ?? '(none)'}`;
      throw statusError(grpc.status.FAILED_PRECONDITION, `sync ${syncId} builds on sync ${baseSyncId}, but ${holds}: sync everything`);
    }
    this.running = syncId;
    this.completed = null;
    this.spoiled = null;
  }

  /** `succeeded`: rsync exited 0, so the workspace now matches the sync (unless it drifted meanwhile). */
  end(succeeded: boolean): void {
    if (succeeded && this.spoiled === null) this.completed = this.running;
    this.running = null;
  }

  /** The copy changed outside a sync: it matches none until a full sync completes. */
  invalidate(why: string): void {
    this.completed = null;
    this.spoiled = why;
  }
}

/** Serves one Sync call for an already authorized peer. */
export function serveSync(call: SyncCall, workspaceDir: string, ledger: SyncLedger, measure: TransferMeasure, drift?: DriftWatch): void {
  serveRsync(call, workspaceDir, checkSyncStart, measure, { ledger, drift });
}

/** Serves one Fetch call for an already authorized peer: it reads, so no sync is involved. */
export function serveFetch(call: SyncCall, outputBase: string, measure: TransferMeasure): void {
  serveRsync(call, outputBase, checkFetchStart, measure);
}

type Vet = (start: SyncStart__Output) => { syncId: string; baseSyncId?: string; rsyncArgs: string[] };

/** What a receiving rsync changes the state of: the sync ledger, and the drift watch it must not trip. */
interface Receive {
  ledger: SyncLedger;
  drift?: DriftWatch;
}

function serveRsync(call: SyncCall, dir: string, vet: Vet, measure: TransferMeasure, receive?: Receive): void {
  let rsync: ChildProcessWithoutNullStreams | undefined;
  let starting = false;
  /** Ends the call with `error` unless it has already ended. */
  const fail = (error: grpc.StatusObject) => {
    if (call.writableEnded) return;
    measure.done('failed');
    rsync?.kill();
    call.emit('error', error);
  };

  call.on('data', (frame: SyncFrame__Output) => {
    if (call.writableEnded) return; // frames that were in flight when the call failed
    try {
      if (!starting) {
        starting = true;
        call.pause(); // the next frames are rsync's, once it runs
        startRsync(call, frame, dir, vet, receive, fail, measure).then((started) => {
          rsync = started;
          // Cancelled while rsync was starting: the 'cancelled' handler found none to stop.
          if (call.cancelled) stop(started);
          call.resume();
        }, fail);
      } else if (!rsync) throw statusError(grpc.status.INTERNAL, 'a frame arrived before rsync started');
      else if (frame.frame === 'data') {
        measure.received(frame.data!.length);
        feed(call, rsync, frame.data!);
      } else if (frame.frame === 'eof') rsync.stdin.end();
      else throw statusError(grpc.status.INVALID_ARGUMENT, `unexpected ${frame.frame} frame after the sync started`);
    } catch (err) {
      fail(err as grpc.StatusObject);
    }
  });
  // A half-close is the proxy's last word: nothing more will reach rsync's stdin either way.
  call.on('end', () => (rsync ? rsync.stdin.end() : fail(statusError(grpc.status.INVALID_ARGUMENT, 'the stream ended before its SyncStart'))));
  // The proxy is gone (cancelled, or its connection dropped): stop writing its workspace.
  call.on('cancelled', () => {
    measure.done('cancelled');
    stop(rsync);
  });
}

/** Vets the first frame and starts rsync on it in `dir`; rejects with a gRPC status if it may not run. */
async function startRsync(
  call: SyncCall,
  frame: SyncFrame__Output,
  dir: string,
  vet: Vet,
  receive: Receive | undefined,
  fail: (error: grpc.StatusObject) => void,
  measure: TransferMeasure,
): Promise<ChildProcessWithoutNullStreams> {
  if (frame.frame !== 'start') {
    throw statusError(grpc.status.INVALID_ARGUMENT, `the first frame must be a SyncStart, not ${frame.frame}`);
  }
  let vetted: ReturnType<Vet>;
  try {
    vetted = vet(frame.start!);
  } catch (err) {
    if (err instanceof RefusedSyncError) throw statusError(grpc.status.INVALID_ARGUMENT, err.message);
    throw err;
  }
  if (receive) await beginReceive(call, receive, vetted, dir);
  // Only PATH: rsync also reads options from RSYNC_* variables, which must not widen what was vetted.
  const rsync = spawn('rsync', vetted.rsyncArgs, { cwd: dir, env: { PATH: process.env.PATH } });
  let stderr = Buffer.alloc(0);
  let spawnError: Error | undefined;
  rsync.stderr.on('data', (chunk: Buffer) => (stderr = Buffer.concat([stderr, chunk]).subarray(-STDERR_TAIL_BYTES)));
  rsync.stdout.on('data', (chunk: Buffer) => {
    measure.sent(chunk.length);
    if (call.cancelled || call.write({ data: chunk })) return;
    rsync.stdout.pause();
    call.once('drain', () => rsync.stdout.resume());
  });
  // EPIPE once rsync has exited and stops reading; its exit status tells why.
  rsync.stdin.on('error', () => undefined);
  rsync.on('error', (err) => (spawnError = err));
  // The copy is written until 'close': rsync's forked receiver holds its pipes until it is done. Should
  // that never come (a child that outlives its parent), the copy is released a while after 'exit'.
  let received = false;
  const endReceive = (code: number | null) => {
    if (received) return;
    received = true;
    receive?.drift?.endReceive();
    receive?.ledger.end(code === 0 && !call.cancelled);
  };
  rsync.on('exit', () => setTimeout(() => endReceive(null), RECEIVE_END_GRACE_MS).unref());
  rsync.on('close', (code, signal) => {
    endReceive(code);
    if (spawnError) {
      return fail(statusError(grpc.status.INTERNAL, `cannot run rsync in ${dir}: ${spawnError.message}`));
    }
    if (call.cancelled || call.writableEnded) return;
    measure.done(code === 0 ? 'ok' : 'failed');
    const message = stderr.toString('utf8').trim() || (signal ? `rsync was killed by ${signal}` : '');
    call.write({ exit: { code: code ?? 128 + constants.signals[signal!], message } });
    call.end();
  });
  return rsync;
}

/** Takes the ledger for a receive, once every drift so far has reached it. */
async function beginReceive(call: SyncCall, { ledger, drift }: Receive, vetted: ReturnType<Vet>, dir: string): Promise<void> {
  await drift?.settle();
  if (call.cancelled) throw statusError(grpc.status.CANCELLED, `sync ${vetted.syncId} was cancelled before it started`);
  ledger.begin(vetted.syncId, vetted.baseSyncId);
  try {
    drift?.beginReceive(!vetted.baseSyncId);
  } catch (err) {
    ledger.end(false);
    throw statusError(grpc.status.INTERNAL, `cannot remove what drifted in ${dir}: ${(err as Error).message}`);
  }
}

/** Kills rsync, and lets its output drain to nowhere so that its streams close. */
function stop(rsync: ChildProcessWithoutNullStreams | undefined): void {
  rsync?.kill();
  rsync?.stdout.resume();
}

/** Hands proxy bytes to rsync, holding further frames back while its stdin is full. */
function feed(call: SyncCall, rsync: ChildProcessWithoutNullStreams, data: Buffer): void {
  if (rsync.stdin.write(data)) return;
  call.pause();
  rsync.stdin.once('drain', () => call.resume());
}
