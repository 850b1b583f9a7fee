import type { Command } from 'commander';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../config/load.js';
import { formatSize, parseSize } from '../../config/size.js';
import type { Config } from '../../config/types.js';
import type { GhaListing } from '../../store/gha-api.js';
import { ghaKeySlotPart } from '../../store/gha.js';
import type { GhaPruneResult, GhaVerifyResult } from '../../store/gha.js';
import type { LayeredStats } from '../../store/layered.js';
import type { LocalStoreStats, PruneResult, VerifyResult } from '../../store/local.js';
import { openStores, workerCacheDir } from '../../store/open.js';
import type { OpenedStore } from '../../store/open.js';
import type { ResultListing, Store } from '../../store/types.js';
import { DEFAULT_CONFIG } from '../defaults.js';
import { UsageError } from '../errors.js';
import { onGithubActions, workflowCommand } from '../github.js';
import { count, table } from '../table.js';
import { checkCacheDir, durationFlag, NO_REMOTE_CACHE_HELP } from '../util.js';

interface CacheFlags {
  config: string;
  cacheDir?: string;
  /** false with --no-remote-cache */
  remoteCache?: boolean;
}

/** What a backend may offer beyond `Store` (duck-typed: `LocalStore` has all of them). */
interface Maintainable extends Store {
  stats?(): Partial<LocalStoreStats> | Promise<Partial<LocalStoreStats>>;
  /** The gha store adds what it found per entry. */
  verify?(): Promise<VerifyResult | GhaVerifyResult>;
  /** `graceMs`: blobs used that recently are kept (local stores; a run may be using them). */
  prune?(maxBytes: number, opts?: { graceMs?: number }): Promise<PruneResult | GhaPruneResult>;
  /** The gha store: its entries as the GitHub API lists them. */
  remoteEntries?(): Promise<GhaListing>;
}

type Operation = 'count' | 'verify' | 'prune' | 'list';

/** Seconds around the newest worker stats file that count as the same (the last) run. */
const LAST_RUN_WINDOW_MS = 10 * 60 * 1000;

function describe(s: OpenedStore): string {
  return `${s.config.type} ${s.store.location}`;
}

function cannot(s: OpenedStore, op: Operation): string {
  const why = `the ${s.config.type} backend does not support it`;
  const verb = { count: 'count entries', verify: 'verify', prune: 'prune', list: 'list results' }[
    op
  ];
  return `${describe(s)}: cannot ${verb}: ${why}`;
}

async function openAll(flags: CacheFlags): Promise<{ config: Config; stores: OpenedStore[] }> {
  const config = await loadConfig(flags.config);
  checkCacheDir(flags.cacheDir, true);
  const stores = await openStores(config, {
    ...(flags.cacheDir !== undefined ? { cacheDir: flags.cacheDir } : {}),
    slot: 'cli',
    localOnly: flags.remoteCache === false,
    // On GitHub Actions (the action's `command: cache`) a warning is an annotation, as in `run`.
    onWarning: (m) =>
      process.stderr.write(
        onGithubActions()
          ? `${workflowCommand('warning', `dist-build: ${m}`)}\n`
          : `dist-build: warning: ${m}\n`,
      ),
    env: process.env,
  });
  return { config, stores };
}

interface LastRun {
  workers: number;
  at?: string;
  /** When the earliest of those workers started counting (a pool worker: when it started). */
  since?: string;
  /** Counters by layer position (the stores in config order), with the layer's kind. */
  layers: { kind: string; hits: number; misses: number }[];
}

/**
 * The result lookups of the last run, from the counters its workers wrote to
 * `<cache dir>/stats/`. Workers that write there share this cache directory, and every worker
 * answers the master's cache query for every unit: each counts the same lookups, so a layer's
 * figures are those of the worker that made the most lookups (a sum would count each lookup once
 * per worker).
 * Layers are matched by position, not location (a gha layer's location names its worker).
 */
