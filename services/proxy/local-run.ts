/**
 * A `bazel run` on this machine. The agent only names the program (a RunTarget): the proxy fetches
 * it and its runfiles MANIFEST into the laptop's output base, checks every path, builds the
 * runfiles tree itself with the laptop's paths, and builds the exec request the client receives.
 * Nothing else the agent says is executed.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExecRequest } from '../../gen/proto/command_server/ExecRequest';
import { ownExecRequest } from '../../lib/exec-request';
import type { OutputFile__Output as OutputFile } from '../../gen/proto/rbs/v1/OutputFile';
import type { RunTarget__Output } from '../../lib/run-target';
import { staleCopies } from './outputs';

/** Fetches files named relative to the output base from the agent's output base into the laptop's. */
export type FetchOutputs = (paths: string[]) => Promise<void>;

export interface LocalRun {
  target: RunTarget__Output;
  /** The laptop's workspace and output base. */
  workspace: string;
  outputBase: string;
  /** The client's working directory (`--client_cwd`): BUILD_WORKING_DIRECTORY. */
  clientCwd: string;
  fetch: FetchOutputs;
}

/** A path relative to the output base that stays inside it: no `..`, nothing absolute, nothing odd. */
function checkedRelative(relative: string, what: string): string {
  const normal = path.posix.normalize(relative);
  if (relative === '' || path.posix.isAbsolute(relative) || normal !== relative || normal.split('/').includes('..') || /[\0\n\r]/.test(relative)) {
    throw new Error(`${what} ${JSON.stringify(relative)} is not a plain path inside the output base`);
  }
  return relative;
}

/** Where `agentPath` (from the MANIFEST) is on this machine: a fetched output or a workspace source. */
function placeOf(agentPath: string, target: RunTarget__Output): { output: string } | { source: string } {
  for (const [root, kind] of [
    [target.outputBase, 'output'],
    [target.workspace, 'source'],
  ] as const) {
    if (!path.isAbsolute(root)) continue;
    const relative = path.relative(root, agentPath);
    if (path.isAbsolute(agentPath) && relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative)) {
      return kind === 'output' ? { output: checkedRelative(relative, 'a runfile') } : { source: checkedRelative(relative, 'a runfile') };
    }
  }
  throw new Error(`the runfile ${agentPath} is neither an output nor a source of the workspace`);
}

interface Runfile {
  /** Under the runfiles directory, e.g. `__main__/data.txt`. */
  name: string;
  /** The laptop path the link points to. */
  laptopPath: string;
}

/** The MANIFEST's entries, each mapped to this machine and checked. */
function readManifest(text: string, run: LocalRun): { runfiles: Runfile[]; outputs: string[] } {
  const runfiles: Runfile[] = [];
  const outputs: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const space = line.indexOf(' ');
    const name = checkedRelative(space < 0 ? line : line.slice(0, space), 'the runfiles MANIFEST names a runfile');
    if (name === 'MANIFEST') throw new Error("the runfiles MANIFEST names a runfile MANIFEST, which is the tree's own file");
    const agentPath = space < 0 ? '' : line.slice(space + 1);
    if (agentPath === '') continue; // an empty file Bazel makes itself (e.g. __init__.py): not supported below
    const place = placeOf(agentPath, run.target);
    if ('output' in place) outputs.push(place.output);
    runfiles.push({ name, laptopPath: 'output' in place ? path.join(run.outputBase, place.output) : path.join(run.workspace, place.source) });
  }
  return { runfiles, outputs };
}

/** A file under `root` whose real path is still under root's real path. */
function isInside(file: string, root: string): boolean {
  try {
    const relative = path.relative(fs.realpathSync(root), fs.realpathSync(file));
    return !relative.startsWith('..') && !path.isAbsolute(relative);
  } catch {
    return false;
  }
}

/**
 * Fetches the program and its MANIFEST unless the laptop has them as the agent describes them, and
 * returns the MANIFEST's text. The tree's MANIFEST gets laptop paths, so the agent's is kept beside
 * the tree (under a name Bazel does not use) with the stamp it was fetched under.
 */
async function fetchProgram({ target, outputBase, fetch }: LocalRun, executable: string, manifest: string): Promise<string> {
  const kept = path.join(outputBase, `${executable}.runfiles.rbs-agent-manifest.json`);
  const program = target.files.find((file) => file.path === executable);
  const stamp = target.files.find((file) => file.path === manifest);
  const stampOf = (file: OutputFile | undefined) => file && JSON.stringify([file.size, file.mtimeSeconds, file.mtimeNanos]);
  const previous = readKept(kept);
  const manifestIsCurrent = stamp !== undefined && previous.stamp === stampOf(stamp) && typeof previous.text === 'string';
  const programIsCurrent = program !== undefined && (await staleCopies(outputBase, [program])).length === 0;
  const needed = [...(programIsCurrent ? [] : [executable]), ...(manifestIsCurrent ? [] : [manifest])];
  if (needed.length > 0) await fetch(needed);
  if (manifestIsCurrent) return previous.text!;
  const fetched = path.join(outputBase, manifest);
  if (!fs.lstatSync(fetched, { throwIfNoEntry: false })?.isFile()) throw new Error(`the runfiles MANIFEST ${fetched} was not fetched as a file`);
  const text = fs.readFileSync(fetched, 'latin1');
  replaceFile(kept, JSON.stringify({ stamp: stampOf(stamp), text }), 'utf8');
  return text;
}

