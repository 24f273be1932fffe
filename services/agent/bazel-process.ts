/**
 * Bazel server processes as /proc shows them. Files in <output_base>/server/ are on the volume,
 * where build code writes too, so they only ever say where to look: whether a process is a Bazel
 * server of an output base, whether it is still the process we saw, and which port it serves, the
 * agent learns from /proc alone.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { readFile, readdir, readlink } from 'node:fs/promises';
import * as path from 'node:path';
import { startTimeOf } from '../../lib/bazel/server-files';
import { statFields } from '../../lib/proc-stat';

/** A process, told apart from a later one with a recycled pid by its start time (/proc/<pid>/stat field 22). */
export interface ProcessRef {
  pid: number;
  startTime: string;
}

const STOP_GRACE_MS = 10_000;
const KILL_WAIT_MS = 5_000;
const POLL_MS = 50;

/** Its argv, or undefined if no such process is running. */
export async function commandLine(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'latin1');
    return raw === '' ? undefined : raw.replace(/\0$/, '').split('\0'); // a zombie's is empty
  } catch {
    return undefined;
  }
}

/**
 * Whether `argv` is the JVM of a Bazel server (`… -jar <install_base>/A-server.jar
 * --output_base=<outputBase> …`, as the real client starts it) of `outputBase`.
 */
export function isBazelServerOf(argv: string[], outputBase: string): boolean {
  const jar = argv.indexOf('-jar');
  return jar >= 0 && path.basename(argv[jar + 1] ?? '') === 'A-server.jar' && argv.slice(jar + 2).includes(`--output_base=${outputBase}`);
}

/** The process `pid` as it runs now, or undefined if none does (or it is a zombie). */
export async function runningProcess(pid: number): Promise<ProcessRef | undefined> {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'latin1');
    if (statFields(stat)[0] === 'Z') return undefined;
    return { pid, startTime: startTimeOf(pid, stat) };
  } catch {
    return undefined;
  }
}

export async function isStillRunning(proc: ProcessRef): Promise<boolean> {
  return (await runningProcess(proc.pid))?.startTime === proc.startTime;
}

/** Every Bazel server of `outputBase` running now, whatever the files on the volume say. */
export async function bazelServersOf(outputBase: string): Promise<ProcessRef[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const found = await Promise.all(
    pids.map(async (pid) => {
      const argv = await commandLine(pid);
      return argv && isBazelServerOf(argv, outputBase) ? runningProcess(pid) : undefined;
    }),
  );
  return found.filter((proc): proc is ProcessRef => proc !== undefined);
}

/** TCP ports `pid` listens on: its socket descriptors matched against its network namespace's tables. */
export async function listeningPorts(pid: number): Promise<Set<number>> {
  const fdDir = `/proc/${pid}/fd`;
  const links = await Promise.all((await readdir(fdDir)).map((fd) => readlink(path.join(fdDir, fd)).catch(() => '')));
  const sockets = new Set(links.flatMap((link) => /^socket:\[(\d+)\]$/.exec(link)?.[1] ?? []));
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    const lines = (await readFile(`/proc/${pid}/net/${table}`, 'latin1').catch(() => '')).split('\n').slice(1);
    for (const line of lines) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const [, local, , state, , , , , , inode] = line.trim().split(/\s+/);
      if (state === '0A' && sockets.has(inode)) ports.add(parseInt(local.slice(local.lastIndexOf(':') + 1), 16)); // 0A: LISTEN
    }
  }
  return ports;
}

/** Resolves once `proc` has exited, or false after `timeoutMs`. */
export async function exited(proc: ProcessRef, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await isStillRunning(proc)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return true;
}

/** Whether the process is stopped (SIGSTOP, a debugger): it would act on no signal but SIGKILL. */
async function isStopped(proc: ProcessRef): Promise<boolean> {
  const stat = await readFile(`/proc/${proc.pid}/stat`, 'latin1').catch(() => '');
  return /^[Tt]/.test(statFields(stat)[0] ?? '');
}

/**
 * SIGTERM, then SIGKILL if it outlasts the grace period; a stopped process, or with `kill`, SIGKILL at once.
 * Each signal goes only to the process we were given: checked against its start time just before,
 * so a recycled pid is never signalled.
 */
export async function stopProcess(proc: ProcessRef, what: string, options: { kill?: boolean } = {}): Promise<void> {
  const killAtOnce = options.kill || (await isStopped(proc));
  const signals = killAtOnce
    ? ([['SIGKILL', KILL_WAIT_MS]] as const)
    : ([
        ['SIGTERM', STOP_GRACE_MS],
        ['SIGKILL', KILL_WAIT_MS],
      ] as const);
  for (const [signal, waitMs] of signals) {
    if (!(await isStillRunning(proc))) return;
    try {
      process.kill(proc.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
      throw new Error(`cannot stop ${what} (pid ${proc.pid}): ${(err as Error).message}`);
    }
    if (await exited(proc, waitMs)) return;
  }
  throw new Error(`${what} (pid ${proc.pid}) still runs after SIGKILL`);
}

/**
 * SIGKILL, now, if `proc` still runs (never a recycled pid), and every process of the session it
 * leads: a Bazel server daemonizes into a session of its own, and its actions run in it. Synchronous,
 * /proc only: for an agent that lost its volume, whose thread pool may be stuck on that very volume.
 */
export function killNow(proc: ProcessRef): boolean {
  try {
    if (startTimeOf(proc.pid, readFileSync(`/proc/${proc.pid}/stat`, 'latin1')) !== proc.startTime) return false;
    process.kill(proc.pid, 'SIGKILL');
  } catch {
    return false; // gone already
  }
  for (const [pid, stat] of processStats()) {
    if (pid !== proc.pid && stat[3] === String(proc.pid)) signalQuietly(pid); // field 6, session
  }
  return true;
}

/** Every process's /proc/<pid>/stat fields from field 3 (state) on. */
function processStats(): Map<number, string[]> {
  const stats = new Map<number, string[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      stats.set(Number(name), statFields(stat));
    } catch {
      // gone meanwhile
    }
  }
  return stats;
}

function signalQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

/**
 * SIGKILLs every descendant of this process now: its rsyncs, Bazel clients and `bazel run` process
 * groups (a daemonized Bazel server is not one: killNow that). Synchronous, /proc only, like killNow.
 */
export function killDescendantsNow(): number[] {
  const parentOf = new Map([...processStats()].map(([pid, stat]) => [pid, Number(stat[1])])); // field 4, ppid
  const family = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, parent] of parentOf) {
      if (family.has(pid) || !family.has(parent)) continue;
      family.add(pid);
      grew = true;
    }
  }
  family.delete(process.pid);
  family.forEach(signalQuietly);
  return [...family];
}
