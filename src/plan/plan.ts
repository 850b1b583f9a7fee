import { readFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Config } from '../config/types.js';
import { MAX_DURATION_S } from '../config/duration.js';
import { expandUnits, workerCount } from './units.js';
import { place } from './placement.js';
import { computeCacheKeys, keyWarnings } from './keys.js';
import type { PlacementItem, Unit, WorkerInfo } from './types.js';

/** `{"durations": {"<invocation or unit id>": seconds}}`, from earlier runs. */
export interface History {
  durations: Record<string, number>;
  /** Per unit, the cache key of its last result (built or cached): a docker build's cache source. */
  keys?: Record<string, string>;
}

/** What `dist-build plan --json` prints; also accepted back as `--previous`. */
export interface PlanJson {
  workers: string[];
  matrix: { include: { worker: string }[] };
  assignments: Record<string, string>;
  estimate: { makespan: number; lowerBound: number; capacity: number };
  /** Per unit: the invocation, its expected duration and both keys (cache only when computed). */
  units: Record<
    string,
    { invocation: string; duration: number; affinityKey: string; cacheKey?: string }
  >;
}

export interface PlanOptions {
  /** Explicit workers; default: the config's workers rule, ids `worker-1`... */
  workers?: WorkerInfo[];
  history?: History;
  previous?: Pick<PlanJson, 'assignments'>;
  /** Compute cache keys (hashes every input file); default true. */
  keys?: boolean;
  /** Directory of the file-digest index (default `<root>/.dist-build/index`). */
  cacheDir?: string;
  /** Root-relative paths that are nobody's input, such as `run`'s `--out` directory. */
  exclude?: readonly string[];
  /** Told about things worth a warning, such as input patterns that match no file. */
  onWarning?: (message: string) => void;
}

/** `path` relative to `base` when it is below it (not `base` itself), else undefined. */
export function pathBelow(base: string, path: string): string | undefined {
  const rel = relative(base, path);
  return rel && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel) ? rel : undefined;
}

/**
 * `run`'s `--out` directory (report, exported copies) as a root-relative path to leave out of
 * every invocation's inputs when it is in the tree (`PlanOptions.exclude`), so that `plan` and
 * `run` compute the same keys.
 */
export function outExclusion(root: string, out: string): string[] {
  const rel = pathBelow(root, resolve(out));
  return rel ? [rel.split(sep).join('/')] : [];
}

export class PlanInputError extends Error {
  override name = 'PlanInputError';
}

/**
 * Most workers `numberedWorkers` plans for: placement ranks every worker for every unit, and a
 * count beyond this is a typo (99999999999 threw a RangeError; 10,000,000 ran for minutes and GBs).
 */
export const MAX_PLANNED_WORKERS = 10_000;

export function numberedWorkers(n: number): WorkerInfo[] {
  if (!Number.isInteger(n) || n < 1)
    throw new PlanInputError(`worker count must be a whole number >= 1, got ${n}`);
  if (n > MAX_PLANNED_WORKERS)
    throw new PlanInputError(
      `worker count ${n}: at most ${MAX_PLANNED_WORKERS} workers can be planned for`,
    );
  return Array.from({ length: n }, (_, i) => ({ id: `worker-${i + 1}` }));
}

