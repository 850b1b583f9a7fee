// Two projects: `unit` (fast, no daemons) and `integration` (starts real processes,
// registries and daemons; files named *.int.test.ts). `npm test` runs both.
const transform = { '^.+\\.(ts|proto)$': '<rootDir>/scripts/jest-transform.cjs' };
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts', '.proto'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json', 'proto'],
  transform,
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};
export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/__tests__/**/*.test.ts'],
      testPathIgnorePatterns: ['\\.int\\.test\\.ts$'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/__tests__/**/*.int.test.ts'],
      globalSetup: '<rootDir>/scripts/jest-global-setup.mjs',
    },
  ],
};
