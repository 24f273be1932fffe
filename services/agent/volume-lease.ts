/**
 * Fencing on the volume: at most one agent acts on a session volume. Kubernetes cannot promise
 * that. A pod on a NotReady node is deleted without its kubelet's word, and it may still run,
 * and still reach the volume, while its successor starts elsewhere. Two Bazel servers on one
 * output base would corrupt it.
 *
 * The lease is one file on the volume, naming its holder's claim. It is only ever replaced whole
 * (rename), and read by opening it afresh, which NFS revalidates (close-to-open).
 * - The holder re-reads it every `renewMs`. If it names anyone else, the holder has lost the volume.
 * - The holder rewrites it only right after reading its own claim.
 * - A holder that has not renewed for `leaseMs` (the volume not answering, the agent frozen)
 *   counts the volume as lost too.
 * - A newer agent takes the lease by writing its claim, then waits out `leaseMs` plus one renewal.
 *   By then the old holder has either read the new claim or gone past its own deadline. Only
 *   then does the newer agent serve.
 * - Generations order agents. The control plane stamps each agent it starts, so a restarted
 *   container of a replaced pod is never newer than its replacement, and never takes the volume back.
 */
import { randomUUID } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import * as os from 'node:os';
import { installFile } from '../../lib/files';
import { runningProcess } from './bazel-process';

/** The lease file, in the volume's root. */
export const LEASE_FILE = 'agent-lease.json';
export const DEFAULT_LEASE_MS = 10_000;
const MAX_LEASE_BYTES = 4096;
const WATCHDOG_MS = 100;

/** Where a holder runs: a dead holder in this pid namespace need not be waited out. */
interface HolderProcess {
  host: string;
  bootId: string;
  pidNamespace: string;
  pid: number;
  startTime: string;
}

interface LeaseContent {
  claim: string;
  generation: number;
  startedAtMs: number;
  process: HolderProcess;
  beat: number;
  released: boolean;
}

export interface LeaseOptions {
  /** The lease file. */
  file: string;
  /** Stamped by the control plane when it started this agent: a later start has a larger one. */
  generation: number;
  leaseMs?: number;
  log?: (message: string) => void;
  /** How the file is written: tests stand in a volume that stops answering. */
  write?: (file: string, content: string) => Promise<void>;
}

async function writeLease(file: string, content: string): Promise<void> {
  await installFile(file, content, 0o644, true);
}

