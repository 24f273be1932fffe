/** Picks the session store from configuration and readies it. */
import type { SessionStore } from './session-store';
import { SpannerSessionStore, type SpannerStoreOptions } from './spanner-store';
import { SqliteSessionStore } from './sqlite-store';

export type SessionStoreConfig = { kind: 'sqlite'; file: string } | ({ kind: 'spanner' } & SpannerStoreOptions);

export async function openSessionStore(config: SessionStoreConfig): Promise<SessionStore> {
  const store = config.kind === 'sqlite' ? new SqliteSessionStore(config.file) : new SpannerSessionStore(config);
  try {
    await store.init();
  } catch (err) {
    // Release the connection; a failure to close would only hide the init error.
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}
