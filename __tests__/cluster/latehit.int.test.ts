/**
 * A late cache hit: a worker whose slower store cannot answer the master's cache query in time
 * (an Actions cache shard still being restored) looks for a unit's result again when the unit is
 * sent to it, and reports it cached instead of building it. Master, worker and run in this
 * process over unix sockets; the slow store is a local store behind a warm-up that takes longer
 * than the cache query's budget.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { computeCacheKeys } from '../../src/plan/keys.js';
import { expandUnits } from '../../src/plan/units.js';
import { Master } from '../../src/cluster/master.js';
import { Run, type RunEvent } from '../../src/cluster/scheduler.js';
import { WorkerAgent } from '../../src/cluster/worker.js';
import { LayeredStore } from '../../src/store/layered.js';
import { LocalStore } from '../../src/store/local.js';
import { saveOutputs } from '../../src/store/pack.js';
import { RESULT_FORMAT, type Store } from '../../src/store/types.js';

const CONFIG = `version: 1
invocations:
  site:
    run: "touch ran && mkdir -p site && echo built > site/index.html"
    outputs: [site]
  other:
    run: "echo other > other.txt"
    outputs: [other.txt]
`;

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-latehit-'));
});
// Stopping the worker waits for a lookup still stuck in the slow store's warm-up.
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/**
 * `inner` behind a warm-up of `warmMs`: every lookup waits for it, as the Actions cache store's
 * lookups wait for its shard's restore.
 */
function warmingStore(inner: LocalStore, warmMs: number): Store {
  let warmed: Promise<void> | undefined;
  const warm = () => (warmed ??= new Promise((r) => setTimeout(r, warmMs).unref()));
  const after =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A) => {
      await warm();
      return fn(...a);
    };
  return {
    kind: 'gha',
    location: 'slow shard',
    warm,
    hasBlobs: after((d) => inner.hasBlobs(d)),
    putBlob: after((d, e) => inner.putBlob(d, e)),
    putBlobFile: after((f) => inner.putBlobFile(f)),
    openBlob: after((d) => inner.openBlob(d)),
    getResult: after((k) => inner.getResult(k)),
    putResult: after((m) => inner.putResult(m)),
    hasResults: after((k) => inner.hasResults(k)),
  };
}

async function setUp({
  text = CONFIG,
  warmMs = 1500,
  ...opts
}: { lateHitWaitMs?: number; text?: string; warmMs?: number } = {}) {
  const root = join(dir, 'tree');
  mkdirSync(root);
  writeFileSync(join(root, 'dist-build.yml'), text);
  const config = parseConfig(text, join(root, 'dist-build.yml'));
  const keys = new Map(
    [...(await computeCacheKeys(config, expandUnits(config)))].map(([id, k]) => [id, k.cacheKey]),
  );
  // `site`'s result, built earlier elsewhere, is only in the slow store.
  const elsewhere = join(dir, 'elsewhere');
  mkdirSync(join(elsewhere, 'site'), { recursive: true });
  writeFileSync(join(elsewhere, 'site/index.html'), 'from the cache\n');
  const slowInner = await LocalStore.open(join(dir, 'slow'));
  const outputs = await saveOutputs(slowInner, elsewhere, ['site']);
  if (keys.has('site')) {
    await slowInner.putResult({
      format: RESULT_FORMAT,
      cacheKey: keys.get('site')!,
      unit: 'site',
      invocation: 'site',
      exitCode: 0,
      durationMs: 5,
      worker: 'elsewhere',
      createdAt: new Date().toISOString(),
      outputs,
    });
  }
  const local = await LocalStore.open(join(dir, 'cache'));
  const warnings: string[] = [];
  const store = new LayeredStore([local, warmingStore(slowInner, warmMs)], {
    onWarning: (m) => warnings.push(m),
  });

  const master = new Master({
    listen: [{ kind: 'unix', path: join(dir, 'master.sock') }],
    security: {},
    heartbeatMs: 200,
    log: () => {},
  });
  await master.start();
  cleanups.push(() => master.stop());
  const agent = new WorkerAgent({
    config,
    join: { kind: 'unix', path: join(dir, 'master.sock') },
    listen: [{ kind: 'unix', path: join(dir, 'w1.sock') }],
    security: {},
    store,
    cacheDir: join(dir, 'cache'),
    id: 'w1',
    logDir: join(dir, 'logs'),
    log: () => {},
    keyCheck: 'off',
    cacheQueryBudgetMs: 300,
    ...opts,
  });
  cleanups.push(() => agent.stop());
  await agent.start();
  await agent.registered;
  const events: RunEvent[] = [];
  const run = new Run(master, {
    config,
    configPath: 'dist-build.yml',
    keys,
    onEvent: (e) => events.push(e),
  });
  return { root, run, events, local, keys, warnings };
}

test('a result the cache query could not settle in time is found by the worker it is sent to, not built', async () => {
  const { root, run, events, local, keys, warnings } = await setUp();
  const report = await run.execute();
  expect(report.status).toBe('succeeded');
  const status = Object.fromEntries(report.invocations.map((i) => [i.unit, i.status]));
  expect(status).toEqual({ site: 'cached', other: 'built' });
  expect(existsSync(join(root, 'ran'))).toBe(false); // site's command never ran
  expect(events).toContainEqual({ type: 'cached', unit: 'site', worker: 'w1' });
  // The result came into the local store with its blobs.
  const manifest = await local.getResult(keys.get('site')!);
  expect(manifest?.worker).toBe('elsewhere');
  expect(await local.hasBlobs(manifest!.outputs.map((o) => o.digest))).toEqual(
    new Set(manifest!.outputs.map((o) => o.digest)),
  );
  // A layer warming up is not a hung one: not left alone.
  expect(warnings.join('\n')).not.toMatch(/left alone/);
}, 30_000);

test('past the late-hit wait the unit is built', async () => {
  const { root, run } = await setUp({ lateHitWaitMs: 100 });
  const report = await run.execute();
  const status = Object.fromEntries(report.invocations.map((i) => [i.unit, i.status]));
  expect(status).toEqual({ site: 'built', other: 'built' });
  expect(existsSync(join(root, 'ran'))).toBe(true);
}, 30_000);

test('a store still stuck after one late-hit wait is not waited for again by every later job', async () => {
  // A chain: each job is sent when the one before it is done, and none is in the local store.
  const chain = `version: 1
invocations:
  a: {run: "true"}
  b: {run: "true", needs: [a]}
  c: {run: "true", needs: [b]}
  d: {run: "true", needs: [c]}
`;
  const { run } = await setUp({ text: chain, warmMs: 8000, lateHitWaitMs: 1500 });
  const started = Date.now();
  const report = await run.execute();
  expect(report.invocations.map((i) => i.status)).toEqual(['built', 'built', 'built', 'built']);
  // One wait (a's), not four in a row.
  expect(Date.now() - started).toBeLessThan(4000);
}, 30_000);
