/**
 * A throwaway workspace driven by the real Bazel client, whose server is the RBS proxy: the
 * client is given `rbs javabase` and the environment that points the proxy at a test stack.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeTlsMaterial } from '../../lib/grpc/tls';
import { repoRoot } from '../../lib/local/tools';
import type { CertificateAuthority } from '../../lib/pki/ca';
import { pidsWhere } from '../harness/processes';
import type { TestStack } from '../harness/stack';

const RBS = path.join(repoRoot(), 'cli', 'rbs.js');

/**
 * Test rules depend on three repositories Bazel 4.2.3 would download; offline, stubs forwarding to
 * the native rules stand in for them. They live inside the workspace (local_repository), as a
 * vendored dependency would: no flag names a path outside it.
 */
const forward = (rules: string[]) => rules.map((rule) => `${rule} = native.${rule}\n`).join('');
const STUBS: Record<string, Record<string, string>> = {
  rules_cc: { WORKSPACE: '', BUILD: '', 'cc/BUILD': '', 'cc/defs.bzl': forward(['cc_binary', 'cc_library', 'cc_test', 'cc_toolchain', 'cc_toolchain_suite']) },
  rules_java: {
    WORKSPACE: '',
    BUILD: '',
    'java/BUILD': '',
    'java/defs.bzl': forward(['java_binary', 'java_import', 'java_library', 'java_runtime', 'java_test', 'java_toolchain']),
  },
  remote_coverage_tools: {
    WORKSPACE: '',
    BUILD: 'package(default_visibility = ["//visibility:public"])\nfilegroup(name = "lcov_merger")\nfilegroup(name = "coverage_report_generator")\n',
  },
};

/** `third_party/<name>/<file>` for every stub, and the WORKSPACE that declares them. */
function stubFiles(): Record<string, string> {
  const files: Record<string, string> = {
    WORKSPACE: Object.keys(STUBS)
      .map((name) => `local_repository(name = "${name}", path = "third_party/${name}")\n`)
      .join(''),
  };
  for (const [name, stub] of Object.entries(STUBS)) {
    for (const [file, content] of Object.entries(stub)) files[`third_party/${name}/${file}`] = content;
  }
  return files;
}

/** A small C++ project: a library, a binary that uses it, and a test of it. */
const CC_PROJECT: Record<string, string> = {
  'lib/BUILD': 'cc_library(name = "hello-greet", srcs = ["hello-greet.cc"], hdrs = ["hello-greet.h"], visibility = ["//visibility:public"])\n',
  'lib/hello-greet.h': '#pragma once\n#include <string>\nstd::string greeting(const std::string& who);\n',
  'lib/hello-greet.cc': '#include "lib/hello-greet.h"\nstd::string greeting(const std::string& who) { return "Hello " + who; }\n',
  'main/BUILD': [
    'cc_binary(name = "hello-world", srcs = ["hello-world.cc"], deps = ["//lib:hello-greet"])',
    'cc_test(name = "hello-test", srcs = ["hello-test.cc"], deps = ["//lib:hello-greet"])',
    '',
  ].join('\n'),
  'main/hello-world.cc':
    '#include <iostream>\n#include "lib/hello-greet.h"\n' +
    'int main(int argc, char** argv) { std::cout << greeting(argc > 1 ? argv[1] : "world") << std::endl; return 0; }\n',
  'main/hello-test.cc': '#include "lib/hello-greet.h"\nint main() { return greeting("x") == "Hello x" ? 0 : 1; }\n',
};

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
  }
}

export interface BazelResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export class BazelWorkspace {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bazel-'));
  readonly workspace = path.join(this.root, 'ws');
  readonly outputBase = path.join(this.root, 'ob');
  readonly javabase: string;
  /** A duration no other process on the machine sleeps for, to find our genrule's sleep. */
  readonly sleepSeconds = `30.${process.pid}${Date.now() % 1000}`;
  /** Build options every build and test here takes (no sandbox debug output). */
  readonly buildOptions: string[];

