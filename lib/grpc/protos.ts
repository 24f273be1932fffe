import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as OrchestratorProto } from '../../gen/proto/orchestrator';
import type { ProtoGrpcType as AgentProto } from '../../gen/proto/agent';
import type { ProtoGrpcType as HealthProto } from '../../gen/proto/health';
import type { ProtoGrpcType as BazelProto } from '../../gen/proto/command_server';
import type { ProtoGrpcType as SignerProto } from '../../gen/proto/signer';

/** proto/ sits at the repository root, both from sources and from dist/. */
const PROTO_ROOT = path.resolve(__dirname, '..', '..', ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []), 'proto');

/** Must match the flags in scripts/gen-proto.sh, or the generated types lie. */
const LOADER_OPTIONS: protoLoader.Options = {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

function load<T>(file: string): T {
  const definition = protoLoader.loadSync(file, LOADER_OPTIONS);
  return grpc.loadPackageDefinition(definition) as unknown as T;
}

let cache: { orchestrator: OrchestratorProto; agent: AgentProto; health: HealthProto; bazel: BazelProto; signer: SignerProto } | undefined;

/** The loaded service definitions, parsed once per process. */
export function protos() {
  cache ??= {
    orchestrator: load<OrchestratorProto>('rbs/v1/orchestrator.proto'),
    agent: load<AgentProto>('rbs/v1/agent.proto'),
    health: load<HealthProto>('grpc/health/v1/health.proto'),
    bazel: load<BazelProto>('bazel/command_server.proto'),
    signer: load<SignerProto>('rbs/v1/signer.proto'),
  };
  return cache;
}
