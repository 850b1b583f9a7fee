/** Benchmark workloads: independent items with seeded random durations, and worker sets. */
import type { PlacementItem, WorkerInfo } from '../../src/plan/types.js';
import { logUniform, mulberry32, uniform } from './prng.js';
import type { Rng } from './prng.js';

export interface Workload {
  name: string;
  /** Draws one duration in seconds. */
  duration(rng: Rng): number;
}

export const WORKLOADS: Workload[] = [
  { name: 'log-uniform 10s-20min', duration: (rng) => logUniform(rng, 10, 1200) },
  {
    name: '85% 10-60s / 15% 5-20min',
    duration: (rng) => (rng() < 0.85 ? uniform(rng, 10, 60) : uniform(rng, 300, 1200)),
  },
];

/** `count` independent items (`job-1`..) with affinity keys `svc-<i>/build`. */
export function makeItems(workload: Workload, count: number, seed: number): PlacementItem[] {
  const rng = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => ({
    id: `job-${i + 1}`,
    affinityKey: `svc-${i + 1}/build`,
    duration: workload.duration(rng),
    needs: [],
    labels: [],
  }));
}

/** The same items with every duration multiplied by a uniform factor in [1 - spread, 1 + spread]. */
export function withNoise(items: PlacementItem[], spread: number, seed: number): PlacementItem[] {
  const rng = mulberry32(seed);
  return items.map((item) => ({
    ...item,
    duration: item.duration * uniform(rng, 1 - spread, 1 + spread),
  }));
}

/** Unconstrained workers `worker-<from>`..`worker-<to>`. */
export function makeWorkers(to: number, from = 1): WorkerInfo[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({ id: `worker-${from + i}` }));
}
