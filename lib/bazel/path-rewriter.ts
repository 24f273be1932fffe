/**
 * Rewrites the agent's paths to the laptop's in Bazel's output, as a stream of bytes: what the
 * developer reads (compile errors, `bazel info`, build event files) must name places on their own
 * machine. Works on bytes (as Latin-1), so binary and invalid UTF-8 pass through unchanged.
 *
 * A path is rewritten only as a whole-path prefix: `from` must be followed by `/` or a byte that
 * cannot continue a file name, and preceded by one that cannot be inside one (or an ANSI escape
 * sequence, `file://` or a JSON `\uXXXX` escape), so `/agent/ws-other` and `/x/agent/ws` stay as they are.
 */

/** Bytes that may continue a file name in ordinary output (UTF-8 names are all ≥ 0x80). */
const NAME_BYTE = 'A-Za-z0-9._\\-+~@%#$\\x80-\\xff';
/** The escape byte of a colour code: itself, or as JSON and protobuf text format write it. */
const ESC = '(?:\\x1b|\\\\u001b|\\\\033)';
/**
 * What may stand right before a rewritten path: nothing, a non-name byte, a colour code, a file URI,
 * or a JSON unicode escape (Bazel's JSON writes `=` as `\u003d`).
 */
const BEFORE = `(?:^|[^${NAME_BYTE}/]|${ESC}\\[[0-9;?]*[A-Za-z]|file://|\\\\u[0-9a-fA-F]{4})`;
const AFTER = `(?=$|/|[^${NAME_BYTE}])`;
/** Enough original bytes to decide BEFORE for a path at the start of the next chunk. */
const CONTEXT_BYTES = 64;

export type PathPair = readonly [from: string, to: string];

/** A path (a JS string of UTF-8 text) as the Latin-1 string of its bytes, the form matched here. */
export const bytesOf = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

export class PathRewriter {
  private readonly map: Map<string, string>;
  private readonly froms: string[];
  private readonly pattern: RegExp | undefined;
  /** Bytes not yet emitted: they could begin a path whose end has not arrived. */
  private held = '';
  /** The last original bytes emitted, for BEFORE. */
  private context = '';

  /** `pairs` are UTF-8 paths without a trailing slash; `escape` encodes a replacement for its medium (JSON). */
  constructor(pairs: readonly PathPair[], escape: (to: string) => string = (to) => to) {
    this.map = new Map(pairs.filter(([from, to]) => from && from !== to).map(([from, to]) => [bytesOf(from), bytesOf(escape(to))]));
    this.froms = [...this.map.keys()].sort((a, b) => b.length - a.length); // the longest root wins
    if (this.froms.some((from) => !from.startsWith('/'))) throw new Error(`PathRewriter rewrites absolute paths only, not ${this.froms}`);
    const alternatives = this.froms.map((p) => p.slice(1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    // The leading slash first, so that the engine scans for it fast; then what stands before it.
    if (alternatives.length) this.pattern = new RegExp(`/(?<=${BEFORE}/)(?:${alternatives.join('|')})${AFTER}`, 'g');
  }

  /** The rewritten bytes that can be emitted now; a tail that may begin a path is held back. */
  write(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    if (!this.pattern) return chunk;
    return this.emit(this.held + chunk.toString('latin1'), false);
  }

  /** Everything held back (end of the stream, or nothing arrived for a while). */
  flush(): Buffer {
    const held = this.held;
    this.held = '';
    return held ? this.emit(held, true) : Buffer.alloc(0);
  }

  /** Whole data at once, e.g. a file. */
  rewrite(data: Buffer): Buffer {
    return Buffer.concat([this.write(data), this.flush()]);
  }

  private emit(text: string, final: boolean): Buffer {
    let end = final ? text.length : this.holdFrom(text);
    const base = this.context.length;
    const whole = this.context + text;
    const parts: string[] = [];
    let done = 0;
    for (const match of whole.matchAll(this.pattern!)) {
      const start = match.index - base;
      if (start < 0) continue;
      if (start >= end) break;
      // Seen whole, with the byte after it: it goes out even where it reaches into the held tail.
      parts.push(text.slice(done, start), this.map.get(match[0])!);
      done = start + match[0].length;
      end = Math.max(end, done);
    }
    parts.push(text.slice(done, end));
    this.held = text.slice(end);
    this.context = whole.slice(0, base + end).slice(-CONTEXT_BYTES);
    return Buffer.from(parts.join(''), 'latin1');
  }

  /** Where the longest tail that is the start of some path (or all of one, awaiting the byte after it) begins. */
  private holdFrom(text: string): number {
    let longest = 0;
    for (const from of this.froms) {
      for (let k = Math.min(from.length, text.length); k > longest; k--) {
        if (text.endsWith(from.slice(0, k))) {
          longest = k;
          break;
        }
      }
    }
    return text.length - longest;
  }
}
