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
/** A FAILED session's failure, cut to FAILURE_ATTRIBUTE_CHARS (Temporal limits a value's size). */
export const SESSION_FAILURE = defineSearchAttributeKey('RbsFailureReason', SearchAttributeType.KEYWORD);
export const FAILURE_ATTRIBUTE_CHARS = 256;

/** Every key, for registering them with a server (`--search-attribute Name=Keyword`). */
export const ALL_SEARCH_ATTRIBUTES = [SESSION_PHASE, SESSION_USER, SESSION_ID, SESSION_NAMESPACE, SESSION_END_REASON, SESSION_FAILURE];