/** What fetchProgram kept last time; nothing if absent or unreadable (then it fetches). */
function readKept(file: string): { stamp?: string; text?: string } {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as { stamp?: string; text?: string };
  } catch {
    return {};
  }
}

/** Fetches and checks the target; returns the exec request that runs it here. */
export async function prepareLocalRun(run: LocalRun): Promise<ExecRequest> {
  const { target, workspace, outputBase } = run;
  const executable = checkedRelative(target.executable, 'the program');
  const [execroot, workspaceName] = executable.split('/');
  if (execroot !== 'execroot' || !workspaceName) throw new Error(`the program ${executable} is not under execroot/<workspace name>/`);
  const runfilesDir = `${executable}.runfiles`;
  const manifest = await fetchProgram(run, executable, `${runfilesDir}/MANIFEST`);

  const binary = path.join(outputBase, executable);
  const stat = fs.lstatSync(binary, { throwIfNoEntry: false });
  if (!stat?.isFile() || !isInside(binary, outputBase)) throw new Error(`the program ${binary} was not fetched as a file inside the output base`);
  if ((stat.mode & 0o111) === 0) throw new Error(`the target's program ${binary} is not executable`);

  const { runfiles, outputs } = readManifest(manifest, run);
  const others = outputs.filter((output) => output !== executable);
  if (others.length > 0) await run.fetch(others);

  const dangling = runfiles.filter(({ laptopPath }) => !isInside(laptopPath, laptopPath.startsWith(outputBase + path.sep) ? outputBase : workspace));
  if (dangling.length > 0) {
    const names = dangling.map(({ name, laptopPath }) => `${name} -> ${laptopPath}`).join(', ');
    throw new Error(`runfiles of ${executable} that do not exist here, or lead out of the workspace or output base: ${names}`);
  }
  writeRunfilesTree(path.join(outputBase, runfilesDir), runfiles);
  fs.mkdirSync(path.join(outputBase, runfilesDir, workspaceName), { recursive: true }); // the client chdirs there

  return ownExecRequest({
    workingDirectory: Buffer.from(path.join(outputBase, runfilesDir, workspaceName)),
    argv: [binary, ...target.args.map((arg) => arg.toString('latin1'))].map((arg) => Buffer.from(arg, 'latin1')),
    environmentVariable: [
      { name: Buffer.from('BUILD_WORKSPACE_DIRECTORY'), value: Buffer.from(workspace) },
      { name: Buffer.from('BUILD_WORKING_DIRECTORY'), value: Buffer.from(run.clientCwd) },
    ],
  });
}

/** The runfiles tree as Bazel lays it out (links, MANIFEST, `<program>.runfiles_manifest`), with this machine's paths. */
function writeRunfilesTree(dir: string, runfiles: Runfile[]): void {
  const manifest = runfiles.map(({ name, laptopPath }) => `${name} ${laptopPath}\n`).join('');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  try {
    for (const { name, laptopPath } of runfiles) {
      makeDirectoriesOf(dir, name);
      fs.symlinkSync(laptopPath, path.join(dir, name));
    }
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  replaceFile(path.join(dir, 'MANIFEST'), manifest, 'latin1');
  replaceFile(`${dir}_manifest`, manifest, 'latin1');
}

/**
 * Creates the directories between `dir` and runfile `name`, one at a time: a runfile under another
 * one's link would otherwise create directories, and then the link, through it in the workspace.
 */
function makeDirectoriesOf(dir: string, name: string): void {
  let current = dir;
  for (const part of name.split('/').slice(0, -1)) {
    current = path.join(current, part);
    const stat = fs.lstatSync(current, { throwIfNoEntry: false });
    if (!stat) fs.mkdirSync(current);
    else if (!stat.isDirectory()) throw new Error(`the runfile ${name} lies under another runfile's link, ${current}`);
  }
}

/**
 * Writes `file` by renaming a new file over it: a link the fetch or the agent's MANIFEST planted
 * there is replaced, never written through (into the workspace, say).
 */
function replaceFile(file: string, text: string, encoding: BufferEncoding): void {
  const temp = `${file}.rbs-${randomBytes(6).toString('hex')}`;
  fs.writeFileSync(temp, text, { encoding, flag: 'wx' });
  fs.renameSync(temp, file);
}
