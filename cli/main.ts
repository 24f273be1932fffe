/** `rbs`: the command line of the Remote Build Server. */
import * as grpc from '@grpc/grpc-js';
import { parseArgs } from 'node:util';
import { SetupError } from '../lib/client-config';
import { InvalidInputError } from '../lib/validate';
import { admin } from './admin';
import { describeSession } from './describe';
import { javabase } from './javabase';
import { login } from './login';
import { endSession, getServer, listSessions } from './sessions';
import { up } from './up';
import { listVolumes } from './volumes';
import { UsageError } from './usage';

const USAGE = `usage: rbs <command> [options]

  up                                   run the local stack in the foreground (npm start)
  login                                sign in at the OpenID provider (RBS_OIDC_ISSUER) and get a
                                         short-lived client certificate
  login --user NAME [--operator]       single-user local stack only (no RBS_OIDC_ISSUER): a client
                                         certificate for any name from the local CA on this machine
  get-server [--workspace DIR] [--json]
                                       start or attach to your session for a workspace
  sessions [--all] [--finished] [--json]
                                       list sessions (--all: every user's; operators only)
  describe SESSION [--json]            the session's timeline: each phase and step with its duration,
                                         what kept it awake, why it ended (operators: anyone's)
  end SESSION                          end a session and remove what it created (its volume stays)
  volumes [--all] [--json]             list your workspace volumes: state, last use, when they go
                                         (--all: every user's; operators only)
  admin revoke|unrevoke USER           operators: refuse a user's every call and end their sessions, or undo it
  admin pin|unpin VOLUME               operators: keep a volume (restoring it if trashed), or undo it
  javabase                             print the --server_javabase that makes Bazel build remotely:
                                         bazel --server_javabase=$(npx rbs javabase) build //...`;

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const flags = (options: Record<string, { type: 'string' | 'boolean' }>) => {
    try {
      return parseArgs({ args: rest, options, allowPositionals: true });
    } catch (err) {
      throw new UsageError(`${(err as Error).message}\n\n${USAGE}`);
    }
  };
  switch (command) {
    case 'up':
      return up();
    case 'login':
      return login(flags({ user: { type: 'string' }, operator: { type: 'boolean' } }).values);
    case 'get-server':
      return getServer(flags({ workspace: { type: 'string' }, json: { type: 'boolean' } }).values);
    case 'sessions':
      return listSessions(flags({ json: { type: 'boolean' }, all: { type: 'boolean' }, finished: { type: 'boolean' } }).values);
    case 'describe': {
      const { values, positionals } = flags({ json: { type: 'boolean' } });
      return describeSession(positionals[0], values);
    }
    case 'end':
      return endSession(flags({}).positionals[0]);
    case 'volumes':
      return listVolumes(flags({ json: { type: 'boolean' }, all: { type: 'boolean' } }).values);
    case 'admin':
      return admin(flags({}).positionals);
    case 'javabase':
      return javabase();
    case undefined:
    case 'help':
    case '--help':
      console.log(USAGE);
      return;
    default:
      throw new UsageError(`unknown command '${command}'\n\n${USAGE}`);
  }
}

run(process.argv.slice(2)).catch((err) => {
  if (err instanceof UsageError || err instanceof SetupError || err instanceof InvalidInputError) {
    console.error(`rbs: ${err.message}`);
    process.exit(2);
  }
  const status = err as Partial<grpc.ServiceError>;
  if (typeof status.code === 'number' && status.details !== undefined) {
    console.error(`rbs: ${grpc.status[status.code]}: ${status.details}`);
    process.exit(status.code === grpc.status.INVALID_ARGUMENT ? 2 : 1);
  }
  console.error(`rbs: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
