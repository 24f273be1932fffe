/**
 * The volume lease (services/agent/volume-lease.ts) on a real directory, with real processes as
 * holders: who takes the volume at once, who waits, who is refused, and how a holder learns it lost.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { processStartTime } from '../../lib/bazel/server-files';
import { LEASE_FILE, LeaseRefused, VolumeLease, readLease } from '../../services/agent/volume-lease';

const LEASE_MS = 1000;
/** The wait of a takeover: the lease and one renewal (a fifth of it). */
const TAKEOVER_MS = LEASE_MS * 1.2;

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

async function take(generation: number, log?: (message: string) => void): Promise<{ lease: VolumeLease; ms: number }> {
  const started = performance.now();
  const lease = await VolumeLease.take({ file, generation, leaseMs: LEASE_MS, log });
  held.push(lease);
  return { lease, ms: performance.now() - started };
}

/** A lease file as a holder elsewhere would have written it. */
function writeHolder(fields: Record<string, unknown>, processFields: Record<string, unknown> = {}): void {
  const here = { host: 'elsewhere', bootId: 'another-boot', pidNamespace: 'pid:[1]', pid: 1, startTime: '1' };
  const lease = { claim: 'theirs', generation: 1, startedAtMs: 0, beat: 3, released: false, process: { ...here, ...processFields }, ...fields };
  fs.writeFileSync(file, JSON.stringify(lease));
}

const settled = async <T>(promise: Promise<T>, ms: number) => Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve('pending'), ms))]);

test('a fresh volume is taken at once, and so is one its last holder released', async () => {
  const first = await take(1);
  expect(first.ms).toBeLessThan(TAKEOVER_MS / 2);
  await first.lease.release();
  expect(await readLease(file)).toMatchObject({ generation: 1, released: true });
  const second = await take(2);
  expect(second.ms).toBeLessThan(TAKEOVER_MS / 2);
  expect(await settled(first.lease.lost, 0)).toBe('pending'); // a release is no loss
});

test('a newer agent takes the volume from a live holder only after waiting it out; the holder knows it lost well before', async () => {
  const old = await take(1);
  const messages: string[] = [];
  let lostAt = 0;
  void old.lease.lost.then(() => (lostAt = performance.now()));
  const started = performance.now();
  const newer = await take(2, (message) => messages.push(message));
  expect(newer.ms).toBeGreaterThanOrEqual(TAKEOVER_MS);
  expect(messages).toEqual([expect.stringMatching(/^taking the volume over from agent generation 1 \(pid \d+ on .+\): waiting 1200 ms/)]);
  expect(await old.lease.lost).toMatch(/no longer holds the volume: agent generation 2 .* took it over/);
  // Within one renewal and a read of the claim, never as late as the newer agent starts serving.
  expect(lostAt - started).toBeLessThan(LEASE_MS / 5 + 150);
  expect(await readLease(file)).toMatchObject({ generation: 2, released: false });
  await old.lease.release(); // a holder that lost writes nothing more
  expect(await readLease(file)).toMatchObject({ generation: 2, released: false });
  await new Promise((resolve) => setTimeout(resolve, LEASE_MS));
  expect(await settled(newer.lease.lost, 0)).toBe('pending');
  expect((await readLease(file)) as { beat: number }).toMatchObject({ beat: expect.any(Number) });
});

test('an older agent never takes the volume back, held or released (a replaced pod restarted on a node that was cut off)', async () => {
  const newer = await take(5);
  await expect(take(4)).rejects.toThrow(/belongs to a newer agent generation 5 .*this agent is generation 4 and never takes it back/);
  await newer.lease.release();
  await expect(take(4)).rejects.toBeInstanceOf(LeaseRefused);
  expect(await readLease(file)).toMatchObject({ generation: 5, released: true });
});

test('a restarted agent of the same generation (its container restarted in place) takes its lease back at once', async () => {
  writeHolder({ generation: 7 });
  const restarted = await take(7);
  expect(restarted.ms).toBeLessThan(TAKEOVER_MS / 2);
});

test('a holder that died on this host is not waited out; one alive here, or on another host, is', async () => {
  await take(1);
  const here = (await readLease(file)) as unknown as { process: Record<string, unknown> };
  await held.pop()!.release();
  const child = spawn('sleep', ['30']);
  const startTime = await processStartTime(child.pid!);
  writeHolder({ generation: 1 }, { ...here.process, pid: child.pid, startTime });
  const waited = await take(2);
  expect(waited.ms).toBeGreaterThanOrEqual(TAKEOVER_MS);
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

test('hostile bytes in the lease file (a build can write the volume) are waited out like an unknown holder, then replaced', async () => {
  const cases: Array<[string, () => void]> = [
    ['garbage', () => fs.writeFileSync(file, '\u0000\u00ff{not json')],
    ['wrong types', () => writeHolder({ generation: 'ten', beat: -1 })],
    ['a huge file', () => fs.writeFileSync(file, `{"claim":"${'x'.repeat(1 << 20)}"}`)],
    ['a symbolic link to a file elsewhere', () => fs.symlinkSync(path.join(dir, 'elsewhere'), file)],
    ['a FIFO', () => execFileSync('mkfifo', [file])],
  ];
  fs.writeFileSync(path.join(dir, 'elsewhere'), 'keep me');
  let generation = 10;
  for (const [what, plant] of cases) {
    fs.rmSync(file, { force: true });
    plant();
    const messages: string[] = [];
    const taken = await take(++generation, (message) => messages.push(message));
    expect([what, taken.ms >= TAKEOVER_MS]).toEqual([what, true]);
    expect(messages).toEqual([expect.stringContaining(`taking the volume over from an unreadable ${file}`)]);
    expect(await readLease(file)).toMatchObject({ generation });
    await held.pop()!.release();
  }
  expect(fs.readFileSync(path.join(dir, 'elsewhere'), 'utf8')).toBe('keep me');
});

test('a holder whose lease file is removed or overwritten stops at its next renewal', async () => {
  const a = await take(1);
  fs.rmSync(file);
  expect(await a.lease.lost).toMatch(/no longer holds the volume: the lease file was removed/);
  const b = await take(2);
  fs.writeFileSync(file, 'overwritten');
  expect(await b.lease.lost).toMatch(/no longer holds the volume: the lease file was overwritten/);
});

test('a holder whose volume stops answering gives it up once its lease has lapsed, before any successor would serve', async () => {
  let hang = false;
  const started = performance.now();
  const lease = await VolumeLease.take({
    file,
    generation: 1,
    leaseMs: LEASE_MS,
    write: async (target, content) => {
      if (hang) return new Promise(() => undefined); // an NFS server that went away: the write never returns
      fs.writeFileSync(target, content);
    },
  });
  held.push(lease);
  await new Promise((resolve) => setTimeout(resolve, LEASE_MS));
  expect(await settled(lease.lost, 0)).toBe('pending'); // renewing fine so far
  hang = true;
  const hungAt = performance.now();
  expect(await lease.lost).toMatch(/^the lease on the volume was not renewed for \d+ ms \(more than 1000 ms\): the volume does not answer$/);
  const lostAt = performance.now();
  expect(lostAt - hungAt).toBeLessThanOrEqual(LEASE_MS + 200);
  expect(lostAt - started).toBeGreaterThan(LEASE_MS);
});
