import { loadConfig } from '../../lib/config';
import { DEFAULT_KEEPALIVE_MS, checkKeepaliveMs } from '../../lib/grpc/keepalive';

test('RBS_KEEPALIVE_MS: a second up to the longest timer Node keeps; anything else is refused, naming the variable', () => {
  expect(loadConfig({ RBS_HOME: '/tmp/x' }).keepaliveMs).toBe(DEFAULT_KEEPALIVE_MS);
  expect(loadConfig({ RBS_HOME: '/tmp/x', RBS_KEEPALIVE_MS: '2000' }).keepaliveMs).toBe(2000);
  for (const bad of ['0', '999', '-5', '2147483648', '1.5e3x']) {
    expect(() => loadConfig({ RBS_HOME: '/tmp/x', RBS_KEEPALIVE_MS: bad })).toThrow(/RBS_KEEPALIVE_MS/);
  }
  expect(checkKeepaliveMs(2_147_483_647, 'x')).toBe(2_147_483_647);
  expect(() => checkKeepaliveMs(Number.NaN, '--keepalive-ms')).toThrow(/--keepalive-ms must be a whole number of milliseconds from 1000/);
});
