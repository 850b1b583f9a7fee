/**
 * Placement benchmark (`npm run bench:placement`): our bounded-load rendezvous placement against
 * a ketama ring, plain rendezvous, LPT and round-robin, on 2,000 independent items per workload at
 * 8, 64 and 256 workers, plus the time to plan 10,000 items over 256 workers. All data comes from a
 * seeded PRNG, so every run measures the same thing (timings aside).
 */
import { performance } from 'node:perf_hooks';
import { place } from '../src/plan/placement.js';
import { simulateMakespan } from '../src/plan/simulate.js';
import type { PlacementItem, WorkerInfo } from '../src/plan/types.js';
import { ketama, lpt, rendezvous, roundRobin } from './lib/baselines.js';
import type { Assign } from './lib/baselines.js';
import { WORKLOADS, makeItems, makeWorkers, withNoise } from './lib/workloads.js';

const ITEMS = 2000;
const SIZES = [8, 64, 256];
const SEED = 20261122;
const NOISE = 0.2;

interface Strategy {
  name: string;
  /** Our placement gets the previous plan; baselines just re-run. */
  plan(
    items: PlacementItem[],
    workers: WorkerInfo[],
    previous?: Record<string, string>,
  ): Record<string, string>;
  ours: boolean;
}

/** The config's default balance (src/config/schema.ts). */
const DEFAULT_BALANCE = 1.1;
const ours = (balance: number): Strategy => ({
  name: `ours c=${balance.toFixed(2)}${balance === DEFAULT_BALANCE ? ' (default)' : ''}`,
  ours: true,
  plan: (items, workers, previous) => place({ items, workers, balance, previous }).assignments,
});
const baseline = (name: string, assign: Assign): Strategy => ({
  name,
  ours: false,
  plan: (items, workers) => assign(items, workers),
});

const STRATEGIES: Strategy[] = [
  ours(DEFAULT_BALANCE),
  ours(1.15),
  baseline('ketama ring (md5, 160 pts)', ketama),
  baseline('rendezvous (no bound)', rendezvous),
  baseline('LPT (no affinity)', lpt),
  baseline('round-robin', roundRobin),
];

interface Row {
  workload: string;
  n: number;
  strategy: string;
  ours: boolean;
  ratio: number;
  firstChoice: number;
  kept: number;
  removedMoved: number;
  survivorsMoved: number;
  survivorsMovedCount: number;
  addedMoved: number;
  lookupsPerSec: number;
}

function same(a: Record<string, string>, b: Record<string, string>, ids: string[]): number {
  let n = 0;
  for (const id of ids) if (a[id] === b[id]) n++;
  return n;
}

function timeIt(fn: () => void, minMs: number): number {
  fn(); // warm-up
  let runs = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < minMs || runs < 2) {
    fn();
    runs++;
    elapsed = performance.now() - start;
  }
  return elapsed / runs;
}

