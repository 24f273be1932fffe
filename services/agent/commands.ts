/**
 * The agent's Bazel commands: Run, Cancel and ShutdownBazel, relayed to the session's own Bazel
 * server. A command runs only against the workspace state its proxy synced for it.
 */
import * as grpc from '@grpc/grpc-js';
import { statusError } from '../../lib/grpc/status';
import type { RunResponse, RunResponse__Output } from '../../gen/proto/command_server/RunResponse';
import type { AgentRunRequest__Output } from '../../gen/proto/rbs/v1/AgentRunRequest';
import type { FileChunk } from '../../gen/proto/rbs/v1/FileChunk';
import type { ListOutputsResponse } from '../../gen/proto/rbs/v1/ListOutputsResponse';
import type { ReadBuildEventFileRequest__Output } from '../../gen/proto/rbs/v1/ReadBuildEventFileRequest';
import type { BazelServer } from './bazel-server';
import type { DriftWatch } from './drift-watch';
import { type AgentMetrics, SERVER_FAILED } from './metrics';
import type { LaptopCommands } from './laptop-command';
import type { CommandOutputs } from './outputs';
import type { KeptRuns } from './remote-run';
import { runTrailer } from './run-target';
import { agentLog } from './log';
import type { SyncLedger } from './sync';

export type RunCall = grpc.ServerWritableStream<AgentRunRequest__Output, RunResponse>;

/** What the agent's commands run on: its Bazel server and the state each command is checked against. */
export interface CommandContext {
  bazel: BazelServer;
  syncs: SyncLedger;
  laptop: LaptopCommands;
  outputs: CommandOutputs;
  runs: KeptRuns;
  metrics: AgentMetrics;
  drift?: DriftWatch;
}

/** Serves one Run call for an already authorized peer; its outputs are listed before the call ends. */
export async function serveRun(call: RunCall, { bazel, syncs, laptop, outputs, runs, metrics, drift }: CommandContext): Promise<void> {
  const { request, clientWorkspace, clientOutputBase, syncId } = call.request;
  // Emitted, not destroy(): grpc-js sends an emitted error's status, and a destroyed stream sends nothing.
  const fail = (code: grpc.status, details: string): void => void call.emit('error', statusError(code, details));
  if (!request || (request.arg ?? []).length === 0) return fail(grpc.status.INVALID_ARGUMENT, 'Run needs a Bazel command');
  if (!clientWorkspace?.startsWith('/')) return fail(grpc.status.INVALID_ARGUMENT, 'Run needs the absolute client_workspace');
  await drift?.settle(); // a copy changed just before this command is known to have changed
  if (call.cancelled) return;
  const synced = syncs.lastCompleted();
  if (!syncId || syncId !== synced) {
    const at = syncs.whyNone() ?? `the workspace is at sync ${synced ?? '(none)'}`;
    return fail(grpc.status.FAILED_PRECONDITION, `${at}, not ${syncId || '(none)'}: sync it before running a command`);
  }
  const client = { clientWorkspace, clientOutputBase: clientOutputBase || undefined };
  const command = laptop.prepare(request, client, (r) => call.write(r));
  if ('refusal' in command) {
    call.write(command.refusal);
    return void call.end();
  }
  // The caller going away (Ctrl-C, a killed client, a dropped network) cancels the command.
  const abort = new AbortController();
  call.on('cancelled', () => abort.abort());
  const tracker = outputs.track();
  drift?.expectLinksOf(request.arg!.map((arg) => arg.toString('latin1')));
  let commandId = '';
  let exitCode = 0;
  const relay = (r: RunResponse__Output) => {
    commandId ||= r.commandId ?? '';
    if (r.finished) exitCode = r.exitCode ?? 0;
    command.send(r);
  };
  const started = performance.now();
  const name = request.arg![0].toString('latin1');
  /** Counted, and one line for operators (inside the Run's span: it carries the trace id). */
  const ended = (code: number | typeof SERVER_FAILED) => {
    const seconds = (performance.now() - started) / 1000;
    metrics.commandDone(name, code, seconds);
    agentLog().info({ command: name.slice(0, 64), commandId, exitCode: code, durationMs: Math.round(seconds * 1000) }, 'command ended');
  };
  bazel
    .run(command.request, client, relay, abort.signal, tracker.rewrite)
    .finally(() => command.end())
    .then(async (exec) => {
      ended(exitCode);
      await tracker.finish(commandId, exitCode);
      return exec;
    })
    .then(
      // A `bazel run` ends without a final response: its RunTarget follows as a trailer.
      async (exec) => call.end(exec && (await runTrailer(exec, bazel, runs))),
      (err: Error) => {
        ended(SERVER_FAILED);
        fail(grpc.status.UNAVAILABLE, `the session's Bazel server failed: ${err.message}`);
      },
    );
}

export type ReadBuildEventFileCall = grpc.ServerWritableStream<ReadBuildEventFileRequest__Output, FileChunk>;

/** Streams a finished command's build event file, in laptop paths, to the proxy that ran it. */
export function serveBuildEventFile(call: ReadBuildEventFileCall, laptop: LaptopCommands): void {
  const write = (data: Buffer) => (data.length === 0 || call.write({ data }) ? Promise.resolve() : new Promise<void>((resolve) => call.once('drain', resolve)));
  const { commandId, fileId } = call.request;
  laptop.read(commandId, fileId, write).then(
    () => call.end(),
    (err: Error & { code?: grpc.status }) =>
      void call.emit('error', err.code ? err : statusError(grpc.status.INTERNAL, `reading build event file ${fileId}: ${err.message}`)),
  );
}

export async function cancelCommand(bazel: BazelServer, commandId: string): Promise<Record<string, never>> {
  if (!commandId) throw statusError(grpc.status.INVALID_ARGUMENT, 'Cancel needs a command_id');
  await bazel.cancel(commandId);
  return {};
}

export function listOutputs(outputs: CommandOutputs, commandId: string): Promise<ListOutputsResponse> {
  if (!commandId) throw statusError(grpc.status.INVALID_ARGUMENT, 'ListOutputs needs a command_id');
  return outputs.outputsOf(commandId);
}

export async function shutdownBazel(bazel: BazelServer): Promise<Record<string, never>> {
  await bazel.shutdown();
  return {};
}
