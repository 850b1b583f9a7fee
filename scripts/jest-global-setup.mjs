// Integration tests run the real CLI as separate processes. This bundles src/cli/bin.ts once per
// test run into node_modules/.cache (never touching the committed dist/), so the processes run
// the code under test. Its path is passed in DIST_BUILD_TEST_CLI.
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleCli } from './bundle-cli.mjs';

export default async function globalSetup() {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const outfile = join(root, 'node_modules/.cache/dist-build-test/cli.js');
  await bundleCli(outfile);
  process.env.DIST_BUILD_TEST_CLI = outfile;
}
