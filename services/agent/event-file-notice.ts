/**
 * Takes out of a command's stderr what Bazel prints only because the agent gave it a build event
 * file the developer did not ask for (services/agent/outputs.ts): local Bazel would not print it.
 *
 * When a command ends, Bazel reports `INFO: Build Event Protocol files produced successfully.`,
 * and its status line comes again after it:
 * - on a terminal, the notice first erases the status bar (one `ESC[1A ESC[K` per line of it),
 *   which is then drawn again below the notice. Both go: the screen is as if the notice never came.
 * - without one, the status line is printed as a line, before the notice or after it, as often as
 *   the UI's rate limit lets it: local Bazel, with no event after the build, prints it twice (the
 *   status, then the final line). Copies beyond those two go. When an error came after the status
 *   line (a failed `bazel run`), a local run may print one copy fewer: then one more is left.
 *
 * Works on bytes (as Latin-1), line by line. Only what could still be the notice, or what may
 * follow it, is held back.
 */

const NOTICE = 'INFO: Build Event Protocol files produced successfully.';
/** A CSI sequence (colour, cursor move, erase), or what may be the start of one at a chunk's end. */
const CSI = /\x1b(?:\[[0-9;?]*[A-Za-z]?)?/g;
const CURSOR_UP = '\x1b[1A';
/** Longer lines are kept only in part: neither the notice nor a status line is ever that long. */
const LONGEST_LINE = 1024;

/** A line as it reads: no colours or cursor moves, no carriage returns, no line feed. */
const visible = (line: string) => line.replace(CSI, '').replace(/[\r\n]/g, '');

/** How often local Bazel, without a terminal, prints its last status line at the end. */
const STATUS_COPIES = 2;

/** What to do with the lines after the notice. */
type AfterNotice =
  /** On a terminal: the status bar's lines, drawn again, go. */
  | { terminal: true; statusLines: number }
  /** Without one: copies of the status line beyond STATUS_COPIES go. */
  | { terminal: false; copies: number };

export class EventFileNoticeFilter {
  /** The start of a line that may be the notice, or of a line after it. */
  private held = '';
  /** The last line let through whole, as it reads, and how many times in a row it came. */
  private lastLine = '';
  private repeats = 0;
  /** The line let through so far, when its end has not come yet. */
  private current = '';
  private afterNotice: AfterNotice | undefined;
  /** Nothing more to take out: the rest passes through. */
  private done = false;

  write(chunk: Buffer): Buffer {
    if (this.done || chunk.length === 0) return chunk;
    let text = this.held + chunk.toString('latin1');
    this.held = '';
    let out = '';
    for (let end = text.indexOf('\n'); end >= 0 && !this.done; end = text.indexOf('\n')) {
      out += this.line(text.slice(0, end + 1));
      text = text.slice(end + 1);
    }
    if (this.done || !this.mayHold(text)) {
      this.current = (this.current + text).slice(-LONGEST_LINE);
      return Buffer.from(out + text, 'latin1');
    }
    this.held = text;
    return Buffer.from(out, 'latin1');
  }

  /**
   * Nothing more came for a while: what is held goes out, unless it follows the notice. That waits
   * for its lines or the end of the stream, which comes right after the notice.
   */
  idle(): Buffer {
    return this.afterNotice && !this.done ? Buffer.alloc(0) : this.flush();
  }

  /** The end of the stream: what is held goes out as it is. */
  flush(): Buffer {
    const held = this.held;
    this.held = '';
    if (this.afterNotice) this.done = true;
    this.current = (this.current + held).slice(-LONGEST_LINE);
    return Buffer.from(held, 'latin1');
  }

  /** A whole line (ending in \n): what of it goes out now. */
  private line(line: string): string {
    const partial = this.current !== ''; // its start went out already: it cannot be taken out whole
    const whole = this.current + line;
    this.current = '';
    if (this.afterNotice) return this.lineAfterNotice(whole, this.afterNotice);
    if (!partial && whole.includes(NOTICE.slice(6)) && visible(whole) === NOTICE) {
      const statusLines = whole.split(CURSOR_UP).length - 1;
      this.afterNotice = statusLines > 0 ? { terminal: true, statusLines } : { terminal: false, copies: this.repeats };
      return '';
    }
    const reads = visible(whole.slice(-LONGEST_LINE));
    this.repeats = reads === this.lastLine ? this.repeats + 1 : 1;
    this.lastLine = reads;
    return line;
  }

  private lineAfterNotice(line: string, after: AfterNotice): string {
    if (after.terminal) {
      // A line that erases is no longer the status bar drawn again.
      if (after.statusLines > 0 && !line.includes(CURSOR_UP)) {
        after.statusLines -= 1;
        if (after.statusLines === 0) this.done = true;
        return '';
      }
      this.done = true;
      return line;
    }
    if (visible(line) !== this.lastLine) {
      this.done = true;
      return line;
    }
    after.copies += 1;
    return after.copies > STATUS_COPIES ? '' : line;
  }

  /** Whether an unfinished line may still turn out to be one this filter takes out. */
  private mayHold(tail: string): boolean {
    if (tail === '') return false;
    if (this.afterNotice) return true;
    return this.current === '' && NOTICE.startsWith(visible(tail));
  }
}
