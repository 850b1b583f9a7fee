import { hashString, mix } from '../../src/plan/hash.js';
import { NoEligibleWorkerError, eligible, lowerBound, place } from '../../src/plan/placement.js';
import { simulateMakespan } from '../../src/plan/simulate.js';
import type {
  PlacementInput,
  PlacementItem,
  PlacementResult,
  WorkerInfo,
} from '../../src/plan/types.js';

// --- test data (seeded, so every run checks the same cases) ---

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Dist = (rng: () => number) => number;
const logUniform: Dist = (rng) => Math.exp(Math.log(10) + rng() * Math.log(120));
const bimodal: Dist = (rng) => (rng() < 0.85 ? 10 + 50 * rng() : 300 + 900 * rng());
const uniform: Dist = (rng) => 1 + 99 * rng();
const heavyTail: Dist = (rng) => 5 / (1 - rng() * 0.995);

function makeItems(count: number, seed: number, dist: Dist = logUniform): PlacementItem[] {
  const rng = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => ({
    id: `job-${i}`,
    affinityKey: `svc-${i}`,
    duration: dist(rng),
    needs: [],
    labels: [],
  }));
}

function makeWorkers(count: number, from = 1): WorkerInfo[] {
  return Array.from({ length: count }, (_, j) => ({ id: `worker-${from + j}` }));
}

function item(id: string, duration: number, extra: Partial<PlacementItem> = {}): PlacementItem {
  return { id, affinityKey: id, duration, needs: [], labels: [], ...extra };
}

