/** How the session workflow's steps retry: constants only, so that tests can check their bounds. */
import type { RetryPolicy } from '@temporalio/common';

export const RETRY: RetryPolicy = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s' };

/** Quick, idempotent steps. A step that keeps failing gives up after two minutes. */
export const QUICK = { startToCloseTimeout: '15s', scheduleToCloseTimeout: '2m', retry: RETRY } as const;

/**
 * The quick steps run as local activities. Their scheduleToCloseTimeout did not end their retries (measured: a step
 * failing every time ran 92 attempts in 6.5 minutes under '2m', and its GetServer never returned), so their
 * attempts bound them too: 24 attempts back off for 96 s in all (0.2 s doubling to 5 s).
 */
export const QUICK_LOCAL_ATTEMPTS = 24;
export const QUICK_LOCAL = { ...QUICK, retry: { ...RETRY, maximumAttempts: QUICK_LOCAL_ATTEMPTS } } as const;
