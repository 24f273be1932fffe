/** A long-running child process of the local stack or the test harness, with its log in a file. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** null while it runs; else why it is gone. */
  exited(): string | null;
  logTail(lines?: number): string;
  /** SIGTERM its process group, then SIGKILL after graceMs (0: SIGKILL at once). */
  stop(graceMs?: number): Promise<void>;
}

export function startChild(name: string, command: string, args: string[], options: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string }): Child {
  fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = fs.openSync(options.logFile, 'a');
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['ignore', log, log],
    detached: true, // own process group, so stop() reaches its children too
  });
  fs.closeSync(log);
  let exitReason: string | null = null;
  const exit = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exitReason = `${name} exited (${signal ?? `code ${code}`})`;
      resolve();
    });
    child.on('error', (err) => {
      exitReason = `${name} could not start: ${err.message}`;
      resolve();
    });
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      /* already gone */
    }
  };
  return {
    name,
    process: child,
    exited: () => exitReason,
    logTail(lines = 20) {
      try {
        return fs.readFileSync(options.logFile, 'utf8').split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
    async stop(graceMs = 5000) {
      if (!child.pid) return;
      if (exitReason !== null) {
        signalGroup('SIGKILL'); // the leader is gone; its children may not be
        return;
      }
      signalGroup(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}
