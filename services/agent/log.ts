/** The agent process's JSON lines (lib/log.ts); once its session is known, every line names it. */
import { type Logger, processLogger } from '../../lib/log';

let logger: Logger | undefined;

export function agentLog(): Logger {
  logger ??= processLogger('agent');
  return logger;
}

export function logForSession(sessionId: string): void {
  logger = agentLog().child({ sessionId });
}
