/**
 * How the agent tells its proxy what a `bazel run` would run (a RunTarget, proto/rbs/v1/agent.proto):
 * as the binary trailer of the Run stream, which then carries no final response.
 */
import * as grpc from '@grpc/grpc-js';
import { protos } from './grpc/protos';
import type { RunTarget, RunTarget__Output } from '../gen/proto/rbs/v1/RunTarget';

export type { RunTarget, RunTarget__Output };

const RUN_TARGET_TRAILER = 'rbs-run-target-bin';

export function runTargetTrailer(target: RunTarget): grpc.Metadata {
  const trailer = new grpc.Metadata();
  trailer.set(RUN_TARGET_TRAILER, protos().agent.rbs.v1.RunTarget.serialize(target));
  return trailer;
}

/** The RunTarget a Run stream's trailers carry, if any. Its bytes come from the agent: check everything. */
export function runTargetOf(trailers: grpc.Metadata): RunTarget__Output | undefined {
  const [value] = trailers.get(RUN_TARGET_TRAILER);
  if (value === undefined) return undefined;
  if (typeof value === 'string') throw new Error(`the agent's ${RUN_TARGET_TRAILER} trailer is text, not bytes`);
  try {
    return protos().agent.rbs.v1.RunTarget.deserialize(value);
  } catch (err) {
    throw new Error(`the agent's ${RUN_TARGET_TRAILER} trailer is not a RunTarget: ${(err as Error).message}`);
  }
}
