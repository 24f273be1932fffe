/**
 * grpc-js bounds no connection attempt (grpc/grpc-node#2785): a peer whose address accepts a
 * connection and then says nothing (a half-open path, a frozen process) holds every call without a
 * deadline for ever, and keepalive only watches connections already made. Callers wait for the
 * channel first, within a bound.
 */
import * as grpc from '@grpc/grpc-js';

export const CONNECT_DEADLINE_MS = 10_000;

/**
 * Resolves once `client`'s channel is READY; rejects at once when an attempt fails (`refused`:
 * nobody listens there), or after `deadlineMs`, with `unreachable(why, refused)`.
 */
export function channelReady(client: grpc.Client, unreachable: (why: string, refused: boolean) => Error, deadlineMs = CONNECT_DEADLINE_MS): Promise<void> {
  const channel = client.getChannel();
  const deadline = Date.now() + deadlineMs;
  return new Promise((resolve, reject) => {
    const check = (state: grpc.connectivityState) => {
      if (state === grpc.connectivityState.READY) return resolve();
      if (state === grpc.connectivityState.TRANSIENT_FAILURE || state === grpc.connectivityState.SHUTDOWN) {
        return reject(unreachable(`cannot connect (${grpc.connectivityState[state]})`, true));
      }
      channel.watchConnectivityState(state, deadline, (err) => {
        if (err) reject(unreachable(`no connection within ${deadlineMs} ms`, false));
        else check(channel.getConnectivityState(true));
      });
    };
    check(channel.getConnectivityState(true));
  });
}
