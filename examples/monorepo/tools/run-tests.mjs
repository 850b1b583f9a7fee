#!/usr/bin/env node
// Runs every `*.test.mjs` file under the given directories with node:test, prints the usual
// spec report, and writes a deterministic summary (no timings) to <out>/summary.txt. Exits
// with status 1 when any test fails, or when no test ran at all.
//
//   node tools/run-tests.mjs --out out/test packages/core/test packages/ui/test tools/test
import { availableParallelism } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { byCodeUnit, cleanDir, fail, parseArgs, walk, writeFile } from './lib/fsutil.mjs';

const args = parseArgs(process.argv.slice(2));
if (!args.out || args._.length === 0) fail('usage: run-tests.mjs --out <dir> <testdir>...');

const files = args._.flatMap((dir) =>
  walk(dir)
    .filter((f) => f.endsWith('.test.mjs'))
    .map((f) => resolve(dir, f)),
).sort(byCodeUnit);
if (files.length === 0) fail('no test files found');

const events = [];
const record = (ok) => (data) => {
  const file = relative(process.cwd(), data.file ?? '')
    .split(sep)
    .join('/');
  events.push({
    ok,
    file,
    // A file that fails to load is reported as a test named after the file's absolute path.
    name: data.name === data.file ? file : data.name,
    nesting: data.nesting,
    type: data.details?.type ?? 'test',
  });
};
const stream = run({ files, concurrency: Math.max(1, availableParallelism()) });
stream.on('test:pass', record(true));
stream.on('test:fail', record(false));
const reporter = stream.compose(spec);
reporter.pipe(process.stdout);
await new Promise((done) => reporter.on('end', done));

// Give every test its full name ("suite > test"). Events arrive children first, and the events
// of one file in order, so a suite adopts the pending events one level deeper than itself.
const byFile = new Map();
for (const e of events) {
  if (!byFile.has(e.file)) byFile.set(e.file, []);
  byFile.get(e.file).push(e);
}
const lines = [];
let passed = 0;
let failed = 0;
for (const file of [...byFile.keys()].sort(byCodeUnit)) {
  const pending = [];
  const done = [];
  for (const e of byFile.get(file)) {
    e.path = [e.name];
    for (const child of pending.filter((c) => c.nesting === e.nesting + 1)) {
      child.path.unshift(...e.path);
      child.parentDone = true;
    }
    for (let k = pending.length - 1; k >= 0; k--) if (pending[k].parentDone) pending.splice(k, 1);
    if (e.nesting > 0) pending.push(e);
    done.push(e);
  }
  lines.push(file);
  for (const e of done) {
    if (e.type === 'suite') continue;
    lines.push(`  ${e.ok ? 'ok  ' : 'FAIL'} ${e.path.join(' > ')}`);
    if (e.ok) passed++;
    else failed++;
  }
}
lines.push(
  '',
  `${passed + failed} tests in ${files.length} files: ${passed} passed, ${failed} failed`,
  '',
);

cleanDir(args.out);
writeFile(join(args.out, 'summary.txt'), lines.join('\n'));
if (failed > 0 || passed === 0) {
  process.stderr.write(
    `\n${failed} test(s) failed; see the report above and ${join(args.out, 'summary.txt')}\n`,
  );
  process.exitCode = 1;
} else {
  console.log(`\n${passed} tests passed`);
}