/** Expected seconds for a unit: history (unit id, then invocation), then estimate, then the default. */
export function expectedDuration(config: Config, unit: Unit, history?: History): number {
  const h = history?.durations[unit.id] ?? history?.durations[unit.invocation];
  if (h !== undefined && h > 0) return h;
  const inv = config.invocations.find((i) => i.name === unit.invocation);
  return inv?.estimate ?? config.placement.defaultDuration;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

export async function planBuild(config: Config, opts: PlanOptions = {}): Promise<PlanJson> {
  const units = expandUnits(config);
  const workers = opts.workers ?? numberedWorkers(workerCount(config, units.length));
  const ids = new Set<string>();
  for (const w of workers) {
    if (ids.has(w.id)) throw new PlanInputError(`worker id "${w.id}" is given twice`);
    ids.add(w.id);
  }
  const durations = new Map(units.map((u) => [u.id, expectedDuration(config, u, opts.history)]));
  const items: PlacementItem[] = units.map((u) => ({
    id: u.id,
    affinityKey: u.affinityKey,
    duration: durations.get(u.id)!,
    needs: u.needs,
    labels: u.labels,
    ...(u.platform === undefined ? {} : { platform: u.platform }),
    ...(u.executor === undefined ? {} : { executor: u.executor }),
  }));
  const result = place({
    items,
    workers,
    balance: config.placement.balance,
    ...(opts.previous ? { previous: opts.previous.assignments } : {}),
  });
  const keys =
    opts.keys === false
      ? undefined
      : await computeCacheKeys(config, units, {
          ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
          exclude: opts.exclude ?? [],
        });
  if (keys && opts.onWarning) for (const m of keyWarnings(units, keys)) opts.onWarning(m);
  const unitsOut: PlanJson['units'] = {};
  for (const u of units) {
    const cacheKey = keys?.get(u.id)?.cacheKey;
    unitsOut[u.id] = {
      invocation: u.invocation,
      duration: round(durations.get(u.id)!),
      affinityKey: u.affinityKey,
      ...(cacheKey ? { cacheKey } : {}),
    };
  }
  return {
    workers: workers.map((w) => w.id),
    matrix: { include: workers.map((w) => ({ worker: w.id })) },
    assignments: result.assignments,
    estimate: {
      makespan: round(result.makespan),
      lowerBound: round(result.lowerBound),
      capacity: round(result.capacity),
    },
    units: unitsOut,
  };
}

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PlanInputError(
      `${file}: cannot read ${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new PlanInputError(`${file}: ${what} is not valid JSON: ${(err as Error).message}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export async function readHistory(file: string): Promise<History> {
  const data = await readJson(file, 'history');
  if (!isObject(data) || !isObject(data.durations)) {
    throw new PlanInputError(`${file}: expected {"durations": {"<invocation>": <seconds>}}`);
  }
  for (const [k, v] of Object.entries(data.durations)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_DURATION_S) {
      throw new PlanInputError(
        `${file}: durations.${k}: expected a number of seconds from 0 to ${MAX_DURATION_S} (24 days), got ${JSON.stringify(v)}`,
      );
    }
  }
  return { durations: data.durations as Record<string, number> };
}

export async function readPrevious(file: string): Promise<Pick<PlanJson, 'assignments'>> {
  const data = await readJson(file, 'previous plan');
  if (!isObject(data) || !isObject(data.assignments)) {
    throw new PlanInputError(
      `${file}: expected the JSON printed by \`dist-build plan --json\` (an "assignments" object)`,
    );
  }
  for (const [k, v] of Object.entries(data.assignments)) {
    if (typeof v !== 'string')
      throw new PlanInputError(`${file}: assignments.${k}: expected a worker id string`);
  }
  return { assignments: data.assignments as Record<string, string> };
}

/** Membership records (seed 000): `[{"worker_id": "...", "annotations": {...}}]`. */
export async function readMembers(file: string): Promise<WorkerInfo[]> {
  const data = await readJson(file, 'members');
  const list = isObject(data) && Array.isArray(data.workers) ? data.workers : data;
  if (!Array.isArray(list) || list.length === 0)
    throw new PlanInputError(
      `${file}: expected a list of {"worker_id", "annotations"} records${Array.isArray(list) ? ', got an empty one' : ''}`,
    );
  return list.map((r: unknown, i) => {
    // An empty id would be a matrix entry `worker: ""` (as --worker-ids refuses "a,,b").
    if (!isObject(r) || typeof (r.worker_id ?? r.id) !== 'string' || (r.worker_id ?? r.id) === '') {
      throw new PlanInputError(
        `${file}: [${i}]: expected {"worker_id": "<id>", "annotations": {...}}`,
      );
    }
    const ann = r.annotations;
    if (
      ann !== undefined &&
      (!isObject(ann) || Object.values(ann).some((v) => typeof v !== 'string'))
    ) {
      throw new PlanInputError(`${file}: [${i}].annotations: expected string values`);
    }
    return {
      id: String(r.worker_id ?? r.id),
      ...(ann ? { annotations: ann as Record<string, string> } : {}),
    };
  });
}
