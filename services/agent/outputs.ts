/**
 * What a command leaves for the laptop. The agent has Bazel write a build event file for every
 * build, test, run and coverage (the developer's own --build_event_json_file if they gave one,
 * else one of ours), reads it when the command ends, and keeps the list, with each file's size,
 * time and executable bit and Bazel's convenience links, for the proxy's ListOutputs.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LINK_ROLES, linkName, symlinkPrefixOf } from '../../lib/bazel/convenience-links';
import { BUILDING_COMMANDS, effectiveOption } from '../../lib/bazel/options';
import { statusError } from '../../lib/grpc/status';
import { mapLimited } from '../../lib/map-limited';
import type { RunRequest__Output } from '../../gen/proto/command_server/RunRequest';
import type { ListOutputsResponse } from '../../gen/proto/rbs/v1/ListOutputsResponse';
import type { OutputFile } from '../../gen/proto/rbs/v1/OutputFile';
import type { OutputLink } from '../../gen/proto/rbs/v1/OutputLink';
import { outputsInBuildEvents } from './build-events';

/** Lists kept for ListOutputs: the proxy asks right after its command ends. */
const KEPT = 16;
/** Stats of outputs in flight at once (lib/map-limited.ts says why not all). */
const FILE_CALLS = 32;

export interface OutputsOptions {
  workspaceDir: string;
  outputBase: string;
  /** Where the agent's own build event files live while their command runs. */
  eventsDir: string;
}

/** One command's part: its request gets a build event file; its end records what that file names. */
export interface CommandOutputsTracker {
  /** The mapped request as the server must run it. */
  rewrite(mapped: RunRequest__Output): RunRequest__Output;
  /** Reads the build events once the command has ended with `exitCode`. */
  finish(commandId: string, exitCode: number): Promise<void>;
}

const BUILD_EVENT_FILE_OPTIONS = ['build_event_json_file', 'build_event_text_file', 'build_event_binary_file'];

/** The files a build event flag may name in `args` (more than one when a --config decides), none if off. */
function givenFiles(args: string[], flag: string): string[] {
  const given = effectiveOption(args, flag);
  return (!given ? [] : 'value' in given ? [given.value] : given.candidates).filter((value) => value !== '');
}

/**
 * Whether Bazel's closing "Build Event Protocol files produced successfully." would be RBS's alone:
 * the agent adds its own file to `args` (a command that builds, without the developer's JSON file),
 * and the developer asked for no other build event file, which would make local Bazel print it too.
 */
export function onlyOwnEventFile(args: string[]): boolean {
  return BUILDING_COMMANDS.has(args[0] ?? '') && BUILD_EVENT_FILE_OPTIONS.every((flag) => givenFiles(args, flag).length === 0);
}

export class CommandOutputs {
  private readonly lists = new Map<string, Promise<ListOutputsResponse>>();

  constructor(private readonly options: OutputsOptions) {}

  track(): CommandOutputsTracker {
    /** The build event files Bazel may write, the one it wrote read; `ours` is deleted after. */
    let events: { files: string[]; ours: boolean } | undefined;
    let args: string[] = [];
    return {
      rewrite: (mapped) => {
        args = mapped.arg.map((arg) => arg.toString('latin1'));
        if (!BUILDING_COMMANDS.has(args[0])) return mapped;
        const values = givenFiles(args, 'build_event_json_file');
        if (values.length) {
          // A relative path is the client's working directory's, as Bazel resolves it.
          const cwd = args.find((arg) => arg.startsWith('--client_cwd='))?.slice('--client_cwd='.length);
          events = { files: values.map((v) => path.resolve(cwd ?? this.options.workspaceDir, v)), ours: false };
          return mapped;
        }
        events = { files: [path.join(this.options.eventsDir, `${randomUUID()}.json`)], ours: true };
        // Last among the options (before `--`), so it beats a developer's empty value, which turns the file off.
        const end = args.indexOf('--') < 0 ? args.length : args.indexOf('--');
        const ours = Buffer.from(`--build_event_json_file=${events.files[0]}`, 'latin1');
        return { ...mapped, arg: [...mapped.arg.slice(0, end), ours, ...mapped.arg.slice(end)] };
      },
      finish: async (commandId, exitCode) => {
        if (!events || !commandId) return;
        const listed = this.list(await newest(events.files), args, exitCode);
        listed.catch(() => undefined); // reported to whoever asks for it
        this.lists.set(commandId, listed);
        for (const old of [...this.lists.keys()].slice(0, -KEPT)) this.lists.delete(old);
        await listed.then(
          () => undefined,
          () => undefined,
        );
        if (events.ours) await fs.rm(events.files[0], { force: true });
      },
    };
  }

