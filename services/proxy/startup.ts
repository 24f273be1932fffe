/**
 * Reads the command line a stock Bazel client gives its server. The client believes it starts
 * `<javabase>/bin/java <jvm flags> -jar <install_base>/A-server.jar <startup options>`; the proxy
 * sits at bin/java and receives exactly that. The client always writes options as `--name=value`
 * (or bare `--name` / `--noname` for booleans), so no option takes a separate value.
 */

export interface ServerStartup {
  /** Flags meant for the JVM (before `-jar`): meaningless to the proxy, kept for diagnostics. */
  jvmFlags: string[];
  /** The server jar the client named, if any. */
  serverJar?: string;
  /** Where the client looks for the server's files (`<output_base>/server/`). */
  outputBase: string;
  workspaceDirectory?: string;
  installBase?: string;
  outputUserRoot?: string;
  installMd5?: string;
  /** Seconds without a command after which the server exits; 0 means never. */
  maxIdleSecs?: number;
  /** Every startup option not listed above, unchanged and in order: newer clients add some. */
  other: string[];
}

const STRING_OPTIONS = {
  '--output_base': 'outputBase',
  '--workspace_directory': 'workspaceDirectory',
  '--install_base': 'installBase',
  '--output_user_root': 'outputUserRoot',
  '--install_md5': 'installMd5',
} as const;

export function parseServerArgs(argv: string[]): ServerStartup {
  const jar = argv.indexOf('-jar');
  if (jar >= 0 && jar + 1 >= argv.length) {
    throw new Error(`server command line ends with -jar and no jar: ${JSON.stringify(argv)}`);
  }
  const jvmFlags = jar >= 0 ? argv.slice(0, jar) : [];
  const options = jar >= 0 ? argv.slice(jar + 2) : argv;

  const found: Partial<Record<(typeof STRING_OPTIONS)[keyof typeof STRING_OPTIONS], string>> = {};
  const other: string[] = [];
  let maxIdleSecs: number | undefined;
  for (const option of options) {
    const eq = option.indexOf('=');
    const name = eq >= 0 ? option.slice(0, eq) : option;
    const value = option.slice(eq + 1);
    if (eq >= 0 && Object.hasOwn(STRING_OPTIONS, name)) {
      found[STRING_OPTIONS[name as keyof typeof STRING_OPTIONS]] = value;
    } else if (eq >= 0 && name === '--max_idle_secs') {
      if (!/^\d+$/.test(value)) throw new Error(`--max_idle_secs must be a whole number of seconds, got '${value}'`);
      maxIdleSecs = Number(value);
    } else {
      other.push(option);
    }
  }

  if (!found.outputBase) {
    throw new Error(`no --output_base=… in the server command line, so there is nowhere to publish the server: ${JSON.stringify(argv)}`);
  }
  return { jvmFlags, serverJar: jar >= 0 ? argv[jar + 1] : undefined, ...found, outputBase: found.outputBase, maxIdleSecs, other };
}
