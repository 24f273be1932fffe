/**
 * What a Sync may make the agent run. The proxy's rsync (services/proxy/sync.ts) asks its remote
 * shell for `rsync --server -ltEre.iLsfxCIvu --delete . .`: a push into the workspace. Only that
 * shape is accepted, parsed strictly rather than filtered for known-bad options, so a proxy can
 * neither turn the receiver into a sender, aim it elsewhere, nor enable an option that reaches
 * outside the workspace (temp, partial, backup or log files, --files-from, following symlinks).
 */
import type { SyncStart__Output } from '../../gen/proto/rbs/v1/SyncStart';

export class RefusedSyncError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedSyncError';
  }
}

/**
 * Letters of the short-option cluster: recursive, links, times, executability, and ignore-times
 * (a sync of the paths the proxy saw change transfers them even where size and mtime agree). Refused with them:
 * -p/-o/-g/-D (the laptop's modes, setuid bits, ids and device nodes), -R/-K (write through
 * receiver-side symlinks), -s (arguments over the protocol, past this check) and the rest.
 */
const CLUSTER_LETTERS = new Set('rltEI');
/** The cluster ends in -e, which for a server carries protocol compatibility flags, not a shell. */
const COMPAT_FLAGS = /^e(?:\d+\.\d+|\.)[A-Za-z]*$/;
const LONG_OPTIONS = new Set(['--delete']);
/** rsync's placeholder for the (absent) source, then the destination: the workspace itself. */
const PATHS = ['.', '.'];

/**
 * Forced on the receiver whatever the proxy asks: symlinks pointing outside the workspace
 * (absolute, or climbing above it) are skipped, so no sync plants an escape for a later sync or
 * for the build. In-tree relative links, which workspaces do use, still arrive working.
 */
const FORCED_OPTIONS = ['--safe-links'];

/** The proxy's name for a sync; the agent's Run checks it, so it is kept short and printable. */
const SYNC_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** The sync's id and the arguments for the receiving `rsync`; throws RefusedSyncError. */
export function checkSyncStart(start: SyncStart__Output): { syncId: string; baseSyncId: string; rsyncArgs: string[] } {
  if (!SYNC_ID.test(start.syncId)) {
    throw new RefusedSyncError(`sync_id ${JSON.stringify(start.syncId)} is not 1-128 of [A-Za-z0-9._:-]`);
  }
  if (start.baseSyncId && !SYNC_ID.test(start.baseSyncId)) {
    throw new RefusedSyncError(`base_sync_id ${JSON.stringify(start.baseSyncId)} is not 1-128 of [A-Za-z0-9._:-]`);
  }
  const [server, ...rest] = start.serverArgs;
  if (server !== '--server') refuse(server ?? '(none)', 'server_args must start with --server');
  const firstPath = rest.findIndex((arg) => !arg.startsWith('-'));
  const options = firstPath < 0 ? rest : rest.slice(0, firstPath);
  const paths = firstPath < 0 ? [] : rest.slice(firstPath);
  const clusters = options.filter((arg) => !arg.startsWith('--'));
  clusters.forEach(checkCluster);
  if (clusters.length === 0) throw new RefusedSyncError('server_args have no short-option cluster');
  if (clusters.length > 1) refuse(clusters[1], 'only one short-option cluster is allowed');
  const long = options.find((arg) => arg.startsWith('--') && !LONG_OPTIONS.has(arg));
  if (long !== undefined) refuse(long, `a workspace push uses no long option but ${[...LONG_OPTIONS].join(', ')}`);
  const badPath = paths.find((arg, i) => arg !== PATHS[i]);
  if (badPath !== undefined) refuse(badPath, `the paths must be '${PATHS.join(' ')}', the workspace itself`);
  if (paths.length !== PATHS.length) {
    throw new RefusedSyncError(`server_args must end with '${PATHS.join(' ')}', got '${paths.join(' ')}'`);
  }
  return { syncId: start.syncId, baseSyncId: start.baseSyncId, rsyncArgs: [server, ...options, ...FORCED_OPTIONS, ...paths] };
}

function checkCluster(arg: string): void {
  const letters = arg.slice(1);
  if (letters === '') refuse(arg, 'empty option cluster');
  const compat = letters.indexOf('e');
  const flags = compat < 0 ? letters : letters.slice(0, compat);
  const bad = [...flags].find((letter) => !CLUSTER_LETTERS.has(letter));
  if (bad !== undefined) refuse(arg, `option -${bad} is not allowed (only -${[...CLUSTER_LETTERS].join('')})`);
  if (compat >= 0 && !COMPAT_FLAGS.test(letters.slice(compat))) refuse(arg, 'malformed -e protocol flags');
}

function refuse(arg: string, why: string): never {
  throw new RefusedSyncError(`refused rsync server argument ${JSON.stringify(arg)}: ${why}`);
}
