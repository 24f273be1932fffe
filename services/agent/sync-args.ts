/**
 * What the agent's rsync may be asked to do. Sync: the proxy's rsync (services/proxy/sync.ts) asks
 * its remote shell for `rsync --server -ltEre.iLsfxCIvu --delete . .`, a push into the workspace.
 * Fetch: the proxy's rsync (services/proxy/fetch.ts) asks for
 * `rsync --server --sender -ltrRe.iLsfxCIvu --safe-links --files-from=- --from0 . .`, a pull of the
 * paths it names from the output base. Only those shapes are accepted, parsed strictly rather than
 * filtered for known-bad options, so a proxy can neither swap the two roles, aim either elsewhere,
 * nor enable an option that reaches outside (temp, partial, backup or log files, following links).
 */
import type { SyncStart__Output } from '../../gen/proto/rbs/v1/SyncStart';

export class RefusedSyncError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedSyncError';
  }
}

interface Shape {
  /** What is asked for, for messages. */
  what: string;
  /** The words that start the arguments. */
  head: string[];
  /** Letters allowed in the one short-option cluster. */
  letters: Set<string>;
  /** Long options allowed; `required` ones must be there. */
  long: Set<string>;
  required: string[];
  /** Added whatever the proxy asks. */
  forced: string[];
}

/**
 * Sync's cluster letters: recursive, links, times, executability, and ignore-times (a sync of the
 * paths the proxy saw change transfers them even where size and mtime agree). Refused with them:
 * -p/-o/-g/-D (the laptop's modes, setuid bits, ids and device nodes), -R/-K (write through
 * receiver-side symlinks), -s (arguments over the protocol, past this check) and the rest. Forced:
 * --safe-links, so symlinks pointing outside the workspace (absolute, or climbing above it) are
 * skipped and no sync plants an escape for a later sync or for the build; in-tree relative links,
 * which workspaces do use, still arrive working.
 */
const SYNC: Shape = {
  what: 'a workspace push',
  head: ['--server'],
  letters: new Set('rltEI'),
  long: new Set(['--delete']),
  required: [],
  forced: ['--safe-links'],
};

/**
 * Fetch's: links, times, recursive (into tree artifacts and runfiles the proxy names) and the
 * relative paths --files-from implies. The names arrive over the protocol (`--files-from=-`,
 * NUL-separated), as the proxy checked them. Forced: --copy-unsafe-links, so a link pointing
 * outside the output base (a runfiles link into the agent's workspace, say) arrives as the file it
 * names, not as a link to a path that means nothing on the laptop.
 */
const FETCH: Shape = {
  what: 'an output fetch',
  head: ['--server', '--sender'],
  letters: new Set('ltrR'),
  long: new Set(['--safe-links', '--files-from=-', '--from0']),
  required: ['--files-from=-', '--from0'],
  forced: ['--copy-unsafe-links'],
};

/** The cluster ends in -e, which for a server carries protocol compatibility flags, not a shell. */
const COMPAT_FLAGS = /^e(?:\d+\.\d+|\.)[A-Za-z]*$/;
/** rsync's placeholder for the (absent) source, then the destination: the directory it runs in. */
const PATHS = ['.', '.'];

/** The proxy's name for a sync or fetch; the agent's Run checks a sync's, so it is kept short and printable. */
const SYNC_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** The sync's id and the arguments for the receiving `rsync`; throws RefusedSyncError. */
export function checkSyncStart(start: SyncStart__Output): { syncId: string; baseSyncId: string; rsyncArgs: string[] } {
  if (start.baseSyncId && !SYNC_ID.test(start.baseSyncId)) {
    throw new RefusedSyncError(`base_sync_id ${JSON.stringify(start.baseSyncId)} is not 1-128 of [A-Za-z0-9._:-]`);
  }
  return { ...checkStart(start, SYNC), baseSyncId: start.baseSyncId };
}

/** The fetch's id and the arguments for the sending `rsync`; throws RefusedSyncError. */
export function checkFetchStart(start: SyncStart__Output): { syncId: string; rsyncArgs: string[] } {
  return checkStart(start, FETCH);
}

function checkStart(start: SyncStart__Output, shape: Shape): { syncId: string; rsyncArgs: string[] } {
  if (!SYNC_ID.test(start.syncId)) {
    throw new RefusedSyncError(`sync_id ${JSON.stringify(start.syncId)} is not 1-128 of [A-Za-z0-9._:-]`);
  }
  const head = start.serverArgs.slice(0, shape.head.length);
  const rest = start.serverArgs.slice(shape.head.length);
  const badHead = shape.head.findIndex((word, i) => head[i] !== word);
  if (badHead >= 0) refuse(head[badHead] ?? '(none)', `server_args must start with ${shape.head.join(' ')}`);
  const firstPath = rest.findIndex((arg) => !arg.startsWith('-'));
  const options = firstPath < 0 ? rest : rest.slice(0, firstPath);
  const paths = firstPath < 0 ? [] : rest.slice(firstPath);
  const clusters = options.filter((arg) => !arg.startsWith('--'));
  clusters.forEach((cluster) => checkCluster(cluster, shape.letters));
  if (clusters.length === 0) throw new RefusedSyncError('server_args have no short-option cluster');
  if (clusters.length > 1) refuse(clusters[1], 'only one short-option cluster is allowed');
  const long = options.find((arg) => arg.startsWith('--') && !shape.long.has(arg));
  if (long !== undefined) refuse(long, `${shape.what} uses no long option but ${[...shape.long].join(', ') || 'none'}`);
  const missing = shape.required.find((option) => !options.includes(option));
  if (missing !== undefined) throw new RefusedSyncError(`${shape.what} needs ${missing} in its server_args`);
  const badPath = paths.find((arg, i) => arg !== PATHS[i]);
  if (badPath !== undefined) refuse(badPath, `the paths must be '${PATHS.join(' ')}', the directory the agent chose`);
  if (paths.length !== PATHS.length) {
    throw new RefusedSyncError(`server_args must end with '${PATHS.join(' ')}', got '${paths.join(' ')}'`);
  }
  return { syncId: start.syncId, rsyncArgs: [...shape.head, ...options, ...shape.forced, ...paths] };
}

function checkCluster(arg: string, allowed: Set<string>): void {
  const letters = arg.slice(1);
  if (letters === '') refuse(arg, 'empty option cluster');
  const compat = letters.indexOf('e');
  const flags = compat < 0 ? letters : letters.slice(0, compat);
  const bad = [...flags].find((letter) => !allowed.has(letter));
  if (bad !== undefined) refuse(arg, `option -${bad} is not allowed (only -${[...allowed].join('')})`);
  if (compat >= 0 && !COMPAT_FLAGS.test(letters.slice(compat))) refuse(arg, 'malformed -e protocol flags');
}

function refuse(arg: string, why: string): never {
  throw new RefusedSyncError(`refused rsync server argument ${JSON.stringify(arg)}: ${why}`);
}
