/**
 * Takes out of a command's stderr what Bazel prints only because the agent gave it a build event
 * file the developer did not ask for (services/agent/outputs.ts): a local build prints neither.
 *
 * When a command ends, Bazel reports `INFO: Build Event Protocol files produced successfully.`
 * and then redraws its status line below it: on a terminal, the last line again; without one, the
 * same line once more. Both go: the notice, and the line after it when it repeats the line before
 * it (cursor moves and colours aside). What is left is byte for byte what local Bazel writes.
 *
 * Works on bytes (as Latin-1), line by line. Only a tail that could still become the notice, or
 * the line that may follow it, is held back; flush() lets it go as it is.
 */

const NOTICE = 'INFO: Build Event Protocol files produced successfully.';
/** A CSI sequence (colour, cursor move, erase), or what may be the start of one at a chunk's end. */
const CSI = /\x1b(?:\[[0-9;?]*[A-Za-z]?)?/g;

/** Longer lines are kept only in part: neither the notice nor a status line is ever that long. */
const LONGEST_LINE = 1024;

/** A line as it reads: no colours or cursor moves, no carriage returns, no line feed. */
const visible = (line: string) => line.replace(CSI, '').replace(/[\r\n]/g, '');

export class EventFileNoticeFilter {
  /** Bytes held back: the start of a line that may be the notice, or the line that may follow it. */
  private held = '';
  /** The last line let through whole. */
  private lastLine = '';
  /** The line let through so far, when its end has not come yet. */
  private current = '';
  /** The notice was taken out; the next line is the status line's redraw if it repeats the last. */
  private afterNotice = false;
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
      this.current = (this.current + text).slice(-LONGEST_LINE); // a longer one is no status line
      return Buffer.from(out + text, 'latin1');
    }
    this.held = text;
    return Buffer.from(out, 'latin1');
  }

  /** What is held goes out as it is: the end of the stream, or nothing more came for a while. */
  flush(): Buffer {
    const held = this.held;
    this.held = '';
    if (this.afterNotice) this.done = true;
    this.current = (this.current + held).slice(-LONGEST_LINE);
    return Buffer.from(held, 'latin1');
  }

  /** A whole line (ending in \n): what of it goes out. */
  private line(line: string): string {
    const partial = this.current !== ''; // its start went out already: it cannot be taken out whole
    const whole = this.current + line;
    this.current = '';
    if (this.afterNotice) {
      this.done = true;
      if (visible(whole) === visible(this.lastLine)) return '';
    } else if (!partial && whole.includes(NOTICE.slice(6)) && visible(whole) === NOTICE) {
      this.afterNotice = true;
      return '';
    }
    this.lastLine = whole.slice(-LONGEST_LINE);
    return line;
  }

  /** Whether an unfinished line may still turn out to be one this filter takes out. */
  private mayHold(tail: string): boolean {
    if (tail === '') return false;
    if (this.afterNotice) return true;
    return this.current === '' && NOTICE.startsWith(visible(tail));
  }
}
