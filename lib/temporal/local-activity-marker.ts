/**
 * What a history says of a local activity: the SDK core's one marker, written once the activity is
 * done (or, with a back-off timer to follow, once an attempt failed). Its "data" is JSON in snake
 * case. `complete_time` is the workflow's time when it ran plus the last attempt's run time, on the
 * server's clock; `original_schedule_time` is when its first attempt was scheduled, on the worker's.
 * Whoever reaches Temporal can write any marker: every field is checked, and odd ones are dropped.
 */
import type { temporal } from '@temporalio/proto';
import { jsonPayload } from './json-payload';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export const LOCAL_ACTIVITY_MARKER = 'core_local_activity';
/** As a Date allows. */
const MAX_TIME_MS = 8.64e15;
/** An activity type is a function's name. */
const MAX_TYPE_CHARS = 200;

export interface LocalActivityMarker {
  activityType: string;
  attempt: number;
  /** When it was done, if the marker says so sensibly. */
  completedMs: number | null;
  /** When its first attempt was scheduled, if the marker says so sensibly. */
  firstScheduledMs: number | null;
  /** An attempt that failed, with another to follow after a timer: not the outcome. */
  backingOff: boolean;
  summary: string;
  failure: temporal.api.failure.v1.IFailure | null;
}

/** A protobuf Timestamp as JSON, in ms: whole seconds, nanos under a second, within a Date's range. */
function timestampMs(value: unknown): number | null {
  if (typeof value !== 'object' || value === null) return null;
  const { seconds, nanos } = value as { seconds?: unknown; nanos?: unknown };
  if (!Number.isSafeInteger(seconds) || !Number.isSafeInteger(nanos) || (nanos as number) < 0 || (nanos as number) >= 1e9) return null;
  const ms = (seconds as number) * 1000 + Math.floor((nanos as number) / 1e6);
  return Math.abs(ms) <= MAX_TIME_MS ? ms : null;
}

/** The local activity an event records, or null when it records none (or an unreadable one). */
export function localActivityMarker(event: HistoryEvent): LocalActivityMarker | null {
  const marker = event.markerRecordedEventAttributes;
  if (marker?.markerName !== LOCAL_ACTIVITY_MARKER) return null;
  const data = jsonPayload(marker.details?.data?.payloads?.[0]);
  if (typeof data !== 'object' || data === null) return null;
  const { activity_type: type, attempt, complete_time: completed, original_schedule_time: scheduled, backoff } = data as Record<string, unknown>;
  if (typeof type !== 'string' || type.length === 0 || type.length > MAX_TYPE_CHARS) return null;
  const summary = jsonPayload(event.userMetadata?.summary);
  return {
    activityType: type,
    attempt: Number.isSafeInteger(attempt) && (attempt as number) >= 1 ? (attempt as number) : 1,
    completedMs: timestampMs(completed),
    firstScheduledMs: timestampMs(scheduled),
    backingOff: typeof backoff === 'object' && backoff !== null,
    summary: typeof summary === 'string' ? summary : '',
    failure: marker.failure ?? null,
  };
}
