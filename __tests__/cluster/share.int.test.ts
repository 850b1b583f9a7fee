/**
 * `dist-build run --share WORKER --plan FILE`: each runner of a matrix runs its share of one plan;
 * what a share needs from another comes from the cache stores once the other runner put it there
 * (here: two trees and one local store directory both runs use, as a shared store would be).
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { freePort } from '../helpers/registry.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunReport } from '../../src/report/types.js';
import { startActionsCacheServer } from '../fixtures/actions-cache-server.js';
import { runCli, startCli, stopAll } from '../helpers/processes.js';
import { stallTheWorkerOfB, STALL_CONFIG } from '../helpers/stall.js';

const CONFIG = `version: 1
invocations:
  a:
    run: sleep 3 && mkdir -p out && echo A > out/a.txt && echo ran >> ../count-a
    outputs: [out]
  b:
    needs: [a]
    run: mkdir -p outb && cat out/a.txt > outb/b.txt && echo B >> outb/b.txt
    outputs: [outb]
    export: true
  c:
    run: echo c >> ../count-c
`;
const PLAN = { workers: ['w1', 'w2'], assignments: { a: 'w1', b: 'w2', c: 'w1' } };

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-share-'));
  mkdirSync(join(dir, 't1'));
  writeFileSync(join(dir, 't1/dist-build.yml'), CONFIG);
  cpSync(join(dir, 't1'), join(dir, 't2'), { recursive: true });
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(PLAN));
});
afterEach(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

const share = (w: string, ...extra: string[]) => [
  'run',
  '--share',
  w,
  '--plan',
  join(dir, 'plan.json'),
  '--cache-dir',
  join(dir, 'cache'),
  '--plain',
  ...extra,
];
const report = (tree: string) =>
  JSON.parse(
    readFileSync(join(dir, tree, 'dist-build-out/dist-build-report.json'), 'utf8'),
  ) as RunReport;
const statuses = (r: RunReport) => Object.fromEntries(r.invocations.map((i) => [i.unit, i.status]));

test("two shares of a plan: each runs its own invocations, and one waits for what it needs from the other's", async () => {
  // w2 starts first: b needs a, which is w1's.
  const w2 = startCli(share('w2'), { cwd: join(dir, 't2') });
  await w2.waitFor(/waiting for a \(other runners' shares of the plan\) to be in the cache stores/);
  // `status` does not call a ready: it waits for w1's share, and no worker here will run it.
  const st = await runCli(['status', '--json'], { cwd: join(dir, 't2') });
  expect(st.code).toBe(0);
  expect(
    Object.fromEntries(
      (JSON.parse(st.stdout) as { units: { unit: string; state: string }[] }).units.map((u) => [
        u.unit,
        u.state,
      ]),
    ),
  ).toEqual({ a: 'waiting', b: 'waiting' });
  const w1 = await runCli(share('w1'), { cwd: join(dir, 't1') });
  expect(w1.code).toBe(0);
  expect(statuses(report('t1'))).toEqual({ a: 'built', c: 'built' });
  const w2exit = await w2.exited;
  expect({ code: w2exit.code, out: w2.output.slice(-2000) }).toMatchObject({ code: 0 });
  // w2 took a from the cache, built b only, and exported it.
  expect(statuses(report('t2'))).toEqual({ a: 'cached', b: 'built' });
  expect(readFileSync(join(dir, 't2/dist-build-out/outb/b.txt'), 'utf8')).toBe('A\nB\n');
  expect(readFileSync(join(dir, 'count-a'), 'utf8')).toBe('ran\n');
  expect(readFileSync(join(dir, 'count-c'), 'utf8')).toBe('c\n');
}, 90_000);

test("a share whose dependency never comes fails it after --share-timeout, naming it another runner's", async () => {
  // 1.5 s, said as such (not rounded to 2s; 500ms was "1s", 0.4 "0s").
  const r = await runCli(share('w2', '--share-timeout', '1.5'), { cwd: join(dir, 't2') });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/to be in the cache stores, for up to 1\.5s\n/);
  const rep = report('t2');
  expect(statuses(rep)).toEqual({ a: 'failed', b: 'skipped' });
  expect(rep.invocations.find((i) => i.unit === 'a')!.reason).toMatch(
    /^not in the cache within 1\.5s: another runner's share of the plan builds it/,
  );
}, 60_000);

test('--share checks its plan: a worker not in it, a plan of another config, --plan missing', async () => {
  const bad = async (args: string[], re: RegExp) => {
    const r = await runCli(args, { cwd: join(dir, 't1') });
    expect({ code: r.code, err: r.stderr }).toMatchObject({
      code: 2,
      err: expect.stringMatching(re),
    });
  };
  await bad(
    share('w9'),
    /--share w9: not a worker of the plan .*plan\.json \(its workers: w1, w2\)/,
  );
  writeFileSync(
    join(dir, 'plan.json'),
    JSON.stringify({ workers: ['w1'], assignments: { a: 'w1' } }),
  );
  await bad(
    share('w1'),
    /--plan .*plan\.json places no worker for b, c: it was made from another config/,
  );
  await bad(['run', '--share', 'w1'], /--share needs --plan/);
  // An empty worker (a matrix value that is not set) ran the whole config, exit 0.
  await bad(share(''), /--share: an empty worker id/);
  await bad(['run', '--share', ''], /--share needs --plan/);
  await bad(
    ['run', '--share', 'w1', '--plan', join(dir, 'plan.json'), 'a'],
    /--share runs the invocations the plan gives it: name none/,
  );
}, 60_000);

test("a share's local worker stalled past its lease (SIGSTOP) is killed with its command before the job runs again in the tree", async () => {
  mkdirSync(join(dir, 'repo'));
  writeFileSync(join(dir, 'repo/dist-build.yml'), STALL_CONFIG);
  writeFileSync(
    join(dir, 'plan.json'),
    JSON.stringify({ workers: ['x', 'y'], assignments: { b: 'x', c: 'x' } }),
  );
  const run = startCli(share('x', '--workers', '2'), { cwd: join(dir, 'repo') });
  await stallTheWorkerOfB(
    run,
    dir,
    join(dir, 'cache/running'),
    join(dir, 'repo/dist-build-out/out/b.txt'),
  );
}, 90_000);

test("with a gha store, a share's results are one shard under its name, which the other shares (the plan's workers as slots) read", async () => {
  const srv = await startActionsCacheServer();
  try {
    const config = `version: 1
workers: { min: 2 }
invocations:
  a:
    run: mkdir -p oa && echo A > oa/a.txt
    outputs: [oa]
  d:
    run: sleep 1
  b:
    needs: [a]
    run: cat oa/a.txt
cache:
  stores: [{type: local}, {type: gha, slots: [x, y]}]
`;
    for (const t of ['gx', 'gy']) {
      mkdirSync(join(dir, t));
      writeFileSync(join(dir, t, 'dist-build.yml'), config);
    }
    writeFileSync(
      join(dir, 'plan.json'),
      JSON.stringify({ workers: ['x', 'y'], assignments: { a: 'x', d: 'x', b: 'y' } }),
    );
    const env = { ...srv.env('v2'), GITHUB_REF: 'refs/heads/main' };
    const run = (w: string, tree: string, ...extra: string[]) =>
      runCli(['run', '--share', w, '--plan', join(dir, 'plan.json'), '--plain', ...extra], {
        cwd: join(dir, tree),
        env,
      });
    // Its workers rule would give two local workers, each saving a shard of its own.
    const x = await run('x', 'gx');
    expect({ code: x.code, out: x.stderr.slice(-2000) }).toMatchObject({ code: 0 });
    expect(srv.entries().map((e) => e.key)).toEqual([
      expect.stringMatching(/^dist-build-v1-default-x-/),
    ]);
    const y = await run('y', 'gy', '--share-timeout', '5s');
    expect({ code: y.code, out: y.stderr.slice(-2000) }).toMatchObject({ code: 0 });
    expect(statuses(report('gy'))).toEqual({ a: 'cached', b: 'built' });
    const two = await run('x', 'gx', '--workers', '2');
    expect({ code: two.code, err: two.stderr }).toMatchObject({
      code: 2,
      err: expect.stringMatching(/--workers 2: a share with a gha store runs one local worker/),
    });
  } finally {
    await srv.close();
  }
}, 90_000);

test("a share does not wait for another share's invocation that nothing left in it needs (what needed it failed or was skipped)", async () => {
  writeFileSync(
    join(dir, 't2/dist-build.yml'),
    `version: 1
invocations:
  a:
    run: echo a
  d:
    run: exit 3
  b:
    needs: [a, d]
    run: echo b
`,
  );
  writeFileSync(
    join(dir, 'plan.json'),
    JSON.stringify({ workers: ['w1', 'w2'], assignments: { a: 'w1', d: 'w2', b: 'w2' } }),
  );
  const started = Date.now();
  const r = await runCli(share('w2', '--share-timeout', '60s'), { cwd: join(dir, 't2') });
  expect(r.code).toBe(1);
  // Without waiting the minute (or, by default, the hour) for a, which b can no longer use.
  expect(Date.now() - started).toBeLessThan(20_000);
  const rep = report('t2');
  expect(statuses(rep)).toEqual({ a: 'skipped', d: 'failed', b: 'skipped' });
  expect(rep.invocations.find((i) => i.unit === 'a')!.reason).toBe(
    'not waited for: b, which needs it, did not run',
  );
}, 90_000);

test("another share's invocation whose outputs turn out corrupt fails what needs it instead of waiting for ever to be built here", async () => {
  expect((await runCli(share('w1'), { cwd: join(dir, 't1') })).code).toBe(0);
  const digest = report('t1')
    .invocations.find((i) => i.unit === 'a')!
    .outputs[0]!.digest.slice('sha256:'.length);
  const blob = join(dir, 'cache/blobs/sha256', digest.slice(0, 2), digest);
  const bytes = readFileSync(blob);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(blob, bytes);
  // a is w1's: this share cannot build it again (it said "a: will run again" and hung).
  const r = await runCli(share('w2'), { cwd: join(dir, 't2'), timeoutMs: 30_000 });
  expect({ code: r.code, err: r.stderr.slice(-2000) }).toMatchObject({ code: 1 });
  expect(r.stderr).not.toMatch(/a: will run again/);
  const rep = report('t2');
  expect(statuses(rep)).toEqual({ a: 'cached', b: 'failed' });
  expect(rep.invocations.find((i) => i.unit === 'b')!.reason).toMatch(
    /the outputs of a cannot be had: blob sha256:[0-9a-f]{64} is corrupt/,
  );
}, 90_000);

test("a share's warnings name its worker as the run's table does (y), not worker-1", async () => {
  // A port nothing listens on: the registry store is unreachable, a warning.
  const port = await freePort();
  writeFileSync(
    join(dir, 't2/dist-build.yml'),
    `version: 1
cache:
  stores:
    - type: local
    - type: registry
      ref: 127.0.0.1:${port}/team/cache
      insecure: true
invocations:
  a: { run: mkdir -p out && echo a > out/a.txt, outputs: [out/a.txt] }
`,
  );
  writeFileSync(
    join(dir, 'plan.json'),
    JSON.stringify({ workers: ['y'], assignments: { a: 'y' } }),
  );
  const r = await runCli(share('y'), { cwd: join(dir, 't2'), timeoutMs: 60_000 });
  expect({ code: r.code, err: r.stderr.slice(-2000) }).toMatchObject({ code: 0 });
  expect(r.stderr).toMatch(
    new RegExp(`dist-build: warning: y: .*registry http://127\\.0\\.0\\.1:${port} unreachable`),
  );
  expect(r.stderr).not.toMatch(/worker-1/);
}, 90_000);

test("a share the plan gives nothing removes an earlier report from --out: it is not this run's", async () => {
  writeFileSync(
    join(dir, 'plan.json'),
    JSON.stringify({ workers: ['w1', 'w2', 'w3'], assignments: PLAN.assignments }),
  );
  const t1 = join(dir, 't1');
  expect((await runCli(share('w1'), { cwd: t1 })).code).toBe(0);
  expect(existsSync(join(t1, 'dist-build-out/dist-build-report.json'))).toBe(true);
  const r = await runCli(share('w3'), { cwd: t1 });
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/the plan gives w3 no invocation: nothing to do/);
  expect(existsSync(join(t1, 'dist-build-out/dist-build-report.json'))).toBe(false);
}, 60_000);
