/**
 * Placement works on units: one per invocation, or one per platform of a multi-platform docker
 * invocation (`api-image@linux/arm64`). Two identities are kept apart:
 *  - the affinity key (where the work goes): stable across source changes, hashed by placement;
 *  - the cache key (what the result is): content hash of definition + inputs + needs' keys.
 */

export interface Unit {
  /** `name` or `name@os/arch`; keys of plan assignments. */
  id: string;
  /** The invocation this unit belongs to. */
  invocation: string;
  /** Set for units of multi-platform docker invocations and for `platform:` constraints. */
  platform?: string;
  /** Stable identity for placement: `name` or `name@platform`. Never the cache key. */
  affinityKey: string;
  /** Unit ids this unit depends on. */
  needs: string[];
  /** Labels the worker must carry. */
  labels: string[];
  /** The executor the worker must have, beyond commands: `docker` for docker builds. */
  executor?: string;
}

export interface WorkerInfo {
  id: string;
  /**
   * Membership annotations (seed 000): `os`, `arch`, `platforms` (comma list), `labels` (comma
   * list), `executor` (comma list: `command`, `docker`), user keys.
   */
  annotations?: Record<string, string>;
}

export interface PlacementItem {
  id: string;
  affinityKey: string;
  /** Expected duration in seconds (> 0). */
  duration: number;
  needs: string[];
  platform?: string;
  labels: string[];
  /** An executor the worker must list in its `executor` annotation (`docker`). */
  executor?: string;
}

export interface PlacementInput {
  items: PlacementItem[];
  workers: WorkerInfo[];
  /** Capacity factor c (>= 1). */
  balance: number;
  /** Previous assignments (item id -> worker id): each item first tries its previous worker. */
  previous?: Record<string, string>;
}

export interface PlacementResult {
  /** item id -> worker id, for every item. */
  assignments: Record<string, string>;
  /** worker id -> assigned seconds. */
  loads: Record<string, number>;
  /** c * lowerBound. */
  capacity: number;
  /** max(total / workers, longest item, longest needs-chain). */
  lowerBound: number;
  /** Simulated finish time honouring needs and per-worker serial execution. */
  makespan: number;
}

export interface CacheKeyInfo {
  /** `sha256:<hex>` */
  cacheKey: string;
  /** Number of input files hashed. */
  files: number;
  /** Total bytes of input files. */
  bytes: number;
}
