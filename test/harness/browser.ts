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

/** The page's document and its same-origin frames' (the Temporal UI renders markdown in one). */
const DOCUMENTS = `[document, ...Array.from(document.querySelectorAll('iframe'), (f) => f.contentDocument)].filter((d) => d && d.body)`;

/** What a tab shows: its text, and how many elements match a selector, its frames' included. */
export interface Tab {
  text(): Promise<string>;
  count(selector: string): Promise<number>;
}

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
      '--disable-crash-reporter',
      '--remote-debugging-pipe',
      `--user-data-dir=${profile}`,
      'about:blank',
    ];
    // Its own process group: chromium's zygote and renderers go with it.
    // HOME too: chromium writes crash reports and caches under it, which must go with the profile.
    const env = { ...process.env, HOME: profile };
    const child = spawn(CHROMIUM, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], detached: true, env });
    const browser = new Browser(child, profile);
    // A chromium that is missing or died fails every call at once, rather than each after its timeout.
    child.on('error', (err) => browser.fail(`${CHROMIUM} could not start (npm run setup installs it): ${err.message}`));
    child.on('exit', (code, signal) => browser.fail(`${CHROMIUM} exited (${signal ?? code})`));
    return browser;
  }

  private failure: string | null = null;

  private fail(why: string): void {
    this.failure ??= why;
    for (const reply of [...this.waiting.values()]) reply({ error: { message: why } });
  }

  private call(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    if (this.failure) return Promise.reject(new Error(`${method}: ${this.failure}`));
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

  /** Opens `url` in a new tab. */
  async open(url: string): Promise<Tab> {
    const { targetId } = await this.call('Target.createTarget', { url });
    const { sessionId } = (await this.call('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    const evaluate = async <T>(expression: string): Promise<T> => {
      const { result } = (await this.call('Runtime.evaluate', { expression, returnByValue: true }, sessionId)) as { result: { value: T } };
      return result.value;
    };
    return {
      text: () => evaluate<string>(`${DOCUMENTS}.map((d) => d.body.innerText).join('\\n')`),
      count: (selector) => evaluate<number>(`${DOCUMENTS}.reduce((n, d) => n + d.querySelectorAll(${JSON.stringify(selector)}).length, 0)`),
    };
  }

  /** Asks chromium to close, then kills what is left of its process group, and removes its profile. */
  async close(): Promise<void> {
    const running = () => this.child.exitCode === null && this.child.signalCode === null;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    const within = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    if (running()) await Promise.race([Promise.all([this.call('Browser.close').catch(() => undefined), exited]), within(2_000)]);
    try {
      process.kill(-this.child.pid!, 'SIGKILL'); // renderers and helpers that outlive the browser
    } catch {
      // the group has gone already
    }
    if (running()) await exited;
    fs.rmSync(this.profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}
