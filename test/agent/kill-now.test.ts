/**
 * killNow (services/agent/bazel-process.ts), what a fenced agent does to its Bazel server: at once,
 * with what runs in the server's session (its actions), and never to a recycled pid.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { killNow, runningProcess } from '../../services/agent/bazel-process';
import { statFields } from '../../lib/proc-stat';
import { waitFor } from '../harness/wait';

/** Fields of /proc/<pid>/stat from field 3 (state) on, or undefined once it is gone. */
function statOf(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return statFields(stat);
  } catch {
    return undefined;
  }
}

const alive = (pid: number) => ![undefined, 'Z'].includes(statOf(pid)?.[0]);

/** The pids of the processes in the session `leader` leads, other than it (field 6, session). */
const sessionMembers = (leader: number) =>
  fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name) && Number(name) !== leader && statOf(Number(name))?.[3] === String(leader))
    .map(Number);

test('kills the process and every process of the session it leads, as a daemonized Bazel server and its actions', async () => {
  // A session of its own, as Bazel's server has, with an "action" in it.
  const leader = spawn('setsid', ['sh', '-c', 'sleep 300 & exec sleep 301'], { stdio: 'ignore' });
  await waitFor(() => sessionMembers(leader.pid!).length === 1, 5000, 'the action to start');
  const [action] = sessionMembers(leader.pid!);
  const proc = (await runningProcess(leader.pid!))!;
  expect(killNow(proc)).toBe(true);
  await waitFor(() => !alive(action) && leader.signalCode !== null, 5000, 'both to die');
  expect(leader.signalCode).toBe('SIGKILL');
});

test('a process that is gone, or whose pid now names another process, is left alone', async () => {
  const bystander = spawn('sleep', ['300'], { stdio: 'ignore' });
  try {
    const proc = (await runningProcess(bystander.pid!))!;
    expect(killNow({ ...proc, startTime: String(Number(proc.startTime) - 1) })).toBe(false); // a recycled pid
    expect(alive(bystander.pid!)).toBe(true);
    expect(killNow({ pid: 2 ** 22 + 1, startTime: '1' })).toBe(false);
  } finally {
    bystander.kill('SIGKILL');
  }
});
