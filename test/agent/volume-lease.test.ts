/**
 * The volume lease (services/agent/volume-lease.ts) on a real directory, with real processes as
 * holders: who takes the volume at once, who waits, who is refused, and how a holder learns it lost.
 */
import { takeoverWaitMs } from '../../lib/agent-lease';
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { processStartTime } from '../../lib/bazel/server-files';
import { LEASE_FILE, LeaseRefused, VolumeLease, readLease } from '../../services/agent/volume-lease';

const LEASE_MS = 1000;
/** The wait of a takeover: the lease and one check (a tenth of it). */
const TAKEOVER_MS = LEASE_MS * 1.1;

let dir: string;
let file: string;
const held: VolumeLease[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-lease-'));
  file = path.join(dir, LEASE_FILE);
});

afterEach(async () => {
  await Promise.all(held.splice(0).map((lease) => lease.release()));
  fs.rmSync(dir, { recursive: true, force: true });
});

async function take(generation: number, options: { log?: (message: string) => void; leaseMs?: number } = {}) {
  const started = performance.now();
  const lease = await VolumeLease.take({ file, generation, leaseMs: LEASE_MS, ...options });
  held.push(lease);
  return { lease, ms: performance.now() - started };
}

/** A lease file as a holder elsewhere would have written it. */
function writeHolder(fields: Record<string, unknown>, processFields: Record<string, unknown> = {}): void {
  const elsewhere = { host: 'elsewhere', bootId: 'another-boot', pidNamespace: 'pid:[1]', pid: 1, startTime: '1' };
  const lease = { claim: randomUUID(), generation: 1, leaseMs: LEASE_MS, startedAtMs: 0, process: { ...elsewhere, ...processFields }, ...fields };
  fs.writeFileSync(file, JSON.stringify(lease));
}

const settled = async <T>(promise: Promise<T>, ms: number) => Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve('pending'), ms))]);

test('a fresh volume is taken at once, and so is one its last holder released', async () => {
  const first = await take(1);
  expect(first.ms).toBeLessThan(TAKEOVER_MS / 2);
  const { claim } = (await readLease(file)) as { claim: string };
  await first.lease.release();
  expect(fs.readdirSync(dir).sort()).toEqual([LEASE_FILE, `${LEASE_FILE}.released.${claim}`]);
  const second = await take(2);
  expect(second.ms).toBeLessThan(TAKEOVER_MS / 2);
  // The release mark has done its work; the taken mark turns away anyone who read the first claim too late.
  expect(fs.readdirSync(dir).sort()).toEqual([LEASE_FILE, `${LEASE_FILE}.taken.${claim}`]);
  expect(await settled(first.lease.lost, 0)).toBe('pending'); // a release is no loss
});

test('a newer agent takes the volume from a live holder only after waiting it out; the holder knows it lost well before', async () => {
  const old = await take(1);
  const messages: string[] = [];
  let lostAt = Infinity;
  void old.lease.lost.then(() => (lostAt = performance.now()));
  const newer = await take(2, { log: (message) => messages.push(message) });
  const servingAt = performance.now();
  expect(newer.ms).toBeGreaterThanOrEqual(TAKEOVER_MS);
  expect(messages).toEqual([expect.stringMatching(/^taking the volume over from agent generation 1 \(pid \d+ on .+\): waiting 1100 ms/)]);
  expect(await old.lease.lost).toMatch(/no longer holds the volume: agent generation 2 .* took it over/);
  expect(lostAt).toBeLessThan(servingAt);
  await old.lease.release(); // a holder that lost writes nothing more
  expect(await readLease(file)).toMatchObject({ generation: 2 });
  expect(fs.readdirSync(dir).filter((name) => name.includes('.released.'))).toEqual([]);
  await new Promise((resolve) => setTimeout(resolve, 2 * LEASE_MS));
  expect(await settled(newer.lease.lost, 0)).toBe('pending');
});

