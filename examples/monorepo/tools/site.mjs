#!/usr/bin/env node
// Assembles the final static site from the rendered docs and the search index, and
// precompresses every text file with gzip (level 9) and Brotli (quality 11) next to it, the way
// static file servers like to find them (`page.html.gz`, `page.html.br`). A compressed copy is
// kept only when it is smaller than the original.
//
//   node tools/site.mjs --out out/site out/docs out/search
//
// Also writes <out>/manifest.json: every file with its size and SHA-256.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { byCodeUnit, cleanDir, fail, parseArgs, walk, writeFile } from './lib/fsutil.mjs';

const args = parseArgs(process.argv.slice(2));
if (!args.out || args._.length === 0) fail('usage: site.mjs --out <dir> <srcdir>...');
const TEXT = /\.(html|css|js|json|svg|txt)$/;

cleanDir(args.out);
const files = new Map();
for (const dir of args._) {
  for (const f of walk(dir)) {
    if (f === 'queries.txt') continue; // the search self-check report is not part of the site
    if (files.has(f)) fail(`${f} comes from both ${files.get(f)} and ${dir}`);
    files.set(f, dir);
    mkdirSync(dirname(join(args.out, f)), { recursive: true });
    copyFileSync(join(dir, f), join(args.out, f));
  }
}

let raw = 0;
let gz = 0;
let br = 0;
for (const f of [...files.keys()].sort(byCodeUnit)) {
  if (!TEXT.test(f)) continue;
  const data = readFileSync(join(args.out, f));
  const g = gzipSync(data, { level: 9 });
  const b = brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      [constants.BROTLI_PARAM_MODE]: /\.(html|css|js|svg|txt)$/.test(f)
        ? constants.BROTLI_MODE_TEXT
        : constants.BROTLI_MODE_GENERIC,
    },
  });
  raw += data.length;
  if (g.length < data.length) {
    writeFile(join(args.out, `${f}.gz`), g);
    gz += g.length;
  }
  if (b.length < data.length) {
    writeFile(join(args.out, `${f}.br`), b);
    br += b.length;
  }
}

const digest = (f) =>
  createHash('sha256')
    .update(readFileSync(join(args.out, f)))
    .digest('hex');
const all = walk(args.out);
const manifest = all.map((f) => ({
  file: f,
  bytes: statSync(join(args.out, f)).size,
  sha256: digest(f),
}));
writeFile(join(args.out, 'manifest.json'), `${JSON.stringify({ files: manifest }, null, 1)}\n`);
const pct = (n) => `${((100 * n) / raw).toFixed(1)}%`;
console.log(
  `site: ${files.size} files; text ${raw} B -> gzip ${gz} B (${pct(gz)}), brotli ${br} B (${pct(br)})`,
);
