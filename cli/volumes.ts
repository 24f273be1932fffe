/** `rbs volumes`: the caller's workspace volumes, which outlive sessions until unused for the retention period. */
import { connect } from '../lib/client-config';
import type { Volume } from '../lib/grpc/orchestrator-client';
import { printTable } from './table';

function summary(v: Volume) {
  const at = (ms: number | string) => (Number(ms) === 0 ? null : new Date(Number(ms)).toISOString());
  return {
    volume: v.volume,
    state: v.state,
    pinned: v.pinned,
    user: v.user,
    workspace: v.workspace,
    lastUsed: at(v.lastUsedAtMs)!,
    removeAt: at(v.removeAtMs),
    sizeBytes: Number(v.sizeBytes) < 0 ? null : Number(v.sizeBytes),
  };
}

/** Bytes in binary units, as Kubernetes quantities read (Gi, Ti). */
function size(bytes: number | null): string {
  if (bytes === null) return '-';
  const units = ['B', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi'];
  let unit = 0;
  let value = bytes;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)}${units[unit]}`;
}

/** What happens to a volume next, in words. */
function fate(v: ReturnType<typeof summary>): string {
  if (v.state === 'REMOVED') return 'removed';
  if (v.state === 'REMOVING') return 'being removed';
  if (v.pinned) return 'kept (pinned)';
  if (v.removeAt === null) return 'in use';
  return `${v.state === 'TRASHED' ? 'removed' : 'trashed'} after ${v.removeAt} unless used`;
}

export async function listVolumes(options: { json?: boolean; all?: boolean }): Promise<void> {
  const client = await connect();
  try {
    const volumes = (await client.listVolumes({ allUsers: options.all })).map(summary);
    if (options.json) {
      console.log(JSON.stringify(volumes));
      return;
    }
    const rows = [['VOLUME', 'STATE', 'SIZE', 'USER', 'LAST USED', 'NEXT', 'WORKSPACE']];
    for (const v of volumes) rows.push([v.volume, v.state, size(v.sizeBytes), v.user, v.lastUsed, fate(v), v.workspace]);
    printTable(rows);
  } finally {
    client.close();
  }
}
