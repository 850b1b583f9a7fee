/**
 * Placement: which worker runs which item.
 *
 * Bounded-load rendezvous hashing, weighted by expected duration:
 *
 * 1. Ranking. Each unit (an item, or a needs-chain of items, see 5.) ranks the workers it may use
 *    by the rendezvous score `mix(hash(affinityKey), hash(workerId))` (src/plan/hash.ts), highest
 *    first; equal scores rank the smaller worker id first. The affinity key, never the item id or
 *    a cache key, decides where work goes, so a unit keeps its worker while its sources change.
 *    Rankings are never materialised: "the first worker in the ranking with room" is the
 *    highest-scoring worker among those with room, found by one linear scan.
 *
 * 2. Bounded loads. `lowerBound` (LB) is the larger of the longest item, the longest needs-chain,
 *    and, for every set E of workers that some item is restricted to (and for their union: the
 *    workers that can take at least one item), the total duration of the items that can only run
 *    inside E divided by |E|. Without constraints this is max(total / N, longest item,
 *    longest needs-chain); with constraints it is still a true lower bound on the makespan, and it
 *    grows when, say, two arm64 workers must take all the arm64 work.
 *    `capacity = balance * LB`. A unit goes to the first worker of its ranking whose load stays
 *    within capacity. If no eligible worker has room, it goes to the eligible worker with the
 *    smallest resulting load (ties: ranking order): placement never fails for lack of capacity.
 *
 * 3. Order. "Long" units (duration > capacity - LB) come first, constrained units (fewer eligible
 *    workers) before others, long ones longest first; then the rest by hash of affinity key.
 *    Without constraints, a unit no longer than capacity - LB always finds room (the other items
 *    cannot fill every worker beyond capacity - duration, their total is at most N * LB - duration),
 *    so only the long ones need the early, longest-first treatment that keeps them from falling
 *    back late. With balance 1 every unit is long: the order is longest first throughout.
 *
 * 4. Previous plan. Pass 1 puts every unit whose previous worker (from `input.previous`) is still
 *    present and eligible back onto that worker. If a worker's returning units exceed capacity
 *    (durations grew, or capacity shrank because a worker was added), the fewest of them leave:
 *    the smallest unit covering the excess, or, if none does, the longest ones until one does.
 *    Pass 2 places the rest, in the order above, by ranking. Re-plans after a membership change or
 *    duration noise therefore move only what must move: a removed worker's items, and on an added
 *    worker only overflow.
 *
 * 5. Chains. Items linked into a linear needs-chain (each link is the only in-plan dependency of
 *    the next and the only in-plan dependent of the previous) whose eligible worker sets intersect
 *    form one unit: summed duration, the first member's affinity key, the intersection of the
 *    members' eligible workers, and the previous worker all members agree on (if any). The unit is
 *    placed whole when some worker has room for all of it; otherwise its members are placed one by
 *    one (each trying its own previous worker, then its own ranking). A link whose eligible set does
 *    not intersect the chain so far starts a new chain.
 *
 * Constraints: an item with `platform` may only go to a worker offering it. A worker's annotations
 * `os` + `arch` form its native platform and `platforms` (comma list) adds more; a worker without
 * any of the three accepts every platform. Platforms compare os and arch (`x86_64` = `amd64`,
 * `aarch64` = `arm64`; the default variants `arm64/v8` and `amd64/v1` are dropped); a variant only
 * has to match when both sides name one, and a missing os or arch (e.g. annotation `os` alone)
 * matches any. Every item label must be in the worker's `labels` annotation (comma list). An item
 * with an `executor` (docker builds) needs a worker whose `executor` annotation (comma list) names
 * it; a worker without that annotation accepts every item.
 */

import { hashString, mixKey, mixScore, mixWorker } from './hash.js';
import { needsGraph, simulateMakespan, tailLengths } from './simulate.js';
import type { NeedsGraph } from './simulate.js';
import type { PlacementInput, PlacementItem, PlacementResult, WorkerInfo } from './types.js';

/** The fields of an item that constrain where it can go. */
export type Constraints = Pick<PlacementItem, 'id' | 'platform' | 'labels' | 'executor'>;

interface Platform {
  os: string;
  arch: string;
  variant: string;
}

interface WorkerCaps {
  /** Accepts every platform (no os/arch/platforms annotations). */
  any: boolean;
  platforms: Platform[];
  labels: Set<string>;
  /** The executors it names; `undefined`: no `executor` annotation (takes anything). */
  executors: Set<string> | undefined;
}

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64' };

