/**
 * A FAKE session agent, as a compromised one would behave: its ListOutputs answers whatever the
 * test says, and its Fetch runs the real `rsync --server --sender` on the attacker's own arguments
 * in the attacker's own directory, whatever the proxy asked for. Plain gRPC on loopback: what is
 * under test is what the proxy does with the answers, not the channel.
 */
import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import type { ListOutputsResponse } from '../../gen/proto/rbs/v1/ListOutputsResponse';
import type { SyncFrame, SyncFrame__Output } from '../../gen/proto/rbs/v1/SyncFrame';
import { protos } from '../../lib/grpc/protos';

export interface HostileAgent {
  client: AgentClient;
  /** How many Fetch calls it got. */
  fetches: number;
  stop(): Promise<void>;
}

/** `listing`: the ListOutputs answer; `sender`: the rsync arguments, run in `dir`. */
export async function startHostileAgent(listing: ListOutputsResponse, dir: string, sender: string[]): Promise<HostileAgent> {
  const { Agent } = protos().agent.rbs.v1;
  const server = new grpc.Server();
  const state = { fetches: 0 };
  server.addService(Agent.service, {
    ListOutputs: (_call: unknown, callback: grpc.sendUnaryData<ListOutputsResponse>) => callback(null, listing),
    Fetch: (call: grpc.ServerDuplexStream<SyncFrame__Output, SyncFrame>) => {
      state.fetches++;
      const rsync = spawn('rsync', sender, { cwd: dir, stdio: ['pipe', 'pipe', 'ignore'] });
      let started = false;
      call.on('data', (frame: SyncFrame__Output) => {
        if (!started)
          started = true; // the proxy's SyncStart: ignored
        else if (frame.frame === 'data') rsync.stdin.write(frame.data);
      });
      call.on('end', () => rsync.stdin.end());
      call.on('error', () => rsync.kill());
      rsync.stdin.on('error', () => undefined);
      rsync.stdout.on('data', (data: Buffer) => call.write({ data }));
      rsync.on('close', (code) => {
        call.write({ exit: { code: code ?? 1, message: '' } });
        call.end();
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  const client = new Agent(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as AgentClient;
  return {
    client,
    get fetches() {
      return state.fetches;
    },
    async stop() {
      client.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}