async function lastRun(dir: string): Promise<LastRun> {
  const files: LayeredStats[] = [];
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    // no stats yet
  }
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    try {
      const s = JSON.parse(await readFile(join(dir, name), 'utf8')) as LayeredStats;
      if (Array.isArray(s.layers) && !Number.isNaN(Date.parse(s.updatedAt))) files.push(s);
    } catch {
      // a file being written or not ours: skip it
    }
  }
  const run: LastRun = { workers: 0, layers: [] };
  if (files.length === 0) return run;
  const newest = Math.max(...files.map((f) => Date.parse(f.updatedAt)));
  run.at = new Date(newest).toISOString();
  // The last `dist-build run` names its run in its workers' files: those alone. Without a run
  // (pool workers serve many), the files written close to the newest.
  const last = files.find((f) => Date.parse(f.updatedAt) === newest)!.run;
  for (const f of files) {
    if (last !== undefined ? f.run !== last : Date.parse(f.updatedAt) < newest - LAST_RUN_WINDOW_MS)
      continue;
    run.workers++;
    // Only pool workers count many runs: a `dist-build run`'s workers counted that run alone.
    if (last === undefined && f.since && (!run.since || f.since < run.since)) run.since = f.since;
    f.layers.forEach((l, i) => {
      const most = (run.layers[i] ??= { kind: l.kind, hits: 0, misses: 0 });
      if (most.kind !== l.kind) return; // written with another config
      // The worker that made the most lookups, hits and misses together (a pair, so the two
      // add up to lookups that happened).
      const hits = l.results?.hits ?? 0;
      const misses = l.results?.misses ?? 0;
      if (hits + misses > most.hits + most.misses) Object.assign(most, { hits, misses });
    });
  }
  return run;
}

