import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { RbsConfig } from '../../lib/config';

/** One schedule per task queue, so several deployments can share a Temporal namespace. */
export const cleanupScheduleId = (taskQueue: string) => `rbs-cleanup-${taskQueue}`;

/** The Temporal Schedule that runs the cleanup workflow; created once, kept across restarts. */
export async function ensureCleanupSchedule(client: Client, config: RbsConfig): Promise<void> {
  try {
    await client.schedule.create({
      scheduleId: cleanupScheduleId(config.temporal.taskQueue),
      spec: { intervals: [{ every: config.cleanup.intervalMs }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'cleanupWorkflow',
        taskQueue: config.temporal.taskQueue,
        workflowExecutionTimeout: '10m',
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
}
