/**
 * The frames between the proxy and the run relay (run-relay.ts) on their private Unix socket: a
 * kind byte, a 32-bit length and the payload. Kept free of gRPC, so that the relay starts fast.
 */
export const FRAME = {
  /** relay → proxy */
  stdin: 1,
  stdinEof: 2,
  signal: 3,
  /** proxy → relay */
  stdout: 4,
  stderr: 5,
  /** 4-byte exit code, then a message to print (UTF-8, may be empty). */
  exit: 6,
  /** The name of the signal that ended the program: the relay ends by it too. */
  killedBy: 7,
} as const;

export type FrameKind = (typeof FRAME)[keyof typeof FRAME];

const HEADER = 5;
/** Far above any chunk either side writes: a larger length means the stream is corrupt. */
const MAX_PAYLOAD = 16 * 1024 * 1024;

export function encodeFrame(kind: FrameKind, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(HEADER);
  header.writeUInt8(kind, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

export function encodeExit(code: number, message: string): Buffer {
  const head = Buffer.alloc(4);
  head.writeInt32BE(code);
  return encodeFrame(FRAME.exit, Buffer.concat([head, Buffer.from(message)]));
}

export function decodeExit(payload: Buffer): { code: number; message: string } {
  return { code: payload.readInt32BE(0), message: payload.subarray(4).toString() };
}

/** Feeds bytes in; calls onFrame for every complete frame. */
export function frameReader(onFrame: (kind: number, payload: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= HEADER) {
      const length = pending.readUInt32BE(1);
      if (length > MAX_PAYLOAD) throw new Error(`a relay frame of ${length} bytes: the stream is corrupt`);
      if (pending.length < HEADER + length) return;
      const kind = pending.readUInt8(0);
      const payload = pending.subarray(HEADER, HEADER + length);
      pending = pending.subarray(HEADER + length);
      onFrame(kind, payload);
    }
  };
}