/** This agent may never take the volume: a newer agent holds it. */
export class LeaseRefused extends Error {
  override name = 'LeaseRefused';
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
const isText = (value: unknown): value is string => typeof value === 'string' && value.length <= 256;

/** The file's content if it is well formed, null if absent, 'unreadable' for anything else. */
export async function readLease(file: string): Promise<LeaseContent | null | 'unreadable'> {
  let text: string;
  try {
    // A build may put anything here, a symbolic link or a huge file included.
    const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const { buffer, bytesRead } = await handle.read({ buffer: Buffer.alloc(MAX_LEASE_BYTES + 1) });
      if (bytesRead > MAX_LEASE_BYTES) return 'unreadable';
      text = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return 'unreadable';
  }
  try {
    const value: unknown = JSON.parse(text);
    if (!isRecord(value) || !isRecord(value.process)) return 'unreadable';
    const { claim, generation, startedAtMs, beat, released } = value;
    const { host, bootId, pidNamespace, pid, startTime } = value.process;
    const fields = [isText(claim), isCount(generation), isCount(startedAtMs), isCount(beat), typeof released === 'boolean'];
    const where = [isText(host), isText(bootId), isText(pidNamespace), isCount(pid), isText(startTime)];
    if (![...fields, ...where].every(Boolean)) return 'unreadable';
    return value as unknown as LeaseContent;
  } catch {
    return 'unreadable';
  }
}

async function thisProcess(): Promise<HolderProcess> {
  const bootId = (await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  const pidNamespace = await fs.readlink('/proc/self/ns/pid');
  const self = await runningProcess(process.pid);
  if (!self) throw new Error('cannot read /proc/self/stat');
  return { host: os.hostname(), bootId, pidNamespace, pid: process.pid, startTime: self.startTime };
}

/** Certainly dead: it ran where this process runs (same boot, same pid namespace) and runs no more. */
async function isDeadHere(holder: HolderProcess, here: HolderProcess): Promise<boolean> {
  if (holder.bootId !== here.bootId || holder.pidNamespace !== here.pidNamespace) return false;
  return (await runningProcess(holder.pid))?.startTime !== holder.startTime;
}

function describe(lease: LeaseContent): string {
  const { generation, startedAtMs, process: p } = lease;
  return `agent generation ${generation} (pid ${p.pid} on ${p.host}, started ${new Date(startedAtMs).toISOString()})`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class VolumeLease {
  /** Resolves, once, with why this agent no longer holds the volume. Never rejects. */
  readonly lost: Promise<string>;
  private markLost!: (why: string) => void;
  private why: string | undefined;
  private lastRenewal: number;
  private stopped = false;
  /** Ends the renewal loop's current pause early. */
  private wake: () => void = () => undefined;
  private readonly renewMs: number;
  private readonly leaseMs: number;
  private readonly watchdog: NodeJS.Timeout;
  private readonly write: (file: string, content: string) => Promise<void>;
  private readonly loop: Promise<void>;

  private constructor(
    private readonly options: LeaseOptions,
    private readonly mine: LeaseContent,
  ) {
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.write = options.write ?? writeLease;
    this.renewMs = Math.max(10, Math.floor(this.leaseMs / 5));
    this.lost = new Promise((resolve) => (this.markLost = resolve));
    this.lastRenewal = performance.now();
    // On timers alone: a volume that does not answer blocks reads and writes, never this.
    this.watchdog = setInterval(() => {
      const since = Math.round(performance.now() - this.lastRenewal);
      if (since > this.leaseMs) this.lose(`the lease on the volume was not renewed for ${since} ms (more than ${this.leaseMs} ms): the volume does not answer`);
    }, WATCHDOG_MS);
    this.loop = this.renewLoop();
  }

  /**
   * Takes the volume for this agent: at once if it is free, released, this agent's own
   * generation's, or held by a process that is certainly dead; else after waiting the holder out.
   * Throws LeaseRefused if a newer agent holds it, or if the volume is taken over meanwhile.
   */
  static async take(options: LeaseOptions): Promise<VolumeLease> {
    const log = options.log ?? (() => undefined);
    const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    const here = await thisProcess();
    const current = await readLease(options.file);
    if (current !== null && current !== 'unreadable' && current.generation > options.generation) {
      throw new LeaseRefused(`the volume belongs to a newer ${describe(current)}; this agent is generation ${options.generation} and never takes it back`);
    }
    const free =
      current === null ||
      (current !== 'unreadable' && (current.released || current.generation === options.generation || (await isDeadHere(current.process, here))));
    const mine: LeaseContent = { claim: randomUUID(), generation: options.generation, startedAtMs: Date.now(), process: here, beat: 0, released: false };
    // A volume without a lease is created exclusively: of two first agents, one gets it.
    if (!(await installFile(options.file, JSON.stringify(mine), 0o644, current !== null))) return VolumeLease.take(options);
    const lease = new VolumeLease(options, mine);
    if (!free) {
      const holder = current === 'unreadable' ? `an unreadable ${options.file}` : describe(current);
      const waitMs = leaseMs + lease.renewMs;
      log(`taking the volume over from ${holder}: waiting ${waitMs} ms for it to stop before serving`);
      const why = await Promise.race([lease.lost, sleep(waitMs).then(() => undefined)]);
      if (why !== undefined) {
        await lease.close();
        throw new LeaseRefused(why);
      }
    }
    return lease;
  }

  /** Stops renewing. The file says released, if it still names this agent, so a successor need not wait. */
  async release(): Promise<void> {
    await this.close();
    if (this.why !== undefined) return;
    const current = await readLease(this.options.file);
    if (current !== null && current !== 'unreadable' && current.claim === this.mine.claim) {
      await this.write(this.options.file, JSON.stringify({ ...this.mine, released: true }));
    }
  }

  private async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watchdog);
    this.wake();
    if (this.why === undefined) await this.loop; // a lost lease's loop may hang on the volume
  }

  private lose(why: string): void {
    if (this.why !== undefined) return;
    this.why = why;
    this.stopped = true;
    clearInterval(this.watchdog);
    this.markLost(why);
  }

  private async renewLoop(): Promise<void> {
    let beat = 0;
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.renewMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (this.stopped) return;
      const started = performance.now();
      try {
        const current = await readLease(this.options.file);
        if (this.stopped) return;
        if (current === null || current === 'unreadable' || current.claim !== this.mine.claim) {
          const by =
            current === null ? 'the lease file was removed' : current === 'unreadable' ? 'the lease file was overwritten' : `${describe(current)} took it over`;
          return this.lose(`this agent no longer holds the volume: ${by}`);
        }
        // Written only close behind the read that found this claim, so a late write cannot bury a successor's.
        if (performance.now() - started > this.renewMs / 2) continue;
        await this.write(this.options.file, JSON.stringify({ ...this.mine, beat: ++beat }));
        if (!this.stopped) this.lastRenewal = started;
      } catch (err) {
        this.options.log?.(`could not renew the lease on the volume: ${(err as Error).message}`);
      }
    }
  }
}