function shuffle<T>(list: readonly T[], seed: number): T[] {
  const rng = mulberry32(seed);
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function kept(a: PlacementResult, b: PlacementResult, ids: string[]): number {
  return ids.filter((id) => a.assignments[id] === b.assignments[id]).length;
}

/** Rendezvous ranking of workers for a key, best first, computed independently of placement. */
function ranking(key: string, workers: WorkerInfo[]): string[] {
  const k = hashString(key);
  return workers
    .map((w) => ({ id: w.id, score: mix(k, hashString(w.id)) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
    .map((w) => w.id);
}

const EPS = 1e-9;

/** Invariants every result must satisfy. */
function checkResult(input: PlacementInput, result: PlacementResult): void {
  const ids = new Set(input.workers.map((w) => w.id));
  expect(Object.keys(result.loads).sort()).toEqual([...ids].sort());
  const sums: Record<string, number> = {};
  for (const w of ids) sums[w] = 0;
  for (const it of input.items) {
    const w = result.assignments[it.id];
    expect(ids.has(w)).toBe(true);
    sums[w] += it.duration;
  }
  expect(Object.keys(result.assignments)).toHaveLength(input.items.length);
  for (const w of ids) expect(result.loads[w]).toBeCloseTo(sums[w], 6);
  expect(result.capacity).toBeCloseTo(input.balance * result.lowerBound, 9);
  expect(result.makespan).toBe(simulateMakespan(input.items, result.assignments));
  expect(result.makespan).toBeGreaterThanOrEqual(result.lowerBound * (1 - EPS));
}

/**
 * Capacity bound: a worker may exceed capacity only with an item that was too large for every
 * other worker as well (loads only grow, so the final loads of the others must still lack room).
 */
function overloadsJustified(input: PlacementInput, result: PlacementResult): number {
  let overloaded = 0;
  const limit = result.capacity * (1 + EPS);
  for (const w of input.workers) {
    if (result.loads[w.id] <= limit) continue;
    overloaded++;
    const mine = input.items.filter((it) => result.assignments[it.id] === w.id);
    const forced = mine.some(
      (it) =>
        it.duration > limit ||
        input.workers.every(
          (v) => v.id === w.id || !eligible(it, v) || result.loads[v.id] + it.duration > limit,
        ),
    );
    expect({ worker: w.id, load: result.loads[w.id], forced }).toEqual({
      worker: w.id,
      load: result.loads[w.id],
      forced: true,
    });
  }
  return overloaded;
}

// --- tests ---

describe('place: output', () => {
  it('assigns every item, reports every worker (idle ones at 0) and the estimate', () => {
    const input: PlacementInput = {
      items: [item('a', 30), item('b', 20), item('c', 10, { needs: ['b'] })],
      workers: makeWorkers(5),
      balance: 1.15,
    };
    const result = place(input);
    checkResult(input, result);
    expect(Object.values(result.loads).filter((l) => l === 0).length).toBeGreaterThanOrEqual(2);
    // max(60 / 5, 30, b -> c = 30)
    expect(result.lowerBound).toBe(30);
    expect(result.capacity).toBeCloseTo(34.5, 9);
  });

  it('uses the longest needs-chain in the lower bound', () => {
    const items = [item('a', 10), item('b', 10, { needs: ['a'] }), item('c', 15, { needs: ['b'] })];
    expect(place({ items, workers: makeWorkers(8), balance: 1 }).lowerBound).toBe(35);
    expect(lowerBound(items, makeWorkers(8))).toBe(35);
  });

  it('handles no items, and rejects bad input', () => {
    const empty = place({ items: [], workers: makeWorkers(3), balance: 1.15 });
    expect(empty).toEqual({
      assignments: {},
      loads: { 'worker-1': 0, 'worker-2': 0, 'worker-3': 0 },
      capacity: 0,
      lowerBound: 0,
      makespan: 0,
    });
    expect(() => place({ items: [item('a', 1)], workers: makeWorkers(2), balance: 0.9 })).toThrow(
      RangeError,
    );
    expect(() => place({ items: [item('a', -1)], workers: makeWorkers(2), balance: 1 })).toThrow(
      RangeError,
    );
    expect(() =>
      place({ items: [item('a', 1), item('a', 2)], workers: makeWorkers(2), balance: 1 }),
    ).toThrow('duplicate item id "a"');
    expect(() =>
      place({ items: [item('a', 1)], workers: [{ id: 'w' }, { id: 'w' }], balance: 1 }),
    ).toThrow('duplicate worker id "w"');
    expect(() =>
      place({
        items: [item('a', 1, { needs: ['b'] }), item('b', 1, { needs: ['a'] })],
        workers: makeWorkers(2),
        balance: 1,
      }),
    ).toThrow(/needs cycle/);
    expect(() => place({ items: [item('a', 1)], workers: [], balance: 1.15 })).toThrow(
      NoEligibleWorkerError,
    );
  });
});

describe('place: determinism', () => {
  const items = [
    ...makeItems(300, 1, bimodal),
    item('x1', 40),
    item('x2', 30, { needs: ['x1'] }),
    item('x3', 20, { needs: ['x2'] }),
    item('arm', 50, { platform: 'linux/arm64' }),
    item('gpu', 70, { labels: ['gpu'] }),
  ];
  const workers: WorkerInfo[] = [
    ...makeWorkers(10),
    { id: 'arm-1', annotations: { os: 'linux', arch: 'arm64', labels: 'gpu' } },
    { id: 'amd-1', annotations: { os: 'linux', arch: 'amd64' } },
  ];
  const previous: Record<string, string> = {};
  items.forEach((it, i) => {
    if (i % 3 === 0) previous[it.id] = `worker-${(i % 12) + 1}`;
  });

  it('gives the same result for the same input', () => {
    const input = { items, workers, balance: 1.1, previous };
    const a = place(input);
    checkResult(input, a);
    expect(place(structuredClone(input))).toEqual(a);
  });

  it('does not depend on the order of items or workers', () => {
    const a = place({ items, workers, balance: 1.1, previous });
    for (const seed of [1, 2, 3]) {
      const b = place({
        items: shuffle(items, seed),
        workers: shuffle(workers, seed + 10),
        balance: 1.1,
        previous,
      });
      expect(b).toEqual(a);
    }
    const c = place({
      items: [...items].reverse(),
      workers: [...workers].reverse(),
      balance: 1.1,
      previous,
    });
    expect(c).toEqual(a);
  });
});

describe('place: rendezvous ranking by affinity key', () => {
  it('puts every item on its top-ranked worker when capacity allows', () => {
    const items = makeItems(200, 7, uniform);
    const workers = makeWorkers(6);
    const result = place({ items, workers, balance: 1000 });
    for (const it of items)
      expect(result.assignments[it.id]).toBe(ranking(it.affinityKey, workers)[0]);
  });

  it('walks the ranking when the top choice is full', () => {
    const workers = makeWorkers(4);
    const order = ranking('k', workers);
    // `big` (long, placed first) takes its previous worker = k's first choice; k (40) no longer fits
    // there (100 + 40 > 1.15 * max(250 / 4, 100)).
    const items = [
      item('big', 100, { affinityKey: 'other' }),
      item('k', 40, { affinityKey: 'k' }),
      item('pad', 110, { affinityKey: 'pad' }),
    ];
    const result = place({
      items,
      workers,
      balance: 1.15,
      previous: { big: order[0], pad: order[1] },
    });
    expect(result.assignments.big).toBe(order[0]);
    expect(result.assignments.pad).toBe(order[1]);
    expect(result.assignments.k).toBe(order[2]);
  });

  it('places by affinity key, not by id', () => {
    const items = makeItems(400, 11, logUniform);
    const workers = makeWorkers(12);
    const a = place({ items, workers, balance: 1.15 });
    // New ids, same affinity keys: every item keeps its worker.
    const renamed = items.map((it) => ({ ...it, id: `renamed-${it.id}` }));
    const b = place({ items: renamed, workers, balance: 1.15 });
    items.forEach((it, i) => expect(b.assignments[renamed[i].id]).toBe(a.assignments[it.id]));
    // Same ids, new affinity keys: placement changes (most items move).
    const rekeyed = items.map((it) => ({ ...it, affinityKey: `new-${it.affinityKey}` }));
    const c = place({ items: rekeyed, workers, balance: 1.15 });
    expect(
      kept(
        a,
        c,
        items.map((it) => it.id),
      ),
    ).toBeLessThan(items.length * 0.3);
  });

  it('puts items sharing an affinity key together when they fit', () => {
    const items = [
      ...makeItems(100, 3, uniform),
      item('api-build', 20, { affinityKey: 'api' }),
      item('api-test', 30, { affinityKey: 'api' }),
    ];
    const workers = makeWorkers(4);
    const result = place({ items, workers, balance: 1.5 });
    expect(result.assignments['api-build']).toBe(result.assignments['api-test']);
  });
});

describe('place: bounded loads', () => {
  const dists: [string, Dist][] = [
    ['log-uniform', logUniform],
    ['bimodal', bimodal],
    ['uniform', uniform],
    ['heavy tail', heavyTail],
  ];
  for (const [name, dist] of dists) {
    it(`keeps loads within capacity unless an item fit nowhere (${name})`, () => {
      for (const n of [2, 3, 8, 20, 64]) {
        for (const balance of [1, 1.05, 1.15, 1.5]) {
          for (const count of [5, 60, 700]) {
            const input: PlacementInput = {
              items: makeItems(count, n * 1000 + count, dist),
              workers: makeWorkers(n),
              balance,
            };
            const result = place(input);
            checkResult(input, result);
            overloadsJustified(input, result);
          }
        }
      }
    });
  }

  it('never exceeds capacity with many small items', () => {
    for (const balance of [1.05, 1.1, 1.15]) {
      const input = { items: makeItems(2000, 5, logUniform), workers: makeWorkers(64), balance };
      const result = place(input);
      expect(overloadsJustified(input, result)).toBe(0);
      expect(Math.max(...Object.values(result.loads))).toBeLessThanOrEqual(
        result.capacity * (1 + EPS),
      );
      // Bounded loads balance far better than plain rendezvous (>1.5x LB here).
      expect(result.makespan / result.lowerBound).toBeLessThanOrEqual(balance + EPS);
    }
  });

  it('falls back to the least-loaded worker when nothing has room', () => {
    // LB = max(30 / 2, 10) = 15, capacity 17.25: the third item fits nowhere.
    const input = {
      items: [item('a', 10), item('b', 10), item('c', 10)],
      workers: makeWorkers(2),
      balance: 1.15,
    };
    const result = place(input);
    checkResult(input, result);
    expect(Object.values(result.loads).sort()).toEqual([10, 20]);
    expect(overloadsJustified(input, result)).toBe(1);
  });

  it('falls back to the eligible worker with the smallest resulting load', () => {
    // Balance 1: capacity = 47 / 3; c, b and d take a worker each, then a fits nowhere and joins
    // the least loaded one (d, 11).
    for (const names of [
      ['a', 'b', 'c', 'd'],
      ['p', 'q', 'r', 's'],
      ['k1', 'k2', 'k3', 'k4'],
    ]) {
      const [a, b, c, d] = names;
      const items = [item(a, 10), item(b, 12), item(c, 14), item(d, 11)];
      const result = place({ items, workers: makeWorkers(3), balance: 1 });
      expect(result.assignments[a]).toBe(result.assignments[d]);
      expect(Object.values(result.loads).sort((x, y) => x - y)).toEqual([12, 14, 21]);
    }
  });

  it('places long items first so they find room', () => {
    // Four 110 s items and 36 10 s ones on 4 workers at balance 1 (capacity 200): long items
    // first, each on a worker of its own, and the small ones fill up exactly. Small ones placed
    // first could leave no worker with 100 s of room.
    for (let seed = 1; seed <= 20; seed++) {
      const items = [
        ...Array.from({ length: 4 }, (_, i) => item(`long-${seed}-${i}`, 110)),
        ...makeItems(36, seed, () => 10),
      ];
      const input = { items, workers: makeWorkers(4), balance: 1 };
      const result = place(input);
      const longWorkers = new Set(items.slice(0, 4).map((it) => result.assignments[it.id]));
      expect(longWorkers.size).toBe(4);
      expect(overloadsJustified(input, result)).toBe(0);
      expect(result.makespan).toBe(200);
    }
  });
});

describe('place: constraints', () => {
  const workers: WorkerInfo[] = [
    { id: 'amd', annotations: { os: 'linux', arch: 'amd64' } },
    { id: 'arm', annotations: { os: 'linux', arch: 'arm64', labels: 'gpu, big' } },
    {
      id: 'multi',
      annotations: { os: 'linux', arch: 'amd64', platforms: 'linux/arm64,linux/arm/v7' },
    },
    { id: 'any', annotations: { labels: 'big' } },
    { id: 'plain' },
  ];

  it('knows which worker offers which platform and labels', () => {
    const arm64 = { platform: 'linux/arm64', labels: [] };
    expect(workers.filter((w) => eligible(arm64, w)).map((w) => w.id)).toEqual([
      'arm',
      'multi',
      'any',
      'plain',
    ]);
    const amd64 = { platform: 'linux/amd64', labels: [] };
    expect(workers.filter((w) => eligible(amd64, w)).map((w) => w.id)).toEqual([
      'amd',
      'multi',
      'any',
      'plain',
    ]);
    const armv7 = { platform: 'linux/arm/v7', labels: [] };
    expect(workers.filter((w) => eligible(armv7, w)).map((w) => w.id)).toEqual([
      'multi',
      'any',
      'plain',
    ]);
    const gpu = { labels: ['gpu'] };
    expect(workers.filter((w) => eligible(gpu, w)).map((w) => w.id)).toEqual(['arm']);
    const big = { labels: ['big'] };
    expect(workers.filter((w) => eligible(big, w)).map((w) => w.id)).toEqual(['arm', 'any']);
    const bigArm = { platform: 'linux/arm64', labels: ['big'] };
    expect(workers.filter((w) => eligible(bigArm, w)).map((w) => w.id)).toEqual(['arm', 'any']);
    const nothing = { labels: [] };
    expect(workers.filter((w) => eligible(nothing, w))).toHaveLength(5);
  });

  it('normalizes platform spellings', () => {
    const w = { id: 'w', annotations: { os: 'Linux', arch: 'aarch64' } };
    expect(eligible({ platform: 'linux/arm64', labels: [] }, w)).toBe(true);
    expect(eligible({ platform: 'linux/arm64/v8', labels: [] }, w)).toBe(true);
    expect(eligible({ platform: 'linux/amd64', labels: [] }, w)).toBe(false);
    expect(eligible({ platform: 'windows/arm64', labels: [] }, w)).toBe(false);
    const x86 = { id: 'x', annotations: { platforms: ' linux/x86_64 , windows/amd64 ' } };
    expect(eligible({ platform: 'linux/amd64', labels: [] }, x86)).toBe(true);
    expect(eligible({ platform: 'windows/amd64', labels: [] }, x86)).toBe(true);
    expect(eligible({ platform: 'linux/arm64', labels: [] }, x86)).toBe(false);
  });

  it('places constrained items only on eligible workers', () => {
    const rng = mulberry32(42);
    const items: PlacementItem[] = Array.from({ length: 300 }, (_, i) => {
      const r = rng();
      return item(`u${i}`, 5 + rng() * 50, {
        platform: r < 0.3 ? 'linux/arm64' : r < 0.5 ? 'linux/amd64' : undefined,
        labels: r > 0.9 ? ['gpu'] : r > 0.8 ? ['big'] : [],
      });
    });
    const input = { items, workers, balance: 1.15 };
    const result = place(input);
    checkResult(input, result);
    const byId = new Map(workers.map((w) => [w.id, w]));
    for (const it of items) expect(eligible(it, byId.get(result.assignments[it.id])!)).toBe(true);
    // The gpu items (only `arm` can take them) are in the lower bound.
    const gpuTotal = items
      .filter((it) => it.labels.includes('gpu'))
      .reduce((s, it) => s + it.duration, 0);
    expect(result.lowerBound).toBeGreaterThanOrEqual(gpuTotal);
    overloadsJustified(input, result);
  });

  it('bounds by the workers a constrained set of items can use', () => {
    const ws: WorkerInfo[] = [
      ...makeWorkers(6),
      { id: 'arm-1', annotations: { os: 'linux', arch: 'arm64' } },
      { id: 'arm-2', annotations: { os: 'linux', arch: 'arm64' } },
    ];
    // Only arm-1, arm-2 and the 6 plain (unconstrained) workers take arm64; amd64 items can't use
    // arm-1/2: amd64 total 600 over 6 workers = 100.
    const items = [
      ...Array.from({ length: 12 }, (_, i) => item(`amd-${i}`, 50, { platform: 'linux/amd64' })),
      item('arm-a', 10, { platform: 'linux/arm64' }),
    ];
    expect(lowerBound(items, ws)).toBe(100);
    const result = place({ items, workers: ws, balance: 1.15 });
    expect(result.loads['arm-1'] + result.loads['arm-2']).toBeLessThanOrEqual(10);
    // Workers that nothing could use do not dilute total / N.
    expect(
      lowerBound(
        [
          item('arm-only', 60, { platform: 'linux/arm64' }),
          item('b', 60, { platform: 'linux/arm64' }),
        ],
        [
          { id: 'a', annotations: { os: 'linux', arch: 'amd64' } },
          { id: 'b', annotations: { os: 'linux', arch: 'amd64' } },
          { id: 'c', annotations: { os: 'linux', arch: 'arm64' } },
        ],
      ),
    ).toBe(120);
  });

  it('throws NoEligibleWorkerError naming the item, its needs and what workers offer', () => {
    const run = (it: PlacementItem): unknown => {
      try {
        place({ items: [item('ok', 5), it], workers: workers.slice(0, 3), balance: 1.15 });
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const e1 = run(item('api-image@linux/s390x', 10, { platform: 'linux/s390x' }));
    expect(e1).toBeInstanceOf(NoEligibleWorkerError);
    expect((e1 as NoEligibleWorkerError).item).toBe('api-image@linux/s390x');
    expect((e1 as Error).message).toBe(
      'no worker can take "api-image@linux/s390x" (needs platform linux/s390x, labels []); workers: ' +
        'amd (linux/amd64, labels []), arm (linux/arm64, labels [gpu, big]), ' +
        'multi (linux/amd64, linux/arm64, linux/arm/v7, labels [])',
    );
    const e2 = run(item('train', 10, { platform: 'linux/amd64', labels: ['gpu'] }));
    expect(e2).toBeInstanceOf(NoEligibleWorkerError);
    expect((e2 as Error).message).toContain('"train" (needs platform linux/amd64, labels [gpu])');
    expect((e2 as Error).message).toContain('arm (linux/arm64, labels [gpu, big])');
    const e3 = (() => {
      try {
        place({
          items: [item('x', 1, { labels: ['tpu'] })],
          workers: [{ id: 'plain' }],
          balance: 1,
        });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(e3?.message).toBe(
      'no worker can take "x" (needs any platform, labels [tpu]); workers: plain (any platform, labels [])',
    );
  });
});

describe('place: previous plan', () => {
  it('moves only the removed worker’s items when a worker leaves', () => {
    for (const [dist, seed] of [
      [logUniform, 1],
      [bimodal, 2],
    ] as const) {
      const items = makeItems(800, seed, dist);
      const workers = makeWorkers(16);
      const first = place({ items, workers, balance: 1.15 });
      const survivors = workers.filter((w) => w.id !== 'worker-5');
      const input = { items, workers: survivors, balance: 1.15, previous: first.assignments };
      const second = place(input);
      checkResult(input, second);
      const onRemoved = items.filter((it) => first.assignments[it.id] === 'worker-5');
      expect(onRemoved.length).toBeGreaterThan(0);
      const moved = items.filter((it) => first.assignments[it.id] !== second.assignments[it.id]);
      expect(moved.map((it) => it.id)).toEqual(onRemoved.map((it) => it.id));
      expect(overloadsJustified(input, second)).toBe(0);
    }
  });

  it('moves few items when a worker joins', () => {
    for (const [dist, seed] of [
      [logUniform, 3],
      [bimodal, 4],
    ] as const) {
      const items = makeItems(800, seed, dist);
      const first = place({ items, workers: makeWorkers(16), balance: 1.15 });
      const input = { items, workers: makeWorkers(17), balance: 1.15, previous: first.assignments };
      const second = place(input);
      checkResult(input, second);
      const moved =
        items.length -
        kept(
          first,
          second,
          items.map((it) => it.id),
        );
      expect(moved).toBeLessThan((2 * items.length) / 16);
      expect(overloadsJustified(input, second)).toBe(0);
    }
  });

  it('keeps >= 90% of items under ±20% duration noise (64 workers, 2000 items)', () => {
    for (const [dist, seed] of [
      [logUniform, 5],
      [bimodal, 6],
    ] as const) {
      const items = makeItems(2000, seed, dist);
      const workers = makeWorkers(64);
      const first = place({ items, workers, balance: 1.15 });
      const rng = mulberry32(seed + 100);
      const noisy = items.map((it) => ({ ...it, duration: it.duration * (0.8 + 0.4 * rng()) }));
      const input = { items: noisy, workers, balance: 1.15, previous: first.assignments };
      const second = place(input);
      checkResult(input, second);
      expect(
        kept(
          first,
          second,
          items.map((it) => it.id),
        ),
      ).toBeGreaterThanOrEqual(0.9 * items.length);
      expect(overloadsJustified(input, second)).toBe(0);
      // Without the previous plan, fewer stay (the capacity bound pushes different items around).
      const fresh = place({ items: noisy, workers, balance: 1.15 });
      expect(
        kept(
          first,
          second,
          items.map((it) => it.id),
        ),
      ).toBeGreaterThan(
        kept(
          first,
          fresh,
          items.map((it) => it.id),
        ),
      );
    }
  });

  it('returns an unchanged plan for unchanged input', () => {
    const items = makeItems(500, 8, bimodal);
    const first = place({ items, workers: makeWorkers(20), balance: 1.1 });
    const second = place({
      items,
      workers: makeWorkers(20),
      balance: 1.1,
      previous: first.assignments,
    });
    expect(second.assignments).toEqual(first.assignments);
  });

  it('follows the previous plan over the ranking, within capacity', () => {
    const items = makeItems(50, 12, uniform);
    const workers = makeWorkers(5);
    // Everything previously on worker-3: only what fits stays there.
    const previous = Object.fromEntries(items.map((it) => [it.id, 'worker-3']));
    const input = { items, workers, balance: 1.15, previous };
    const result = place(input);
    checkResult(input, result);
    expect(result.loads['worker-3']).toBeLessThanOrEqual(result.capacity * (1 + EPS));
    expect(result.loads['worker-3']).toBeGreaterThan(result.capacity - 100);
  });

  it('ignores previous workers that are gone or no longer eligible', () => {
    const workers: WorkerInfo[] = [
      { id: 'w1', annotations: { os: 'linux', arch: 'amd64' } },
      { id: 'w2', annotations: { os: 'linux', arch: 'arm64' } },
    ];
    const items = [item('a', 10, { platform: 'linux/arm64' }), item('b', 10)];
    const result = place({ items, workers, balance: 2, previous: { a: 'w1', b: 'gone' } });
    expect(result.assignments.a).toBe('w2');
    expect(['w1', 'w2']).toContain(result.assignments.b);
  });
});

describe('place: needs chains', () => {
  function withChains(count: number, length: number, seed: number): PlacementItem[] {
    const rng = mulberry32(seed);
    const items = makeItems(200, seed, uniform);
    for (let c = 0; c < count; c++) {
      for (let k = 0; k < length; k++) {
        items.push(
          item(`chain${c}-${k}`, 5 + 30 * rng(), { needs: k > 0 ? [`chain${c}-${k - 1}`] : [] }),
        );
      }
    }
    return items;
  }

  it('keeps a linear chain on one worker when it fits', () => {
    const items = withChains(12, 4, 21);
    const input = { items, workers: makeWorkers(8), balance: 1.15 };
    const result = place(input);
    checkResult(input, result);
    for (let c = 0; c < 12; c++) {
      const where = new Set([0, 1, 2, 3].map((k) => result.assignments[`chain${c}-${k}`]));
      expect(where.size).toBe(1);
    }
    // A chain goes where its first member's affinity key ranks (ample capacity).
    const roomy = place({ items, workers: makeWorkers(8), balance: 100 });
    expect(roomy.assignments['chain0-3']).toBe(ranking('chain0-0', makeWorkers(8))[0]);
  });

  it('splits a chain that fits nowhere whole', () => {
    // LB = max(1100 / 2, 400, 300) = 550, capacity 660: x and y (long, first) take one worker each,
    // leaving 260 of room on each: the 300 s chain cannot stay together, its 100 s links can fit.
    const items = [
      item('x', 400),
      item('y', 400),
      item('a', 100),
      item('b', 100, { needs: ['a'] }),
      item('c', 100, { needs: ['b'] }),
    ];
    const input = { items, workers: makeWorkers(2), balance: 1.2 };
    const result = place(input);
    checkResult(input, result);
    expect(result.assignments.x).not.toBe(result.assignments.y);
    expect(new Set(['a', 'b', 'c'].map((id) => result.assignments[id])).size).toBe(2);
    expect(overloadsJustified(input, result)).toBe(0);
    // With more capacity the chain stays together.
    const roomy = place({ ...input, balance: 1.3 });
    expect(new Set(['a', 'b', 'c'].map((id) => roomy.assignments[id])).size).toBe(1);
  });

  it('does not chain fan-outs, fan-ins or incompatible platforms', () => {
    const workers: WorkerInfo[] = [
      { id: 'amd-1', annotations: { os: 'linux', arch: 'amd64' } },
      { id: 'amd-2', annotations: { os: 'linux', arch: 'amd64' } },
      { id: 'amd-3', annotations: { os: 'linux', arch: 'amd64' } },
      { id: 'arm-1', annotations: { os: 'linux', arch: 'arm64' } },
    ];
    const fanOut = [
      item('root', 5, { platform: 'linux/amd64' }),
      ...Array.from({ length: 6 }, (_, i) =>
        item(`leaf${i}`, 100, { platform: 'linux/amd64', needs: ['root'] }),
      ),
    ];
    const r1 = place({ items: fanOut, workers, balance: 1.15 });
    expect(new Set(fanOut.slice(1).map((it) => r1.assignments[it.id])).size).toBeGreaterThan(1);

    const mixed = [
      item('base@linux/arm64', 20, { platform: 'linux/arm64' }),
      item('app@linux/amd64', 20, { platform: 'linux/amd64', needs: ['base@linux/arm64'] }),
      item('test', 20, { needs: ['app@linux/amd64'] }),
    ];
    const r2 = place({ items: mixed, workers, balance: 1.15 });
    expect(r2.assignments['base@linux/arm64']).toBe('arm-1');
    expect(r2.assignments['app@linux/amd64']).toMatch(/^amd-/);
    // `test` (any platform) chains with `app`, not with the arm64 base.
    expect(r2.assignments.test).toBe(r2.assignments['app@linux/amd64']);
    expect(r2.makespan).toBe(60);
  });

  it('keeps a chain on the previous worker its members agree on', () => {
    const items = withChains(6, 3, 33);
    const workers = makeWorkers(8);
    const first = place({ items, workers, balance: 2 });
    const previous = { ...first.assignments };
    for (let k = 0; k < 3; k++) previous[`chain2-${k}`] = 'worker-8';
    const second = place({ items, workers, balance: 2, previous });
    expect(ranking('chain2-0', workers)[0]).not.toBe('worker-8');
    for (let k = 0; k < 3; k++) expect(second.assignments[`chain2-${k}`]).toBe('worker-8');
  });
});
