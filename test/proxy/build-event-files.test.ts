/**
 * The proxy writes the developer's build event files from what the agent sends, so a compromised
 * agent chooses their bytes. It must not choose where they go, nor make a failed copy look like a
 * success. The agent here is a named fake (a hostile one cannot run otherwise), served over real gRPC.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import type { ReadBuildEventFileRequest__Output } from '../../gen/proto/rbs/v1/ReadBuildEventFileRequest';
import { protos } from '../../lib/grpc/protos';
import { buildEventDelivery } from '../../services/proxy/build-event-files';
import type { RunRequest, RunResponse } from '../../services/proxy/command-server';

type Behaviour = (call: grpc.ServerWritableStream<ReadBuildEventFileRequest__Output, unknown>) => void;

let root: string;
let behaviour: Behaviour;
const asked: ReadBuildEventFileRequest__Output[] = [];
let server: grpc.Server;
let agent: AgentClient;

beforeAll(async () => {
  server = new grpc.Server();
  const { Agent } = protos().agent.rbs.v1;
  server.addService(Agent.service, {
    ReadBuildEventFile: (call: grpc.ServerWritableStream<ReadBuildEventFileRequest__Output, unknown>) => {
      asked.push(call.request);
      behaviour(call);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  agent = new Agent(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});
afterAll(() => {
  agent.close();
  server.forceShutdown();
});
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bep-'));
  asked.length = 0;
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const request = (...args: string[]) => ({ arg: ['build', ...args, '//:all'].map((a) => Buffer.from(a)) }) as RunRequest;

/** Relays a command's two responses through the delivery; resolves with what reached the client, in order. */
async function relay(req: RunRequest): Promise<{ responses: RunResponse[]; filesWhenFinished: string[] }> {
  const responses: RunResponse[] = [];
  let filesWhenFinished: string[] = [];
  const delivery = buildEventDelivery({ agent }, req, { workspace: path.join(root, 'ws'), outputBase: path.join(root, 'ob') }, (r) => {
    if (r.finished) filesWhenFinished = fs.readdirSync(root).sort();
    responses.push(r);
  });
  delivery.relay({ commandId: 'cmd-1', standardError: Buffer.from('building\n') });
  delivery.relay({ finished: true, exitCode: 0 });
  await delivery.settled();
  return { responses, filesWhenFinished };
}

test('the file the developer named is written before the client hears the command finished, and nothing else is', async () => {
  behaviour = (call) => {
    call.write({ data: Buffer.from('{"a":1}\n') });
    call.write({ data: Buffer.from('{"b":2}\n') });
    call.end();
  };
  const { responses, filesWhenFinished } = await relay(request(`--build_event_json_file=${path.join(root, 'bep.json')}`));
  expect(asked).toEqual([{ commandId: 'cmd-1', fileId: 'build_event_json_file-0' }]);
  expect(filesWhenFinished).toEqual(['bep.json']);
  expect(fs.readFileSync(path.join(root, 'bep.json'), 'utf8')).toBe('{"a":1}\n{"b":2}\n');
  expect(responses.map((r) => r.exitCode ?? 0)).toEqual([0, 0]);
});

test('a file the agent says Bazel did not write is not written; without the flag the agent is not asked', async () => {
  behaviour = (call) => call.emit('error', { code: grpc.status.NOT_FOUND, details: 'no such file' });
  const { filesWhenFinished } = await relay(request(`--build_event_json_file=${path.join(root, 'bep.json')}`));
  expect(filesWhenFinished).toEqual([]);
  asked.length = 0;
  await relay(request('--keep_going'));
  expect(asked).toEqual([]);
});

test('a copy the agent breaks off fails the command loudly, naming the flag and the file', async () => {
  behaviour = (call) => {
    call.write({ data: Buffer.from('{"a":') });
    call.emit('error', { code: grpc.status.INTERNAL, details: 'disk on fire' });
  };
  const file = path.join(root, 'bep.json');
  const { responses } = await relay(request(`--build_event_json_file=${file}`));
  const last = responses[responses.length - 1];
  expect(last.exitCode).toBe(36);
  expect(String(last.standardError)).toContain(`ERROR: RBS could not write the build event file --build_event_json_file=${file}: disk on fire`);
});
