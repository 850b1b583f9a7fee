#!/usr/bin/env node
// Runs a TypeScript entry point (benchmarks, scripts) on Node 20, which cannot strip types:
// esbuild bundles it (dependencies stay external) into node_modules/.cache and imports it.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleScript } from './bundle-cli.mjs';

const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs FILE.ts [ARGS...]');
  process.exit(2);
}
const outfile = await bundleScript(resolve(entry), { sourcemap: 'inline' });
process.argv = [process.argv[0], resolve(entry), ...rest];
await import(pathToFileURL(outfile).href);
