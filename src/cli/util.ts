/** Small helpers shared by the cluster commands. */
import { Option } from 'commander';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { processAlive } from '../cluster/local.js';
import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/types.js';
import { outExclusion } from '../plan/plan.js';
import type { Unit } from '../plan/types.js';
import { expandUnits, selectUnits } from '../plan/units.js';
import { UsageError } from './errors.js';

export function positiveInt(text: string, flag: string): number {
  if (!/^[1-9][0-9]*$/.test(text))
    throw new UsageError(`${flag}: expected a whole number >= 1, got "${text}"`);
  return Number(text);
}

/** A duration flag (`90`, `1.5`, `500ms`, `10m`...) in seconds; a usage error names the flag. */
export function durationFlag(text: string, flag: string): number {
  try {
    return parseDuration(/^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : text);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}

/** Calls `onGone` once when process `pid` no longer exists (checked every 500 ms). */
export function watchParent(pid: number, onGone: () => void): void {
  const timer = setInterval(() => {
    if (processAlive(pid)) return;
    clearInterval(timer);
    onGone();
  }, 500);
  timer.unref();
}

/**
 * Checks a `--cache-dir` flag: it must be a directory; with `mustExist` (the `cache` commands,
 * which look at a cache rather than fill one) it must exist, else it is made now.
 */
export function checkCacheDir(dir: string | undefined, mustExist = false): void {
  if (dir === undefined) return;
  if (!mustExist) return makeDirFlag('--cache-dir', dir);
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new UsageError(`--cache-dir ${dir}: ${(err as Error).message}`);
    throw new UsageError(`--cache-dir ${dir}: no such directory (no cache there)`);
  }
  if (!isDir) throw new UsageError(`--cache-dir ${dir}: not a directory`);
}

/**
 * Makes the directory a flag names (`--out`, `--cache-dir`) before anything starts: one that
 * cannot be a directory, or be made, is a usage error (exit 2), not a failure at the end of a run.
 */
export function makeDirFlag(flag: string, dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    if (statSync(dir).isDirectory()) return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTDIR') {
      const why =
        code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? 'permission denied'
          : (err as Error).message;
      throw new UsageError(`${flag} ${dir}: cannot make this directory (${why})`);
    }
  }
  throw new UsageError(`${flag} ${dir}: not a directory (a file is in the way)`);
}

/**
 * `--out` of `run` and `master`: made if missing, and never inside a declared output, where the
 * artifacts and the report would be removed whenever that invocation is built or restored.
 */
export function outDirFlag(config: Config, out: string): void {
  notInOutput(config, '--out', out);
  makeDirFlag('--out', out);
}

/**
 * `--cache-dir` of `run` and `worker`: as `checkCacheDir`, and never inside a declared output,
 * where the cache would be removed (and packed into that output) whenever it is built.
 */
export function cacheDirFlag(config: Config, dir: string | undefined): void {
  if (dir !== undefined) notInOutput(config, '--cache-dir', dir);
  checkCacheDir(dir);
}

function notInOutput(config: Config, flag: string, dir: string): void {
  const [rel] = outExclusion(config.root, dir);
  for (const inv of rel === undefined ? [] : config.invocations) {
    const o = inv.outputs.find((p) => rel === p || rel!.startsWith(`${p}/`));
    if (o === undefined) continue;
    throw new UsageError(
      `${flag} ${dir}: inside ${o}, a declared output of ${inv.name}, which is replaced whenever ${inv.name} is built or restored; give a directory outside the outputs`,
    );
  }
}

/**
 * The units `run` and `master` run for the invocation (or unit) names given: those and all they
 * need; every unit when none is given. A name the config does not have is a usage error.
 */
export function targetUnits(config: Config, configPath: string, names: readonly string[]): Unit[] {
  try {
    return selectUnits(expandUnits(config), names, true);
  } catch (err) {
    throw new UsageError(`${configPath}: ${(err as Error).message}`);
  }
}

/**
 * `run --share WORKER --plan FILE`: the units the plan (`dist-build plan --json`) gives WORKER,
 * and those they need that it gives other workers (`external`: built by the runners of those
 * shares, taken from the cache here). The plan must be of this config: a unit it does not place
 * is a usage error, as is a worker it does not name.
 */
export function planShare(
  config: Config,
  planFile: string,
  worker: string,
): { own: Unit[]; only: Set<string>; external: Set<string> } {
  let plan: { workers?: unknown; assignments?: unknown };
  try {
    plan = JSON.parse(readFileSync(planFile, 'utf8')) as typeof plan;
  } catch (err) {
    throw new UsageError(
      `--plan ${planFile}: cannot read a plan (the JSON of dist-build plan --json): ${(err as Error).message}`,
    );
  }
  const assignments = plan.assignments as Record<string, unknown> | undefined;
  const workers = Array.isArray(plan.workers) ? plan.workers.map(String) : undefined;
  if (!assignments || typeof assignments !== 'object' || !workers)
    throw new UsageError(
      `--plan ${planFile}: expected the JSON of dist-build plan --json (with workers and assignments)`,
    );
  if (!workers.includes(worker))
    throw new UsageError(
      `--share ${worker}: not a worker of the plan ${planFile} (its workers: ${workers.join(', ')})`,
    );
  const units = expandUnits(config);
  const unplaced = units.filter((u) => typeof assignments[u.id] !== 'string');
  if (unplaced.length)
    throw new UsageError(
      `--plan ${planFile} places no worker for ${unplaced
        .slice(0, 5)
        .map((u) => u.id)
        .join(
          ', ',
        )}${unplaced.length > 5 ? ', ...' : ''}: it was made from another config than ${config.file}`,
    );
  const own = units.filter((u) => assignments[u.id] === worker);
  const only = new Set(own.map((u) => u.id));
  const external = new Set<string>();
  for (const u of own) for (const n of u.needs) if (!only.has(n)) external.add(n);
  for (const e of external) only.add(e);
  return { own, only, external };
}

/** `--log-order` of `run` and `master`. */
export function logOrderOption(): Option {
  return new Option(
    '--log-order <order>',
    "plain mode: each job's output as one block when it ends, or lines as they come; auto: grouped on GitHub Actions (collapsible groups), else stream",
  )
    .choices(['grouped', 'stream', 'auto'])
    .default('auto');
}

/** Help of `--no-remote-cache` (`run`, `worker`, `cache`). */
export const NO_REMOTE_CACHE_HELP =
  "use only the config's local stores (leave out its gha and registry stores: offline, or to debug)";
