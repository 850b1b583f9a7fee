/**
 * `dist-build run` end to end on the example monorepo: an embedded master, 4 worker processes on
 * loopback with mutual TLS, real commands, the local store, export and the report.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunReport } from '../../src/report/types.js';
import { runCli, stopAll } from '../helpers/processes.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/monorepo', import.meta.url));
let dir: string;
let repo: string;
let out: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-run-'));
  repo = join(dir, 'monorepo');
  out = join(dir, 'artifacts');
  cpSync(EXAMPLE, repo, {
    recursive: true,
    filter: (src) => !/[/\\](out|\.dist-build)([/\\]|$)/.test(src.slice(EXAMPLE.length)),
  });
});

afterEach(() => stopAll());

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function readReport(): RunReport {
  return JSON.parse(readFileSync(join(out, 'dist-build-report.json'), 'utf8')) as RunReport;
}

const statuses = (r: RunReport): Record<string, string> =>
  Object.fromEntries(r.invocations.map((i) => [i.unit, i.status]));

test('first run builds everything, exports the artifacts and writes the report', async () => {
  const res = await runCli(
    ['run', '--config', join(repo, 'dist-build.yml'), '--out', out, '--workers', '4'],
    {
      timeoutMs: 280_000,
    },
  );
  expect(res.stderr).not.toMatch(/FAILED/);
  expect(res.code).toBe(0);
  const report = readReport();
  expect(report.status).toBe('succeeded');
  expect(report.invocations).toHaveLength(19);
  expect(new Set(Object.values(statuses(report)))).toEqual(new Set(['built']));
  // Work was spread: more than one worker built something.
  expect(new Set(report.invocations.map((i) => i.worker)).size).toBeGreaterThan(1);
  // Exports: bundle, site and release, each by the worker holding it, with the files in --out.
  expect(report.exports.map((e) => e.unit).sort()).toEqual(['bundle', 'release', 'site']);
  for (const e of report.exports) {
    const built = report.invocations.find((i) => i.unit === e.unit)!;
    expect(e.worker).toBe(built.worker);
    for (const o of e.outputs) expect(existsSync(o.dest)).toBe(true);
  }
  expect(
    readFileSync(join(out, 'out/release/dist-build-example-1.0.0.tar.gz')).length,
  ).toBeGreaterThan(0);
  expect(existsSync(join(out, 'dist-build-report.html'))).toBe(true);
  expect(readFileSync(join(out, 'dist-build-report.md'), 'utf8')).toMatch(/gantt/);
  // Live output was streamed, prefixed by invocation (CI=true: plain lines).
  expect(res.stderr).toMatch(/^\[codegen\] /m);
  expect(res.stdout).toMatch(/19 invocations: 19 built/);
  expect(await lookups()).toEqual({ hits: 0, misses: 19 });
}, 300_000);

/** `dist-build cache stats`: the last run's result lookups in the local store. */
async function lookups(): Promise<{ hits: number; misses: number }> {
  const res = await runCli(['cache', 'stats', '--config', join(repo, 'dist-build.yml'), '--json']);
  expect(res.code).toBe(0);
  const { hits, misses } = (
    JSON.parse(res.stdout) as { stores: { hits: number; misses: number }[] }
  ).stores[0]!;
  return { hits, misses };
}

const lastPlan = (): Record<string, string> =>
  (
    JSON.parse(readFileSync(join(repo, '.dist-build/last-plan.json'), 'utf8')) as {
      assignments: Record<string, string>;
    }
  ).assignments;

test('a second run with nothing changed is all cached', async () => {
  const firstPlan = lastPlan();
  const builtBy = Object.fromEntries(readReport().invocations.map((i) => [i.unit, i.worker]));
  expect(firstPlan).toEqual(builtBy);
  const res = await runCli(
    ['run', '--config', join(repo, 'dist-build.yml'), '--out', out, '--workers', '4'],
    {
      timeoutMs: 120_000,
    },
  );
  expect(res.code).toBe(0);
  const report = readReport();
  expect(new Set(Object.values(statuses(report)))).toEqual(new Set(['cached']));
  expect(report.exports).toHaveLength(3);
  expect(res.stdout).toMatch(/19 invocations: 0 built, 19 cached/);
  // Each cached row names the worker that built it, and the plan the next run starts from is
  // unchanged (an all-cached run used to leave it empty, and every unit lost its affinity).
  expect(Object.fromEntries(report.invocations.map((i) => [i.unit, i.worker]))).toEqual(builtBy);
  expect(lastPlan()).toEqual(firstPlan);
  // Each of the 4 workers answered the cache query for each unit: 19 lookups, not 76.
  expect(await lookups()).toEqual({ hits: 19, misses: 0 });
}, 150_000);

test('changing one input rebuilds only that invocation and its dependents', async () => {
  appendFileSync(join(repo, 'tools/gallery.mjs'), '\n// changed\n');
  const res = await runCli(
    ['run', '--config', join(repo, 'dist-build.yml'), '--out', out, '--workers', '4'],
    {
      timeoutMs: 200_000,
    },
  );
  expect(res.code).toBe(0);
  const built = Object.entries(statuses(readReport()))
    .filter(([, s]) => s === 'built')
    .map(([u]) => u)
    .sort();
  expect(built).toEqual(['docs', 'gallery', 'release', 'search-index', 'site']);
}, 220_000);
