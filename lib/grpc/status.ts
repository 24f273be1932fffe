import * as grpc from '@grpc/grpc-js';

/** A status error as grpc-js handlers, streams and interceptors take it: an Error with a code. */
export function statusError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}
