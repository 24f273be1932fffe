/**
 * Every service process logs JSON lines to stderr (pino): its level, ISO time, the service and pid,
 * then the fields of the line (sessionId, user, rpc, ...) and `msg`. One line per event, written
 * synchronously, so a crash loses nothing. RBS_LOG_LEVEL (trace, debug, info, warn, error) sets
 * the level; info by default.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LEVELS)[number];

function logLevel(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const value = (env.RBS_LOG_LEVEL ?? 'info').toLowerCase();
  if (!(LEVELS as readonly string[]).includes(value)) throw new Error(`RBS_LOG_LEVEL must be one of ${LEVELS.join(', ')}, got '${env.RBS_LOG_LEVEL}'`);
  return value as LogLevel;
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
