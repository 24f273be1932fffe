/**
 * How the orchestrator answers a failed call: as a precise status (toServiceError), counted by the
 * metrics, and in the log. A refusal is an audit line (who, what, why); a fault (INTERNAL) an error
 * line with its stack. Who comes from the verified certificate only; what the caller sent is quoted
 * (bounded), never trusted.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log';
import { type AuthenticatedCall, peerIdentity } from '../../lib/grpc/tls';
import { toServiceError } from './errors';
import type { OrchestratorMetrics } from './metrics';

/** A call's failure answered: the status the caller gets. */
export type Failed = (err: unknown, rpc: string, call: AuthenticatedCall & { request?: unknown }) => Partial<grpc.ServiceError>;

/** Longest quote of a request field in a log line. */
const MAX_QUOTE = 256;
const STATUS_NAMES = new Map(Object.entries(grpc.status).map(([name, code]) => [code, name]));

export function statusName(code: grpc.status | undefined): string {
  return STATUS_NAMES.get(code ?? grpc.status.UNKNOWN) ?? 'UNKNOWN';
}

export function answerFailures(log: Logger, metrics: Pick<OrchestratorMetrics, 'callFailed'>): Failed {
  return (err, rpc, call) => {
    const status = toServiceError(err, rpc);
    metrics.callFailed(rpc, status.code);
    const fields = { rpc, code: statusName(status.code), caller: callerOf(call), ...quoted(call.request) };
    if (status.code === grpc.status.INTERNAL) log.error({ ...fields, err }, `${rpc} failed`);
    else log.warn({ audit: 'refused', ...fields, reason: status.details }, `${rpc} refused`);
    return status;
  };
}

/** The verified identity behind a call, or why there is none. */
function callerOf(call: AuthenticatedCall): Record<string, unknown> {
  try {
    return { ...peerIdentity(call) };
  } catch (err) {
    return { kind: 'unauthenticated', why: (err as grpc.StatusObject).details ?? String(err) };
  }
}

/** The request fields that name what was asked for: a session, a workspace, a user, a volume. */
function quoted(request: unknown): Record<string, string> {
  if (typeof request !== 'object' || request === null) return {};
  const fields: Record<string, string> = {};
  for (const name of ['sessionId', 'workspace', 'user', 'volume'] as const) {
    const value = (request as Record<string, unknown>)[name];
    if (typeof value === 'string' && value !== '') fields[name === 'user' ? 'targetUser' : name] = value.slice(0, MAX_QUOTE);
  }
  return fields;
}
