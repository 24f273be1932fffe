/**
 * rsync's remote shell for a push to a session's agent. rsync runs `<rsh> <host> rsync --server …`
 * as it would run ssh; instead of a shell on <host>, this opens the agent's mTLS Sync stream and
 * carries rsync's stdio over it. Like ssh, it exits with the remote rsync's exit code, or 255 when
 * the transport fails. Where to connect comes from the environment (RSH_ENV), set by syncWorkspace.
 */
import * as grpc from '@grpc/grpc-js';
import { protos } from '../../lib/grpc/protos';
import type { SyncExit__Output } from '../../gen/proto/rbs/v1/SyncExit';
import type { SyncFrame, SyncFrame__Output } from '../../gen/proto/rbs/v1/SyncFrame';
import { TLS_CHANNEL_OPTIONS, type TlsMaterial, channelCredentials } from '../../lib/grpc/tls';
import type { Identity } from '../../lib/pki/identity';

type SyncClientCall = grpc.ClientDuplexStream<SyncFrame, SyncFrame__Output>;

export interface RshTarget {
  /** host:port of the agent. */
  agentAddress: string;
  /** The agent must prove it serves this session. */
  sessionId: string;
  syncId: string;
  /** The proxy's certificate for the session: in the environment, so no key file is left behind. */
  tls: TlsMaterial;
}

const RSH_ENV = {
  agentAddress: 'RBS_SYNC_AGENT',
  sessionId: 'RBS_SYNC_SESSION',
  syncId: 'RBS_SYNC_ID',
  caCertPem: 'RBS_SYNC_TLS_CA',
  certPem: 'RBS_SYNC_TLS_CERT',
  keyPem: 'RBS_SYNC_TLS_KEY',
} as const;

/** ssh's exit code for its own failures, which rsync reports as such. */
const TRANSPORT_FAILED = 255;

/** The environment that makes the remote shell reach `target`. */
export function rshEnv(target: RshTarget): Record<string, string> {
  const values: Record<keyof typeof RSH_ENV, string> = { ...target, ...target.tls };
  return Object.fromEntries(Object.entries(RSH_ENV).map(([key, name]) => [name, values[key as keyof typeof values]]));
}

function targetFromEnv(env: NodeJS.ProcessEnv): RshTarget {
  const get = (key: keyof typeof RSH_ENV) => {
    const value = env[RSH_ENV[key]];
    if (!value) throw new Error(`${RSH_ENV[key]} is not set: run through syncWorkspace`);
    return value;
  };
  return {
    agentAddress: get('agentAddress'),
    sessionId: get('sessionId'),
    syncId: get('syncId'),
    tls: { caCertPem: get('caCertPem'), certPem: get('certPem'), keyPem: get('keyPem') },
  };
}

/** Relays this process's stdio for the rsync command line in `argv`; resolves to the exit code. */
export async function runRsh(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  try {
    const [host, command, ...serverArgs] = argv;
    if (!host || command !== 'rsync') {
      throw new Error(`expected rsync's '<host> rsync --server …', got ${JSON.stringify(argv)}`);
    }
    return await relay(targetFromEnv(env), serverArgs);
  } catch (err) {
    process.stderr.write(`rbs-rsh: ${(err as Error).message}\n`);
    return TRANSPORT_FAILED;
  }
}

async function relay(target: RshTarget, serverArgs: string[]): Promise<number> {
  const { Agent } = protos().agent.rbs.v1;
  const isSessionAgent = (id: Identity) => id.kind === 'agent' && id.sessionId === target.sessionId;
  const client = new Agent(target.agentAddress, channelCredentials(target.tls, isSessionAgent), TLS_CHANNEL_OPTIONS);
  try {
    const call = client.Sync();
    call.write({ start: { syncId: target.syncId, serverArgs } });
    pipeStdin(call);
    const exit = await pipeStdout(call, `sync ${target.syncId} with the agent at ${target.agentAddress}`);
    await new Promise((resolve) => process.stdout.write('', resolve)); // rsync gets the last bytes before we exit
    if (exit.message) process.stderr.write(`${exit.message}\n`); // the remote rsync's stderr, as ssh shows it
    return exit.code;
  } finally {
    client.close();
  }
}

/** The agent's data frames go to rsync; resolves to rsync's exit, rejects if the call fails. */
function pipeStdout(call: SyncClientCall, what: string): Promise<SyncExit__Output> {
  let exit: SyncExit__Output | undefined;
  call.on('data', (frame: SyncFrame__Output) => {
    if (frame.frame === 'exit') exit = frame.exit!;
    else if (frame.frame === 'data' && !process.stdout.write(frame.data!)) {
      call.pause();
      process.stdout.once('drain', () => call.resume());
    }
  });
  // grpc-js emits a failed status as 'error' at once, ahead of 'end': 'end' means the status was OK.
  return new Promise((resolve, reject) => {
    call.on('error', (err: grpc.ServiceError) => reject(new Error(`${what} failed: ${err.message}`)));
    call.on('end', () => (exit ? resolve(exit) : reject(new Error(`${what} ended without rsync's exit status`))));
  });
}

/** rsync's requests go to the agent as data frames; closing our stdin is rsync hanging up. */
function pipeStdin(call: SyncClientCall): void {
  process.stdin.on('data', (chunk: Buffer) => {
    if (call.write({ data: chunk })) return;
    process.stdin.pause();
    call.once('drain', () => process.stdin.resume());
  });
  process.stdin.on('end', () => {
    call.write({ eof: true });
    call.end();
  });
}
