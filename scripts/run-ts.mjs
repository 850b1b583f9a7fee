#!/usr/bin/env node
// Runs a TypeScript entry point (benchmarks, scripts) on Node 20, which cannot strip types:
// esbuild bundles it (dependencies stay external) into node_modules/.cache and imports it.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, dirname, basename, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs FILE.ts [ARGS...]');
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, 'node_modules/.cache/dist-build-run');
mkdirSync(cache, { recursive: true });
// Named after the entry's full path too: work trees that share one node_modules (git worktree
// with a symlink) must not overwrite each other's bundle while both run.
const tag = createHash('sha256').update(resolve(entry)).digest('hex').slice(0, 8);
const outfile = join(cache, `${basename(entry).replace(/\.ts$/, '')}-${tag}.mjs`);
await build({
  entryPoints: [resolve(entry)],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  sourcemap: 'inline',
  logLevel: 'warning',
  loader: { '.proto': 'text' },
});
process.argv = [process.argv[0], resolve(entry), ...rest];
await import(pathToFileURL(outfile).href);
