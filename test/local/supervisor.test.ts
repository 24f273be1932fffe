/**
 * The local stack's supervisor: a process that dies is started again, as Kubernetes would restart
 * it; one stopped on purpose is not; one that keeps dying is given up on, saying why.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Child, startChild } from '../../lib/local/child';
import { type Supervised, supervise } from '../../lib/local/supervisor';
import { waitFor } from '../harness/wait';

let dir: string;
/** Stopped after each test, also one that failed half-way. */
let service: Supervised | undefined;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-supervisor-'))));
afterEach(async () => {
  await service?.stop();
  service = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

const sleeper = (): Promise<Child> => Promise.resolve(startChild('sleeper', 'sleep', ['600'], { logFile: path.join(dir, 'sleeper.log') }));
const alive = (pid: number) => {
  try {
    return process.kill(pid, 0);
  } catch {
    return false;
  }
};

test('a process that dies is started again after a back-off; one stopped on purpose stays stopped', async () => {
  const log: string[] = [];
  service = await supervise('sleeper', sleeper, { log: (m) => log.push(m), firstBackoffMs: 50 });
  const first = service!.current().process.pid!;
  process.kill(first, 'SIGKILL');
  await waitFor(() => service!.current().process.pid !== first, 5_000, 'a new sleeper');
  const second = service!.current().process.pid!;
  expect(alive(second)).toBe(true);
  expect(log).toEqual(['sleeper exited (SIGKILL): restarting it in 50 ms', `sleeper restarted (pid ${second})`]);

  await service!.stop();
  expect(alive(second)).toBe(false);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(service!.current().process.pid).toBe(second);
  expect(service!.failed()).toBeNull();
});

test('one that keeps dying is given up on after five exits, with its exit and its log', async () => {
  const log: string[] = [];
  const crasher = () => Promise.resolve(startChild('crasher', 'sh', ['-c', 'echo out of disk; exit 3'], { logFile: path.join(dir, 'crasher.log') }));
  service = await supervise('crasher', crasher, { log: (m) => log.push(m), firstBackoffMs: 10 });
  const why = await service!.givenUp;
  expect(why).toMatch(/^crasher exited \(code 3\), the 5th time within 120 s: not restarted again\n(.|\n)*out of disk/);
  expect(service!.failed()).toBe(why);
  // Backing off: 10, 20, 40, 80 ms between the five starts.
  expect(log.filter((m) => m.includes('restarting it in')).map((m) => /in (\d+) ms/.exec(m)![1])).toEqual(['10', '20', '40', '80']);
  await service!.stop();
});

test('a restart that fails counts as one more exit and is tried again', async () => {
  const log: string[] = [];
  let starts = 0;
  const flaky = () => (++starts === 2 ? Promise.reject(new Error('port 4242 in use')) : sleeper());
  service = await supervise('sleeper', flaky, { log: (m) => log.push(m), firstBackoffMs: 10 });
  process.kill(service!.current().process.pid!, 'SIGKILL');
  await waitFor(() => starts === 3 && alive(service!.current().process.pid!), 5_000, 'the third start');
  expect(log).toEqual([
    'sleeper exited (SIGKILL): restarting it in 10 ms',
    'sleeper did not restart: port 4242 in use: restarting it in 20 ms',
    `sleeper restarted (pid ${service!.current().process.pid})`,
  ]);
  await service!.stop();
});

test('a first start that fails fails the caller: nothing is left supervised', async () => {
  await expect(supervise('broken', () => Promise.reject(new Error('no such binary')), { log: () => undefined })).rejects.toThrow('no such binary');
});