  /** `env` points the proxy at a stack: RBS_HOME, RBS_ORCHESTRATOR, RBS_CREDENTIALS. */
  constructor(readonly env: NodeJS.ProcessEnv) {
    this.javabase = execFileSync(process.execPath, [RBS, 'javabase'], { env, encoding: 'utf8' }).trim();
    this.buildOptions = ['--nosandbox_debug'];
    writeFiles(this.workspace, {
      ...stubFiles(),
      ...CC_PROJECT,
      'in.txt': 'hello\n',
      BUILD: [
        'genrule(name = "gen", srcs = ["in.txt"], outs = ["gen.txt"], cmd = "cp $< $@")',
        `genrule(name = "slow", outs = ["slow.txt"], cmd = "sleep ${this.sleepSeconds}; touch $@")`,
        'sh_test(name = "pass", srcs = ["pass.sh"])',
        'sh_test(name = "fail", srcs = ["fail.sh"])',
      ].join('\n'),
      'pass.sh': '#!/bin/sh\nexit 0\n',
      'fail.sh': '#!/bin/sh\nexit 1\n',
      'broken/BUILD': 'genrule(name = "x", outs = [\n',
    });
  }

  /** Starts the stock client with the proxy as its server; startup options go before the command. */
  start(args: string[], startupOptions: string[] = []): { child: ChildProcess; done: Promise<BazelResult> } {
    return this.client([`--output_base=${this.outputBase}`, `--server_javabase=${this.javabase}`, ...startupOptions, ...args]);
  }

  bazel(args: string[], startupOptions: string[] = []): Promise<BazelResult> {
    return this.start(args, startupOptions).done;
  }

  /** A plain local Bazel in its own output base, for comparison. */
  local(args: string[]): Promise<BazelResult> {
    return this.client([`--output_base=${path.join(this.root, 'local-ob')}`, ...args]).done;
  }

  private client(argv: string[]): { child: ChildProcess; done: Promise<BazelResult> } {
    const started = Date.now();
    const child = spawn('/usr/bin/bazel', argv, { cwd: this.workspace, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const done = new Promise<BazelResult>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started })),
    );
    return { child, done };
  }

  /** A file the proxy (or the client) wrote into the server directory, or undefined. */
  serverFile(name: string, outputBase = this.outputBase): string | undefined {
    const file = path.join(outputBase, 'server', name);
    return fs.existsSync(file) ? fs.readFileSync(file, 'latin1') : undefined;
  }

  proxyPid(): number {
    const pid = Number(this.serverFile('server.pid.txt'));
    if (!pid) throw new Error(`no proxy published in ${this.outputBase}`);
    return pid;
  }

  /** Pids of our genrule's sleep. */
  sleepers(): number[] {
    return pidsWhere((cmdline) => cmdline === `sleep\0${this.sleepSeconds}\0`);
  }

  /** Kills every process started for this workspace (proxies, local servers, clients) and deletes it. */
  destroy(): void {
    for (const pid of [...pidsWhere((cmdline) => cmdline.includes(this.root)), ...this.sleepers()]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'latin1').includes(') Z ');
  } catch {
    return false;
  }
}

/** Bazel servers of `outputBase`, as /proc shows them (not as the files on the output base say). */
export function bazelServersOn(outputBase: string): number[] {
  return pidsWhere((cmdline) => {
    const argv = cmdline.split('\0');
    return argv.includes(`--output_base=${outputBase}`) && argv.some((arg) => arg.endsWith('/A-server.jar'));
  });
}

/** A workspace of a new user `name` of `stack`, whose proxy gets its sessions from that stack; `env` adds to the proxy's. */
export function workspaceOfNewUser(stack: TestStack, name: string, env: NodeJS.ProcessEnv = {}): Promise<BazelWorkspace> {
  return workspaceOfUser({ home: stack.config.home, ca: stack.ca, orchestrator: stack.orchestrator.address }, name, env);
}

/** The same for any control plane: its RBS_HOME, its CA and the orchestrator's address. */
export async function workspaceOfUser(
  controlPlane: { home: string; ca: CertificateAuthority; orchestrator: string },
  name: string,
  env: NodeJS.ProcessEnv = {},
): Promise<BazelWorkspace> {
  const { home, ca, orchestrator } = controlPlane;
  const credentials = path.join(home, 'credentials', name);
  await writeTlsMaterial(credentials, 'user', { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user: name, operator: false })) });
  return new BazelWorkspace({ ...process.env, RBS_HOME: home, RBS_ORCHESTRATOR: orchestrator, RBS_CREDENTIALS: credentials, ...env });
}

/** Where the READY session of `ws` keeps it: its copy and Bazel's output base, on the volume. */
export async function remoteOf(stack: TestStack, ws: BazelWorkspace) {
  const [session] = (await stack.worker.store.list()).filter((s) => s.workspace === ws.workspace && s.phase === 'READY');
  if (!session) throw new Error(`no READY session for ${ws.workspace}`);
  const volume = path.join(stack.config.home, 'volumes', session.volume);
  return { session, workspace: path.join(volume, 'workspace'), outputBase: path.join(volume, 'output_base') };
}
