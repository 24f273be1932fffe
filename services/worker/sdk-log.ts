/**
 * The Temporal SDK's log (the worker's own, its workflows' and its activities') as the worker's JSON
 * lines: each with the SDK's metadata (sdkComponent, workflowId, runId, activityType, ...). The SDK
 * logs every worker state change at info, so it logs at warn unless RBS_LOG_LEVEL asks for debug or trace.
 */
import type { LogLevel as SdkLevel, LogMetadata, Logger as SdkLogger } from '@temporalio/common';
import type { Logger } from '../../lib/log';

const LEVELS: Record<SdkLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

export function sdkLogger(log: Logger): SdkLogger {
  const sdk = log.child({ component: 'temporal-sdk' }, { level: log.isLevelEnabled('debug') ? log.level : 'warn' });
  // Symbol keys (the SDK's internal markers) are not fields; an Error in the metadata keeps its stack under `err`.
  const fields = (meta: LogMetadata = {}) => Object.fromEntries(Object.entries(meta).map(([key, value]) => [key === 'error' ? 'err' : key, value]));
  const at = (level: SdkLevel) => (message: string, meta?: LogMetadata) => sdk[LEVELS[level]](fields(meta), message);
  return {
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}