async function statsCommand(flags: CacheFlags & { json?: boolean }): Promise<void> {
  const { config, stores } = await openAll(flags);
  const statsDir = join(workerCacheDir(config, flags.cacheDir), 'stats');
  const run = await lastRun(statsDir);
  const notes: string[] = [];
  const rows = [];
  for (const [position, s] of stores.entries()) {
    const store = s.store as Maintainable;
    let counts: Partial<LocalStoreStats> | undefined;
    /** gha: the entries GitHub lists for the scope. */
    let entryCount: number | undefined;
    if (typeof store.remoteEntries === 'function') {
      // The Actions cache: its entries (one per shard save) as GitHub lists them.
      const listing = await store.remoteEntries();
      if ('entries' in listing) {
        const { entries } = listing;
        const slots = new Set(entries.map((e) => ghaKeySlotPart(e.key)));
        entryCount = entries.length;
        counts = {
          bytes: entries.reduce((n, e) => n + e.sizeBytes, 0),
          ...(entries.length
            ? {
                lastUsed: entries
                  .map((e) => e.lastAccessedAt)
                  .sort()
                  .at(-1)!,
              }
            : {}),
        };
        notes.push(
          `${describe(s)}: ${count(entries.length, 'cache entry', 'cache entries')} on GitHub` +
            ` for this scope, from ${count(slots.size, 'worker slot')}` +
            ` (results and blobs are inside them)`,
        );
      } else {
        notes.push(`${describe(s)}: cannot count entries: ${listing.unavailable}`);
      }
    } else {
      // Backends' own stats() may count other things (uploads, restores): only these are shown.
      if (typeof store.stats === 'function') counts = await store.stats();
      if (!['results', 'blobs', 'bytes'].some((k) => typeof counts?.[k as 'bytes'] === 'number')) {
        counts = undefined;
        if (store.listResults) {
          // A store that can list its results (a registry, by its tags) is counted that way.
          const listed = { results: 0, bytes: 0, lastUsed: undefined as string | undefined };
          try {
            for await (const r of store.listResults()) {
              listed.results++;
              listed.bytes += r.size;
              if (!listed.lastUsed || r.createdAt > listed.lastUsed) listed.lastUsed = r.createdAt;
            }
            counts = { results: listed.results, bytes: listed.bytes };
            if (listed.lastUsed) counts.lastUsed = listed.lastUsed;
            notes.push(
              `${describe(s)}: counted from its list of results; bytes are their outputs' sizes (a blob two results share counts twice), last used = newest result`,
            );
          } catch (err) {
            notes.push(`${describe(s)}: cannot count entries: ${(err as Error).message}`);
          }
        } else notes.push(cannot(s, 'count'));
      }
    }
    const layer = run.layers[position];
    const used = layer?.kind === store.kind ? layer : undefined;
    rows.push({
      type: s.config.type,
      location: store.location,
      ...(entryCount !== undefined ? { entries: entryCount } : {}),
      results: counts?.results,
      blobs: counts?.blobs,
      bytes: counts?.bytes,
      lastUsed: counts?.lastUsed,
      hits: used?.hits ?? 0,
      misses: used?.misses ?? 0,
    });
  }
  if (flags.json) {
    process.stdout.write(
      // The notes too: what a gha store's listing found, or why a store could not be counted.
      `${JSON.stringify({ stores: rows, lastRun: { workers: run.workers, at: run.at ?? null }, notes }, null, 2)}\n`,
    );
    return;
  }
  const dash = (v: number | string | undefined, f: (x: number) => string = String): string =>
    v === undefined ? '-' : typeof v === 'number' ? f(v) : v;
  const lines = [
    table(
      [
        ['STORE', 'LOCATION', 'RESULTS', 'BLOBS', 'BYTES', 'HITS', 'MISSES', 'LAST USED'],
        ...rows.map((r) => [
          r.type,
          r.location,
          dash(r.results),
          dash(r.blobs),
          dash(r.bytes, formatSize),
          String(r.hits),
          String(r.misses),
          dash(r.lastUsed),
        ]),
      ],
      [false, false, true, true, true, true, true, false],
    ),
    '',
    run.workers > 0
      ? `hits/misses: result lookups of the last run in each store (${count(run.workers, 'worker')}${run.since ? `, counting since ${run.since} (a long-lived worker counts every run it served)` : ''}, last at ${run.at}; from ${statsDir})`
      : `hits/misses: no run has recorded stats in ${statsDir} yet`,
    ...notes,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function verifyCommand(flags: CacheFlags): Promise<void> {
  const { stores } = await openAll(flags);
  let corrupt = 0;
  let failed = 0;
  for (const s of stores) {
    const store = s.store as Maintainable;
    if (typeof store.verify !== 'function') {
      process.stdout.write(`${cannot(s, 'verify')}\n`);
      continue;
    }
    let r: VerifyResult | GhaVerifyResult;
    try {
      r = await store.verify();
    } catch (err) {
      failed++;
      process.stdout.write(`${describe(s)}: cannot verify: ${(err as Error).message}\n`);
      continue;
    }
    corrupt += r.corrupt.length;
    if ('entries' in r) {
      failed += r.entries.filter((e) => e.outcome === 'unreadable').length;
      if (r.incomplete) failed++;
      process.stdout.write(ghaVerifyText(describe(s), r));
      continue;
    }
    const missing = r.missing ?? [];
    if (missing.length) failed++;
    const bad = r.badResults ?? [];
    corrupt += bad.length;
    const removed = count(r.removedResults, 'result');
    process.stdout.write(
      `${describe(s)}: ${count(r.checked, 'blob')} checked, ${r.corrupt.length} corrupt` +
        (r.missing ? `, ${missing.length} missing` : '') +
        (r.corrupt.length || missing.length
          ? ` (${s.config.type === 'local' ? `removed, with ${removed} naming them` : `corrupt ones removed where the registry allows it; ${removed} naming them removed`}):\n` +
            [...r.corrupt, ...missing.map((d) => `${d} (missing)`)].map((d) => `  ${d}`).join('\n')
          : '') +
        '\n' +
        (bad.length
          ? `${describe(s)}: ${count(bad.length, 'result')} that cannot be read (${s.config.type === 'local' ? 'removed' : 'removed where the registry allows it'}):\n${bad.map((k) => `  ${k}`).join('\n')}\n`
          : ''),
    );
  }
  if (corrupt > 0 || failed > 0) process.exitCode = 1;
}

/** `cache verify` on a gha store: one line per slot entry, then the corrupt blobs. */
function ghaVerifyText(store: string, r: GhaVerifyResult): string {
  const { entries } = r;
  const lines =
    entries.length === 0
      ? [`${store}: no entry to verify${r.incomplete ? '' : ' in this scope'}`]
      : [
          `${store}: ${count(entries.length, 'entry', 'entries')} (the newest of each worker slot), ${count(r.checked, 'blob')} checked`,
        ];
  for (const e of entries) {
    const at = `  ${e.key}${e.ref ? ` (${e.ref})` : ''}`;
    if (e.outcome === 'ok') {
      lines.push(`${at}: ${count(e.checked, 'blob')}, ok`);
      continue;
    }
    if (e.outcome === 'unreadable') {
      lines.push(`${at}: cannot be restored: ${e.detail}`);
      continue;
    }
    const what = `${e.corrupt.length} of ${count(e.checked, 'blob')} corrupt, ${count(e.brokenResults, 'result')} naming them`;
    const done = {
      repaired: e.replacedBy
        ? `replaced by ${e.replacedBy} (the rest of it), and deleted`
        : 'deleted (no result was left without them)',
      replaced: `replaced by ${e.replacedBy} (the rest of it), which restores take now; deleting it failed (${e.detail}): it is superseded, and \`cache prune\` deletes superseded entries first`,
      reported: `left as it is (${e.detail}); restores drop the corrupt blobs, so those results miss`,
    }[e.outcome];
    lines.push(`${at}: ${what}: ${done}`, ...e.corrupt.map((d) => `    ${d}`));
  }
  if (r.incomplete) lines.push(`  not every worker slot was verified: ${r.incomplete}`);
  return `${lines.join('\n')}\n`;
}

async function pruneCommand(flags: CacheFlags & { maxSize: string; grace: string }): Promise<void> {
  let maxBytes: number;
  try {
    maxBytes = parseSize(/^[0-9]+$/.test(flags.maxSize) ? Number(flags.maxSize) : flags.maxSize);
  } catch (err) {
    throw new UsageError(`--max-size: ${(err as Error).message}`);
  }
  const graceMs = durationFlag(flags.grace, '--grace') * 1000;
  const { stores } = await openAll(flags);
  for (const s of stores) {
    const store = s.store as Maintainable;
    if (typeof store.prune !== 'function') {
      process.stdout.write(`${cannot(s, 'prune')}\n`);
      continue;
    }
    let r: PruneResult | GhaPruneResult;
    try {
      r = await store.prune(maxBytes, { graceMs });
    } catch (err) {
      process.exitCode = 1;
      process.stdout.write(`${describe(s)}: cannot prune: ${(err as Error).message}\n`);
      continue;
    }
    if ('removedEntries' in r) {
      if (r.failed) process.exitCode = 1;
      process.stdout.write(
        `${describe(s)}: deleted ${count(r.removedEntries, 'cache entry', 'cache entries')} on GitHub (${formatSize(r.freedBytes)}; superseded by a newer entry of their worker slot: ${r.removedSuperseded}); ${r.entriesLeft} left, ${formatSize(r.bytes)} (limit ${formatSize(maxBytes)})` +
          (r.failed ? `; then stopped: ${r.failed}` : '') +
          '\n',
      );
      continue;
    }
    // Still over: what is left was used within --grace (the oldest first would have gone).
    const over =
      r.bytes > maxBytes
        ? `; over the limit: the rest was used in the last ${flags.grace} (--grace), which a run going on may still need`
        : '';
    process.stdout.write(
      `${describe(s)}: removed ${count(r.removedBlobs, 'blob')} (${formatSize(r.freedBytes)}) and ${count(r.removedResults, 'result')}; ${formatSize(r.bytes)} left (limit ${formatSize(maxBytes)})${over}\n`,
    );
  }
}

/** `--key`: `sha256:` and hex digits in either case, as `sha256:<lower-case hex>`. */
function keyPrefix(given: string): string {
  const hex = /^sha256:/i.test(given) ? given.slice(7) : given;
  if (!/^[0-9a-f]{0,64}$/i.test(hex)) {
    throw new UsageError(
      `--key ${given}: expected the start of a cache key, such as sha256:ab12 or ab12 (hex digits)`,
    );
  }
  return `sha256:${hex.toLowerCase()}`;
}

async function lsCommand(flags: CacheFlags & { key?: string; json?: boolean }): Promise<void> {
  if (flags.key !== undefined) flags = { ...flags, key: keyPrefix(flags.key) };
  const { stores } = await openAll(flags);
  const entries: (ResultListing & { store: string; location: string })[] = [];
  for (const s of stores) {
    if (!s.store.listResults) {
      process.stderr.write(`dist-build: ${cannot(s, 'list')}\n`);
      continue;
    }
    try {
      for await (const r of s.store.listResults(flags.key)) {
        entries.push({ ...r, store: s.config.type, location: s.store.location });
      }
    } catch (err) {
      // The other stores are still listed; what this one held so far is kept.
      process.exitCode = 1;
      process.stderr.write(
        `dist-build: ${describe(s)}: cannot list results: ${(err as Error).message}\n`,
      );
    }
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
    return;
  }
  if (entries.length === 0) {
    process.stdout.write(`no results${flags.key ? ` with a key starting ${flags.key}` : ''}\n`);
    return;
  }
  process.stdout.write(
    `${table(
      [
        ['CACHE KEY', 'UNIT', 'SIZE', 'CREATED', 'STORE'],
        ...entries.map((e) => [e.cacheKey, e.unit, formatSize(e.size), e.createdAt, e.store]),
      ],
      [false, false, true, false, false],
    )}\n`,
  );
}

export function registerCache(program: Command): void {
  const cache = program
    .command('cache')
    .description('Look after the cache stores of a config: stats, verify, prune, ls.');
  const common = (cmd: Command): Command =>
    cmd
      .option('-c, --config <file>', 'the dist-build.yml whose stores to use', DEFAULT_CONFIG)
      .option(
        '--cache-dir <dir>',
        "local cache store (default: the config's first local store, else <config dir>/.dist-build/cache)",
      )
      .option('--no-remote-cache', NO_REMOTE_CACHE_HELP)
      .exitOverride()
      .showHelpAfterError('(run with --help for usage)');
  common(
    cache
      .command('stats')
      .description("Entries and bytes of each store, and the last run's hits and misses per store.")
      .option('--json', 'print one JSON object'),
  ).action(statsCommand);
  common(
    cache
      .command('verify')
      .description(
        'Rehash every blob of each store; remove corrupt ones and the results naming them (gha: replace the entry holding them). Exit 1 if any was corrupt.',
      ),
  ).action(verifyCommand);
  common(
    cache
      .command('prune')
      .description(
        "Evict least recently used blobs (and the results naming them) until each store holds at most SIZE (gha: delete this scope's entries on GitHub, superseded ones first).",
      )
      .requiredOption('--max-size <size>', 'bytes, or a size such as 500MB, 10GiB')
      .option(
        '--grace <duration>',
        'keep blobs used this recently (local stores), so a run going on is not robbed of them',
        '60s',
      ),
  ).action(pruneCommand);
  common(
    cache
      .command('ls')
      .description('List the results (cache keys) the stores hold.')
      .option('--key <prefix>', 'only cache keys starting with this (sha256:ab12 or ab12)')
      .option('--json', 'print a JSON list'),
  ).action(lsCommand);
  cache.exitOverride().showHelpAfterError('(run with --help for usage)');
}
