/**
 * What `bazel info` says that no path mapping can make true on the laptop. Values under the
 * workspace and output base are rewritten (laptop-output.ts); these name the remote machine's own
 * places, or files that exist only there, so the developer is told rather than misled.
 */

/** Keys whose values are places of the machine that runs the server, with no laptop counterpart. */
const REMOTE_PLACES = ['install_base', 'output_user_root', 'java-home'];
/** Keys whose (rewritten) paths name files the remote server writes, which are not on the laptop. */
const REMOTE_FILES = ['server_log', 'command_log'];

/** The note to add to `bazel info …`'s stderr, or '' when every key it prints is right for the laptop. */
export function infoNote(args: string[]): string {
  const [command, ...rest] = args;
  if (command !== 'info') return '';
  const end = rest.indexOf('--') < 0 ? rest.length : rest.indexOf('--');
  const keys = rest.slice(0, end).filter((arg) => !arg.startsWith('-'));
  const shown = (list: string[]) => (keys.length === 0 ? list : list.filter((key) => keys.includes(key)));
  const places = shown(REMOTE_PLACES);
  const files = shown(REMOTE_FILES);
  const notes = [
    places.length ? `${places.join(', ')} ${places.length > 1 ? 'are places' : 'is a place'} on the remote machine that runs the build, not on this one` : '',
    files.length ? `${files.join(', ')} ${files.length > 1 ? 'name files' : 'names a file'} that only the remote machine has` : '',
  ].filter(Boolean);
  return notes.length ? `RBS: ${notes.join('; ')}.\n` : '';
}
