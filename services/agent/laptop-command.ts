/**
 * One command as the developer must experience it from the laptop: its path-taking flags mapped or
 * refused (lib/bazel/path-flags), its output naming laptop paths, and the build event files it
 * wrote kept, with laptop paths, until the proxy reads them.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type BuildEventFileFlag, PathFlagRefused, type PathFlagMapping, mapPathFlags } from '../../lib/bazel/path-flags';
import { type PathPair, PathRewriter } from '../../lib/bazel/path-rewriter';
import { statusError } from '../../lib/grpc/status';
import type { RunRequest__Output } from '../../gen/proto/command_server/RunRequest';
import type { RunResponse, RunResponse__Output } from '../../gen/proto/command_server/RunResponse';
import { infoNote } from './laptop-info';
import { laptopOutput } from './laptop-output';
import { onlyOwnEventFile } from './outputs';
import type { ClientPaths } from './run-request';

/** Bazel's "command line error": a flag RBS cannot honour. */
const COMMAND_LINE_ERROR = 2;
/** Finished commands whose build event files are kept for the proxy: it reads them right away. */
const KEPT_COMMANDS = 8;

export interface AgentPlaces {
  workspaceDir: string;
  outputBase: string;
  /** The session volume, which holds both, and the directories of path-taking flags. */
  volumeDir: string;
}

export interface LaptopCommand {
  request: RunRequest__Output;
  mapping: PathFlagMapping;
  /** Passes a response on, in laptop paths. */
  send(response: RunResponse__Output): void;
  /** The command is over: held output goes out, and files nobody can ask for (no final response) go. */
  end(): void;
}

/** A byte as protobuf's text format writes it inside a string: quotes and backslash escaped, the rest octal unless printable ASCII. */
function textFormatByte(byte: number): string {
  const char = String.fromCharCode(byte);
  if (char === '"' || char === "'" || char === '\\') return `\\${char}`;
  return byte >= 0x20 && byte < 0x7f ? char : `\\${byte.toString(8).padStart(3, '0')}`;
}

/** How each build event file writes a laptop path: inside a JSON string, inside a text-format string. */
const ESCAPES: Record<BuildEventFileFlag, (to: string) => string> = {
  build_event_json_file: (to) => JSON.stringify(to).slice(1, -1),
  build_event_text_file: (to) => [...Buffer.from(to)].map(textFormatByte).join(''),
};

export class LaptopCommands {
  private readonly root: string;
  /** By command_id, oldest first. */
  private readonly kept = new Map<string, { dir: string; mapping: PathFlagMapping; pairs: PathPair[] }>();

  constructor(private readonly places: AgentPlaces) {
    this.root = path.join(places.volumeDir, 'command-files');
    fs.rmSync(this.root, { recursive: true, force: true }); // a previous agent's, which nobody reads
  }

  /** The command to run for `request`, or a final response that refuses it. */
  prepare(request: RunRequest__Output, client: ClientPaths, send: (response: RunResponse__Output) => void): LaptopCommand | { refusal: RunResponse } {
    const dir = path.join(this.root, randomUUID());
    let mapping: PathFlagMapping;
    try {
      mapping = mapPathFlags(request.arg, request.startupOptions, {
        client: { workspace: client.clientWorkspace, outputBase: client.clientOutputBase },
        agent: { volumeDir: this.places.volumeDir, commandDir: dir },
      });
    } catch (err) {
      if (!(err instanceof PathFlagRefused)) throw err;
      return { refusal: { standardError: Buffer.from(`ERROR: ${err.message}\n`), finished: true, exitCode: COMMAND_LINE_ERROR } };
    }
    if (mapping.buildEventFiles.length) fs.mkdirSync(dir, { recursive: true });
    const pairs: PathPair[] = [
      ...mapping.pairs,
      ...rootPairs(this.places.workspaceDir, client.clientWorkspace),
      ...(client.clientOutputBase ? rootPairs(this.places.outputBase, client.clientOutputBase) : []),
    ];
    let commandId = '';
    const args = request.arg.map((arg) => arg.toString('latin1'));
    const output = laptopOutput(pairs, send, { note: infoNote(args), ownEventFile: onlyOwnEventFile(args) });
    return {
      request: { ...request, arg: mapping.args, startupOptions: mapping.startupOptions },
      mapping,
      send: (response) => {
        commandId ||= response.commandId;
        // Kept before the final response leaves: the proxy asks for the files as soon as it has it.
        if (response.finished && commandId && mapping.buildEventFiles.length) this.keep(commandId, { dir, mapping, pairs });
        output.send(response);
      },
      end: () => {
        output.close();
        if (mapping.buildEventFiles.length && !this.kept.has(commandId)) fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  /** Streams a kept build event file of a finished command, rewritten to laptop paths. */
  async read(commandId: string, fileId: string, write: (data: Buffer) => Promise<void>): Promise<void> {
    const file = this.kept.get(commandId)?.mapping.buildEventFiles.find((f) => f.id === fileId);
    if (!file || !fs.existsSync(file.agentPath)) throw statusError(grpc.status.NOT_FOUND, `command ${commandId} wrote no build event file ${fileId}`);
    const rewriter = new PathRewriter(this.kept.get(commandId)!.pairs, ESCAPES[file.flag]);
    for await (const chunk of fs.createReadStream(file.agentPath)) await write(rewriter.write(chunk as Buffer));
    await write(rewriter.flush());
  }

  private keep(commandId: string, command: { dir: string; mapping: PathFlagMapping; pairs: PathPair[] }): void {
    this.kept.set(commandId, command);
    for (const [id, old] of this.kept) {
      if (this.kept.size <= KEPT_COMMANDS) break;
      this.kept.delete(id);
      fs.rmSync(old.dir, { recursive: true, force: true });
    }
  }
}

/** The agent's root and, if it differs, its real path (Bazel prints some paths resolved), to the laptop's. */
function rootPairs(agent: string, laptop: string): PathPair[] {
  let real = agent;
  try {
    real = fs.realpathSync(agent);
  } catch {
    // Not there yet (a first command): Bazel prints no resolved form of it either.
  }
  return real === agent
    ? [[agent, laptop]]
    : [
        [agent, laptop],
        [real, laptop],
      ];
}
