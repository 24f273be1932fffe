/**
 * Tests run against real servers started by test/harness (see globalSetup).
 *
 * Sources are transpiled without type checks (`npm run build` type-checks them, tests included).
 * @kubernetes/client-node 1.x and some of its dependencies ship only ES modules, which Node 20
 * requires natively but jest's module system cannot: those few are transpiled to CommonJS too.
 */
const ESM_ONLY = ['@kubernetes/client-node', 'openid-client', 'oauth4webapi', 'jose', 'jsonpath-plus', 'rfc4648'];
const transpile = ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', esModuleInterop: true, isolatedModules: true }, diagnostics: false }];

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': transpile, [`/node_modules/(${ESM_ONLY.join('|')})/.+\\.js$`]: transpile },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_ONLY.join('|')})/)`],
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  testTimeout: 120000,
  testSequencer: '<rootDir>/test/harness/sequencer.js',
  reporters: ['default', '<rootDir>/test/harness/summary-reporter.js'],
  verbose: true,
};
