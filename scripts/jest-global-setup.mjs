// Integration tests run the real CLI as separate processes. This bundles src/cli/bin.ts once per
// test run into node_modules/.cache (like `npm run build`, but never touching the committed dist/),
// so the processes run the code under test. Its path is passed in DIST_BUILD_TEST_CLI.
import { build } from 'esbuild';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export default async function globalSetup() {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const outfile = join(root, 'node_modules/.cache/dist-build-test/cli.js');
  await build({
    entryPoints: [join(root, 'src/cli/bin.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    logLevel: 'warning',
    loader: { '.proto': 'text' },
    sourcemap: 'inline',
    banner: {
      js: "import { createRequire as __dbCreateRequire } from 'node:module'; const require = __dbCreateRequire(import.meta.url);",
    },
  });
  process.env.DIST_BUILD_TEST_CLI = outfile;
}