test('the successor waits out the longer of the two leases: the holder may be slower to notice than the successor would be', async () => {
  writeHolder({ leaseMs: 3 * LEASE_MS });
  expect((await take(2)).ms).toBeGreaterThanOrEqual(takeoverWaitMs(3 * LEASE_MS));
});

test('an older agent never takes the volume back, held or released (a replaced pod restarted on a node that was cut off)', async () => {
  const newer = await take(5);
  await expect(take(4)).rejects.toThrow(/belongs to a newer agent generation 5 .*this agent is generation 4 and never takes it back/);
  await newer.lease.release();
  await expect(take(4)).rejects.toBeInstanceOf(LeaseRefused);
  expect(await readLease(file)).toMatchObject({ generation: 5 });
});

test('a restarted agent of the same generation (its container restarted in place) takes its lease back at once', async () => {
  writeHolder({ generation: 7 });
  expect((await take(7)).ms).toBeLessThan(TAKEOVER_MS / 2);
});

test('a holder that died on this host is not waited out; one alive here, or on another host, is', async () => {
  await take(1);
  const here = (await readLease(file)) as unknown as { process: Record<string, unknown> };
  await held.pop()!.release();
  const child = spawn('sleep', ['30']);
  const startTime = await processStartTime(child.pid!);
  writeHolder({ generation: 1 }, { ...here.process, pid: child.pid, startTime });
  expect((await take(2)).ms).toBeGreaterThanOrEqual(TAKEOVER_MS);
  await held.pop()!.release();

  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  writeHolder({ generation: 2 }, { ...here.process, pid: child.pid, startTime });
  expect((await take(3)).ms).toBeLessThan(TAKEOVER_MS / 2);
  await held.pop()!.release();

  writeHolder({ generation: 3 }, { pid: child.pid, startTime }); // dead here, but that pid is another host's
  expect((await take(4)).ms).toBeGreaterThanOrEqual(TAKEOVER_MS);
});

test('hostile bytes or shapes at the lease path (a build can write the volume) are waited out like an unknown holder, then replaced', async () => {
  fs.writeFileSync(path.join(dir, 'elsewhere'), 'keep me');
  const cases: Array<[string, () => void]> = [
    ['garbage', () => fs.writeFileSync(file, '\u0000\u00ff{not json')],
    ['wrong types', () => writeHolder({ generation: 'ten', leaseMs: -1 })],
    ['a claim that is no file name', () => writeHolder({ claim: '../../etc' })],
    ['a generation from the far future, which would lock every real agent out', () => writeHolder({ generation: Date.now() + 48 * 3600_000 })],
    ['a huge file', () => fs.writeFileSync(file, `{"claim":"${'x'.repeat(1 << 20)}"}`)],
    ['a symbolic link to a file elsewhere', () => fs.symlinkSync(path.join(dir, 'elsewhere'), file)],
    ['a FIFO', () => execFileSync('mkfifo', [file])],
    ['a directory', () => fs.mkdirSync(path.join(file, 'deep'), { recursive: true })],
    ['a socket', () => void net.createServer().listen(file).unref()],
  ];
  let generation = 10;
  for (const [what, plant] of cases) {
    plant();
    await new Promise((resolve) => setTimeout(resolve, 20)); // the socket binds
    const messages: string[] = [];
    const taken = await take(++generation, { log: (message) => messages.push(message) });
    expect([what, taken.ms >= TAKEOVER_MS]).toEqual([what, true]);
    expect([what, messages]).toEqual([what, [expect.stringContaining(`taking the volume over from an unreadable ${file}`)]]);
    expect(await readLease(file)).toMatchObject({ generation });
    await held.pop()!.release();
    fs.rmSync(file, { force: true });
  }
  expect(fs.readFileSync(path.join(dir, 'elsewhere'), 'utf8')).toBe('keep me');
});

