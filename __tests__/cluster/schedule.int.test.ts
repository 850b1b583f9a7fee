/**
 * Dispatch order with real processes: `dist-build run` on one worker starts, among the ready
 * invocations, the one with the longest chain of work after it first, including invocations that
 * become ready while others wait.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunReport } from '../../src/report/types.js';
import { runCli, stopAll } from '../helpers/processes.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-schedule-'));
});

afterEach(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

test('one worker runs the critical path first, and a unit that becomes ready goes before shorter ones', async () => {
  const shorts = Array.from({ length: 6 }, (_, i) => `s${i}`);
  const config = [
    'version: 1',
    'invocations:',
    // Listed first so that file order alone would start them first.
    ...shorts.map((s) => `  ${s}: { run: "true" }`),
    '  c1: { run: "true" }',
    '  c2: { run: "true", needs: [c1] }',
    '  c3: { run: "true", needs: [c2] }',
    '',
  ].join('\n');
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  writeFileSync(join(repo, 'dist-build.yml'), config);
  const out = join(dir, 'out');
  const res = await runCli(
    ['run', '--config', join(repo, 'dist-build.yml'), '--workers', '1', '--out', out],
    { timeoutMs: 60_000 },
  );
  expect(res.code).toBe(0);
  const report = JSON.parse(readFileSync(join(out, 'dist-build-report.json'), 'utf8')) as RunReport;
  const started = Object.fromEntries(report.invocations.map((i) => [i.unit, i.startedAt!]));
  const order = Object.keys(started).sort((a, b) => started[a]! - started[b]!);
  // c1 heads a chain of three: first. c2 (two left) becomes ready when c1 is done and goes
  // before the six single ones, which were ready all along.
  expect(order.slice(0, 2)).toEqual(['c1', 'c2']);
  expect(order.slice(2).sort()).toEqual([...shorts, 'c3'].sort());
}, 90_000);

test('invocations named like Object members keep their worker in last-plan.json after a cached run', async () => {
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  writeFileSync(
    join(repo, 'dist-build.yml'),
    [
      'version: 1',
      'invocations:',
      '  constructor: { run: "mkdir -p out && echo c > out/c", outputs: [out/c] }',
      '  toString: { run: "cat out/c", needs: [constructor] }',
      '',
    ].join('\n'),
  );
  const run = () =>
    runCli(
      [
        'run',
        '--config',
        join(repo, 'dist-build.yml'),
        '--workers',
        '1',
        '--out',
        join(dir, 'out'),
      ],
      {
        timeoutMs: 60_000,
      },
    );
  const lastPlan = (): unknown =>
    JSON.parse(readFileSync(join(repo, '.dist-build/last-plan.json'), 'utf8'));
  expect((await run()).code).toBe(0);
  const expected = { assignments: { constructor: 'worker-1', toString: 'worker-1' } };
  expect(lastPlan()).toEqual(expected);
  const cached = await run();
  expect(cached.stdout).toMatch(/2 invocations: 0 built, 2 cached/);
  expect(lastPlan()).toEqual(expected);
}, 150_000);
