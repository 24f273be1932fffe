import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSessionStore } from '../../lib/store';
import { describeSessionStoreConformance } from './conformance';

const dir = mkdtempSync(path.join(tmpdir(), 'rbs-sqlite-store-'));
// A subdirectory that does not exist yet: the store must create it.
const file = path.join(dir, 'state', 'sessions.db');

describeSessionStoreConformance(
  'SqliteSessionStore',
  () => openSessionStore({ kind: 'sqlite', file }),
  async () => rmSync(dir, { recursive: true, force: true }),
);
