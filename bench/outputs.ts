/**
 * Outputs benchmark: 1 GiB of top-level outputs (four 256 MiB files a genrule writes) fetched to
 * the laptop through RBS, against plain local `rsync -a` of the same files and against the same pull
 * through native relays, the ceiling of any transport here (transport-ceiling.ts), interleaved in one run;
 * the proxy's peak memory (VmHWM) meanwhile; and the no-op build of the 10,000-file workspace
 * through RBS against local Bazel, with outputs fetched (toplevel, the default).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { remoteOf } from '../test/data-path/fixture';
import { noopBuilds, withBazelStack, writeTenThousandFiles } from './bazel-stack';
import { percentile, report } from './stats';
import { RELAYS, type Relay, startTransportCeiling } from './transport-ceiling';

const FETCH_ROUNDS = 3;
const NOOP_ROUNDS = 5;
const FILES = 4;
const FILE_BYTES = 256 * 1024 * 1024;

export async function benchOutputs(): Promise<void> {
  const rows = await withBazelStack(async (ws, stack) => {
    const outs = Array.from({ length: FILES }, (_, i) => `"big${i}.bin"`);
    fs.mkdirSync(path.join(ws.workspace, 'large'));
    fs.writeFileSync(
      path.join(ws.workspace, 'large', 'BUILD'),
      `genrule(name = "large", outs = [${outs.join(', ')}], cmd = "for f in $(OUTS); do head -c ${FILE_BYTES} /dev/urandom > $$f; done")\n`,
    );
    const build = ['build', ...ws.buildOptions, '//large'];
    const first = await ws.bazel(build);
    if (first.code !== 0) throw new Error(`the build of //large failed: ${first.stderr}`);
    const laptopDir = path.join(ws.outputBase, 'execroot', '__main__', 'bazel-out', 'k8-fastbuild', 'bin', 'large');
    const agentDir = path.join((await remoteOf(stack, ws)).outputBase, 'execroot', '__main__', 'bazel-out', 'k8-fastbuild', 'bin', 'large');
    const plainDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-plain-'));

    const viaRbs: number[] = [];
    const plain: number[] = [];
    const relayed: Record<Relay, number[]> = { tcp: [], 'socat-tls': [], 'node-tls': [] };
    const ceiling = await startTransportCeiling(agentDir);
    try {
      for (let i = 0; i < FETCH_ROUNDS; i++) {
        // The laptop's copies gone, the next (remotely no-op) build fetches all of them again.
        fs.rmSync(laptopDir, { recursive: true, force: true });
        const again = await ws.bazel(build);
        const fetched = lastFetch(ws.serverFile('jvm.out') ?? '');
        if (again.code !== 0 || fetched?.bytes !== FILES * FILE_BYTES)
          throw new Error(`round ${i}: expected ${FILES * FILE_BYTES} bytes fetched, got ${JSON.stringify(fetched)}: ${again.stderr}`);
        viaRbs.push(fetched.ms);
        fs.rmSync(plainDir, { recursive: true, force: true });
        const started = performance.now();
        await promisify(execFile)('rsync', ['-a', `${agentDir}/`, `${plainDir}/`]);
        plain.push(performance.now() - started);
        for (const relay of RELAYS) {
          fs.rmSync(plainDir, { recursive: true, force: true });
          relayed[relay].push(await ceiling.pull(relay, plainDir));
          const bytes = fs.readdirSync(plainDir).reduce((sum, name) => sum + fs.statSync(path.join(plainDir, name)).size, 0);
          if (bytes !== FILES * FILE_BYTES) throw new Error(`round ${i}: the ${relay} relay brought ${bytes} bytes, not ${FILES * FILE_BYTES}`);
        }
      }
      const hwm = peakMemoryKiB(ws.proxyPid());
      const { viaRbs: noopRbs, local: noopLocal } = await noopBuilds(ws, writeTenThousandFiles(ws), NOOP_ROUNDS);
      const noopFetched = lastFetch(ws.serverFile('jvm.out') ?? '');
      const median = (xs: number[]) => percentile(xs, 50);
      const gib = (FILES * FILE_BYTES) / 2 ** 30;
      return [
        { metric: `fetch ${gib} GiB of top-level outputs: RBS (median)`, value: median(viaRbs), unit: 'ms' },
        { metric: `same files, plain local rsync -a (median)`, value: median(plain), unit: 'ms' },
        { metric: 'fetch throughput vs plain rsync', value: median(plain) / median(viaRbs), unit: 'x', aim: '>= 0.8' },
        ...RELAYS.flatMap((relay) => [
          { metric: `same pull through ${RELAY_NAMES[relay]} (median)`, value: median(relayed[relay]), unit: 'ms' },
          { metric: `  its throughput vs plain rsync`, value: median(plain) / median(relayed[relay]), unit: 'x' },
        ]),
        { metric: 'proxy peak memory (VmHWM) through the fetches', value: hwm / 1024, unit: 'MiB', aim: '<= 150' },
        { metric: 'no-op build, 10k files, outputs toplevel: RBS (median)', value: median(noopRbs), unit: 'ms' },
        { metric: 'no-op build, 10k files: local Bazel (median)', value: median(noopLocal), unit: 'ms' },
        { metric: 'no-op build ratio RBS / local, outputs toplevel', value: median(noopRbs) / median(noopLocal), unit: 'x', aim: '<= 1.10' },
        { metric: 'output bytes fetched by the last no-op build', value: noopFetched?.bytes ?? NaN, unit: 'bytes', aim: '0' },
      ];
    } finally {
      ceiling.stop();
      fs.rmSync(plainDir, { recursive: true, force: true });
    }
  });
  report('outputs', rows, { fetchRounds: FETCH_ROUNDS, noopRounds: NOOP_ROUNDS, files: FILES, fileBytes: FILE_BYTES, cpus: os.cpus().length });
}

const RELAY_NAMES: Record<Relay, string> = {
  'socat-tls': 'socat mTLS relays (OpenSSL, no Node)',
  'node-tls': 'Node mTLS relays, raw bytes (no gRPC)',
  tcp: 'socat TCP relays (no encryption)',
};

/** The proxy's last "fetched N files (B bytes) in X ms" line: X is the whole outputs step (list, fetch, links). */
function lastFetch(log: string): { files: number; bytes: number; ms: number } | undefined {
  const last = [...log.matchAll(/fetched (\d+) files \((\d+) bytes\) in (\d+) ms/g)].at(-1);
  return last && { files: Number(last[1]), bytes: Number(last[2]), ms: Number(last[3]) };
}

function peakMemoryKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!hwm) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(hwm[1]);
}
