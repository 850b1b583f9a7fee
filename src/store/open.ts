/**
 * Opens the cache store a config describes (`cache:` in dist-build.yml): one backend per entry
 * of `cache.stores`, each made by its factory from the table below, wrapped in a `SignedStore`
 * when `cache.sign` has a secret, and layered in config order (`LayeredStore`).
 *
 * `--cache-dir` replaces the directory of the first local store, or puts a local store in front
 * when the config has none.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { CacheConfig, Config, StoreConfig } from '../config/types.js';
import { ConfigError, type ConfigIssue } from '../config/errors.js';
import { parseSize } from '../config/size.js';
import { StoreOptionsError } from './errors.js';
import { LayeredStore } from './layered.js';
import { LocalStore } from './local.js';
import { SignedStore, signingSecret } from './signing.js';
import type { Store, StoreContext } from './types.js';

export { StoreOptionsError };

/** Makes a store from its options (the `cache.stores` entry without `type`, keys as written). */
export type StoreFactory = (
  options: Record<string, unknown>,
  ctx: StoreContext,
) => Store | Promise<Store>;

/** The backends, by `type`. */
export const STORE_BACKENDS: Record<string, StoreFactory> = {
  local: createLocalStore,
  // Loaded only when configured: @actions/cache alone adds ~40 MB to every process that loads it,
  // and a worker's size is what each command it forks pays for.
  gha: async (options, ctx) => (await import('./gha.js')).createGhaStore(options, ctx),
  registry: async (options, ctx) =>
    (await import('./registry.js')).createRegistryStore(options, ctx),
};

/** The local store's directory when the config does not give one, relative to the config dir. */
export const DEFAULT_LOCAL_DIR = join('.dist-build', 'cache');

/** `type: local`: `dir` (relative to the config dir; default .dist-build/cache), `max-size`. */
export async function createLocalStore(
  options: Record<string, unknown>,
  ctx: StoreContext,
): Promise<LocalStore> {
  const { dir, maxBytes } = localStoreOptions(options);
  return LocalStore.open(resolve(ctx.root, dir), {
    onWarning: ctx.onWarning,
    ...(maxBytes !== undefined ? { maxBytes } : {}),
  });
}

/** Checks a local store's options (nothing is opened). */
function localStoreOptions(options: Record<string, unknown>): { dir: string; maxBytes?: number } {
  for (const key of Object.keys(options)) {
    if (key !== 'dir' && key !== 'max-size') {
      throw new StoreOptionsError(`unknown option "${key}"; expected one of: dir, max-size`, key);
    }
  }
  const dir = options.dir ?? DEFAULT_LOCAL_DIR;
  if (typeof dir !== 'string' || dir === '') {
    throw new StoreOptionsError(
      `dir: expected a directory name, got ${JSON.stringify(dir)}`,
      'dir',
    );
  }
  let maxBytes: number | undefined;
  if (options['max-size'] !== undefined) {
    try {
      maxBytes = parseSize(options['max-size'] as number | string);
    } catch (err) {
      throw new StoreOptionsError(`max-size: ${(err as Error).message}`, 'max-size');
    }
  }
  return { dir, ...(maxBytes !== undefined ? { maxBytes } : {}) };
}

export interface OpenStoreOptions {
  /** The `--cache-dir` flag (see the module comment). */
  cacheDir?: string;
  /** This worker's slot: its worker id. */
  slot: string;
  onWarning: (message: string) => void;
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Only the config's local stores: its gha and registry stores are left out (`--no-remote-cache`). */
  localOnly?: boolean;
  /** The run the worker serves, written with its counters (see `LayeredStats.run`). */
  run?: string;
  /** Write the layered store's counters to `<worker cache dir>/stats/<slot>.json` on flush (true). */
  writeStats?: boolean;
}

/**
 * A store's position in `cache.stores` as written (-1: the local store `effectiveStores` adds in
 * front of a config that lists none).
 */
const POSITION = Symbol('position in cache.stores');

function positionOf(store: StoreConfig): number {
  return (store as { [POSITION]?: number })[POSITION] ?? -1;
}

/** The configured stores, with `--cache-dir` applied, in the order a worker layers them. */
export function effectiveStores(config: Config, cacheDir?: string): StoreConfig[] {
  const stores = (config.cache ?? defaultCache()).stores.map((s, i) =>
    Object.defineProperty({ ...s }, POSITION, { value: i }),
  );
  // A worker restores and packs through a local store, and its first store's failures are the
  // build's: there is always one, and first (remote stores then sit behind it): put in front when
  // the config lists none, moved in front of the stores listed before it otherwise (a registry
  // listed first would fail every build while it is down).
  let first = stores.find((s) => s.type === 'local');
  if (!first) first = { type: 'local' } as StoreConfig;
  else stores.splice(stores.indexOf(first), 1);
  stores.unshift(first);
  if (cacheDir !== undefined) first.dir = resolve(cacheDir);
  return stores;
}

/**
 * The worker's own cache directory (running-job records, stats files, disk stats): `--cache-dir`,
 * else the first local store's directory, else `<config dir>/.dist-build/cache`.
 */
export function workerCacheDir(config: Config, cacheDir?: string): string {
  if (cacheDir !== undefined) return resolve(cacheDir);
  const local = effectiveStores(config).find((s) => s.type === 'local');
  const dir = typeof local?.dir === 'string' ? local.dir : DEFAULT_LOCAL_DIR;
  return resolve(config.root, dir);
}

