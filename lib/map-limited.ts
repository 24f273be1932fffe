/**
 * `fn` over `items`, at most `limit` at a time, results in order. File calls wait in libuv's
 * four-thread pool: a flood of them (a stat per build output on a network share) would queue every
 * other file call behind it, the agent's volume lease among them.
 */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
