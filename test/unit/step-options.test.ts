/** The quick steps give up within their two minutes, by their attempts, since their schedule-to-close did not stop them. */
import { QUICK, QUICK_LOCAL, QUICK_LOCAL_ATTEMPTS } from '../../workflows/step-options';

const ms = (duration: string) => {
  const [, amount, unit] = /^(\d+)(ms|s|m)$/.exec(duration)!;
  return Number(amount) * { ms: 1, s: 1000, m: 60_000 }[unit as 'ms' | 's' | 'm'];
};

test("a local quick step's back-off over all its attempts stays within its schedule-to-close", () => {
  const { initialInterval, backoffCoefficient, maximumInterval } = QUICK_LOCAL.retry;
  let backoff = ms(initialInterval as string);
  let total = 0;
  for (let retry = 1; retry < QUICK_LOCAL_ATTEMPTS; retry++) {
    total += backoff;
    backoff = Math.min(backoff * backoffCoefficient!, ms(maximumInterval as string));
  }
  expect(total).toBe(96_200);
  expect(total).toBeLessThanOrEqual(ms(QUICK.scheduleToCloseTimeout));
  expect(QUICK_LOCAL).toMatchObject({ ...QUICK, retry: { maximumAttempts: QUICK_LOCAL_ATTEMPTS } });
});