/** Where a worker's layered-store counters go. */
export function statsFileFor(cacheDir: string, slot: string): string {
  return join(cacheDir, 'stats', `${slot.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
}

export interface OpenedStore {
  /** Index in `cache.stores` (after `--cache-dir`). */
  index: number;
  config: StoreConfig;
  /** The backend itself (not signed, not layered): for `dist-build cache`. */
  store: Store;
}

/** Whether a store of `type` is used when only local stores may be (`--no-remote-cache`). */
function usedWhen(localOnly: boolean | undefined, type: string): boolean {
  return !localOnly || type === 'local';
}

/** The kinds of store a worker uses (config order, each once): what its default id names. */
export function storeKinds(config: Config, cacheDir?: string, localOnly?: boolean): string[] {
  const types = effectiveStores(config, cacheDir)
    .sort((a, b) => positionOf(a) - positionOf(b))
    .map((s) => s.type);
  return [...new Set(types.filter((t) => usedWhen(localOnly, t)))];
}

/** Opens every configured store on its own (no signing, no layering). */
export async function openStores(
  config: Config,
  opts: Omit<OpenStoreOptions, 'writeStats'> & { checkOnly?: boolean },
): Promise<OpenedStore[]> {
  const ctx: StoreContext = {
    root: config.root,
    slot: opts.slot,
    onWarning: opts.onWarning,
    env: opts.env ?? process.env,
  };
  const stores = effectiveStores(config, opts.cacheDir);
  const opened: OpenedStore[] = [];
  // Every store's problems at once (one ConfigError), as the loader reports the rest of the file.
  const problems: ConfigIssue[] = [];
  for (const storeConfig of stores) {
    const index = positionOf(storeConfig); // as written in the config (-1: the implicit local store)
    const { type, ...options } = storeConfig;
    if (!usedWhen(opts.localOnly, type)) continue;
    const factory = Object.hasOwn(STORE_BACKENDS, type) ? STORE_BACKENDS[type] : undefined;
    const problem = (message: string, option?: string): void => {
      const where = index < 0 ? undefined : config.cache?.locations?.[index];
      const optionAt = option !== undefined ? where?.options[option] : undefined;
      const at = optionAt ?? where;
      problems.push({
        // As the loader names it (the path given, not the absolute one).
        file: where?.file ?? config.file,
        line: at?.line ?? 0,
        col: at?.col ?? 0,
        path: index < 0 ? 'cache' : `cache.stores[${index}]${optionAt ? `.${option}` : ''}`,
        message: `${type} store: ${message}`,
      });
    };
    if (!factory) {
      problem(
        `this build of dist-build has no ${JSON.stringify(type)} backend (available: ${Object.keys(STORE_BACKENDS).join(', ')})`,
      );
      continue;
    }
    let store: Store;
    try {
      if (opts.checkOnly && type === 'local') {
        localStoreOptions(options);
        continue;
      }
      store = await factory(options, ctx);
      if (opts.checkOnly) continue; // the remote backends' factories open nothing
      await store.prepare?.();
    } catch (err) {
      // Factories report bad options as StoreOptionsError (or TypeError): a config problem.
      if (err instanceof StoreOptionsError || err instanceof TypeError) {
        problem(err.message, err instanceof StoreOptionsError ? err.option : undefined);
        continue;
      }
      throw err;
    }
    opened.push({ index, config: storeConfig, store });
  }
  if (problems.length) throw new ConfigError(problems);
  return opened;
}

/**
 * Checks every configured store's options as a worker opening them would (a `ConfigError` naming
 * the file, line and option), without opening anything: for `dist-build validate`.
 */
export async function checkStores(config: Config): Promise<void> {
  await openStores(config, { slot: 'validate', onWarning: () => undefined, checkOnly: true });
}

/**
 * The store a worker uses: every configured store (signed when `cache.sign` has its secret),
 * layered in config order. Throws a `ConfigError` for bad store options and a
 * `SigningConfigError` when signing is required but its secret is missing.
 */
export async function openStore(config: Config, opts: OpenStoreOptions): Promise<LayeredStore> {
  const env = opts.env ?? process.env;
  const secret = signingSecret(config.cache?.sign, env, opts.onWarning);
  const opened = await openStores(config, { ...opts, env });
  const stores = opened.map((o) => o.store);
  // A worker packs and restores through its first local store: one it cannot write (a read-only
  // cache dir or mount) would fail every job it builds. It is read (its hits count), and a store
  // of this process's own in the temp dir goes in front, removed when the process exits.
  const first = stores[0];
  const problem = first instanceof LocalStore ? await first.writeProblem() : undefined;
  if (problem) {
    const dir = await mkdtemp(join(tmpdir(), 'dist-build-store-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    opts.onWarning(
      `${first!.location}: cannot write there (${problem}): what this worker builds is kept in ${dir} for this run only`,
    );
    stores.unshift(await LocalStore.open(dir, { onWarning: opts.onWarning }));
  }
  const layers = stores.map((store) =>
    secret === null ? store : new SignedStore(store, { secret, onWarning: opts.onWarning }),
  );
  return new LayeredStore(layers, {
    onWarning: opts.onWarning,
    // A job waits for the local store only; remote stores get its outputs in the background,
    // and what a worker killed meanwhile did not send, the next one on this cache dir sends.
    writeBehind: true,
    pendingDir: join(workerCacheDir(config, opts.cacheDir), 'pending'),
    slot: opts.slot,
    ...(opts.run !== undefined ? { run: opts.run } : {}),
    ...(opts.writeStats === false
      ? {}
      : { statsFile: statsFileFor(workerCacheDir(config, opts.cacheDir), opts.slot) }),
  });
}

function defaultCache(): CacheConfig {
  return { stores: [{ type: 'local' }] };
}
