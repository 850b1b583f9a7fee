// Integration tests run the real CLI and the real action as separate processes. This bundles
// src/cli/bin.ts and src/action/main.ts once per test run into node_modules/.cache (never touching
// the committed dist/), side by side as in dist/ (the action runs the `cli.js` next to it), so
// the processes run the code under test. Their paths are passed in DIST_BUILD_TEST_CLI and
// DIST_BUILD_TEST_ACTION.
import { createHash } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleCli, bundleEntry } from './bundle-cli.mjs';

export default async function globalSetup() {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  // Named after the checkout, so work trees sharing one node_modules do not overwrite each other.
  const tag = createHash('sha256').update(root).digest('hex').slice(0, 12);
  const dir = join(root, `node_modules/.cache/dist-build-test/${tag}`);
  await bundleCli(join(dir, 'cli.js'));
  await bundleEntry(join(root, 'src/action/main.ts'), join(dir, 'action.js'));
  process.env.DIST_BUILD_TEST_CLI = join(dir, 'cli.js');
  process.env.DIST_BUILD_TEST_ACTION = join(dir, 'action.js');
}
