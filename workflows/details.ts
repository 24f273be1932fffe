/**
 * What the Temporal UI shows of a session: a static summary and details given when its workflow
 * starts, and current details the workflow keeps up to date (setCurrentDetails). Pure, so that
 * the orchestrator, the workflow and the tests share one wording.
 */
import type { ActivityFunctionWithOptions, ActivityInterfaceFor, LocalActivityInterfaceFor } from '@temporalio/workflow';
import type { Session } from '../lib/domain';

/**
 * A value shown as itself: an inline code span whose fence is longer than any run of backticks in
 * it, on one line. A workspace path or a failure text is the user's or a build's, and must not be
 * read as markdown (a link, an image, a heading) by the UI an operator trusts.
 */
export function literal(value = ''): string {
  const flat = value.replace(/\s*[\r\n]+\s*/g, ' ');
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  // A span that starts or ends with a backtick needs a space inside its fence (CommonMark strips it).
  const pad = /^`|`$/.test(flat) ? ' ' : '';
  return `${fence}${pad}${flat}${pad}${fence}`;
}

/** At most `max` code points of `value`, its end kept: a path's last segments say the most. */
export function tail(value: string, max: number): string {
  const points = Array.from(value);
  return points.length <= max ? value : `…${points.slice(-(max - 1)).join('')}`;
}

/** A summary the UI lists, well within what servers accept (a workspace path may be 4 KiB). */
const SUMMARY_WORKSPACE_CHARS = 200;

/** A time as the UI shows it. A deadline past what a Date holds (a retention of ~285,000 years) must not throw in the workflow. */
export function at(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : 'never';
}

/** One line for the workflow list: whose session, of which workspace. Both are the user's text. */
export function sessionSummary(user: string, workspace: string): string {
  return `${literal(user)}: ${literal(tail(workspace, SUMMARY_WORKSPACE_CHARS))}`;
}

/** Fixed for the workflow's life: where the session lives. */
export function sessionStaticDetails(placement: { namespace: string; volume: string }): string {
  return [`Namespace: ${literal(placement.namespace)}`, `Volume: ${literal(placement.volume)}`].join('\n\n');
}

export interface SessionMoment {
  session: Session;
  /** The compute backend the worker runs sessions on ('local', 'kubernetes'), if known. */
  backend?: string;
  /** When a READY session without activity is suspended. */
  idleDeadlineMs?: number;
  /** When a SUSPENDED session that nobody wants back ends. */
  retentionDeadlineMs?: number;
  /** The step running now, e.g. "replacing the agent, which did not answer". */
  step?: string;
}

/** Markdown for setCurrentDetails: the phase and what it waits for, the agent, the last activity. */
export function sessionCurrentDetails({ session, backend, idleDeadlineMs, retentionDeadlineMs, step }: SessionMoment): string {
  const lines = [`**${session.phase}**${step ? `: ${step}` : ''}`];
  if (session.agentAddress) lines.push(`Agent: ${literal(session.agentAddress)}${backend ? ` (${backend} backend)` : ''}`);
  else if (backend) lines.push(`Backend: ${backend}`);
  lines.push(`Last activity: ${at(session.lastActivityAtMs)}`);
  if (session.phase === 'READY' && idleDeadlineMs !== undefined) lines.push(`Suspended if idle until: ${at(idleDeadlineMs)}`);
  if (session.phase === 'SUSPENDED' && retentionDeadlineMs !== undefined) lines.push(`Ends if not used again by: ${at(retentionDeadlineMs)}`);
  if (session.endReason) lines.push(`End reason: ${session.endReason}`);
  if (session.failureReason) lines.push(`Reason: ${literal(session.failureReason)}`);
  lines.push(`Session: ${literal(session.sessionId)}`);
  return lines.join('\n\n');
}

/** What an activity is given: a session's ref, the volume and workspace to sync, an orphan's id. */
interface ActivityTarget {
  namespace?: string;
  volume?: string;
  workspace?: string;
  sessionId?: string;
  id?: string;
  orphanOf?: string;
}

