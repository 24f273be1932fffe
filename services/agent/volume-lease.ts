/**
 * Fencing on the volume: at most one agent acts on a session volume. Kubernetes cannot promise
 * that. A pod on a node that stopped answering is deleted without its kubelet's word, and it may
 * still run, and still reach the volume, while its successor starts elsewhere. Two Bazel servers
 * on one output base would corrupt it.
 *
 * The lease is one file on the volume, naming its holder's claim. Only an agent taking the volume
 * writes it, whole (rename); the holder only reads it, opening it afresh each time, which NFS
 * revalidates (close-to-open), so nothing the holder does can bury a successor's claim.
 * - The holder reads it every `checkMs`. If it names anyone else, the holder has lost the volume.
 * - A holder that has not confirmed its claim for `leaseMs` (the volume not answering) has lost it too.
 * - A newer agent writes its claim, then waits out the longer lease of the two plus one check. By
 *   then the old holder has either read the new claim or passed its own deadline.
 * - Generations order agents. The control plane stamps each agent it starts, so a restarted
 *   container of a replaced pod is never newer than its replacement, and never takes the volume back.
 */
import { randomUUID } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_AGENT_LEASE_MS, MAX_AGENT_LEASE_MS, leaseCheckIntervalMs, takeoverWaitMs } from '../../lib/agent-lease';
import { installFile } from '../../lib/files';
import { runningProcess } from './bazel-process';

/** The lease file, in the volume's root. */
export const LEASE_FILE = 'agent-lease.json';
/** Generations are the control plane's clock in milliseconds: one from further ahead is forged. */
const MAX_GENERATION_AHEAD_MS = 24 * 3600_000;
const MAX_LEASE_BYTES = 4096;
const WATCHDOG_MS = 100;
const TAKE_ATTEMPTS = 5;
/** How a build can shape the file (a directory, a FIFO, a socket, a link): never an I/O fault. */
const HOSTILE_SHAPES = new Set(['ELOOP', 'EISDIR', 'EAGAIN', 'EWOULDBLOCK', 'ENXIO', 'ENODEV']);

/** Where a holder runs: a dead holder in this pid namespace need not be waited out. */
interface HolderProcess {
  host: string;
  bootId: string;
  pidNamespace: string;
  pid: number;
  startTime: string;
}

export interface LeaseContent {
  claim: string;
  generation: number;
  leaseMs: number;
  startedAtMs: number;
  process: HolderProcess;
}

export interface LeaseOptions {
  /** The lease file. */
  file: string;
  /** Stamped by the control plane when it started this agent: a later start has a larger one. */
  generation: number;
  leaseMs?: number;
  log?: (message: string) => void;
  /** Ends a wait for the previous holder (the agent was asked to stop meanwhile). */
  signal?: AbortSignal;
  /** How the holder reads its claim back: tests stand in a volume that stops answering. */
  read?: (file: string) => Promise<LeaseContent | null | 'unreadable'>;
}

/** This agent may not take the volume: a newer agent holds it, or took it over meanwhile. */
export class LeaseRefused extends Error {
  override name = 'LeaseRefused';
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
const isText = (value: unknown): value is string => typeof value === 'string' && value.length <= 256;
/** Claims become file names (release markers). */
const isClaim = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f-]{1,64}$/.test(value);

/**
 * The file's content if it is a well-formed lease, null if there is none, 'unreadable' if a build
 * made it something else. A fault of the volume itself throws.
 */
export async function readLease(file: string): Promise<LeaseContent | null | 'unreadable'> {
  let text: string;
  try {
    const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const { buffer, bytesRead } = await handle.read({ buffer: Buffer.alloc(MAX_LEASE_BYTES + 1) });
      if (bytesRead > MAX_LEASE_BYTES) return 'unreadable';
      text = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'ENOENT') return null;
    if (HOSTILE_SHAPES.has(code)) return 'unreadable';
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return wellFormed(JSON.parse(text)) ?? 'unreadable';
  } catch {
    return 'unreadable';
  }
}

function wellFormed(value: unknown): LeaseContent | null {
  if (!isRecord(value) || !isRecord(value.process)) return null;
  const { claim, generation, leaseMs, startedAtMs } = value;
  const { host, bootId, pidNamespace, pid, startTime } = value.process;
  const checks = [isClaim(claim), isCount(generation), isCount(leaseMs), isCount(startedAtMs)];
  checks.push(isText(host), isText(bootId), isText(pidNamespace), isCount(pid), isText(startTime));
  if (!checks.every(Boolean) || (generation as number) > Date.now() + MAX_GENERATION_AHEAD_MS) return null;
  return value as unknown as LeaseContent;
}

