import type { temporal } from '@temporalio/proto';

/** A history payload's JSON value, or undefined when it holds none (or not JSON): histories are anyone's who reaches Temporal. */
export function jsonPayload(payload: temporal.api.common.v1.IPayload | null | undefined): unknown {
  if (!payload?.data) return undefined;
  try {
    return JSON.parse(Buffer.from(payload.data).toString('utf8'));
  } catch {
    return undefined;
  }
}
