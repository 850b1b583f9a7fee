#!/usr/bin/env node
// Packs the release: a reproducible .tar.gz with the bundled app, the site, the data and the
// check reports, a generated README and SHA256SUMS. The archive is read back and verified
// before the tool reports success.
//
//   node tools/release.mjs --name dist-build-example-1.0.0 --out out/release \
//     bin=out/bundle site=out/site data/primes=out/primes reports/test=out/test ...
//
// Each `prefix=dir` puts the files of dir under <name>/<prefix>/ in the archive. Writes
// <out>/<name>.tar.gz and <out>/<name>.tar.gz.sha256.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { byCodeUnit, cleanDir, fail, parseArgs, walk, writeFile } from './lib/fsutil.mjs';
import { createTar, readTar } from './lib/tar.mjs';

const args = parseArgs(process.argv.slice(2), { mtime: '0' });
if (!args.name || !args.out || args._.length === 0)
  fail('usage: release.mjs --name <name> --out <dir> prefix=dir...');
const sha256 = (data) => createHash('sha256').update(data).digest('hex');

const files = [];
for (const mapping of args._) {
  const [prefix, dir] = mapping.split('=');
  if (!prefix || !dir) fail(`bad mapping '${mapping}', expected prefix=dir`);
  for (const f of walk(dir)) {
    const full = join(dir, f);
    files.push({
      path: `${prefix}/${f}`,
      data: readFileSync(full),
      executable: (statSync(full).mode & 0o111) !== 0,
    });
  }
}
files.sort((a, b) => byCodeUnit(a.path, b.path));

const readme = [
  `${args.name}`,
  '',
  'Built by the dist-build example project (examples/monorepo). Contents:',
  '',
  ...Object.entries(
    files.reduce((acc, f) => {
      const top = f.path.split('/')[0];
      acc[top] = (acc[top] ?? 0) + 1;
      return acc;
    }, {}),
  ).map(([dir, n]) => `  ${dir}/  ${n} files`),
  '',
  'Run the app with Node.js 20 or newer:  node bin/app.cjs --help',
  'Serve the site from site/ (files have .gz and .br siblings for compressed transfer).',
  'Check the files:  sha256sum -c SHA256SUMS',
  '',
].join('\n');
files.push({ path: 'README.txt', data: Buffer.from(readme) });
const sums = files
  .sort((a, b) => byCodeUnit(a.path, b.path))
  .map((f) => `${sha256(f.data)}  ${f.path}`)
  .join('\n');
files.push({ path: 'SHA256SUMS', data: Buffer.from(`${sums}\n`) });

const tar = createTar(
  files.map((f) => ({ ...f, path: `${args.name}/${f.path}` })),
  { mtime: Number(args.mtime) },
);
const archive = gzipSync(tar, { level: 9 });

// Read the archive back and check every file against SHA256SUMS.
const entries = readTar(gunzipSync(archive));
const byPath = new Map(entries.filter((e) => e.type === '0').map((e) => [e.path, e.data]));
const listed = byPath.get(`${args.name}/SHA256SUMS`).toString().trim().split('\n');
for (const line of listed) {
  const [hash, path] = line.split('  ');
  const data = byPath.get(`${args.name}/${path}`);
  if (!data || sha256(data) !== hash) fail(`verification failed for ${path}`);
}
if (listed.length !== byPath.size - 1)
  fail('the archive holds files that SHA256SUMS does not list');

cleanDir(args.out);
const file = `${args.name}.tar.gz`;
writeFile(join(args.out, file), archive);
writeFile(join(args.out, `${file}.sha256`), `${sha256(archive)}  ${file}\n`);
console.log(
  `${file}: ${entries.length} entries, ${byPath.size} files, ${tar.length} B tar, ${archive.length} B gzipped, verified`,
);
