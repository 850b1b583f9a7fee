/**
 * Makespan simulation for a placement, and the needs graph helpers placement shares with it.
 *
 * Model: every worker runs its items one at a time. An item can start once its worker is free and
 * every item it `needs` has finished (on any worker). Needs that name no item of the plan are
 * ignored (they are outside this plan, e.g. already built). When a worker is free and several of its
 * items are ready, it starts the one with the longest remaining needs-path (its own duration plus
 * the longest chain of items that need it, transitively), then the longer one, then the smaller id:
 * a deterministic critical-path-first list schedule. A worker never idles while it has a ready item.
 */

import type { PlacementItem } from './types.js';

/** The fields the simulation reads. */
export type SimItem = Pick<PlacementItem, 'id' | 'duration' | 'needs'>;

/** The needs graph over item indices (positions in the items array). */
export interface NeedsGraph {
  /** item id -> index */
  index: Map<string, number>;
  /** index -> indices of the items it needs (in-plan only, deduplicated). */
  deps: number[][];
  /** index -> indices of the items that need it. */
  dependents: number[][];
  /** A topological order: every item comes after all the items it needs. */
  order: number[];
}

/** Builds the needs graph; throws on duplicate ids and on cycles. */
export function needsGraph(items: readonly SimItem[]): NeedsGraph {
  const n = items.length;
  const index = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = items[i].id;
    if (index.has(id)) throw new Error(`duplicate item id "${id}"`);
    index.set(id, i);
  }
  const deps: number[][] = new Array<number[]>(n);
  const dependents: number[][] = new Array<number[]>(n);
  for (let i = 0; i < n; i++) dependents[i] = [];
  const indegree = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const list: number[] = [];
    for (const need of items[i].needs) {
      const j = index.get(need);
      if (j === undefined || list.includes(j)) continue;
      list.push(j);
      dependents[j].push(i);
    }
    deps[i] = list;
    indegree[i] = list.length;
  }
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (indegree[i] === 0) order.push(i);
  for (let head = 0; head < order.length; head++) {
    for (const j of dependents[order[head]]) if (--indegree[j] === 0) order.push(j);
  }
  if (order.length < n) {
    const stuck: string[] = [];
    for (let i = 0; i < n; i++) if (indegree[i] > 0) stuck.push(items[i].id);
    stuck.sort();
    const shown = stuck.slice(0, 10).join(', ') + (stuck.length > 10 ? ', ...' : '');
    throw new Error(`needs cycle among: ${shown}`);
  }
  return { index, deps, dependents, order };
}

/**
 * For every item, its duration plus the longest duration-weighted path through the items that need
 * it (its "bottom level"). The maximum over all items is the longest needs-chain.
 */
export function tailLengths(items: readonly SimItem[], graph: NeedsGraph): Float64Array {
  const tail = new Float64Array(items.length);
  for (let k = graph.order.length - 1; k >= 0; k--) {
    const i = graph.order[k];
    let best = 0;
    for (const j of graph.dependents[i]) if (tail[j] > best) best = tail[j];
    tail[i] = items[i].duration + best;
  }
  return tail;
}

/** Duration of the longest chain of items linked by `needs` (0 for no items). */
export function longestNeedsPath(items: readonly SimItem[], graph = needsGraph(items)): number {
  let best = 0;
  for (const t of tailLengths(items, graph)) if (t > best) best = t;
  return best;
}

/** A binary min-heap of numbers ordered by `less`. */
class Heap {
  private readonly a: number[] = [];
  constructor(private readonly less: (x: number, y: number) => boolean) {}
  get size(): number {
    return this.a.length;
  }
  peek(): number {
    return this.a[0];
  }
  push(x: number): void {
    const a = this.a;
    let i = a.length;
    a.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(x, a[p])) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = x;
  }
  pop(): number {
    const a = this.a;
    const top = a[0];
    const last = a.pop() as number;
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.less(a[r], a[l]) ? r : l;
        if (!this.less(a[c], last)) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

/**
 * Simulated finish time of the whole plan: per-worker serial execution, needs honoured across
 * workers (see the module comment for the model). Throws if an item has no assignment or the
 * needs form a cycle. `graph` may be passed to reuse an already built needs graph of `items`.
 */
export function simulateMakespan(
  items: readonly SimItem[],
  assignments: Readonly<Record<string, string>>,
  graph: NeedsGraph = needsGraph(items),
): number {
  const n = items.length;
  if (n === 0) return 0;
  const workerIndex = new Map<string, number>();
  const workerOf = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const w = Object.hasOwn(assignments, items[i].id) ? assignments[items[i].id] : undefined;
    if (w === undefined) throw new Error(`item "${items[i].id}" has no assignment`);
    let wi = workerIndex.get(w);
    if (wi === undefined) {
      wi = workerIndex.size;
      workerIndex.set(w, wi);
    }
    workerOf[i] = wi;
  }
  const tail = tailLengths(items, graph);
  // Rank of each id in sorted order: the final, input-order independent tie-break.
  const byId = Array.from({ length: n }, (_, i) => i).sort((x, y) =>
    items[x].id < items[y].id ? -1 : items[x].id > items[y].id ? 1 : 0,
  );
  const idRank = new Int32Array(n);
  for (let k = 0; k < n; k++) idRank[byId[k]] = k;

  const before = (x: number, y: number): boolean =>
    tail[x] !== tail[y]
      ? tail[x] > tail[y]
      : items[x].duration !== items[y].duration
        ? items[x].duration > items[y].duration
        : idRank[x] < idRank[y];
  const nw = workerIndex.size;
  const ready: Heap[] = Array.from({ length: nw }, () => new Heap(before));
  const busy = new Uint8Array(nw);
  const finish = new Float64Array(n);
  const events = new Heap((x, y) =>
    finish[x] !== finish[y] ? finish[x] < finish[y] : idRank[x] < idRank[y],
  );
  const waiting = new Int32Array(n);
  const dirty: number[] = [];
  for (let i = 0; i < n; i++) {
    waiting[i] = graph.deps[i].length;
    if (waiting[i] === 0) ready[workerOf[i]].push(i);
  }
  for (let w = 0; w < nw; w++) dirty.push(w);

  let now = 0;
  let makespan = 0;
  for (;;) {
    for (const w of dirty) {
      if (busy[w] || ready[w].size === 0) continue;
      const i = ready[w].pop();
      finish[i] = now + items[i].duration;
      if (finish[i] > makespan) makespan = finish[i];
      busy[w] = 1;
      events.push(i);
    }
    dirty.length = 0;
    if (events.size === 0) break;
    now = finish[events.peek()];
    while (events.size > 0 && finish[events.peek()] === now) {
      const i = events.pop();
      busy[workerOf[i]] = 0;
      dirty.push(workerOf[i]);
      for (const j of graph.dependents[i]) {
        if (--waiting[j] === 0) {
          ready[workerOf[j]].push(j);
          dirty.push(workerOf[j]);
        }
      }
    }
  }
  return makespan;
}
