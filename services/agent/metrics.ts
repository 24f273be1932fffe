/**
 * What the agent measures for Prometheus: the bytes and time of each rsync transfer (a workspace
 * Sync in, an output Fetch out) and each Bazel command's duration and exit code. Labels take only
 * known values: a command or exit code the agent does not know is counted as 'other'.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { BUILDING_COMMANDS } from '../../lib/bazel/options';
import { DURATION_BUCKETS_SECONDS, boundedLabel, processRegistry } from '../../lib/metrics/registry';

export type TransferKind = 'sync' | 'fetch';
export type TransferOutcome = 'ok' | 'failed' | 'cancelled';

/** One transfer's measurement: bytes as they pass, then how it ended (counted once). */
export interface TransferMeasure {
  received(bytes: number): void;
  sent(bytes: number): void;
  done(outcome: TransferOutcome): void;
}

const COMMANDS: ReadonlySet<string> = new Set([
  ...BUILDING_COMMANDS,
  ...['analyze-profile', 'canonicalize-flags', 'clean', 'dump', 'help', 'info', 'license', 'mod', 'query', 'shutdown', 'sync', 'version'],
]);
/** The exit code of a command whose Bazel server failed under it: it has none. */
export const SERVER_FAILED = 'server_failed';
/** Bazel's documented exit codes (src/main/java/com/google/devtools/build/lib/util/ExitCode.java), and ours. */
const EXIT_CODES: ReadonlySet<string> = new Set([
  '0',
  '1',
  '2',
  '3',
  '4',
  '8',
  '9',
  '32',
  '33',
  '34',
  '35',
  '36',
  '37',
  '38',
  '39',
  '41',
  '45',
  '47',
  SERVER_FAILED,
]);

export class AgentMetrics {
  readonly registry: Registry = processRegistry();
  private readonly bytes = new Counter({
    name: 'rbs_agent_transfer_bytes_total',
    help: 'Bytes of rsync protocol through the agent, by transfer (sync: the workspace in; fetch: outputs out) and direction.',
    labelNames: ['kind', 'direction'] as const,
    registers: [this.registry],
  });
  private readonly transferSeconds = new Histogram({
    name: 'rbs_agent_transfer_duration_seconds',
    help: 'How long each rsync transfer took, by kind and outcome.',
    labelNames: ['kind', 'outcome'] as const,
    buckets: DURATION_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  private readonly commandSeconds = new Histogram({
    name: 'rbs_agent_command_duration_seconds',
    help: 'How long each Bazel command took on the agent, by command and exit code.',
    labelNames: ['command', 'exit_code'] as const,
    buckets: DURATION_BUCKETS_SECONDS,
    registers: [this.registry],
  });

  transfer(kind: TransferKind): TransferMeasure {
    const started = performance.now();
    let ended = false;
    return {
      received: (bytes) => this.bytes.inc({ kind, direction: 'received' }, bytes),
      sent: (bytes) => this.bytes.inc({ kind, direction: 'sent' }, bytes),
      done: (outcome) => {
        if (ended) return;
        ended = true;
        this.transferSeconds.observe({ kind, outcome }, (performance.now() - started) / 1000);
      },
    };
  }

  /** `command`: Bazel's command name, the first argument of its request. */
  commandDone(command: string, exitCode: number | typeof SERVER_FAILED, seconds: number): void {
    this.commandSeconds.observe({ command: boundedLabel(command, COMMANDS), exit_code: boundedLabel(String(exitCode), EXIT_CODES) }, seconds);
  }
}
