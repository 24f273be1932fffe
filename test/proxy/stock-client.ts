/**
 * The stock Bazel client with an in-process server: the client starts the javabase's bin/java in
 * its server's place, as it starts the proxy; here bin/java only records its pid and sleeps,
 * standing in for the server process that the in-process server is announced as.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { publishServer } from '../../lib/bazel/server-files';
import { waitFor } from '../harness/wait';

export interface AnnouncedServer {
  address: string;
  requestCookie: string;
  responseCookie: string;
}

export interface StockClient {
  child: ChildProcess;
  /** Resolves once the client has exited, with what it wrote to stderr. */
  done: Promise<{ code: number | null; stderr: string }>;
  /** Kills the stand-in server process. */
  stop(): void;
}

/** Runs `bazel <args>` in `root`/ws (which must hold a WORKSPACE) against `server`. */
export async function stockClient(root: string, server: AnnouncedServer, args: string[]): Promise<StockClient> {
  const javabase = path.join(root, 'javabase');
  const standInPid = path.join(root, 'stand-in.pid');
  fs.rmSync(standInPid, { force: true });
  fs.mkdirSync(path.join(javabase, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(javabase, 'bin', 'java'), `#!/bin/sh\necho $$ > ${standInPid}\nexec sleep 600\n`, { mode: 0o755 });
  const outputBase = path.join(root, 'ob');
  const argv = [`--output_base=${outputBase}`, `--server_javabase=${javabase}`, ...args];
  const child = spawn('/usr/bin/bazel', argv, { cwd: path.join(root, 'ws'), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  await waitFor(() => fs.existsSync(standInPid) && fs.readFileSync(standInPid, 'utf8').endsWith('\n'), 30_000, 'the client to start its server');
  const pid = Number(fs.readFileSync(standInPid, 'utf8'));
  await publishServer(outputBase, { pid, ...server });
  return { child, done, stop: () => process.kill(pid, 'SIGKILL') };
}
