/**
 * A real headless browser (Debian's chromium, installed by scripts/setup.sh) driven over the
 * DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages, each ended by a NUL, in on
 * fd 3 and out on fd 4). It loads a page, runs its scripts, and reads what a person would see.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';

const CHROMIUM = process.env.RBS_CHROMIUM ?? 'chromium';

/** The page's text and its same-origin frames' (the Temporal UI renders markdown in one). */
const VISIBLE_TEXT = `[document, ...Array.from(document.querySelectorAll('iframe'), (f) => f.contentDocument)]
  .map((d) => (d && d.body ? d.body.innerText : '')).join('\\n')`;

interface Reply {
  id?: number;
  result?: Record<string, unknown>;
  error?: { message: string };
}

export class Browser {
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: Reply) => void>();
  private buffered = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly profile: string,
  ) {
    const output = child.stdio[4] as Readable;
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => {
      this.buffered += chunk;
      let end;
      while ((end = this.buffered.indexOf('\0')) >= 0) {
        const reply = JSON.parse(this.buffered.slice(0, end)) as Reply;
        this.buffered = this.buffered.slice(end + 1);
        if (reply.id !== undefined) this.waiting.get(reply.id)?.(reply);
      }
    });
  }

  static launch(): Browser {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-chromium-'));
    const args = [
      '--headless',
      // Root may not use chromium's sandbox; the pages are our own, on loopback.
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--remote-debugging-pipe',
      `--user-data-dir=${profile}`,
      'about:blank',
    ];
    // Its own process group: chromium's zygote and renderers go with it.
    const child = spawn(CHROMIUM, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], detached: true });
    child.on('error', () => undefined); // reported by the first call, which then never gets a reply
    return new Browser(child, profile);
  }

  private call(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${CHROMIUM} did not answer ${method} within 30 s (is it installed? npm run setup installs it)`));
      }, 30_000);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        if (reply.error) reject(new Error(`${method}: ${reply.error.message}`));
        else resolve(reply.result ?? {});
      });
      (this.child.stdio[3] as Writable).write(`${JSON.stringify({ id, method, params, sessionId })}\0`);
    });
  }

  /** Opens `url` in a new tab; returns a function that reads the tab's visible text, its frames' included. */
  async open(url: string): Promise<() => Promise<string>> {
    const { targetId } = await this.call('Target.createTarget', { url });
    const { sessionId } = (await this.call('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    return async () => {
      const { result } = (await this.call('Runtime.evaluate', { expression: VISIBLE_TEXT, returnByValue: true }, sessionId)) as {
        result: { value?: string };
      };
      return result.value ?? '';
    };
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    if (this.child.exitCode === null && this.child.signalCode === null) {
      await Promise.race([this.call('Browser.close').catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2_000))]);
      try {
        process.kill(-this.child.pid!, 'SIGKILL');
      } catch {
        // the group has gone already
      }
      await exited;
    }
    fs.rmSync(this.profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}
