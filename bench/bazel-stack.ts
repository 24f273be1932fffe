/**
 * What the Bazel benchmarks share: the whole stack on this machine (a Temporal dev server, the
 * orchestrator, worker and agents) with one user's workspace driven by the stock client, and the
 * generated 10,000-file workspace of the no-op figures.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeTlsMaterial } from '../lib/grpc/tls';
import { startTemporalDevServer } from '../lib/local/temporal-dev-server';
import { BazelWorkspace, writeFiles } from '../test/data-path/fixture';
import { type TestStack, startStack } from '../test/harness/stack';

/** Runs `use` with a fresh stack (its own Temporal dev server; `env` adds to its config), then stops it. */
export async function withStack<T>(use: (stack: TestStack) => Promise<T>, env: Record<string, string> = {}): Promise<T> {
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-data-'));
  const temporal = await startTemporalDevServer({ logFile: path.join(logs, 'temporal.log') });
  process.env.RBS_TEST_TEMPORAL_ADDRESS = temporal.address;
  const stack = await startStack(env);
  try {
    return await use(stack);
  } finally {
    await stack.stop();
    await temporal.child.stop();
  }
}

/** Runs `use` with a fresh workspace whose proxy gets its sessions from a fresh stack, then stops everything. */
export function withBazelStack<T>(use: (ws: BazelWorkspace, stack: TestStack) => Promise<T>): Promise<T> {
  return withStack(async (stack) => {
    const credentials = path.join(stack.config.home, 'credentials', 'bench');
    await writeTlsMaterial(credentials, 'user', { caCertPem: stack.ca.certPem, ...(await stack.ca.issue({ kind: 'user', user: 'bench', operator: false })) });
    const ws = new BazelWorkspace({ ...process.env, RBS_HOME: stack.config.home, RBS_ORCHESTRATOR: stack.orchestrator.address, RBS_CREDENTIALS: credentials });
    try {
      return await use(ws, stack);
    } finally {
      ws.destroy();
    }
  });
}

/**
 * 10,000 sources in 100 packages, each gathered by a filegroup that one genrule depends on;
 * returns the build command of that genrule.
 */
export function writeTenThousandFiles(ws: BazelWorkspace): string[] {
  for (let p = 0; p < 100; p++) {
    const files: Record<string, string> = { BUILD: 'filegroup(name = "srcs", srcs = glob(["*.txt"]), visibility = ["//visibility:public"])\n' };
    for (let i = 0; i < 100; i++) files[`f${i}.txt`] = `package ${p} file ${i}\n`;
    writeFiles(path.join(ws.workspace, 'big', `p${p}`), files);
  }
  const srcs = Array.from({ length: 100 }, (_, p) => `"//big/p${p}:srcs"`).join(', ');
  writeFiles(path.join(ws.workspace, 'big'), { BUILD: `genrule(name = "count", srcs = [${srcs}], outs = ["count.txt"], cmd = "ls $(SRCS) | wc -l > $@")\n` });
  return ['build', ...ws.buildOptions, '//big:count'];
}

/** Median no-op build times through RBS and with plain local Bazel, interleaved, after a first build of each. */
export async function noopBuilds(ws: BazelWorkspace, build: string[], rounds: number): Promise<{ viaRbs: number[]; local: number[] }> {
  for (const run of [() => ws.bazel(build), () => ws.local(build)]) {
    const first = await run();
    if (first.code !== 0) throw new Error(`the first build failed: ${first.stderr}`);
  }
  const viaRbs: number[] = [];
  const local: number[] = [];
  for (let i = 0; i < rounds; i++) {
    viaRbs.push((await ws.bazel(build)).ms);
    local.push((await ws.local(build)).ms);
  }
  return { viaRbs, local };
}
