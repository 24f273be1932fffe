/**
 * How a Bazel server announces itself: files in `<output_base>/server/` that the client reads to
 * find, verify and authenticate it. Bazel 4.2.3 reads command_port, request_cookie,
 * response_cookie, server.pid.txt and server.starttime (it checks the latter against
 * /proc/<pid>/stat); current clients read only server_info.rawproto (and the starttime). The
 * client writes cmdline and jvm.out itself before starting the server, so they are not ours.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { statFields } from '../proc-stat';

export interface ServerAnnouncement {
  pid: number;
  /** host:port on loopback: the client refuses anything else. */
  address: string;
  requestCookie: string;
  responseCookie: string;
}

/**
 * In the order they are written. A 4.2.3 client deletes command_port before starting a server and
 * polls for it, reading the other files right after: so it goes last. A current client polls for
 * server_info.rawproto alone, which is complete by itself.
 */
const PUBLISHED_FILES = ['server.pid.txt', 'server.starttime', 'request_cookie', 'response_cookie', 'server_info.rawproto', 'command_port'] as const;

export function serverDirectory(outputBase: string): string {
  return path.join(outputBase, 'server');
}

export async function publishServer(outputBase: string, server: ServerAnnouncement): Promise<void> {
  const dir = serverDirectory(outputBase);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const contents: Record<(typeof PUBLISHED_FILES)[number], string | Buffer> = {
    'server.pid.txt': String(server.pid),
    'server.starttime': await processStartTime(server.pid),
    request_cookie: server.requestCookie,
    response_cookie: server.responseCookie,
    'server_info.rawproto': encodeServerInfo(server),
    command_port: server.address,
  };
  for (const name of PUBLISHED_FILES) {
    await writeAtomically(path.join(dir, name), contents[name]);
  }
}

/** Removes what publishServer wrote, so that no client connects to a server that is gone. */
export async function unpublishServer(outputBase: string): Promise<void> {
  const dir = serverDirectory(outputBase);
  // command_port first: the reverse of publishing, so a client never sees a half-removed server.
  for (const name of [...PUBLISHED_FILES].reverse()) {
    await fs.rm(path.join(dir, name), { force: true });
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), as the client compares it to detect a recycled pid. */
export async function processStartTime(pid: number): Promise<string> {
  return startTimeOf(pid, await fs.readFile(`/proc/${pid}/stat`, 'latin1'));
}

/** processStartTime's parse of the /proc/<pid>/stat text `stat`. */
export function startTimeOf(pid: number, stat: string): string {
  const startTime = statFields(stat)[22 - 3];
  if (!startTime || !/^\d+$/.test(startTime)) throw new Error(`unexpected /proc/${pid}/stat: ${stat}`);
  return startTime;
}

async function writeAtomically(file: string, data: string | Buffer): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, data, { mode: 0o644 });
  await fs.rename(temp, file);
}

/** A command_server.ServerInfo in protobuf wire format: four fields do not warrant a codec. */
export function encodeServerInfo(server: ServerAnnouncement): Buffer {
  return Buffer.concat([
    Buffer.from([(1 << 3) | 0]),
    varint(server.pid),
    lengthDelimited(2, server.address),
    lengthDelimited(3, server.requestCookie),
    lengthDelimited(4, server.responseCookie),
  ]);
}

function lengthDelimited(field: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([Buffer.from([(field << 3) | 2]), varint(bytes.length), bytes]);
}

function varint(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0) throw new Error(`cannot encode ${value} as a protobuf varint`);
  const bytes: number[] = [];
  for (let rest = value; ; rest = Math.floor(rest / 128)) {
    if (rest < 128) {
      bytes.push(rest);
      return Buffer.from(bytes);
    }
    bytes.push((rest % 128) | 128);
  }
}