function measure(workloadName: string, items: PlacementItem[], n: number, s: Strategy): Row {
  const ids = items.map((i) => i.id);
  const workers = makeWorkers(n);
  const total = items.reduce((sum, i) => sum + i.duration, 0);
  const lb = Math.max(total / n, ...items.map((i) => i.duration));

  const run1 = s.plan(items, workers);
  const ratio = simulateMakespan(items, run1) / lb;
  const top = rendezvous(items, workers);

  const noisy = withNoise(items, NOISE, SEED + n);
  const run2 = s.plan(noisy, workers, run1);

  const removed = `worker-${Math.ceil(n / 2)}`;
  const runR = s.plan(
    items,
    workers.filter((w) => w.id !== removed),
    run1,
  );
  const survivors = ids.filter((id) => run1[id] !== removed);
  const survivorsMovedCount = survivors.length - same(run1, runR, survivors);

  const runA = s.plan(items, makeWorkers(n + 1), run1);

  const ms = timeIt(() => s.plan(items, workers), 150);
  return {
    workload: workloadName,
    n,
    strategy: s.name,
    ours: s.ours,
    ratio,
    firstChoice: same(run1, top, ids) / ids.length,
    kept: same(run1, run2, ids) / ids.length,
    removedMoved: (ids.length - same(run1, runR, ids)) / ids.length,
    survivorsMoved: survivorsMovedCount / survivors.length,
    survivorsMovedCount,
    addedMoved: (ids.length - same(run1, runA, ids)) / ids.length,
    lookupsPerSec: items.length / (ms / 1000),
  };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const pad = (s: string, w: number): string => (s.length >= w ? s : s + ' '.repeat(w - s.length));
const lpad = (s: string, w: number): string => (s.length >= w ? s : ' '.repeat(w - s.length) + s);
const fmtRate = (x: number): string =>
  x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(0)}k` : x.toFixed(0);

function printTable(rows: Row[]): void {
  const header = [
    pad('N', 4),
    pad('strategy', 27),
    lpad('mk/LB', 6),
    lpad('1st', 7),
    lpad('kept±20%', 9),
    lpad('rm:moved', 9),
    lpad('rm:survivors moved', 19),
    lpad('add:moved', 10),
    lpad('lookups/s', 10),
  ].join(' ');
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const r of rows) {
    console.log(
      [
        pad(String(r.n), 4),
        pad(r.strategy, 27),
        lpad(r.ratio.toFixed(3), 6),
        lpad(pct(r.firstChoice), 7),
        lpad(pct(r.kept), 9),
        lpad(pct(r.removedMoved), 9),
        lpad(`${r.survivorsMovedCount} (${pct(r.survivorsMoved)})`, 19),
        lpad(pct(r.addedMoved), 10),
        lpad(fmtRate(r.lookupsPerSec), 10),
      ].join(' '),
    );
  }
}

const started = performance.now();
const rows: Row[] = [];
for (const [w, workload] of WORKLOADS.entries()) {
  const items = makeItems(workload, ITEMS, SEED + w);
  console.log(`\n## ${workload.name}: ${ITEMS} independent items`);
  const group: Row[] = [];
  for (const n of SIZES)
    for (const s of STRATEGIES) group.push(measure(workload.name, items, n, s));
  printTable(group);
  rows.push(...group);
}
console.log(
  '\nmk/LB: simulated makespan / max(total/N, longest). 1st: items on their top rendezvous worker.' +
    '\nkept±20%: same worker after a re-plan with ±20% uniform duration noise (ours: previous plan given).' +
    '\nrm: one worker removed (worker-ceil(N/2)); survivors moved = items not on it that moved (% of those).' +
    '\nadd: worker-(N+1) added. lookups/s: items placed per second, whole call (ours includes the makespan simulation).',
);

// Planning time: 10,000 items over 256 workers.
const big = makeItems(WORKLOADS[0], 10_000, SEED + 99);
const bigWorkers = makeWorkers(256);
const times: number[] = [];
place({ items: big, workers: bigWorkers, balance: DEFAULT_BALANCE });
for (let k = 0; k < 7; k++) {
  const t0 = performance.now();
  place({ items: big, workers: bigWorkers, balance: DEFAULT_BALANCE });
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const planMs = times[3];
console.log(
  `\nplan 10,000 items over 256 workers (c=${DEFAULT_BALANCE.toFixed(2)}): median ${planMs.toFixed(1)} ms (min ${times[0].toFixed(1)}, max ${times[6].toFixed(1)})`,
);

// Targets.
console.log('\n## Targets');
const mark = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
for (const r of rows) {
  if (!r.ours || (r.n !== 64 && r.n !== 256)) continue;
  const checks: string[] = [];
  if (r.n === 64) {
    checks.push(`mk/LB ${r.ratio.toFixed(4)} <= 1.10 ${mark(r.ratio <= 1.1)}`);
    checks.push(`kept ${pct(r.kept)} >= 90% ${mark(r.kept >= 0.9)}`);
    checks.push(`survivors moved ${pct(r.survivorsMoved)} <= 1% ${mark(r.survivorsMoved <= 0.01)}`);
  } else {
    checks.push(`mk/LB ${r.ratio.toFixed(4)} <= 1.25 ${mark(r.ratio <= 1.25)}`);
    checks.push(`kept ${pct(r.kept)} >= 90% ${mark(r.kept >= 0.9)}`);
  }
  console.log(
    `${pad(r.workload, 26)} N=${pad(String(r.n), 4)} ${pad(r.strategy, 22)} ${checks.join('; ')}`,
  );
}
console.log(`plan 10k/256: ${planMs.toFixed(1)} ms < 100 ms ${mark(planMs < 100)}`);
console.log(`\ntotal benchmark time ${((performance.now() - started) / 1000).toFixed(1)} s`);
