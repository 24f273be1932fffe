/**
 * A real OpenID provider (test/harness/oidc-provider.server.mjs: panva's oidc-provider) in its own
 * process, and a browser of plain HTTP requests that approves a device code the way a user does:
 * the code at the verification page, a sign-in with the user's password, consent.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Child, startChild } from '../../lib/local/child';
import { waitFor } from './wait';

export interface OidcUser {
  login: string;
  password: string;
  email: string;
  emailVerified: boolean;
  groups: string[];
  /** How long this user's ID tokens last (default an hour). */
  idTokenTtlSeconds?: number;
}

export interface OidcProvider {
  issuer: string;
  /** Signs in as `user` at the provider and approves `userCode`, as the user would in a browser. */
  approve(verificationUri: string, userCode: string, user: Pick<OidcUser, 'login' | 'password'>): Promise<void>;
  stop(): Promise<void>;
}

const PROVIDER_MAIN = path.resolve(__dirname, 'oidc-provider.server.mjs');

/** A start that has not served by then is tried again (a new process); the attempts before giving up. */
const START_DEADLINE_MS = 15_000;
const START_ATTEMPTS = 3;

export async function startOidcProvider(setup: { clients: string[]; users: OidcUser[]; pollIntervalSeconds?: number }): Promise<OidcProvider> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-oidc-'));
  const setupFile = path.join(dir, 'setup.json');
  fs.writeFileSync(setupFile, JSON.stringify({ pollIntervalSeconds: 1, ...setup }));
  let child: Child | undefined;
  let issuer = '';
  for (let attempt = 1; !issuer; attempt++) {
    const logFile = path.join(dir, `provider-${attempt}.log`);
    child = startChild('oidc-provider', process.execPath, [PROVIDER_MAIN, setupFile], { logFile });
    try {
      await waitFor(
        () => {
          const exited = child!.exited();
          if (exited) throw new Error(`${exited}:\n${child!.logTail()}`);
          issuer = /^\{"issuer":"([^"]+)"\}$/m.exec(fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '')?.[1] ?? '';
          return issuer !== '';
        },
        START_DEADLINE_MS,
        `the OpenID provider to serve (attempt ${attempt} of ${START_ATTEMPTS})`,
      );
    } catch (err) {
      await child.stop(); // never left behind
      if (attempt === START_ATTEMPTS) throw err;
    }
  }
  const started = child!;
  return {
    issuer,
    async approve(verificationUri, userCode, user) {
      const browser = new Browser();
      const codePage = await browser.open(verificationUri);
      const confirmPage = await browser.submit(codePage, { user_code: userCode });
      const loginPage = await browser.submit(confirmPage, {});
      const consentPage = await browser.submit(loginPage, { login: user.login, password: user.password });
      const done = await browser.submit(consentPage, {});
      if (!done.body.includes('Sign-in Success')) throw new Error(`device approval did not succeed; the provider said:\n${done.body.slice(0, 2000)}`);
    },
    async stop() {
      await started.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Page {
  url: string;
  body: string;
}

/** Just enough of a browser: cookies by path, redirects, and submitting a page's form with its hidden fields. */
class Browser {
  private readonly cookies = new Map<string, { name: string; value: string; path: string }>();

  open(url: string): Promise<Page> {
    return this.request(url);
  }

  submit(page: Page, fields: Record<string, string>): Promise<Page> {
    const action = /<form[^>]*\saction="([^"]+)"/.exec(page.body)?.[1];
    if (!action) throw new Error(`no form at ${page.url}:\n${page.body.slice(0, 2000)}`);
    const hidden = [...page.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)].map((m) => [m[1], m[2]]);
    return this.request(new URL(action, page.url).href, { ...Object.fromEntries(hidden), ...fields });
  }

  private async request(url: string, form?: Record<string, string>): Promise<Page> {
    for (let redirects = 0; redirects < 10; redirects++) {
      const target = new URL(url);
      const cookie = [...this.cookies.values()].filter((c) => target.pathname.startsWith(c.path)).map((c) => `${c.name}=${c.value}`);
      const response = await fetch(url, {
        method: form ? 'POST' : 'GET',
        headers: { cookie: cookie.join('; '), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        body: form ? new URLSearchParams(form).toString() : undefined,
        redirect: 'manual',
      });
      for (const header of response.headers.getSetCookie()) this.store(header);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        url = new URL(location, url).href;
        form = undefined;
        continue;
      }
      const body = await response.text();
      if (response.status !== 200) throw new Error(`${response.status} from ${url}:\n${body.slice(0, 2000)}`);
      return { url, body };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  private store(header: string): void {
    const [pair, ...attributes] = header.split(';').map((part) => part.trim());
    const name = pair.slice(0, pair.indexOf('='));
    const attribute = (key: string) => attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
    const cookiePath = attribute('path') ?? '/';
    const expires = attribute('expires');
    if (expires && new Date(expires).getTime() <= Date.now()) this.cookies.delete(`${name} ${cookiePath}`);
    else this.cookies.set(`${name} ${cookiePath}`, { name, value: pair.slice(name.length + 1), path: cookiePath });
  }
}