  /** The outputs of a command this agent ran; a gRPC status error if it has none. */
  async outputsOf(commandId: string): Promise<ListOutputsResponse> {
    const listed = this.lists.get(commandId);
    if (!listed) throw statusError(grpc.status.NOT_FOUND, `no outputs recorded for command ${JSON.stringify(commandId)}`);
    return listed.catch((err: Error) => {
      throw statusError(grpc.status.FAILED_PRECONDITION, `the outputs of command ${commandId} are unknown: ${err.message}`);
    });
  }

  async prepareEventsDir(): Promise<void> {
    await fs.mkdir(this.options.eventsDir, { recursive: true });
  }

  private async list(eventsFile: string, args: string[], exitCode: number): Promise<ListOutputsResponse> {
    const { outputBase, workspaceDir } = this.options;
    const roots = [...new Set([outputBase, await fs.realpath(outputBase)])];
    /** The path relative to the output base, if it is under it. */
    const under = (file: string) => roots.map((root) => path.relative(root, file)).find((rel) => rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel));

    let named: string[];
    try {
      named = await outputsInBuildEvents(eventsFile);
    } catch (err) {
      // A command that failed early (a bad option, say) may write none: then it built nothing.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && exitCode !== 0) named = [];
      else throw new Error(`the build event file ${eventsFile}: ${(err as Error).message}`);
    }
    const files = (
      await mapLimited(
        named.flatMap((file) => under(file) ?? []),
        FILE_CALLS,
        describeFile(outputBase),
      )
    ).flat();

    const links: Required<OutputLink>[] = [];
    const prefix = symlinkPrefixOf(args);
    if ('prefix' in prefix) {
      for (const role of LINK_ROLES) {
        const target = await fs.readlink(path.join(workspaceDir, linkName(prefix.prefix, role, path.basename(workspaceDir)))).catch(() => undefined);
        const relative = target === undefined ? undefined : under(path.resolve(workspaceDir, target));
        if (relative !== undefined) links.push({ role, target: relative });
      }
    }
    const out = links.find((link) => link.role === 'out');
    const execroot = out ? path.dirname(out.target) : (files[0]?.path.split('/').slice(0, 2).join('/') ?? '');
    return { execroot: execroot.startsWith('execroot/') ? execroot : '', files, links };
  }
}

/** Of the files Bazel may have written, the one it wrote last (the first if none is there). */
async function newest(files: string[]): Promise<string> {
  const times = await Promise.all(
    files.map((file) =>
      fs.stat(file).then(
        (s) => s.mtimeMs,
        () => -1,
      ),
    ),
  );
  return files[times.indexOf(Math.max(...times))];
}

/** The file's entry, or none if the command did not leave it (a target that failed). */
export const describeFile =
  (outputBase: string) =>
  async (relative: string): Promise<Required<OutputFile>[]> => {
    const stat = await fs.lstat(path.join(outputBase, relative), { bigint: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (!stat) return [];
    return [
      {
        path: relative,
        regular: stat.isFile(),
        size: Number(stat.size),
        mtimeSeconds: Number(stat.mtimeNs / 1_000_000_000n),
        mtimeNanos: Number(stat.mtimeNs % 1_000_000_000n),
        executable: (stat.mode & 0o100n) !== 0n,
      },
    ];
  };
