/**
 * Which RBS_* variables of a deployment's environment lib/config.ts actually reads. loadConfig runs on the
 * environment itself through a recording proxy, so the answer follows the code's branches (a spanner setting
 * only counts with RBS_STORE=spanner) and a value it rejects fails here as it would at start-up.
 */
import { loadConfig, type RbsConfig } from '../../lib/config';

export interface ConfigUse {
  config: RbsConfig;
  /** RBS_* variables the environment sets that loadConfig never looked at. */
  unread: string[];
}

export function configUse(env: Record<string, string>): ConfigUse {
  const read = new Set<string | symbol>();
  const recording = new Proxy(env, {
    get(target, key) {
      read.add(key);
      return Reflect.get(target, key);
    },
  });
  const config = loadConfig(recording);
  const unread = Object.keys(env).filter((name) => name.startsWith('RBS_') && !read.has(name));
  return { config, unread };
}
