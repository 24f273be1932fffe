import { FAULT_POINTS, PHASES, allCases, caseName, chooseCases } from '../chaos/cases';

test('the same seed chooses the same cases; another seed another order', () => {
  expect(chooseCases(7, 30).map(caseName)).toEqual(chooseCases(7, 30).map(caseName));
  expect(chooseCases(8, 30).map(caseName)).not.toEqual(chooseCases(7, 30).map(caseName));
});

test('the first cases cover every fault point once before any repeats, and every phase soon after', () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    const first = chooseCases(seed, FAULT_POINTS.length);
    expect(new Set(first.map((c) => c.point)).size).toBe(FAULT_POINTS.length);
    const thirty = chooseCases(seed, 30);
    expect(new Set(thirty.map((c) => c.phase))).toEqual(new Set(PHASES));
    expect(new Set(thirty.map(caseName)).size).toBe(30); // no case twice within one round
  }
});

test('a Ctrl-C is only ever injected into a running command; long runs go round again', () => {
  expect(allCases()).toHaveLength(FAULT_POINTS.length * PHASES.length - 1);
  expect(allCases().some((c) => c.point === 'interrupt' && c.phase === 'idle')).toBe(false);
  expect(chooseCases(5, 200)).toHaveLength(200);
});