test('a holder whose lease file is removed or overwritten stops at its next check', async () => {
  const a = await take(1);
  fs.rmSync(file);
  expect(await a.lease.lost).toMatch(/no longer holds the volume: the lease file was removed/);
  const b = await take(2);
  fs.writeFileSync(file, 'overwritten');
  expect(await b.lease.lost).toMatch(/no longer holds the volume: the lease file was overwritten/);
});

test('a holder whose volume stops answering gives it up once its lease has lapsed, before any successor would serve', async () => {
  let hang = false;
  const lease = await VolumeLease.take({
    file,
    generation: 1,
    leaseMs: LEASE_MS,
    // An NFS server that went away: the read never returns.
    read: (target) => (hang ? new Promise(() => undefined) : readLease(target)),
  });
  held.push(lease);
  await new Promise((resolve) => setTimeout(resolve, 2 * LEASE_MS));
  expect(await settled(lease.lost, 0)).toBe('pending'); // confirming fine so far
  hang = true;
  const hungAt = performance.now();
  expect(await lease.lost).toMatch(/^this agent could not confirm its lease on the volume for \d+ ms \(more than 1000 ms\): the volume does not answer$/);
  const lostAfter = performance.now() - hungAt;
  expect(lostAfter).toBeGreaterThan(LEASE_MS - LEASE_MS / 10);
  expect(lostAfter).toBeLessThan(TAKEOVER_MS + 1000);
});

test('a read that fails (an I/O fault, not a hostile file) is no takeover: the holder keeps its lease while reads recover', async () => {
  let failures = 3;
  const messages: string[] = [];
  const lease = await VolumeLease.take({
    file,
    generation: 1,
    leaseMs: LEASE_MS,
    log: (message) => messages.push(message),
    read: (target) => (failures-- > 0 ? Promise.reject(new Error('EIO')) : readLease(target)),
  });
  held.push(lease);
  await new Promise((resolve) => setTimeout(resolve, 2 * LEASE_MS));
  expect(await settled(lease.lost, 0)).toBe('pending');
  expect(messages).toEqual(Array(3).fill('could not read the lease on the volume: EIO'));
});

test('an agent asked to stop while it waits out a holder stops waiting at once, and never serves', async () => {
  writeHolder({ generation: 1, leaseMs: 60_000 });
  const stopping = new AbortController();
  const started = performance.now();
  const taking = VolumeLease.take({ file, generation: 2, leaseMs: LEASE_MS, signal: stopping.signal });
  setTimeout(() => stopping.abort(), 200);
  await expect(taking).rejects.toThrow('asked to stop while waiting for the volume');
  expect(performance.now() - started).toBeLessThan(2000);
});

test('two agents that read the same claim at once: one replaces it, the other waits; never do both hold the volume', async () => {
  const first = await take(1);
  await first.lease.release();
  held.length = 0;
  const [a, b] = await Promise.allSettled([take(2), take(3)]);
  await new Promise((resolve) => setTimeout(resolve, LEASE_MS / 2));
  const holders = [a, b].flatMap((r) => (r.status === 'fulfilled' ? [r.value.lease] : []));
  const still = [];
  for (const lease of holders) if ((await settled(lease.lost, 0)) === 'pending') still.push(lease);
  expect(still).toHaveLength(1);
  // Whoever lost the race to the taken mark waited the lease out, whatever it had read.
  const times = [a, b].flatMap((r) => (r.status === 'fulfilled' ? [r.value.ms] : []));
  expect(times.filter((ms) => ms < TAKEOVER_MS / 2).length).toBeLessThanOrEqual(1);
});

test('an agent asked to stop before it takes the volume writes no claim', async () => {
  writeHolder({ generation: 1 });
  const before = fs.readFileSync(file, 'utf8');
  const stopping = new AbortController();
  stopping.abort();
  await expect(VolumeLease.take({ file, generation: 2, leaseMs: LEASE_MS, signal: stopping.signal })).rejects.toThrow('asked to stop before taking the volume');
  expect(fs.readFileSync(file, 'utf8')).toBe(before);
});
