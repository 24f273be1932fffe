/**
 * How the orchestrator and the worker authenticate to Temporal, from RBS_TEMPORAL_* variables: not
 * at all (the tests' dev server, docker-compose), with a client certificate (mTLS), or with an API
 * key over TLS (Temporal Cloud). A half-configured combination is an error that names the variables.
 */

/** TLS towards the frontend: whom to trust (system roots when unset) and which name to verify. */
export interface TemporalServerTrust {
  /** PEM file of the CA(s) that sign the frontend's certificate. */
  caFile?: string;
  /** The name the frontend's certificate must carry, when it differs from the address's host. */
  serverName?: string;
}

export type TemporalAuth =
  { kind: 'none' } | ({ kind: 'mtls'; certFile: string; keyFile: string } & TemporalServerTrust) | ({ kind: 'api-key'; apiKey: string } & TemporalServerTrust);

export const TEMPORAL_AUTH_VARIABLES = {
  cert: 'RBS_TEMPORAL_TLS_CERT',
  key: 'RBS_TEMPORAL_TLS_KEY',
  ca: 'RBS_TEMPORAL_TLS_CA',
  serverName: 'RBS_TEMPORAL_TLS_SERVER_NAME',
  apiKey: 'RBS_TEMPORAL_API_KEY',
} as const;

export function temporalAuthFromEnv(env: NodeJS.ProcessEnv): TemporalAuth {
  const V = TEMPORAL_AUTH_VARIABLES;
  const value = (name: string) => (env[name] === '' ? undefined : env[name]);
  const [certFile, keyFile, caFile, serverName, apiKey] = [V.cert, V.key, V.ca, V.serverName, V.apiKey].map(value);
  const trust: TemporalServerTrust = { ...(caFile && { caFile }), ...(serverName && { serverName }) };
  if (apiKey !== undefined) {
    if (certFile || keyFile)
      throw new Error(`${V.apiKey} and a client certificate (${V.cert}, ${V.key}) are both set: choose one way to authenticate to Temporal`);
    if (apiKey.trim() !== apiKey || /\s/.test(apiKey)) throw new Error(`${V.apiKey} contains whitespace (a stray newline from the Secret?)`);
    return { kind: 'api-key', apiKey, ...trust };
  }
  if (certFile || keyFile) {
    if (!certFile) throw new Error(`${V.key} is set (${keyFile}) but ${V.cert} is not: a client key needs its certificate`);
    if (!keyFile) throw new Error(`${V.cert} is set (${certFile}) but ${V.key} is not: a client certificate needs its key`);
    return { kind: 'mtls', certFile, keyFile, ...trust };
  }
  const stray = [V.ca, V.serverName].filter((name) => value(name) !== undefined);
  if (stray.length > 0) {
    throw new Error(
      `${stray.join(' and ')} ${stray.length > 1 ? 'configure' : 'configures'} TLS to Temporal, which needs a client certificate (${V.cert}, ${V.key}) or ${V.apiKey}`,
    );
  }
  return { kind: 'none' };
}

/** The RBS_TEMPORAL_* variables that configure `auth`, for a child process (the inverse of temporalAuthFromEnv). */
export function temporalAuthEnv(auth: TemporalAuth): Record<string, string> {
  const V = TEMPORAL_AUTH_VARIABLES;
  if (auth.kind === 'none') return {};
  const trust = { ...(auth.caFile && { [V.ca]: auth.caFile }), ...(auth.serverName && { [V.serverName]: auth.serverName }) };
  if (auth.kind === 'api-key') return { [V.apiKey]: auth.apiKey, ...trust };
  return { [V.cert]: auth.certFile, [V.key]: auth.keyFile, ...trust };
}
