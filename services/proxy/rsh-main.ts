/** The remote-shell program that syncWorkspace hands rsync as `-e`; see rsh.ts. */
import { runRsh } from './rsh';

runRsh(process.argv.slice(2), process.env).then((code) => process.exit(code));