function parsePlatform(text: string): Platform {
  const [os = '', arch = '', variant = ''] = text.trim().toLowerCase().split('/');
  return normalizePlatform(os.trim(), arch.trim(), variant.trim());
}

function normalizePlatform(os: string, arch: string, variant: string): Platform {
  const a = ARCH_ALIASES[arch] ?? arch;
  const defaultVariant = (a === 'arm64' && variant === 'v8') || (a === 'amd64' && variant === 'v1');
  return { os, arch: a, variant: defaultVariant ? '' : variant };
}

function formatPlatform(p: Platform): string {
  const s = `${p.os || '*'}/${p.arch || '*'}`;
  return p.variant ? `${s}/${p.variant}` : s;
}

function matches(want: Platform, offer: Platform): boolean {
  return (
    (!want.os || !offer.os || want.os === offer.os) &&
    (!want.arch || !offer.arch || want.arch === offer.arch) &&
    (!want.variant || !offer.variant || want.variant === offer.variant)
  );
}

function splitList(text: string | undefined): string[] {
  if (!text) return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Parsed capabilities per annotations object (annotations are not changed once made). The
 * scheduler asks for the same workers over and over while it matches ready work. */
const parsedCaps = new WeakMap<object, WorkerCaps>();

function parseWorker(worker: WorkerInfo): WorkerCaps {
  const ann = worker.annotations;
  if (!ann) return parseAnnotations({});
  let caps = parsedCaps.get(ann);
  if (!caps) parsedCaps.set(ann, (caps = parseAnnotations(ann)));
  return caps;
}

function parseAnnotations(ann: Record<string, string>): WorkerCaps {
  const os = (ann.os ?? '').trim().toLowerCase();
  const arch = (ann.arch ?? '').trim().toLowerCase();
  const extra = splitList(ann.platforms);
  const platforms: Platform[] = [];
  if (os || arch) platforms.push(normalizePlatform(os, arch, ''));
  for (const p of extra) platforms.push(parsePlatform(p));
  return {
    any: platforms.length === 0,
    platforms,
    labels: new Set(splitList(ann.labels)),
    executors: ann.executor === undefined ? undefined : new Set(splitList(ann.executor)),
  };
}

type Constrained = Pick<PlacementItem, 'platform' | 'labels' | 'executor'>;

function accepts(caps: WorkerCaps, item: Constrained): boolean {
  for (const label of item.labels) if (!caps.labels.has(label)) return false;
  if (item.executor && caps.executors && !caps.executors.has(item.executor)) return false;
  if (!item.platform || caps.any) return true;
  const want = parsePlatform(item.platform);
  return caps.platforms.some((offer) => matches(want, offer));
}

/** Whether `worker` may take `item` (platform, labels, executor; see the module comment). */
export function eligible(item: Constrained, worker: WorkerInfo): boolean {
  return accepts(parseWorker(worker), item);
}

function describeWorker(worker: WorkerInfo, item: Constraints): string {
  const caps = parseWorker(worker);
  const platforms = caps.any ? 'any platform' : caps.platforms.map(formatPlatform).join(', ');
  // A worker without the executor says why in the annotation of that name (`docker: none: ...`).
  const why =
    item.executor && caps.executors && !caps.executors.has(item.executor)
      ? worker.annotations?.[item.executor]
      : undefined;
  // Its executors only where the item needs one.
  const executors =
    item.executor && caps.executors
      ? `, executors [${[...caps.executors].join(', ')}]${why ? `, ${item.executor}: ${why}` : ''}`
      : '';
  return `${worker.id} (${platforms}, labels [${[...caps.labels].join(', ')}]${executors})`;
}

/** No worker satisfies an item's platform and label constraints. */
export class NoEligibleWorkerError extends Error {
  override readonly name = 'NoEligibleWorkerError';
  /** The item that cannot be placed. */
  readonly item: string;

  constructor(item: Constraints, workers: readonly WorkerInfo[]) {
    const needs = `needs ${item.platform ? `platform ${item.platform}` : 'any platform'}, labels [${item.labels.join(', ')}]${item.executor ? `, a worker with ${item.executor}` : ''}`;
    const shown = workers.slice(0, 20).map((w) => describeWorker(w, item));
    if (workers.length > 20) shown.push(`... and ${workers.length - 20} more`);
    const offered = workers.length === 0 ? 'none' : shown.join(', ');
    super(`no worker can take "${item.id}" (${needs}); workers: ${offered}`);
    this.item = item.id;
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A set of eligible workers (indices into the id-sorted worker list). */
interface WorkerSet {
  workers: Int32Array;
  member: Uint8Array;
}

/** Everything placement and lowerBound derive from the items and workers alone. */
interface Prepared {
  /** Workers sorted by id. */
  workers: WorkerInfo[];
  sets: WorkerSet[];
  /** item index -> index into `sets`. */
  setOf: Int32Array;
  graph: NeedsGraph;
  lowerBound: number;
  /** Intersection of two sets (index into `sets`), or -1 if empty. */
  intersect(a: number, b: number): number;
}

function prepare(items: readonly PlacementItem[], inputWorkers: readonly WorkerInfo[]): Prepared {
  const workers = [...inputWorkers].sort((a, b) => compareStrings(a.id, b.id));
  for (let j = 1; j < workers.length; j++) {
    if (workers[j].id === workers[j - 1].id)
      throw new Error(`duplicate worker id "${workers[j].id}"`);
  }
  const nw = workers.length;
  for (const item of items) {
    if (!(item.duration >= 0) || !Number.isFinite(item.duration)) {
      throw new RangeError(`item "${item.id}" has invalid duration ${item.duration}`);
    }
  }
  const graph = needsGraph(items);
  const caps = workers.map(parseWorker);

  const sets: WorkerSet[] = [];
  const setByKey = new Map<string, number>();
  const addSet = (list: number[]): number => {
    const key = list.join(',');
    let s = setByKey.get(key);
    if (s === undefined) {
      const member = new Uint8Array(nw);
      for (const j of list) member[j] = 1;
      s = sets.length;
      sets.push({ workers: Int32Array.from(list), member });
      setByKey.set(key, s);
    }
    return s;
  };

  // Items with equal constraints share one set: eligibility is computed once per signature.
  const bySignature = new Map<string, number>();
  const setOf = new Int32Array(items.length);
  let failed: PlacementItem | undefined;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const signature = `${item.executor ?? ''}\0${item.platform ?? ''}\0${[...new Set(item.labels)].sort().join('\0')}`;
    let s = bySignature.get(signature);
    if (s === undefined) {
      const list: number[] = [];
      for (let j = 0; j < nw; j++) if (accepts(caps[j], item)) list.push(j);
      s = addSet(list);
      bySignature.set(signature, s);
    }
    setOf[i] = s;
    if (sets[s].workers.length === 0 && (failed === undefined || item.id < failed.id))
      failed = item;
  }
  if (failed) throw new NoEligibleWorkerError(failed, workers);

  // Lower bound: longest item, longest needs-chain, and total / |E| over the items confined to E.
  let lowerBound = 0;
  for (const t of tailLengths(items, graph)) if (t > lowerBound) lowerBound = t;
  const itemSets = sets.length;
  const setTotal = new Float64Array(itemSets);
  // Sum in id order: floating-point totals must not depend on the input order.
  const byId = Array.from(items.keys()).sort((a, b) => compareStrings(items[a].id, items[b].id));
  for (const i of byId) setTotal[setOf[i]] += items[i].duration;
  const union: number[] = [];
  for (let j = 0; j < nw; j++) {
    for (let s = 0; s < itemSets; s++) {
      if (sets[s].member[j]) {
        union.push(j);
        break;
      }
    }
  }
  const candidates = items.length > 0 ? [...sets.slice(0, itemSets), sets[addSet(union)]] : [];
  for (const e of candidates) {
    let confined = 0;
    for (let s = 0; s < itemSets; s++) {
      if (sets[s].workers.every((j) => e.member[j] === 1)) confined += setTotal[s];
    }
    lowerBound = Math.max(lowerBound, confined / e.workers.length);
  }

  const intersections = new Map<number, number>();
  const intersect = (a: number, b: number): number => {
    if (a === b) return a;
    const key = Math.min(a, b) * 0x100000 + Math.max(a, b);
    let r = intersections.get(key);
    if (r === undefined) {
      const list: number[] = [];
      for (const j of sets[a].workers) if (sets[b].member[j]) list.push(j);
      r = list.length === 0 ? -1 : addSet(list);
      intersections.set(key, r);
    }
    return r;
  };
  return { workers, sets, setOf, graph, lowerBound, intersect };
}

/**
 * The lower bound on the makespan that placement uses (see the module comment): max of the
 * longest item, the longest needs-chain and the constraint-aware total / workers.
 */
export function lowerBound(
  items: readonly PlacementItem[],
  workers: readonly WorkerInfo[],
): number {
  return prepare(items, workers).lowerBound;
}

/** A placement unit: one item, or a linear needs-chain of items placed together. */
interface Unit {
  /** Item indices, chain order (dependencies first). */
  members: number[];
  duration: number;
  keyHash: number;
  /** Affinity key and id of the first member: deterministic tie-breaks. */
  key: string;
  id: string;
  set: number;
  /** Previous worker index all members agree on (present and eligible), or -1. */
  previous: number;
  long: boolean;
  /** Position in the placement order. */
  rank: number;
}

function buildUnits(
  items: readonly PlacementItem[],
  prep: Prepared,
  workerIndex: ReadonlyMap<string, number>,
  previous: Readonly<Record<string, string>>,
): Unit[] {
  const { graph, setOf } = prep;
  const n = items.length;
  // next[i]: the item continuing i's linear chain, or -1.
  const next = new Int32Array(n).fill(-1);
  const hasPrev = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const deps = graph.deps[i];
    if (deps.length === 1 && graph.dependents[deps[0]].length === 1) {
      next[deps[0]] = i;
      hasPrev[i] = 1;
    }
  }
  const previousOf = (i: number): number => {
    const id = items[i].id;
    const w = Object.hasOwn(previous, id) ? workerIndex.get(previous[id]) : undefined;
    return w === undefined ? -1 : w;
  };

  const units: Unit[] = [];
  const emit = (members: number[], set: number): void => {
    const head = items[members[0]];
    let duration = 0;
    let prev = previousOf(members[0]);
    for (const i of members) {
      duration += items[i].duration;
      if (prev >= 0 && previousOf(i) !== prev) prev = -1;
    }
    if (prev >= 0 && !prep.sets[set].member[prev]) prev = -1;
    units.push({
      members,
      duration,
      keyHash: hashString(head.affinityKey),
      key: head.affinityKey,
      id: head.id,
      set,
      previous: prev,
      long: false,
      rank: 0,
    });
  };
  for (let i = 0; i < n; i++) {
    if (hasPrev[i]) continue;
    let members = [i];
    let set = setOf[i];
    for (let j = next[i]; j >= 0; j = next[j]) {
      const both = prep.intersect(set, setOf[j]);
      if (both >= 0) {
        members.push(j);
        set = both;
      } else {
        emit(members, set);
        members = [j];
        set = setOf[j];
      }
    }
    emit(members, set);
  }
  return units;
}

function compareUnits(a: Unit, b: Unit, sets: readonly WorkerSet[]): number {
  if (a.long !== b.long) return a.long ? -1 : 1;
  const ea = sets[a.set].workers.length;
  const eb = sets[b.set].workers.length;
  if (ea !== eb) return ea - eb;
  if (a.long && a.duration !== b.duration) return b.duration - a.duration;
  if (a.keyHash !== b.keyHash) return a.keyHash - b.keyHash;
  return compareStrings(a.key, b.key) || compareStrings(a.id, b.id);
}

/**
 * Places every item on a worker (see the module comment for the algorithm). Deterministic: the
 * result depends only on the items, workers, balance and previous plan, not on their order.
 * Throws NoEligibleWorkerError if an item's constraints exclude every worker, RangeError on a
 * balance below 1 or an invalid duration, and Error on duplicate ids or a needs cycle.
 */
export function place(input: PlacementInput): PlacementResult {
  const { items, balance } = input;
  if (!(balance >= 1) || !Number.isFinite(balance)) {
    throw new RangeError(`balance must be a number >= 1, got ${balance}`);
  }
  const prep = prepare(items, input.workers);
  const { workers, sets } = prep;
  const nw = workers.length;
  const workerIndex = new Map<string, number>();
  const workerMix = new Int32Array(nw);
  for (let j = 0; j < nw; j++) {
    workerIndex.set(workers[j].id, j);
    workerMix[j] = mixWorker(hashString(workers[j].id));
  }

  const lb = prep.lowerBound;
  const capacity = balance * lb;
  // Room test with a relative epsilon so that loads summing exactly to capacity still fit.
  const limit = capacity * (1 + 1e-9);
  const longAbove = capacity - lb;

  const previous = input.previous ?? {};
  const units = buildUnits(items, prep, workerIndex, previous);
  for (const u of units) u.long = u.duration > longAbove;
  units.sort((a, b) => compareUnits(a, b, sets));

  const loads = new Float64Array(nw);
  const assigned = new Int32Array(items.length).fill(-1);
  const put = (members: readonly number[], w: number, duration: number): void => {
    for (const i of members) assigned[i] = w;
    loads[w] += duration;
  };

  // Returns the highest-scoring eligible worker with room for `duration`, or, when none has room,
  // -(1 + the eligible worker with the smallest load, ties by score).
  const scan = (set: number, keyHash: number, duration: number): number => {
    const list = sets[set].workers;
    const key = mixKey(keyHash);
    let best = -1;
    let bestScore = -1;
    let fallback = -1;
    let fallbackLoad = Infinity;
    let fallbackScore = -1;
    for (let k = 0; k < list.length; k++) {
      const j = list[k];
      const score = mixScore(key, workerMix[j]);
      const load = loads[j];
      if (load + duration <= limit) {
        if (score > bestScore) {
          best = j;
          bestScore = score;
        }
      } else if (
        best < 0 &&
        (load < fallbackLoad || (load === fallbackLoad && score > fallbackScore))
      ) {
        fallback = j;
        fallbackLoad = load;
        fallbackScore = score;
      }
    }
    return best >= 0 ? best : -1 - fallback;
  };

  // Pass 1: units back onto their previous worker. Pass-1 units only ever go to their previous
  // worker, so each worker is settled on its own: when its returning units exceed capacity, it
  // keeps all but the fewest it can: the smallest unit that covers the excess or, if none does,
  // the longest ones until one does (ties: later units in the order leave first).
  const rest: Unit[] = [];
  const returning: Unit[][] = Array.from({ length: nw }, () => []);
  units.forEach((u, rank) => {
    u.rank = rank;
    if (u.previous >= 0) returning[u.previous].push(u);
  });
  const leaves = new Uint8Array(units.length);
  for (const list of returning) {
    let excess = -limit;
    for (const u of list) excess += u.duration;
    if (excess <= 0) continue;
    const asc = list.sort((a, b) => a.duration - b.duration || b.rank - a.rank);
    for (let hi = asc.length - 1; excess > 0 && hi >= 0; hi--) {
      let lo = 0;
      for (let top = hi + 1; lo < top;) {
        const mid = (lo + top) >>> 1;
        if (asc[mid].duration < excess) lo = mid + 1;
        else top = mid;
      }
      if (lo <= hi) {
        leaves[asc[lo].rank] = 1;
        break;
      }
      leaves[asc[hi].rank] = 1;
      excess -= asc[hi].duration;
    }
  }
  for (const u of units) {
    if (u.previous >= 0 && !leaves[u.rank]) put(u.members, u.previous, u.duration);
    else rest.push(u);
  }
  // Pass 2: the others walk their ranking.
  for (const u of rest) {
    if (u.members.length > 1) {
      const w = scan(u.set, u.keyHash, u.duration);
      if (w >= 0) {
        put(u.members, w, u.duration);
        continue;
      }
      // The chain fits nowhere whole: place its members one by one.
      for (const i of u.members) {
        const item = items[i];
        const set = prep.setOf[i];
        const p = Object.hasOwn(previous, item.id) ? workerIndex.get(previous[item.id]) : undefined;
        if (p !== undefined && sets[set].member[p] && loads[p] + item.duration <= limit) {
          put([i], p, item.duration);
        } else {
          const r = scan(set, hashString(item.affinityKey), item.duration);
          put([i], r >= 0 ? r : -1 - r, item.duration);
        }
      }
      continue;
    }
    const r = scan(u.set, u.keyHash, u.duration);
    put(u.members, r >= 0 ? r : -1 - r, u.duration);
  }

  const assignments: Record<string, string> = {};
  for (let i = 0; i < items.length; i++) assignments[items[i].id] = workers[assigned[i]].id;
  const loadOut: Record<string, number> = {};
  for (let j = 0; j < nw; j++) loadOut[workers[j].id] = loads[j];
  return {
    assignments,
    loads: loadOut,
    capacity,
    lowerBound: lb,
    makespan: simulateMakespan(items, assignments, prep.graph),
  };
}
