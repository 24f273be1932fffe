/**
 * npm test runs two jest workers. Without timings from an earlier run (a fresh clone), jest orders
 * suites by file size, which would leave the chaos suite (a small file, minutes long) for the end,
 * with one worker idle. The suites LONG_FIRST names then go first; timings, once known, order the rest.
 */
const Sequencer = require('@jest/test-sequencer').default;

/** In this order; a suite matching none comes after them all. */
const LONG_FIRST = [/\/test\/chaos\//, /\/test\/(kubernetes|data-path)\//];
const rank = (test) => {
  const index = LONG_FIRST.findIndex((pattern) => pattern.test(test.path));
  return index < 0 ? LONG_FIRST.length : index;
};

class LongSuitesFirst extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    if (sorted.some((test) => test.duration != null)) return sorted;
    return sorted
      .map((test, index) => ({ test, index }))
      .sort((a, b) => rank(a.test) - rank(b.test) || a.index - b.index)
      .map(({ test }) => test);
  }
}

module.exports = LongSuitesFirst;
