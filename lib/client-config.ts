/** How the CLI and the proxy find the orchestrator and the caller's credentials. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { homePaths, loadConfig } from './config';
import { OrchestratorClient } from './grpc/orchestrator-client';
import { readTlsMaterial } from './grpc/tls';

/** The caller must fix how it is set up (exit code 2 in the CLI). */
export class SetupError extends Error {}

export interface StackInfo {
  orchestrator: string;
  temporal: string;
  temporalUi: string | null;
  home: string;
  pid: number;
}

export function credentialsDir(): string {
  return process.env.RBS_CREDENTIALS ?? homePaths(loadConfig().home).credentials;
}

/** The orchestrator's address: RBS_ORCHESTRATOR, else the running local stack's (stack.json). */
export function orchestratorAddress(): string {
  if (process.env.RBS_ORCHESTRATOR) return process.env.RBS_ORCHESTRATOR;
  const file = homePaths(loadConfig().home).stack;
  try {
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as StackInfo).orchestrator;
  } catch {
    throw new SetupError(`no orchestrator: start the local stack with \`npm start\` or set RBS_ORCHESTRATOR (looked for ${file})`);
  }
}

export async function connect(): Promise<OrchestratorClient> {
  const dir = credentialsDir();
  if (!fs.existsSync(path.join(dir, 'user.crt'))) {
    throw new SetupError(`not logged in: no certificate in ${dir}; run \`rbs login --user NAME\``);
  }
  return new OrchestratorClient(orchestratorAddress(), await readTlsMaterial(dir, 'user'), loadConfig().keepaliveMs);
}
