/**
 * Starts the real servers every test shares, once per jest run, on free loopback ports:
 * the Temporal dev server and the Cloud Spanner emulator. Tests find them through env vars.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTemporalDevServer } from '../../lib/local/temporal-dev-server';
import { startSpannerEmulator } from './spanner-emulator';

export default async function globalSetup(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-test-servers-'));
  const [temporal, spanner] = await Promise.all([startTemporalDevServer({ logFile: path.join(dir, 'temporal.log') }), startSpannerEmulator()]);
  process.env.RBS_TEST_TEMPORAL_ADDRESS = temporal.address;
  process.env.SPANNER_EMULATOR_HOST = spanner.host;
  process.env.RBS_TEST_SERVERS_DIR = dir;
  (globalThis as Record<string, unknown>).__rbsTestServers = { temporal, spanner, dir };
  console.log(`\ntest servers: temporal ${temporal.address}, spanner emulator ${spanner.host}, logs ${dir}`);
}
