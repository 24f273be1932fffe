/**
 * Takes out of a command's stderr what Bazel prints only because the agent gave it a build event
 * file the developer did not ask for (services/agent/outputs.ts): local Bazel would not print it.
 *
 * When a command ends, Bazel reports `INFO: Build Event Protocol files produced successfully.`,
 * and its status line comes again after it:
 * - on a terminal, the notice first erases the status bar (one `\r ESC[1A ESC[K` per line of it),
 *   which is then drawn again below the notice. Both go: the screen is as if the notice never came.
 * - without one, the status line is printed as a line, around the notice, as often as the UI's
 *   rate limit lets it. Local Bazel prints it when the build ends, then any events (`Running
 *   command line: …`, an error), then once more as its final line. The first line after the
 *   notice is that status line: its copies go but for the final one, where none has come yet
 *   after the status line and its events.
 *
 * The notice ends a command: only a notice that the end of the stream follows within a few lines
 * is taken out, and of several only the last. The same line printed by a build (its own output, a
 * Bazel it runs) is followed by more, by another notice, or by silence, and then goes out unchanged
 * with what came after it.
 *
 * Works on bytes (as Latin-1), line by line. What is held back is bounded in lines, bytes and time.
 */

const NOTICE = 'INFO: Build Event Protocol files produced successfully.';
/** What the notice starts with on a terminal, once per line of the status bar it erases. */
const ERASE = '\r\x1b[1A\x1b[K';
const CURSOR_UP = '\x1b[1A';
/** A CSI sequence (colour, cursor move, erase), or what may be the start of one at a chunk's end. */
const CSI = /\x1b(?:\[[0-9;?]*[A-Za-z]?)?/g;
/** Bazel's status bar is a few lines; a "notice" erasing more is not Bazel's. */
const MOST_STATUS_LINES = 16;
/** After the notice: its redraws and the final line. More, and it was not the end of the command. */
const MOST_LINES_AFTER = 2 * MOST_STATUS_LINES + 2;
/** Neither the notice nor a status line is ever this long; no more than this is held back. */
const LONGEST_LINE = 1024;
const MOST_HELD = MOST_LINES_AFTER * LONGEST_LINE;
/** The command's end follows its notice at once; after this long, whatever was held goes out. */
export const NOTICE_HOLD_MS = 3000;
/** Lines kept, as they read, to find the status line's first print before the notice. */
const RECENT_LINES = 32;

/** Colours: the only escapes a notice has past its erases. */
const SGR = /\x1b\[[0-9;]*m/g;

/** A line as it reads: no colours or cursor moves, no carriage returns, no line feed. */
const visible = (line: string) => line.replace(CSI, '').replace(/[\r\n]/g, '');

/** How many status bar lines a notice line erases first (0 without a terminal); undefined if it is not the notice. */
function noticeErasing(line: string): number | undefined {
  if (!line.includes(NOTICE.slice(6))) return undefined;
  let erased = 0;
  let rest = line;
  while (rest.startsWith(ERASE)) [rest, erased] = [rest.slice(ERASE.length), erased + 1];
  if (erased > MOST_STATUS_LINES || rest.replace(SGR, '').includes('\x1b') || visible(rest) !== NOTICE) return undefined;
  return erased;
}

interface Noticed {
  line: string;
  /** Lines of the status bar it erased: as many are drawn again after it. 0 without a terminal. */
  erased: number;
  /** Whole lines since, held. */
  after: string[];
  bytes: number;
  at: number;
}

export class EventFileNoticeFilter {
  /** A tail that is not a whole line yet: it may be the notice, or follow it. */
  private held = '';
  /** The line let through so far, when its end has not come yet. */
  private current = '';
  /** The last lines let through whole (their ends), newest last: read only when a notice is taken out. */
  private recent: string[] = [];
  private noticed: Noticed | undefined;
  /** The notice was taken out: the rest passes through. */
  private done = false;

  write(chunk: Buffer): Buffer {
    if (this.done || chunk.length === 0) return chunk;
    let text = this.held + chunk.toString('latin1');
    this.held = '';
    let out = '';
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; start = end + 1, end = text.indexOf('\n', start)) out += this.line(text.slice(start, end + 1));
    text = text.slice(start);
    if (text === '') return Buffer.from(out, 'latin1');
    if (this.mayHold(text)) this.held = text;
    else {
      out += this.release() + text;
      this.current = (this.current + text).slice(-LONGEST_LINE);
    }
    return Buffer.from(out, 'latin1');
  }

  /** How long until idle() lets a held notice go; undefined when none is held. */
  holdingFor(): number | undefined {
    return this.noticed && Math.max(0, this.noticed.at + NOTICE_HOLD_MS - Date.now());
  }

  /** Nothing came for a while: a tail goes out, and a notice held too long with what followed it. */
  idle(): Buffer {
    if (this.noticed && Date.now() - this.noticed.at < NOTICE_HOLD_MS) return Buffer.alloc(0);
    return Buffer.from(this.release() + this.takeHeld(), 'latin1');
  }

  /** The end of the stream: a notice held is taken out, with its redraws. */
  flush(): Buffer {
    const noticed = this.noticed;
    this.noticed = undefined;
    const out = noticed ? this.withoutNotice(noticed) : '';
    return Buffer.from(out + this.takeHeld(), 'latin1');
  }

  private takeHeld(): string {
    const held = this.held;
    this.held = '';
    this.current = (this.current + held).slice(-LONGEST_LINE);
    return held;
  }

  /** A whole line (ending in \n): what goes out now. */
  private line(line: string): string {
    const partial = this.current !== ''; // its start went out already: it cannot be taken out whole
    const whole = this.current + line;
    this.current = '';
    const erased = partial ? undefined : noticeErasing(whole);
    if (erased !== undefined) {
      // Bazel's notice is the last: one held before was a build's, and goes out with what followed it.
      const before = this.release();
      this.noticed = { line: whole, erased, after: [], bytes: whole.length, at: Date.now() };
      return before;
    }
    if (this.noticed) {
      this.noticed.after.push(whole);
      this.noticed.bytes += whole.length;
      const tooMuch = this.noticed.after.length > MOST_LINES_AFTER || this.noticed.bytes > MOST_HELD;
      return tooMuch ? this.release() : '';
    }
    this.remember(whole);
    return line;
  }

  private remember(line: string): void {
    this.recent.push(line.slice(-LONGEST_LINE));
    if (this.recent.length > RECENT_LINES) this.recent.shift();
  }

  /** A held notice was not the command's end: it and what followed go out as they came. */
  private release(): string {
    if (!this.noticed) return '';
    const { line, after } = this.noticed;
    this.noticed = undefined;
    for (const held of after) this.remember(held);
    return line + after.join('');
  }

  /** What the held lines become once the notice is taken out; as they came if they are not its redraws. */
  private withoutNotice({ line, erased, after }: Noticed): string {
    this.done = true;
    if (erased > 0) {
      const redrawn = after.slice(0, erased);
      const isRedraw = redrawn.length === erased && redrawn.every((l) => !l.includes(CURSOR_UP));
      return isRedraw ? after.slice(erased).join('') : line + after.join('');
    }
    const status = after.length ? visible(after[0]) : undefined;
    const recent = this.recent.map(visible);
    const last = recent.length - 1;
    // Out already as its final print: the last line, and printed before it too (when the build ended).
    let finalOut = recent[last] === status && recent.slice(0, last).includes(status);
    let out = '';
    let copies = true;
    for (const held of after) {
      copies &&= visible(held) === status;
      if (copies && finalOut) continue;
      if (copies) finalOut = true;
      out += held;
    }
    return out;
  }

  /** Whether an unfinished line may still turn out to be the notice, or follows one. */
  private mayHold(tail: string): boolean {
    if (tail.length > LONGEST_LINE) return false;
    if (this.noticed) return true;
    return this.current === '' && NOTICE.startsWith(visible(tail));
  }
}
