/**
 * Build event files (`--build_event_json_file`, `--build_event_text_file`) where the developer
 * asked for them: the agent's Bazel writes them on its side, and before the client hears that the
 * command finished, the proxy writes them here with laptop paths. Where they go comes from the
 * request the client sent this proxy, never from the agent.
 */
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { requestedBuildEventFiles } from '../../lib/bazel/path-flags';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import type { FileChunk__Output } from '../../gen/proto/rbs/v1/FileChunk';
import type { RunRequest, RunResponse } from './command-server';

/** Bazel's exit code when the local environment fails it (here: the file could not be written). */
const LOCAL_ENVIRONMENTAL_ERROR = 36;

export interface BuildEventDelivery {
  /** Passes responses on; the final one only once the files are on the laptop. */
  relay(response: RunResponse): void;
  /** Resolves once the final response has been passed on (or there was none). */
  settled(): Promise<void>;
}

/**
 * `link.agent` is read for each file, so a client renewed during the command is the one asked;
 * `client`: this machine's workspace and output base, as the agent is told them.
 */
export function buildEventDelivery(
  link: { readonly agent: AgentClient },
  request: RunRequest,
  client: { workspace: string; outputBase: string },
  onResponse: (r: RunResponse) => void,
): BuildEventDelivery {
  const files = requestedBuildEventFiles(request.arg, client);
  let commandId = '';
  let delivered = Promise.resolve();
  return {
    relay(response) {
      commandId ||= response.commandId ?? '';
      if (!response.finished || files.length === 0) return onResponse(response);
      delivered = (async () => {
        const failures: string[] = [];
        for (const { id, flag, laptopPath } of files) {
          await fetchFile(link.agent, commandId, id, laptopPath).catch((err: Error) => failures.push(`--${flag}=${laptopPath}: ${err.message}`));
        }
        if (failures.length === 0) return onResponse(response);
        const message = failures.map((f) => `ERROR: RBS could not write the build event file ${f}\n`).join('');
        const exitCode = response.exitCode ? response.exitCode : LOCAL_ENVIRONMENTAL_ERROR;
        onResponse({ ...response, standardError: Buffer.concat([Buffer.from(response.standardError ?? ''), Buffer.from(message)]), exitCode });
      })();
    },
    settled: () => delivered,
  };
}

/**
 * Copies one build event file from the agent to `laptopPath`; an occurrence Bazel did not write (an
 * rc-file value the command line overrode) is not written here either.
 */
function fetchFile(agent: AgentClient, commandId: string, fileId: string, laptopPath: string): Promise<void> {
  if (!commandId) return Promise.reject(new Error('the command has no id to ask the agent for it'));
  return new Promise((resolve, reject) => {
    const call = agent.readBuildEventFile({ commandId, fileId });
    let out: fs.WriteStream | undefined;
    /** grpc-js ends the stream after an error status too: then nothing may be written. */
    let failed = false;
    const fail = (err: Error) => {
      failed = true;
      call.cancel();
      out?.destroy();
      reject(err);
    };
    call.on('data', (chunk: FileChunk__Output) => {
      out ??= fs.createWriteStream(laptopPath).on('error', fail);
      if (!out.write(chunk.data)) {
        call.pause();
        out.once('drain', () => call.resume());
      }
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.NOT_FOUND) return fail(new Error(err.details || err.message));
      failed = true;
      resolve();
    });
    call.on('end', () => {
      if (failed) return;
      out ??= fs.createWriteStream(laptopPath).on('error', fail); // an empty file is a file
      out.end(resolve);
    });
  });
}
