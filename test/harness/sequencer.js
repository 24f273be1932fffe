/**
 * npm test runs two jest workers (three were no faster on two cores, 1264-1301 s against 1316-1348 s, and
 * timing-sensitive suites failed under the load). The longest suites go first, so that none is left running
 * alone at the end: the suites LONG_FIRST names, in its order, then the rest.
 * Within each group, jest's own order: timings from an earlier run, else file size (which would leave the
 * chaos suite, a small file minutes long, for the end).
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
    return super
      .sort(tests)
      .map((test, index) => ({ test, index }))
      .sort((a, b) => rank(a.test) - rank(b.test) || a.index - b.index)
      .map(({ test }) => test);
  }
}

module.exports = LongSuitesFirst;
