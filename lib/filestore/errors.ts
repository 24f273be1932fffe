/**
 * What can go wrong with workspace storage, as types the Kubernetes backend can act on. Every
 * error says whether trying again later may succeed (`retryable`), so an activity can fail a
 * session for good or leave the retry to Temporal.
 */
import { status } from '@grpc/grpc-js';

export class WorkspaceStorageError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Codes after which the same call may succeed later: overload and quota (HTTP 503, 429), time-outs,
 * contention. The client library itself retries only UNAVAILABLE, and only for reads.
 */
const RETRYABLE_CODES: ReadonlySet<number> = new Set([status.UNAVAILABLE, status.RESOURCE_EXHAUSTED, status.DEADLINE_EXCEEDED, status.ABORTED]);

/** A Filestore API call failed; names the call and the resource, with Google's status and message. */
export class FilestoreApiError extends WorkspaceStorageError {
  constructor(
    readonly call: string,
    readonly resource: string,
    /** The canonical (gRPC) status code, which the client maps HTTP statuses to. */
    readonly code: number,
    detail: string,
    cause: unknown,
  ) {
    super(`Filestore ${call} ${resource} failed: ${status[code] ?? code}: ${detail}`, RETRYABLE_CODES.has(code), { cause });
  }
}

/**
 * Runs one Filestore call (with its long-running operation, if any), giving its failure context.
 * The client reports every failure, network ones included, as an error with a canonical code;
 * anything else is a bug and passes through as it is.
 */
export async function filestoreCall<T>(call: string, resource: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const { code, message } = err as { code?: unknown; message?: unknown };
    if (typeof code !== 'number') throw err;
    throw new FilestoreApiError(call, resource, code, String(message), err);
  }
}

export function hasCode(err: unknown, code: status): boolean {
  return err instanceof FilestoreApiError && err.code === code;
}

/** The region has no quota left for another volume of the configured tier. */
export class InsufficientCapacityError extends WorkspaceStorageError {
  constructor(
    message: string,
    readonly requestedGib: number,
    readonly freeGib: number,
  ) {
    // Quota comes back only when volumes are deleted or the quota is raised: not worth a quick retry.
    super(message, false);
  }
}

/** The volume's instance or share does not exist (any more). */
export class VolumeNotFoundError extends WorkspaceStorageError {
  constructor(message: string, cause?: unknown) {
    super(message, false, { cause });
  }
}

/** The volume is of a kind this module cannot handle through the v1 API (a multishare share). */
export class UnsupportedVolumeError extends WorkspaceStorageError {
  constructor(message: string) {
    super(message, false);
  }
}

/** An earlier attempt's backup or snapshot of the volume exists but is not ready yet. */
export class BackupInProgressError extends WorkspaceStorageError {
  constructor(message: string) {
    super(message, true);
  }
}
