/**
 * Which Bazel server on the output base is the agent's. The files in <output_base>/server/ are on
 * the volume, where any build action or repository rule can write, so they are read exactly once
 * per server: right after the agent's own real client started it, and only to be checked against
 * /proc. What passes becomes the pin, held in the agent's memory; the files are never trusted again.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { serverDirectory, unpublishServer } from '../../lib/bazel/server-files';
import { type ProcessRef, bazelServersOf, commandLine, isBazelServerOf, listeningPorts, runningProcess, stopProcess } from './bazel-process';
import { agentLog } from './log';

/** The server the agent started: the process, where it listens and its cookies. */
export interface ServerPin extends ProcessRef {
  address: string;
  requestCookie: string;
  responseCookie: string;
}

const log = (message: string) => agentLog().warn(message);

/**
 * Kills every Bazel server of `outputBase` that /proc shows: at the agent's start, none is its own.
 * A dead agent's server (Bazel daemonizes it, so no kill of the agent reaches it) would otherwise
 * finish that agent's cancelled command and hold the output base until the next command. It is a
 * stranger, not to be talked to, and what it was doing is abandoned: SIGKILL, not a SIGTERM it
 * would take its time over (Bazel survives a crash; its lock goes with the process).
 */
export async function stopStrayServers(outputBase: string): Promise<void> {
  for (const stray of await bazelServersOf(outputBase)) {
    log(`killing Bazel server pid ${stray.pid} on ${outputBase}: this agent did not start it`);
    await stopProcess(stray, `the Bazel server on ${outputBase} that this agent did not start`, { kill: true });
  }
}

/**
 * Makes way for a server of the agent's own: stops every Bazel server of `outputBase` that /proc
 * shows (a previous agent's, left running when it died: nobody else will stop it), then removes
 * the announcement, so that the real client starts a new server rather than trust the files. A live
 * process the files name that is not a Bazel server of ours is refused, and never signalled.
 */
export async function clearOutputBase(outputBase: string): Promise<void> {
  await stopStrayServers(outputBase);
  const pidFile = path.join(serverDirectory(outputBase), 'server.pid.txt');
  const pid = Number((await readOptional(pidFile))?.trim());
  const announced = await runningProcess(pid);
  const recordedStart = await readOptional(path.join(serverDirectory(outputBase), 'server.starttime'));
  // Running, and the same process (the client trusts a missing start time): not a stale leftover.
  if (announced && (recordedStart === undefined || recordedStart.trim() === announced.startTime)) {
    const argv = (await commandLine(pid))?.join(' ') ?? '';
    throw new Error(
      `${pidFile} names pid ${pid} (\`${argv.slice(0, 200)}\`), which runs but is not a Bazel server of ${outputBase}: ` +
        'something on the volume (a build action or repository rule) announced it. The agent neither talks to it nor ' +
        'signals it, and starts no Bazel server while that process runs.',
    );
  }
  await unpublishServer(outputBase);
}

/** Pins the server that the real client just started, if /proc confirms everything its files say. */
export async function pinStartedServer(outputBase: string): Promise<ServerPin> {
  const dir = serverDirectory(outputBase);
  const read = async (name: string) => {
    const text = await readOptional(path.join(dir, name));
    if (text === undefined) throw new Error(`the Bazel client started a server, but ${path.join(dir, name)} is missing`);
    return text.trim();
  };
  const [address, requestCookie, responseCookie, pidText] = await Promise.all(
    ['command_port', 'request_cookie', 'response_cookie', 'server.pid.txt'].map(read),
  );
  const pidFile = path.join(dir, 'server.pid.txt');
  const proc = await runningProcess(Number(pidText));
  const argv = proc && (await commandLine(proc.pid));
  if (!proc || !argv || !isBazelServerOf(argv, outputBase)) {
    throw new Error(`${pidFile} names pid ${pidText}, which is not a running Bazel server of ${outputBase}`);
  }
  // Bazel serves plain gRPC on loopback only, on a port its own process holds.
  const port = /^(?:127\.0\.0\.1|\[::1\]):(\d+)$/.exec(address)?.[1];
  if (!port) throw new Error(`${path.join(dir, 'command_port')} holds '${address}', which is not a loopback address`);
  if (!(await listeningPorts(proc.pid)).has(Number(port))) {
    throw new Error(`${path.join(dir, 'command_port')} names ${address}, where the Bazel server (pid ${proc.pid}) does not listen`);
  }
  return { ...proc, address, requestCookie, responseCookie };
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'latin1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
