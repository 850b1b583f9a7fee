/**
 * Baseline strategies for the placement benchmark. Each maps items to worker ids using the item's
 * affinity key where it uses a key at all.
 */
import { createHash } from 'node:crypto';
import { hashString, mixKey, mixScore, mixWorker } from '../../src/plan/hash.js';
import type { PlacementItem, WorkerInfo } from '../../src/plan/types.js';

export type Assign = (items: PlacementItem[], workers: WorkerInfo[]) => Record<string, string>;

function md5(text: string): Buffer {
  return createHash('md5').update(text).digest();
}

/**
 * Ketama-style ring, as BuildKit's consistent-hash example and buildx's kubernetes driver
 * (loadbalance=sticky) use it, with 160 points per worker: 40 md5 digests of `<id>-<n>`, 4 points
 * of 4 little-endian bytes each. A key (md5, first 4 bytes) goes to the first point clockwise.
 */
export const ketama: Assign = (items, workers) => {
  const points: { at: number; worker: string }[] = [];
  for (const w of workers) {
    for (let n = 0; n < 40; n++) {
      const d = md5(`${w.id}-${n}`);
      for (let p = 0; p < 4; p++) points.push({ at: d.readUInt32LE(p * 4), worker: w.id });
    }
  }
  points.sort((a, b) => a.at - b.at || (a.worker < b.worker ? -1 : a.worker > b.worker ? 1 : 0));
  const at = Uint32Array.from(points, (p) => p.at);
  const out: Record<string, string> = {};
  for (const item of items) {
    const h = md5(item.affinityKey).readUInt32LE(0);
    let lo = 0;
    let hi = at.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (at[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    out[item.id] = points[lo === at.length ? 0 : lo].worker;
  }
  return out;
};

/** Plain rendezvous hashing: every item on its top-scoring worker, no load bound. */
export const rendezvous: Assign = (items, workers) => {
  const wm = workers.map((w) => mixWorker(hashString(w.id)));
  const out: Record<string, string> = {};
  for (const item of items) {
    const k = mixKey(hashString(item.affinityKey));
    let best = 0;
    let bestScore = -1;
    for (let j = 0; j < workers.length; j++) {
      const s = mixScore(k, wm[j]);
      if (s > bestScore) {
        best = j;
        bestScore = s;
      }
    }
    out[item.id] = workers[best].id;
  }
  return out;
};

/** LPT: longest item first onto the least-loaded worker (ties: first worker); no affinity. */
export const lpt: Assign = (items, workers) => {
  const order = [...items].sort((a, b) => b.duration - a.duration || (a.id < b.id ? -1 : 1));
  const loads = new Float64Array(workers.length);
  const out: Record<string, string> = {};
  for (const item of order) {
    let best = 0;
    for (let j = 1; j < workers.length; j++) if (loads[j] < loads[best]) best = j;
    loads[best] += item.duration;
    out[item.id] = workers[best].id;
  }
  return out;
};

/** Round-robin in item order. */
export const roundRobin: Assign = (items, workers) => {
  const out: Record<string, string> = {};
  items.forEach((item, i) => (out[item.id] = workers[i % workers.length].id));
  return out;
};
