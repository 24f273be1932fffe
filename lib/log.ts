/**
 * Every service process logs JSON lines to stderr (pino): its level, ISO time, the service and pid,
 * then the fields of the line (sessionId, user, rpc, ...) and `msg`. One line per event, written
 * synchronously, so a crash loses nothing. RBS_LOG_LEVEL (trace, debug, info, warn, error) sets
 * the level; info by default. A line written inside a traced span carries its trace_id and span_id.
 */
import { isSpanContextValid, trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';

export type { Logger };

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LEVELS)[number];

function logLevel(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const value = (env.RBS_LOG_LEVEL ?? 'info').toLowerCase();
  if (!(LEVELS as readonly string[]).includes(value)) throw new Error(`RBS_LOG_LEVEL must be one of ${LEVELS.join(', ')}, got '${env.RBS_LOG_LEVEL}'`);
  return value as LogLevel;
}

/** The active span's ids (lib/tracing), so that a line leads to its trace. */
function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan()?.spanContext();
  return span && isSpanContextValid(span) ? { trace_id: span.traceId, span_id: span.spanId } : {};
}

/** The process's own logger on stderr: the first processLogger() made without a destination. */
let processWide: Logger | undefined;

/** `destination`: stderr unless given (tests read the lines back). */
export function processLogger(service: string, destination?: pino.DestinationStream): Logger {
  const logger = pino(
    {
      level: logLevel(),
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: traceFields,
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
  if (!destination) processWide ??= logger;
  return logger;
}

/** For library code that runs in any service (certificate renewal, say): that service's logger. */
export function processLog(): Logger {
  processWide ??= processLogger('rbs');
  return processWide;
}