const ACTIVITY_SUMMARIES: Partial<Record<string, (target: ActivityTarget) => string>> = {
  createNamespace: (t) => `create namespace ${literal(t.namespace)}`,
  deleteNamespace: (t) =>
    `delete namespace ${literal(t.namespace)} and everything in it${t.orphanOf === undefined ? '' : `, if still the leftover of session ${literal(t.orphanOf)}`}`,
  bindVolume: (t) => `bind volume ${literal(t.volume)}`,
  issueAgentCredentials: (t) => `issue the agent's certificate in ${literal(t.namespace)}`,
  startAgent: (t) => `start the agent in ${literal(t.namespace)}`,
  waitForAgent: (t) => `wait for the agent in ${literal(t.namespace)} to answer`,
  probeAgent: (t) => `probe the agent in ${literal(t.namespace)}`,
  stopAgent: (t) => `stop the agent in ${literal(t.namespace)}`,
  syncWorkspace: (t) => `sync ${literal(t.workspace)} to volume ${literal(t.volume)}`,
  deleteVolume: (t) => `delete volume ${literal(t.volume)} (backed up first where configured)`,
  claimVolume: (t) => `claim volume ${literal(t.volume)} for session ${literal(t.sessionId)}`,
  releaseVolume: (t) => `release volume ${literal(t.volume)}`,
  measureVolume: (t) => `measure volume ${literal(t.volume)}`,
  sessionUse: (t) => `check whether session workflow ${literal(t.id)} runs`,
  killAgent: (t) => `kill the orphaned agent ${literal(`${t.namespace}/${t.id}`)}`,
  deleteSessionRow: (t) => `delete the store row of ended session ${literal(t.id)}`,
  deleteVolumeRecord: (t) => `delete the store row of removed volume ${literal(t.id)}`,
  adoptVolume: (t) => `give volume ${literal(t.volume)} an owner`,
  restartVolumeOwner: (t) => `restart the stopped owner of volume ${literal(t.volume)}`,
};

/** A one-line summary the Temporal UI shows beside an activity, from its first argument. */
export function activitySummary(activity: string, arg: unknown): string | undefined {
  const summary = ACTIVITY_SUMMARIES[activity];
  if (!summary) return undefined;
  if (typeof arg === 'string') return summary({ id: arg });
  return typeof arg === 'object' && arg !== null ? summary(arg as ActivityTarget) : undefined;
}

/** The same activities, local or not, each scheduled with its summary (activitySummary). */
export function summarized<I extends ActivityInterfaceFor<object> | LocalActivityInterfaceFor<object>>(activities: I): I {
  return new Proxy(activities, {
    get(target, name) {
      const activity = target[name as keyof I] as ActivityFunctionWithOptions<(...args: unknown[]) => Promise<unknown>>;
      return (...args: unknown[]) => activity.executeWithOptions({ summary: activitySummary(String(name), args[0]) }, args);
    },
  });
}

/** What the last cleanup pass found and removed, for its run's current details. */
export function cleanupDetails(
  found: { namespaces: string[]; agents: string[]; sessionRows: string[] },
  removed: boolean,
  shares?: { orphans: string[]; unattributed: string[] },
  volumes?: { adopted: string[]; restarted: string[]; expiredRows: string[] },
  spared?: { namespaces: string[]; agents: string[] },
): string {
  const list = (what: string, items: string[]) => `${what}: ${items.length === 0 ? 'none' : items.map((item) => literal(item)).join(', ')}`;
  const lines = [
    removed ? '**Removed**' : '**Found, removing**',
    list('Namespaces', found.namespaces),
    list('Agents', found.agents),
    list('Store rows', found.sessionRows),
  ];
  const keptItems = spared ? [...spared.namespaces, ...spared.agents] : [];
  if (keptItems.length > 0) lines.push(list("Kept, another session's by the time of removal", keptItems));
  if (volumes) {
    lines.push(
      list('Volumes given an owner', volumes.adopted),
      list('Volume owners restarted', volumes.restarted),
      list('Expired store rows', volumes.expiredRows),
    );
  }
  if (shares) lines.push(list('Filestore shares no session accounts for (left to an operator)', [...shares.orphans, ...shares.unattributed]));
  return lines.join('\n\n');
}
