import { mapLimited } from '../../lib/map-limited';

test('maps every item in order, with never more than the limit in flight', async () => {
  let inFlight = 0;
  let most = 0;
  const results = await mapLimited([5, 1, 4, 2, 3, 0, 6], 3, async (ms) => {
    most = Math.max(most, ++inFlight);
    await new Promise((resolve) => setTimeout(resolve, ms * 5));
    inFlight--;
    return ms * 10;
  });
  expect(results).toEqual([50, 10, 40, 20, 30, 0, 60]);
  expect(most).toBe(3);
});

test('no items, no calls; a failure fails the whole', async () => {
  expect(await mapLimited([], 4, () => Promise.reject(new Error('never called')))).toEqual([]);
  await expect(mapLimited([1, 2, 3], 2, async (n) => (n === 2 ? Promise.reject(new Error('item 2')) : n))).rejects.toThrow('item 2');
});
