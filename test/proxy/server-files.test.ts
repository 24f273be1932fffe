import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeServerInfo, processStartTime, publishServer, unpublishServer } from '../../lib/bazel/server-files';

let dir: string;
const children: ChildProcess[] = [];
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-server-files-'))));
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A long sleep under an executable name of our choosing, which becomes its /proc comm. */
function sleeper(name: string): ChildProcess {
  const exe = path.join(dir, name);
  fs.copyFileSync('/bin/sleep', exe);
  fs.chmodSync(exe, 0o755);
  const child = spawn(exe, ['60'], { stdio: 'ignore' });
  children.push(child);
  return child;
}

describe('processStartTime', () => {
  it('is field 22 of /proc/<pid>/stat, as awk reads it', async () => {
    const child = sleeper('plain');
    const awk = execFileSync('awk', ['{print $22}', `/proc/${child.pid}/stat`], { encoding: 'utf8' }).trim();
    expect(await processStartTime(child.pid!)).toBe(awk);
  });

  it('counts fields after the command name, which may hold spaces and parentheses', async () => {
    const plain = sleeper('plain');
    const odd = sleeper('a b) c (d');
    expect(fs.readFileSync(`/proc/${odd.pid}/stat`, 'latin1')).toContain('(a b) c (d)');
    const [oddStart, plainStart] = [await processStartTime(odd.pid!), await processStartTime(plain.pid!)];
    // Started right after one another: within a second (100 ticks) of each other.
    expect(Math.abs(Number(oddStart) - Number(plainStart))).toBeLessThan(100);
  });

  it('names the process it cannot read', async () => {
    await expect(processStartTime(2 ** 30)).rejects.toThrow(`/proc/${2 ** 30}/stat`);
  });
});

describe('publishServer', () => {
  const server = { pid: process.pid, address: '127.0.0.1:4242', requestCookie: 'req', responseCookie: 'resp' };

  it('writes every file the client reads, with no temporary files left', async () => {
    await publishServer(dir, server);
    const serverDir = path.join(dir, 'server');
    const read = (name: string) => fs.readFileSync(path.join(serverDir, name), 'latin1');
    expect(fs.readdirSync(serverDir).sort()).toEqual([
      'command_port',
      'request_cookie',
      'response_cookie',
      'server.pid.txt',
      'server.starttime',
      'server_info.rawproto',
    ]);
    expect(read('command_port')).toBe('127.0.0.1:4242');
    expect(read('request_cookie')).toBe('req');
    expect(read('response_cookie')).toBe('resp');
    expect(read('server.pid.txt')).toBe(String(process.pid));
    expect(read('server.starttime')).toBe(await processStartTime(process.pid));
    expect(fs.readFileSync(path.join(serverDir, 'server_info.rawproto'))).toEqual(encodeServerInfo(server));
  });

  it('leaves the files the client wrote when unpublishing', async () => {
    fs.mkdirSync(path.join(dir, 'server'));
    fs.writeFileSync(path.join(dir, 'server', 'cmdline'), 'x');
    fs.writeFileSync(path.join(dir, 'server', 'jvm.out'), 'log');
    await publishServer(dir, server);
    await unpublishServer(dir);
    expect(fs.readdirSync(path.join(dir, 'server')).sort()).toEqual(['cmdline', 'jvm.out']);
    await unpublishServer(dir); // idempotent
  });
});

describe('encodeServerInfo', () => {
  it('encodes the fields in protobuf wire format', () => {
    const encoded = encodeServerInfo({ pid: 300, address: '[::1]:1', requestCookie: 'ab', responseCookie: 'c' });
    expect([...encoded]).toEqual([0x08, 0xac, 0x02, 0x12, 7, ...Buffer.from('[::1]:1'), 0x1a, 2, 0x61, 0x62, 0x22, 1, 0x63]);
  });
});
