/** How failures become gRPC statuses: one place, so every RPC answers the same way. */
import * as grpc from '@grpc/grpc-js';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { InvalidInputError } from '../../lib/validate';
import { FAILURE } from '../../workflows/messages';

export class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The application failure a workflow update failed with, if any: thrown by the handler itself or
 * by an activity it ran (then wrapped in an ActivityFailure).
 */
export function updateFailure(err: unknown): ApplicationFailure | null {
  if (!(err instanceof WorkflowUpdateFailedError)) return null;
  for (let cause: unknown = err.cause; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof ApplicationFailure) return cause;
  }
  return null;
}

const FAILURE_STATUS: Record<string, grpc.status> = {
  [FAILURE.SESSION_FAILED]: grpc.status.FAILED_PRECONDITION,
  [FAILURE.SESSION_ENDING]: grpc.status.UNAVAILABLE,
  [FAILURE.SESSION_NOT_FOUND]: grpc.status.NOT_FOUND,
  [FAILURE.QUOTA_EXCEEDED]: grpc.status.RESOURCE_EXHAUSTED,
};

/** The status a failure is answered with; anything unforeseen is INTERNAL, its details kept for the log (audit.ts). */
export function toServiceError(err: unknown, rpc: string): Partial<grpc.ServiceError> {
  if (err instanceof RpcError) return { code: err.code, details: err.message };
  if (err instanceof InvalidInputError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (typeof err === 'object' && err !== null && 'code' in err && 'details' in err) {
    return err as Partial<grpc.ServiceError>; // already a status (e.g. from peerIdentity)
  }
  const failure = updateFailure(err);
  if (failure?.type && failure.type in FAILURE_STATUS) {
    return { code: FAILURE_STATUS[failure.type], details: failure.message };
  }
  // An operator cancelled the workflow in Temporal (its UI, say): said, and not retried; the next command starts afresh.
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof CancelledFailure) {
    return { code: grpc.status.ABORTED, details: `${rpc}: the workflow it waited on was cancelled in Temporal; run the command again` };
  }
  return { code: grpc.status.INTERNAL, details: `${rpc} failed: internal error` };
}
