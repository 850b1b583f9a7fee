#!/usr/bin/env node
// Smoke test of the bundled app: runs every case of the cases file against both the readable
// and the minified bundle, checks exit status and expected output, checks that both bundles
// print exactly the same, and writes the transcript to <out>/transcript.txt.
//
//   node tools/smoke.mjs --bundle out/bundle/app --cases packages/app/smoke.json --out out/smoke
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanDir, fail, parseArgs, writeFile } from './lib/fsutil.mjs';

const args = parseArgs(process.argv.slice(2));
if (!args.bundle || !args.cases || !args.out)
  fail('usage: smoke.mjs --bundle <path/name> --cases <file.json> --out <dir>');
const { cases } = JSON.parse(readFileSync(args.cases, 'utf8'));

const exec = (file, argv) => {
  const r = spawnSync(process.execPath, [file, ...argv], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { status: r.status, output: r.stdout + r.stderr };
};

const transcript = [];
const problems = [];
for (const c of cases) {
  const full = exec(`${args.bundle}.cjs`, c.args);
  const min = exec(`${args.bundle}.min.cjs`, c.args);
  const label = `app ${c.args.join(' ')}`;
  transcript.push(`$ ${label}`, full.output.trimEnd(), `[exit ${full.status}]`, '');
  if (full.status !== c.status)
    problems.push(`${label}: exit status ${full.status}, expected ${c.status}`);
  for (const s of c.contains) {
    if (!full.output.includes(s))
      problems.push(`${label}: output does not contain ${JSON.stringify(s)}`);
  }
  if (min.output !== full.output || min.status !== full.status) {
    problems.push(`${label}: the minified bundle behaves differently`);
  }
}
transcript.push(`${cases.length} cases, ${problems.length} problems`, '');

cleanDir(args.out);
writeFile(join(args.out, 'transcript.txt'), transcript.join('\n'));
if (problems.length > 0) fail(`smoke test failed:\n  ${problems.join('\n  ')}`);
console.log(`smoke test passed: ${cases.length} cases, readable and minified bundles agree`);
