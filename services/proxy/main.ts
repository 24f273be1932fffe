/**
 * The proxy, as a stock Bazel client starts it in place of `java -jar A-server.jar` (through the
 * javabase that `rbs javabase` prints). By the time this runs the client has daemonized the
 * process, pointed stdout and stderr at <output_base>/server/jvm.out (which it shows the developer
 * if we die during startup) and made the workspace the working directory (which it checks).
 *
 * It serves the client at once and gets the session meanwhile: a command waits for the session,
 * and if the session cannot be had, the command fails with the reason on the developer's terminal.
 */
import { randomBytes } from 'node:crypto';
import { agentRelay } from './agent-relay';
import { startCommandServer } from './command-server';
import { publishServer, unpublishServer } from '../../lib/bazel/server-files';
import { parseServerArgs } from './startup';
import { exitAfterTraces, startTracing } from '../../lib/tracing/tracing';

const log = (message: string) => process.stderr.write(`${new Date().toISOString()} RBS proxy: ${message}\n`);

async function main(): Promise<void> {
  try {
    startTracing('proxy');
  } catch (err) {
    // The developer's shell may set OTEL_* for other tools: a setting RBS cannot use costs traces, never a build.
    log(`traces are off: ${(err as Error).message}`);
    startTracing('proxy', {});
  }
  const startup = parseServerArgs(process.argv.slice(2));
  if (startup.other.includes('--batch')) throw new Error('--batch is not supported: the proxy only runs as a server');
  if (!startup.workspaceDirectory) throw new Error('no --workspace_directory=… in the server command line');
  const { outputBase } = startup;
  const relay = agentRelay({ workspace: startup.workspaceDirectory, outputBase, log });
  const requestCookie = randomBytes(16).toString('hex');
  const responseCookie = randomBytes(16).toString('hex');

  let exiting = false;
  /** The remote Bazel server needs stopping unless the command that ended the proxy stopped it. */
  const exit = async (why: string, stopRemote: boolean) => {
    if (exiting) return;
    exiting = true;
    log(`exiting (${why})`);
    // Unpublished first, so that no new client tries a server that is going away.
    await unpublishServer(outputBase);
    await server.stop();
    if (stopRemote) await relay.shutdown().catch((err: Error) => log(`cannot stop the remote Bazel server: ${err.message}`));
    relay.close();
    await exitAfterTraces(0);
  };

  const server = await startCommandServer({
    relay,
    requestCookie,
    responseCookie,
    maxIdleSecs: startup.maxIdleSecs,
    onIdle: () => void exit(`idle for ${startup.maxIdleSecs} s`, true),
    onTerminate: () => void exit('the command stopped the server', false),
  });
  process.on('SIGTERM', () => void exit('SIGTERM', true));
  await publishServer(outputBase, { pid: process.pid, address: server.address, requestCookie, responseCookie });
  log(`serving on ${server.address} for ${startup.workspaceDirectory}, ${Math.round(process.uptime() * 1000)} ms after start`);
}

main().catch((err: Error) => {
  log(`cannot start: ${err.message}`);
  process.exit(1);
});