/** The mark of a claim its holder gave up cleanly: its successor need not wait. */
const releasedMark = (file: string, claim: string) => `${file}.released.${claim}`;
/**
 * The mark of a claim being replaced, created exclusively: of two agents that read the same claim,
 * only one replaces it on that reading. The other (a restarted container whose read was slow, say)
 * must wait the lease out, so a stale "free" can never make it serve at once over a newer claim.
 */
const takenMark = (file: string, claim: string) => `${file}.taken.${claim}`;

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

/** Where this process runs; a part /proc does not show is '' (and then no holder counts as dead here). */
async function thisProcess(): Promise<HolderProcess> {
  const [bootId, pidNamespace, self] = await Promise.all([
    fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
      (id) => id.trim(),
      () => '',
    ),
    fs.readlink('/proc/self/ns/pid').catch(() => ''),
    runningProcess(process.pid),
  ]);
  return { host: os.hostname(), bootId, pidNamespace, pid: process.pid, startTime: self?.startTime ?? '' };
}

/** Certainly dead: it ran where this process runs (same boot, same pid namespace) and runs no more. */
async function isDeadHere(holder: HolderProcess, here: HolderProcess): Promise<boolean> {
  if (!here.bootId || !here.pidNamespace || !holder.startTime) return false;
  if (holder.bootId !== here.bootId || holder.pidNamespace !== here.pidNamespace) return false;
  return (await runningProcess(holder.pid))?.startTime !== holder.startTime;
}

function describe(lease: LeaseContent): string {
  const { generation, startedAtMs, process: p } = lease;
  return `agent generation ${generation} (pid ${p.pid} on ${p.host}, started ${new Date(startedAtMs).toISOString()})`;
}

/** Resolves after `ms`, or early when `signal` aborts. Its timer keeps no process alive. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms).unref();
    signal?.addEventListener('abort', done);
  });
}

/** Creates `file` exclusively; false if it exists. */
async function createMark(file: string): Promise<boolean> {
  return fs.writeFile(file, '', { flag: 'wx' }).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return false;
      throw err;
    },
  );
}

export class VolumeLease {
  /** Resolves, once, with why this agent no longer holds the volume. Never rejects. */
  readonly lost: Promise<string>;
  private markLost!: (why: string) => void;
  private why: string | undefined;
  private lastConfirmed: number;
  private readonly closing = new AbortController();
  private readonly checkMs: number;
  private readonly leaseMs: number;
  private readonly watchdog: NodeJS.Timeout;
  private readonly loop: Promise<void>;

  /** `claimedAt`: when this agent started writing its claim, the lease's first confirmation. */
  private constructor(
    private readonly options: LeaseOptions,
    private readonly mine: LeaseContent,
    claimedAt: number,
  ) {
    this.leaseMs = mine.leaseMs;
    this.checkMs = leaseCheckIntervalMs(this.leaseMs);
    this.lost = new Promise((resolve) => (this.markLost = resolve));
    this.lastConfirmed = claimedAt;
    // On timers alone: a volume that does not answer blocks reads, never this.
    this.watchdog = setInterval(() => {
      const since = Math.round(performance.now() - this.lastConfirmed);
      if (since > this.leaseMs)
        this.lose(`this agent could not confirm its lease on the volume for ${since} ms (more than ${this.leaseMs} ms): the volume does not answer`);
    }, WATCHDOG_MS);
    this.loop = this.checkLoop();
  }

