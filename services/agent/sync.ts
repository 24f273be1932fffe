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
import { RefusedSyncError, checkFetchStart, checkSyncStart } from './sync-args';

export type SyncCall = grpc.ServerDuplexStream<SyncFrame__Output, SyncFrame>;

/** rsync's diagnostics end with the reason it failed; this much of their tail is reported. */
const STDERR_TAIL_BYTES = 8 * 1024;

/**
 * Which sync the workspace matches. One sync writes at a time, and while it does the workspace
 * matches none: a command must not start on a half-updated tree.
 */
export class SyncLedger {
  private completed: string | null = null;
  private running: string | null = null;

  /** The sync_id of the last sync that completed, unless another has started since. */
  lastCompleted(): string | null {
    return this.completed;
  }

  /** Throws a gRPC ABORTED status if another sync is writing the workspace. */
  begin(syncId: string): void {
    if (this.running !== null) {
      const why = `sync ${this.running} is still writing the workspace; retry sync ${syncId} after it`;
      throw statusError(grpc.status.ABORTED, why);
    }
    this.running = syncId;
    this.completed = null;
  }

  /** `succeeded`: rsync exited 0, so the workspace now matches the sync. */
  end(succeeded: boolean): void {
    if (succeeded) this.completed = this.running;
    this.running = null;
  }
}

/** Serves one Sync call for an already authorized peer. */
export function serveSync(call: SyncCall, workspaceDir: string, ledger: SyncLedger): void {
  serveRsync(call, workspaceDir, checkSyncStart, ledger);
}

/** Serves one Fetch call for an already authorized peer: it reads, so no sync is involved. */
export function serveFetch(call: SyncCall, outputBase: string): void {
  serveRsync(call, outputBase, checkFetchStart);
}

type Vet = (start: SyncStart__Output) => { syncId: string; rsyncArgs: string[] };

function serveRsync(call: SyncCall, dir: string, vet: Vet, ledger?: SyncLedger): void {
  let rsync: ChildProcessWithoutNullStreams | undefined;
  /** Ends the call with `error` unless it has already ended. */
  const fail = (error: grpc.StatusObject) => {
    if (call.writableEnded) return;
    rsync?.kill();
    call.emit('error', error);
  };

  call.on('data', (frame: SyncFrame__Output) => {
    if (call.writableEnded) return; // frames that were in flight when the call failed
    try {
      if (!rsync) rsync = startRsync(call, frame, dir, vet, ledger, fail);
      else if (frame.frame === 'data') feed(call, rsync, frame.data!);
      else if (frame.frame === 'eof') rsync.stdin.end();
      else throw statusError(grpc.status.INVALID_ARGUMENT, `unexpected ${frame.frame} frame after the sync started`);
    } catch (err) {
      fail(err as grpc.StatusObject);
    }
  });
  // A half-close is the proxy's last word: nothing more will reach rsync's stdin either way.
  call.on('end', () =>
    rsync ? rsync.stdin.end() : fail(statusError(grpc.status.INVALID_ARGUMENT, 'the stream ended before its SyncStart')),
  );
  // The proxy is gone (cancelled, or its connection dropped): stop writing its workspace.
  call.on('cancelled', () => rsync?.kill());
}

/** Vets the first frame and starts rsync on it in `dir`; throws a gRPC status if it may not run. */
function startRsync(
  call: SyncCall,
  frame: SyncFrame__Output,
  dir: string,
  vet: Vet,
  ledger: SyncLedger | undefined,
  fail: (error: grpc.StatusObject) => void,
): ChildProcessWithoutNullStreams {
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
  ledger?.begin(vetted.syncId);
  // Only PATH: rsync also reads options from RSYNC_* variables, which must not widen what was vetted.
  const rsync = spawn('rsync', vetted.rsyncArgs, { cwd: dir, env: { PATH: process.env.PATH } });
  let stderr = Buffer.alloc(0);
  let spawnError: Error | undefined;
  rsync.stderr.on('data', (chunk: Buffer) => (stderr = Buffer.concat([stderr, chunk]).subarray(-STDERR_TAIL_BYTES)));
  rsync.stdout.on('data', (chunk: Buffer) => {
    if (call.write({ data: chunk })) return;
    rsync.stdout.pause();
    call.once('drain', () => rsync.stdout.resume());
  });
  // EPIPE once rsync has exited and stops reading; its exit status tells why.
  rsync.stdin.on('error', () => undefined);
  rsync.on('error', (err) => (spawnError = err));
  rsync.on('close', (code, signal) => {
    ledger?.end(code === 0 && !call.cancelled);
    if (spawnError) {
      return fail(statusError(grpc.status.INTERNAL, `cannot run rsync in ${dir}: ${spawnError.message}`));
    }
    if (call.cancelled || call.writableEnded) return;
    const message = stderr.toString('utf8').trim() || (signal ? `rsync was killed by ${signal}` : '');
    call.write({ exit: { code: code ?? 128 + constants.signals[signal!], message } });
    call.end();
  });
  return rsync;
}

/** Hands proxy bytes to rsync, holding further frames back while its stdin is full. */
function feed(call: SyncCall, rsync: ChildProcessWithoutNullStreams, data: Buffer): void {
  if (rsync.stdin.write(data)) return;
  call.pause();
  rsync.stdin.once('drain', () => call.resume());
}
