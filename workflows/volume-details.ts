/** What the Temporal UI shows of a volume's owner: pure, like details.ts, whose helpers it shares. */
import { at, literal, sessionSummary } from './details';
import type { VolumeView } from './volume-messages';

/** One line for the workflow list: whose volume, of which workspace. */
export function volumeSummary(user: string, workspace: string): string {
  return `volume of ${sessionSummary(user, workspace)}`;
}

/** Markdown for setCurrentDetails: the state, who holds it, and what happens next, when. */
export function volumeCurrentDetails(view: VolumeView, notRemovable?: string): string {
  const kept = view.pinned ? ' (pinned by an operator)' : notRemovable ? ' (kept: it could not be removed)' : '';
  const lines = [`**${view.state}**${kept}`, `Volume: ${literal(view.volume)}`];
  if (notRemovable) lines.push(`Removal refused: ${literal(notRemovable)}`);
  if (view.holder) lines.push(`Held by session: ${literal(view.holder)}`);
  lines.push(`Last used: ${at(view.lastUsedAtMs)}`);
  if (view.removeAtMs !== null) lines.push(`${view.state === 'TRASHED' ? 'Removed' : 'Trashed'} if not used again by: ${at(view.removeAtMs)}`);
  return lines.join('\n\n');
}