  /**
   * Takes the volume for this agent: at once if it is free, released, this agent's own
   * generation's, or held by a process that is certainly dead; else after waiting the holder out.
   * Throws LeaseRefused if a newer agent holds it or takes it over meanwhile; a volume fault throws.
   */
  static async take(options: LeaseOptions): Promise<VolumeLease> {
    const { file, generation, log = () => undefined, signal } = options;
    const here = await thisProcess();
    for (let attempt = 1; attempt <= TAKE_ATTEMPTS; attempt++) {
      if (signal?.aborted) break;
      const current = await readLease(file);
      const held = current !== null && current !== 'unreadable';
      if (held && current.generation > generation) {
        throw new LeaseRefused(`the volume belongs to a newer ${describe(current)}; this agent is generation ${generation} and never takes it back`);
      }
      let free =
        current === null ||
        (held && (current.generation === generation || (await exists(releasedMark(file, current.claim))) || (await isDeadHere(current.process, here))));
      if (held && !(await createMark(takenMark(file, current.claim)))) {
        const now = await readLease(file);
        if (now === 'unreadable' || now?.claim !== current.claim) continue; // taken meanwhile: decide again
        free = false; // another agent is replacing it, or died doing so: wait the lease out whatever it read
      }
      // Whatever a build made of the path (a directory, a FIFO) goes: RBS owns the volume's root.
      if (current === 'unreadable') await fs.rm(file, { recursive: true, force: true });
      const leaseMs = options.leaseMs ?? DEFAULT_AGENT_LEASE_MS;
      const mine: LeaseContent = { claim: randomUUID(), generation, leaseMs, startedAtMs: Date.now(), process: here };
      const claimedAt = performance.now();
      // Where there was no lease, the claim is created exclusively: of two first agents, one gets it.
      if (!(await installFile(file, JSON.stringify(mine), 0o644, held))) continue;
      await removeMarks(file, held ? current.claim : undefined);
      const lease = new VolumeLease(options, mine, claimedAt);
      if (free || current === null) return lease;
      const holderMs = current === 'unreadable' ? 0 : Math.min(current.leaseMs, MAX_AGENT_LEASE_MS);
      const waitMs = takeoverWaitMs(Math.max(leaseMs, holderMs));
      const holder = current === 'unreadable' ? `an unreadable ${file}` : describe(current);
      log(`taking the volume over from ${holder}: waiting ${waitMs} ms for it to stop before serving`);
      const why = await Promise.race([lease.lost, pause(waitMs, signal).then(() => undefined)]);
      if (why === undefined && !signal?.aborted) return lease;
      await lease.close();
      throw new LeaseRefused(why ?? 'asked to stop while waiting for the volume');
    }
    if (signal?.aborted) throw new LeaseRefused('asked to stop before taking the volume');
    throw new Error(`could not take ${file} in ${TAKE_ATTEMPTS} attempts: it keeps changing hands`);
  }

  /** Stops checking, and marks the claim released if the file still names it, so a successor need not wait. */
  async release(): Promise<void> {
    await this.close();
    if (this.why !== undefined) return;
    const { file } = this.options;
    const mark = async () => {
      const current = await readLease(file);
      if (current !== null && current !== 'unreadable' && current.claim === this.mine.claim) {
        await fs.writeFile(releasedMark(file, this.mine.claim), '', { flag: 'wx' });
      }
    };
    // Bounded: a volume that does not answer must not hold up the agent's exit.
    await Promise.race([mark().catch(() => undefined), pause(this.leaseMs)]);
  }

  private async close(): Promise<void> {
    clearInterval(this.watchdog);
    this.closing.abort();
    await Promise.race([this.loop, pause(this.leaseMs)]); // its read may hang on the volume
  }

  private lose(why: string): void {
    if (this.why !== undefined) return;
    this.why = why;
    clearInterval(this.watchdog);
    this.closing.abort();
    this.markLost(why);
  }

  private async checkLoop(): Promise<void> {
    const { file, read = readLease, log } = this.options;
    const stopped = this.closing.signal;
    while (!stopped.aborted) {
      await pause(this.checkMs, stopped);
      if (stopped.aborted) return;
      const started = performance.now();
      try {
        const current = await read(file);
        if (stopped.aborted) return;
        if (current !== null && current !== 'unreadable' && current.claim === this.mine.claim) {
          this.lastConfirmed = started;
          continue;
        }
        const by =
          current === null ? 'the lease file was removed' : current === 'unreadable' ? 'the lease file was overwritten' : `${describe(current)} took it over`;
        return this.lose(`this agent no longer holds the volume: ${by}`);
      } catch (err) {
        log?.(`could not read the lease on the volume: ${(err as Error).message}`); // the watchdog decides
      }
    }
  }
}

/**
 * Marks of claims this one superseded: all of them but the taken mark of the claim it replaced,
 * which still turns away an agent that read that claim before this one replaced it.
 */
async function removeMarks(file: string, replaced: string | undefined): Promise<void> {
  const base = path.basename(file);
  const keep = replaced === undefined ? undefined : path.basename(takenMark(file, replaced));
  const names = await fs.readdir(path.dirname(file)).catch(() => [] as string[]);
  const stale = names.filter((name) => (name.startsWith(`${base}.released.`) || name.startsWith(`${base}.taken.`)) && name !== keep);
  await Promise.all(stale.map((name) => fs.rm(path.join(path.dirname(file), name), { recursive: true, force: true })));
}
