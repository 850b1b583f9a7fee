// Integration tests run the real CLI as separate processes. This bundles src/cli/bin.ts once per
// test run into node_modules/.cache (never touching the committed dist/), so the processes run
// the code under test. Its path is passed in DIST_BUILD_TEST_CLI.
import { createHash } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleCli } from './bundle-cli.mjs';

export default async function globalSetup() {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  // Named after the checkout, so work trees sharing one node_modules do not overwrite each other.
  const tag = createHash('sha256').update(root).digest('hex').slice(0, 12);
  const outfile = join(root, `node_modules/.cache/dist-build-test/cli-${tag}.js`);
  await bundleCli(outfile);
  process.env.DIST_BUILD_TEST_CLI = outfile;
}
