/** `rbs describe SESSION`: the session's timeline, read from its workflow's history. */
import type { SessionTimeline } from '../lib/grpc/orchestrator-client';
import { connect } from '../lib/client-config';
import { printable } from './table';
import { UsageError } from './usage';

/** 1.234 s, 2 min 05 s, 3 h 07 min: as long as it takes to read. */
export function duration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(3)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
}

/** The timeline as a person reads it: phases, then steps, each from the session's start. */
export function formatTimeline(t: SessionTimeline): string {
  const s = t.session!;
  const since = (ms: number) => `+${duration(ms - t.startedAtMs)}`;
  const lines = [`session ${s.sessionId} of ${s.user}, workspace ${s.workspace}`];
  lines.push(`started ${new Date(t.startedAtMs).toISOString()}; now ${s.phase}${t.endReason ? ` (${t.endReason})` : ''}`);
  if (s.failureReason) lines.push(`reason: ${s.failureReason}`);
  if (t.earlierRunsOmitted) lines.push('(its earliest runs are not shown: the session continued as new many times)');
  const count = (n: number, what: string) => (n === 0 ? [] : [`${n} ${what}${n === 1 ? '' : 's'}`]);
  const woken = (p: SessionTimeline['phases'][number]) => {
    const by = [...count(p.heartbeats, 'heartbeat'), ...count(p.getServerCalls, 'GetServer call')];
    return by.length === 0 ? '' : `${by.join(', ')}, the last at ${new Date(p.lastWakeMs).toISOString()}`;
  };
  lines.push(
    '',
    ...table([
      ['PHASE', 'FROM', 'FOR', 'KEPT AWAKE BY'],
      ...t.phases.map((p) => [p.phase, since(p.startMs), `${duration(p.durationMs)}${p.ongoing ? ' so far' : ''}`, woken(p)]),
    ]),
  );
  const steps = t.steps.map((step) => [
    since(step.startMs),
    duration(step.durationMs),
    step.attempts > 1 ? `${step.outcome} (attempt ${step.attempts})` : step.outcome,
    `${step.summary || step.activity}${step.failure ? `: ${step.failure}` : ''}`,
  ]);
  lines.push('', ...table([['STEP AT', 'TOOK', 'OUTCOME', 'WHAT'], ...steps]));
  if (t.stepsOmitted > 0) lines.push(`(and ${t.stepsOmitted} earlier steps)`);
  if (t.commands.length > 0) {
    const commands = t.commands.map((c) => [since(c.endedAtMs - c.durationMs), duration(c.durationMs), String(c.exitCode), c.verb]);
    lines.push('', ...table([['COMMAND AT', 'TOOK', 'EXIT', 'COMMAND'], ...commands]));
  }
  return lines.map(printable).join('\n');
}

export async function describeSession(sessionId: string | undefined, options: { json?: boolean }): Promise<void> {
  if (!sessionId) throw new UsageError('usage: rbs describe SESSION [--json]');
  const client = await connect();
  try {
    const timeline = await client.describeSessionTimeline(sessionId);
    console.log(options.json ? JSON.stringify(timeline) : formatTimeline(timeline));
  } finally {
    client.close();
  }
}
