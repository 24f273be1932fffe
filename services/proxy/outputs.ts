/**
 * Outputs on the laptop. After a build, test, run or coverage, before the client sees the command
 * end, the proxy asks the agent what the command left (ListOutputs: the requested targets'
 * outputs and test logs, from Bazel's build events), brings what the workspace's `outputs`
 * setting asks for into the laptop's output base where local Bazel would put it, and mirrors
 * Bazel's convenience links. `toplevel` fetches the listed files that differ from the laptop's
 * copy; `all` fetches the whole bazel-out tree (rsync's quick check skips what is unchanged);
 * `none` fetches nothing and removes the laptop's copies that differ, so the links lead to
 * nothing stale. If that fails, the command fails (exit 36 if it had succeeded) naming the file.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BUILDING_COMMANDS } from '../../lib/bazel/options';
import { removeTree } from '../../lib/remove-tree';
import { type OutputsMode, readWorkspaceSettings } from '../../lib/workspace-settings';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import type { ListOutputsResponse__Output as Listing } from '../../gen/proto/rbs/v1/ListOutputsResponse';
import type { OutputFile__Output as OutputFile } from '../../gen/proto/rbs/v1/OutputFile';
import type { RunRequest, RunResponse } from './command-server';
import { type FetchStats, fetchFromOutputBase, refusedOutputPath, removeFromOutputBase } from './fetch';
import { checkAgentLinks, mirrorLinks } from './output-links';

/** Bazel's exit code for a local environment problem: the build succeeded, its outputs did not arrive. */
const LOCAL_ENVIRONMENTAL_ERROR = 36;

export interface OutputsContext {
  /** Read at each use: a renewed certificate means a new client. */
  readonly agent: AgentClient;
  workspace: string;
  outputBase: string;
  log: (message: string) => void;
}

export interface CommandOutputs {
  /** Passes responses on, all but the final one, which finish() delivers. */
  onResponse(response: RunResponse): void;
  /** Once the agent's Run has ended: brings the outputs, then delivers the final response. */
  finish(signal: AbortSignal): Promise<void>;
}

/** Wraps the relay of one command's responses. */
export function commandOutputs(request: RunRequest, deliver: (response: RunResponse) => void, context: OutputsContext): CommandOutputs {
  const args = request.arg.map((arg) => arg.toString('latin1'));
  let commandId = '';
  let final: RunResponse | undefined;
  return {
    onResponse(response) {
      commandId ||= response.commandId ?? '';
      if (response.finished) final = response;
      else deliver(response);
    },
    async finish(signal) {
      if (!final) return;
      const done = final;
      const exitCode = done.exitCode ?? 0;
      if (!signal.aborted) {
        const notes = await bringOutputs(args, commandId, exitCode, context, signal).catch((err: Error) => {
          context.log(`outputs of command ${commandId}: ${err.message}`);
          return { failed: err.message };
        });
        if (signal.aborted) return; // interrupted: the command ends as such, without its outputs
        const lines = 'failed' in notes ? [`outputs did not reach this machine: ${notes.failed}`] : notes;
        if (lines.length > 0) deliver({ standardError: Buffer.from(lines.map((line) => `RBS: ${line}\n`).join('')) });
        if ('failed' in notes && exitCode === 0) return deliver({ ...done, exitCode: LOCAL_ENVIRONMENTAL_ERROR });
      }
      deliver(done);
    },
  };
}

/** Does the work; resolves with notes for the developer. */
async function bringOutputs(args: string[], commandId: string, exitCode: number, context: OutputsContext, signal: AbortSignal): Promise<string[]> {
  const { workspace, outputBase, log } = context;
  if (args[0] === 'clean' && exitCode === 0) {
    // As a local clean: the outputs and the links to them go.
    removeTree(path.join(outputBase, 'execroot')); // tree artifacts are read-only directories
    return mirrorLinks(workspace, outputBase, args, []);
  }
  if (!BUILDING_COMMANDS.has(args[0]) || !commandId) return [];
  const started = performance.now();
  const mode = readWorkspaceSettings(workspace).outputs;
  const listing = await listOutputs(context.agent, commandId);
  checkListing(listing);
  const stats = await bring(mode, listing, context, signal);
  const notes = await mirrorLinks(workspace, outputBase, args, listing.links);
  const ms = Math.round(performance.now() - started);
  log(
    `outputs (${mode}) of command ${commandId}: ${listing.files.length} listed, fetched ${stats.files} files (${stats.bytes} bytes) in ${ms} ms (rsync ${stats.ms} ms)`,
  );
  return notes;
}

async function bring(mode: OutputsMode, listing: Listing, { agent, outputBase }: OutputsContext, signal: AbortSignal): Promise<FetchStats> {
  if (mode === 'all') {
    const paths = listing.execroot ? [`${listing.execroot}/bazel-out`] : [];
    return fetchFromOutputBase({ agent, outputBase, paths, signal });
  }
  const stale = await staleCopies(outputBase, listing.files);
  if (mode === 'toplevel') return fetchFromOutputBase({ agent, outputBase, paths: stale, signal });
  await removeFromOutputBase(outputBase, stale);
  return { files: 0, bytes: 0, ms: 0 };
}

/** The listed paths whose laptop copy is missing or differs; directories and links always (rsync checks inside). */
export async function staleCopies(outputBase: string, files: OutputFile[]): Promise<string[]> {
  const differs = await Promise.all(
    files.map(async (file) => {
      if (!file.regular) return true;
      const copy = await fs.lstat(path.join(outputBase, file.path), { bigint: true }).catch(() => undefined);
      const mtimeNs = BigInt(file.mtimeSeconds) * 1_000_000_000n + BigInt(file.mtimeNanos);
      return !copy?.isFile() || copy.size !== BigInt(file.size) || copy.mtimeNs !== mtimeNs || ((copy.mode & 0o100n) !== 0n) !== file.executable;
    }),
  );
  return files.filter((_, i) => differs[i]).map((file) => file.path);
}

/** Everything the agent named must be a plain path where Bazel puts outputs. */
function checkListing(listing: Listing): void {
  const { execroot } = listing;
  if (execroot && (!/^execroot\/[^/\0-\x1f]+$/.test(execroot) || execroot === 'execroot/..' || execroot === 'execroot/.')) {
    throw new Error(`refused the agent's execroot ${JSON.stringify(listing.execroot)}`);
  }
  for (const file of listing.files) {
    const why = refusedOutputPath(file.path);
    if (why) throw new Error(`refused the agent's output ${JSON.stringify(file.path)}: ${why}`);
  }
  checkAgentLinks(listing.links);
}

/** The agent lists from the build's events and the output tree: on a slow volume, seconds, not minutes. */
const LIST_OUTPUTS_DEADLINE_MS = 60_000;

function listOutputs(agent: AgentClient, commandId: string): Promise<Listing> {
  return new Promise((resolve, reject) =>
    agent.listOutputs({ commandId }, { deadline: Date.now() + LIST_OUTPUTS_DEADLINE_MS }, (err, listing) =>
      err ? reject(new Error(`the agent's ListOutputs: ${err.details || err.message}`)) : resolve(listing!),
    ),
  );
}
