import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes operators filter sessions by in the Temporal UI, e.g.
 * `temporal workflow list --query "RbsSessionPhase = 'READY'"`. User names are not secrets;
 * nothing secret may ever go here.
 */
export const SESSION_PHASE = defineSearchAttributeKey('RbsSessionPhase', SearchAttributeType.KEYWORD);
export const SESSION_USER = defineSearchAttributeKey('RbsUser', SearchAttributeType.KEYWORD);
export const SESSION_ID = defineSearchAttributeKey('RbsSessionId', SearchAttributeType.KEYWORD);
export const SESSION_NAMESPACE = defineSearchAttributeKey('RbsNamespace', SearchAttributeType.KEYWORD);
/** Why an ENDED or FAILED session is over: one of lib/domain's END_REASONS. */
export const SESSION_END_REASON = defineSearchAttributeKey('RbsEndReason', SearchAttributeType.KEYWORD);
/**
 * A FAILED session's failure as a short code (failureCode), never its text: a failure's text may
 * hold a pod's message or a build's output, and SQL visibility stores a Keyword in 255 characters.
 */
export const SESSION_FAILURE = defineSearchAttributeKey('RbsFailureReason', SearchAttributeType.KEYWORD);

/**
 * The failure type an error carries deepest in its cause chain (an ApplicationFailure's type, such
 * as WorkspaceNotFound or AgentStartFailed, else the error's name), as a short identifier.
 */
export function failureCode(err: unknown): string {
  let code = 'Error';
  for (let cause = err as { type?: unknown; name?: unknown; cause?: unknown } | undefined; cause; cause = cause.cause as typeof cause) {
    const candidate = typeof cause.type === 'string' && cause.type ? cause.type : cause.name;
    if (typeof candidate === 'string' && /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(candidate) && candidate !== 'Error') code = candidate;
  }
  return code;
}

/** Every key, for registering them with a server (`--search-attribute Name=Keyword`). */
export const ALL_SEARCH_ATTRIBUTES = [SESSION_PHASE, SESSION_USER, SESSION_ID, SESSION_NAMESPACE, SESSION_END_REASON, SESSION_FAILURE];
