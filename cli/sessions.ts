/** The session commands: get-server, sessions, end. */
import * as fs from 'node:fs';
import { WAITING_FOR } from '../lib/domain';
import type { Session } from '../lib/grpc/orchestrator-client';
import { connect } from '../lib/client-config';
import { printable, printTable } from './table';
import { UsageError } from './usage';

function summary(s: Session) {
  return {
    sessionId: s.sessionId,
    state: s.phase,
    user: s.user,
    workspace: s.workspace,
    namespace: s.namespace,
    volume: s.volume,
    agentAddress: s.agentAddress,
    failureReason: s.failureReason,
    endReason: s.endReason,
    lastActivity: new Date(s.lastActivityAtMs).toISOString(),
  };
}

export async function getServer(options: { workspace?: string; json?: boolean }): Promise<void> {
  const dir = options.workspace ?? process.cwd();
  let workspace: string;
  try {
    workspace = fs.realpathSync(dir);
  } catch {
    throw new UsageError(`workspace ${dir} does not exist`);
  }
  const client = await connect();
  try {
    // Progress goes to stderr while GetServer waits, so --json output stays one object on stdout.
    const watch = options.json ? null : client.watch({ workspace }, (s) => process.stderr.write(`  ${WAITING_FOR[s.phase] ?? s.phase.toLowerCase()}\n`));
    // Progress is best-effort (say, past the WatchSession stream limit): GetServer's answer decides.
    watch?.done.catch(() => undefined);
    const session = await client.getServer(workspace).finally(() => watch?.cancel());
    if (options.json) {
      console.log(JSON.stringify(summary(session)));
    } else {
      console.log(printable(`session ${session.sessionId} is ${session.phase}: agent ${session.agentAddress}, namespace ${session.namespace}`));
    }
  } finally {
    client.close();
  }
}

export async function listSessions(options: { json?: boolean; all?: boolean; finished?: boolean }): Promise<void> {
  const client = await connect();
  try {
    const sessions = (await client.listSessions({ allUsers: options.all, includeFinished: options.finished })).map(summary);
    if (options.json) {
      console.log(JSON.stringify(sessions));
      return;
    }
    const rows = [['SESSION', 'STATE', 'USER', 'LAST ACTIVITY', 'WORKSPACE']];
    for (const s of sessions) rows.push([s.sessionId, s.endReason ? `${s.state} (${s.endReason})` : s.state, s.user, s.lastActivity, s.workspace]);
    printTable(rows);
  } finally {
    client.close();
  }
}

export async function endSession(sessionId: string | undefined): Promise<void> {
  if (!sessionId) throw new UsageError('usage: rbs end SESSION');
  const client = await connect();
  try {
    const session = await client.endSession(sessionId);
    console.log(printable(`session ${session.sessionId} is ${session.phase}`));
  } finally {
    client.close();
  }
}
