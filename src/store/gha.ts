/**
 * `GhaStore`: the GitHub Actions cache as a store, through the real `@actions/cache` package
 * (protocol v2 on github.com, v1 on GHES and `act`; the package picks by environment).
 *
 * The service's rules shape the design: entries are immutable and named by a key (at most 512
 * characters, no commas); a restore matches a key prefix, newest entry first, within the branch
 * scope (then the default/base branch); the `paths` list is hashed into the entry's version, so
 * a restore must pass exactly the list the save passed; a repository gets 10 GB with LRU eviction
 * and at most 200 uploads a minute. One entry per blob would hit the upload limit at once, so:
 *
 * - Each worker slot keeps a SHARD: a local directory laid out like a `LocalStore` (option `dir`,
 *   default `<root>/.dist-build/gha/<slot>`). All reads and writes go to the shard.
 * - The first use restores the newest entry whose key starts with
 *   `dist-build-v1-<scope>-<slot>-` into the shard; `flush()` saves the shard, when a result was
 *   written, as ONE new entry `dist-build-v1-<scope>-<slot>-<UTC timestamp>-<random>`. One
 *   worker run is at most one upload. Consistent hashing keeps a unit on its slot run after run,
 *   so each shard holds what that slot builds: small, and relevant to the worker restoring it.
 *   Scope and slot are escaped in keys (`-` and anything outside `[A-Za-z0-9_.]` become `%XX`),
 *   so one slot's prefix never matches another slot's keys (`worker-1` vs `worker-10`).
 * - A saved shard holds the results this run looked up with a hit or wrote, plus those created
 *   in the last `retainDays` days (default 7, the service's own idle expiry), and the blobs they
 *   name; older untouched results are dropped so a shard does not grow forever.
 * - On a result miss the store may look in other slots' newest shards (option `slots`: the other
 *   worker ids, which the plan knows), restoring each lazily, one after the other until the
 *   result is found; a slot's shard is restored again, on a miss, once a minute at most (a share
 *   of a plan waiting for another's result, `run --share`, sees that share's saved shard). A hit is copied into this slot's shard (the unit now lives here).
 *   No index entry: it would cost an upload per run and could only be as fresh as its last
 *   writer; the plan already names the slots.
 *
 * - `dist-build cache verify` and `prune` work on the scope's entries through the GitHub REST API
 *   as well (gha-api.ts): `verify` replaces an entry holding a corrupt blob with one without it,
 *   `prune` deletes superseded entries (older than their slot's newest in the same ref: no
 *   restore returns them again) before the least recently used.
 *
 * Every save and restore passes the same `paths` list, `['~/dist-build-shard']`, so the version
 * hash is the same on every machine. `@actions/cache` tars paths relative to `GITHUB_WORKSPACE`
 * and expands `~` from `HOME`; while a call runs, this module points both (and `RUNNER_TEMP`) at
 * a fresh staging directory next to the shard and copies the Actions variables from the store's
 * `env` into `process.env` (the package reads `process.env` only), restoring everything after.
 * Calls are serialized process-wide for that reason. Restored files are moved into the shard only
 * after the whole restore succeeded, and only blobs whose bytes hash to their name: a truncated or
 * corrupt download is a miss, never a half-used shard.
 *
 * `@actions/cache` never throws for service trouble: it logs through `@actions/core` (workflow
 * commands on stdout) and returns -1 / `undefined`. Output written while one of its calls runs is
 * captured (by async context, so other output passes untouched; `::add-mask::` is passed on inside
 * Actions) and classified: saving a key that already exists is success; a rate limit (429),
 * read-only `ACTIONS_CACHE_MODE`, a policy denial, 5xx, network errors or no service at all give
 * one warning through `onWarning` and the build goes on without the Actions cache. Nothing here
 * throws out of `getResult`, `has*`, `openBlob` or `flush`.
 */
import { deleteGhaCache, listGhaCaches } from './gha-api.js';
import type { GhaCacheEntry, GhaListing } from './gha-api.js';
import type * as ActionsCache from '@actions/cache';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, lstat, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { digestStream } from './digest.js';
import { LocalStore } from './local.js';
import type { PruneResult, VerifyResult } from './local.js';
import type { BlobInfo, ResultListing, ResultManifest, Store, StoreContext } from './types.js';
import { assertDigest, CorruptBlobError, manifestProblems } from './types.js';
import { errorText, StoreOptionsError } from './errors.js';
import { exists, listDir } from './fsutil.js';

type CacheModule = typeof ActionsCache;

/** First part of every key this store writes; bump it when the shard layout changes. */
export const GHA_KEY_FORMAT = 'dist-build-v1';
/** The one `paths` entry of every save and restore (it is hashed into the entry's version). */
export const GHA_CACHE_PATH = '~/dist-build-shard';
const SHARD_NAME = 'dist-build-shard';
/** Variables `@actions/cache` reads, copied from the store's `env` for each call. */
const ACTIONS_ENV_KEYS = [
  'ACTIONS_CACHE_SERVICE_V2',
  'ACTIONS_RESULTS_URL',
  'ACTIONS_CACHE_URL',
  'ACTIONS_RUNTIME_TOKEN',
  'ACTIONS_CACHE_MODE',
  'GITHUB_SERVER_URL',
  'GITHUB_REF',
  'RUNNER_DEBUG',
  'CACHE_UPLOAD_CONCURRENCY',
  'CACHE_UPLOAD_CHUNK_SIZE',
  'SEGMENT_DOWNLOAD_TIMEOUT_MINS',
] as const;
const KNOWN_MODES = ['none', 'read', 'write', 'write-only'];
const DAY_MS = 24 * 3600 * 1000;
const MAX_KEY_PART = 120;

export interface GhaStoreOptions {
  /** The shard directory (absolute). */
  dir: string;
  /** Key namespace (`dist-build-v1-<scope>-...`): separate configs or pipelines. */
  scope: string;
  /** Other worker slots whose shards may be read on a miss. */
  slots: string[];
  /** Untouched results younger than this many days stay in the saved shard. */
  retainDays: number;
}

export interface GhaStoreStats {
  /** Entries restored (own shard and other slots'). */
  restoredEntries: number;
  /** Entries saved (an entry that already existed counts as saved). */
  savedEntries: number;
  /** Archive bytes uploaded (compressed, as `@actions/cache` measured them). */
  uploadedBytes: number;
  /** Warnings given. */
  warnings: number;
}

/** What `verify` found in one slot's newest entry, and what it did about it. */
export interface GhaEntryCheck {
  key: string;
  /** The ref the entry is scoped to (from the GitHub API; '' without it). */
  ref: string;
  checked: number;
  corrupt: string[];
  /** Results in the entry that name a corrupt blob (they miss on every restore). */
  brokenResults: number;
  /**
   * `ok`; `repaired` (a new entry without the corrupt blobs saved, unless no result was left,
   * and the corrupt one deleted); `replaced` (the new entry saved, so restores take it, but the
   * delete failed: `detail`); `reported` (left as it is: `detail` says why); `unreadable` (the
   * slot's newest entry could not be restored: `detail` says why, `key` is the slot's prefix and
   * `*`).
   */
  outcome: 'ok' | 'repaired' | 'replaced' | 'reported' | 'unreadable';
  detail?: string;
  /** The key of the repaired entry. */
  replacedBy?: string;
}

export interface GhaVerifyResult extends VerifyResult {
  entries: GhaEntryCheck[];
  /** Set when not every slot could be found (no GitHub API): why. */
  incomplete?: string;
}

export interface GhaPruneResult extends PruneResult {
  /** Entries deleted through the GitHub API. */
  removedEntries: number;
  /** How many of them were superseded (a newer entry of the same slot and ref exists). */
  removedSuperseded: number;
  /** Entries left in this scope. */
  entriesLeft: number;
  /** Set when a delete failed (the API's answer): the entries before it were deleted. */
  failed?: string;
}

/**
 * Splits a scope's entries into those a restore can find (the newest of each slot, ref and
 * version: a restore takes the newest match by prefix in its ref) and superseded ones, which no
 * restore ever returns again.
 */
export function ghaSuperseded(entries: readonly GhaCacheEntry[]): {
  live: GhaCacheEntry[];
  superseded: GhaCacheEntry[];
} {
  const newest = new Map<string, GhaCacheEntry>();
  const superseded: GhaCacheEntry[] = [];
  const time = (e: GhaCacheEntry) => Date.parse(e.createdAt) || 0;
  for (const e of entries) {
    const group = `${ghaKeySlotPart(e.key)}\n${e.ref}\n${e.version}`;
    const best = newest.get(group);
    if (!best) newest.set(group, e);
    else if (time(e) > time(best) || (time(e) === time(best) && e.id > best.id)) {
      superseded.push(best);
      newest.set(group, e);
    } else superseded.push(e);
  }
  return { live: [...newest.values()], superseded };
}

/**
 * The ref a save from this environment lands in: `GITHUB_REF`, else the scope the runtime token
 * may write (its `ac` claim: `[{"Scope": "refs/heads/main", "Permission": 3}]`, 2 = write).
 */
export function ghaSaveScope(env: NodeJS.ProcessEnv): string | undefined {
  if (env.GITHUB_REF) return env.GITHUB_REF;
  try {
    const payload = (env.ACTIONS_RUNTIME_TOKEN ?? '').split('.')[1] ?? '';
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      ac?: unknown;
    };
    const scopes: unknown = typeof claims.ac === 'string' ? JSON.parse(claims.ac) : [];
    if (!Array.isArray(scopes)) return undefined;
    const writable = scopes.find(
      (x: { Scope?: unknown; Permission?: unknown }) =>
        typeof x?.Scope === 'string' && typeof x.Permission === 'number' && x.Permission & 2,
    ) as { Scope: string } | undefined;
    return writable?.Scope;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

/** A scope or slot as it appears in a key: no `-`, `,` or `%` of its own, bounded length. */
export function ghaKeyPart(value: string): string {
  let out = '';
  for (const ch of value) {
    if (/^[A-Za-z0-9_.]$/.test(ch)) out += ch;
    else
      for (const b of Buffer.from(ch, 'utf8'))
        out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out.length > MAX_KEY_PART) {
    out = `h${createHash('sha256').update(value).digest('hex').slice(0, 40)}`;
  }
  return out;
}

/** What the keys of every slot of a scope start with. */
export function ghaScopePrefix(scope: string): string {
  return `${GHA_KEY_FORMAT}-${ghaKeyPart(scope)}-`;
}

/** The restore prefix of a slot's shard entries. */
export function ghaKeyPrefix(scope: string, slot: string): string {
  return `${ghaScopePrefix(scope)}${ghaKeyPart(slot)}-`;
}

/** The slot part of an entry key, as `ghaKeyPart` wrote it (scope and slot parts have no `-`). */
export function ghaKeySlotPart(key: string): string {
  return key.split('-')[GHA_KEY_FORMAT.split('-').length + 1] ?? '';
}

/** A new, unique entry key for a slot's shard (sorts by time within the prefix). */
export function ghaNewKey(scope: string, slot: string, now = new Date()): string {
  return newKeyUnder(ghaKeyPrefix(scope, slot), now);
}

function newKeyUnder(prefix: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:.]/g, '');
  return `${prefix}${stamp}-${randomBytes(4).toString('hex')}`;
}

// ---------------------------------------------------------------------------------------------
// Running @actions/cache: environment, serialization, output capture

interface CapturedLog {
  warnings: string[];
  errors: string[];
  debug: string[];
  info: string[];
}

type ActionsOutcome<T> =
  { ok: true; value: T; log: CapturedLog } | { ok: false; error: unknown; log: CapturedLog };

const capture = new AsyncLocalStorage<string[]>();
let queue: Promise<unknown> = Promise.resolve();
let hooks = 0;
let restoreWrites: (() => void) | undefined;
let cacheModule: Promise<CacheModule> | undefined;

/**
 * Loads `@actions/cache` now. Evaluating it (with undici) is a few hundred milliseconds of CPU in
 * which the process answers nothing, several times that when every local worker does it at once
 * on a small runner: a worker does it before it registers, not during its first cache query,
 * where it held back heartbeats past the lease and the worker was given up for lost. Never
 * throws (a module that cannot be loaded is reported when the store is first used).
 */
export async function preloadActionsCache(): Promise<void> {
  await loadCacheModule().catch(() => {});
}

function loadCacheModule(): Promise<CacheModule> {
  cacheModule ??= import('@actions/cache').catch((err: unknown) => {
    cacheModule = undefined;
    throw err;
  });
  return cacheModule;
}

function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

/** Routes stdout/stderr writes made inside `capture` contexts into their sink. */
function hookWrites(): () => void {
  if (hooks++ === 0) {
    const streams = [process.stdout, process.stderr];
    const originals = streams.map((s) => s.write);
    streams.forEach((stream, i) => {
      const original = originals[i]!;
      stream.write = function (this: unknown, ...args: unknown[]): boolean {
        const sink = capture.getStore();
        if (!sink) return (original as (...a: unknown[]) => boolean).apply(stream, args);
        const [chunk, encOrCb, cb] = args;
        const text =
          typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
        sink.push(text);
        if (process.env.GITHUB_ACTIONS === 'true') {
          // Masks keep signed URLs out of the job log even though the rest is swallowed. On
          // stderr (the runner reads commands there too): stdout may be `cache ls --json`'s.
          for (const line of text.split(/\r?\n/)) {
            if (line.startsWith('::add-mask::')) originals[1]!.call(process.stderr, `${line}\n`);
          }
        }
        const done = typeof encOrCb === 'function' ? encOrCb : cb;
        if (typeof done === 'function') process.nextTick(done as () => void);
        return true;
      } as typeof stream.write;
    });
    restoreWrites = () => streams.forEach((s, i) => (s.write = originals[i]!));
  }
  return () => {
    if (--hooks === 0) {
      restoreWrites?.();
      restoreWrites = undefined;
    }
  };
}

function unescapeCommand(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

function parseLog(chunks: string[]): CapturedLog {
  const log: CapturedLog = { warnings: [], errors: [], debug: [], info: [] };
  for (const line of chunks.join('').split(/\r?\n/)) {
    if (line === '') continue;
    const m = /^::([a-z-]+)(?: [^:]*)?::(.*)$/.exec(line);
    if (!m) {
      log.info.push(line);
      continue;
    }
    const text = unescapeCommand(m[2]!);
    if (m[1] === 'warning') log.warnings.push(text);
    else if (m[1] === 'error') log.errors.push(text);
    else if (m[1] === 'debug') log.debug.push(text);
  }
  return log;
}

/**
 * Runs `fn` with `@actions/cache` loaded, the Actions variables of `env` plus `overlay` in
 * `process.env`, and everything it writes captured. One call at a time per process.
 */
function runActions<T>(
  env: NodeJS.ProcessEnv,
  overlay: Record<string, string>,
  fn: (cache: CacheModule) => Promise<T>,
): Promise<ActionsOutcome<T>> {
  return serialized(async () => {
    const wanted: Record<string, string | undefined> = { ...overlay };
    for (const k of ACTIONS_ENV_KEYS) wanted[k] = env[k];
    const saved: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(wanted)) {
      saved[k] = process.env[k];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    const sink: string[] = [];
    const unhook = hookWrites();
    try {
      const value = await capture.run(sink, async () => fn(await loadCacheModule()));
      return { ok: true as const, value, log: parseLog(sink) };
    } catch (error) {
      return { ok: false as const, error, log: parseLog(sink) };
    } finally {
      unhook();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
}

function cacheMode(env: NodeJS.ProcessEnv): string {
  return (env.ACTIONS_CACHE_MODE ?? '').trim().toLowerCase();
}

function modeReadable(mode: string): boolean {
  return !KNOWN_MODES.includes(mode) || mode === 'read' || mode === 'write';
}

function modeWritable(mode: string): boolean {
  return !KNOWN_MODES.includes(mode) || mode === 'write' || mode === 'write-only';
}

/** The lines that explain a failed call, most specific first. */
function failureDetail(log: CapturedLog): string {
  const reserve = log.debug.filter((l) => l.startsWith('Failed to reserve cache'));
  const failed = log.info.filter((l) =>
    /^(Failed to (save|restore)|Cache reservation failed)/.test(l),
  );
  const lines = [...new Set([...log.errors, ...log.warnings, ...reserve, ...failed])];
  return lines.join('; ').replace(/\s+/g, ' ').slice(0, 1000) || 'no details';
}

// ---------------------------------------------------------------------------------------------
// The store

/** A miss restores another slot's shard again once its last restore is this old. */
const PEER_REFRESH_MS = 60_000;

export class GhaStore implements Store {
  readonly kind = 'gha';
  readonly location: string;
  readonly dir: string;
  readonly scope: string;
  readonly slot: string;
  /** Keys restored (own shard first) and saved by this store. */
  readonly restoredKeys: string[] = [];
  readonly savedKeys: string[] = [];

  private readonly options: GhaStoreOptions;
  private readonly ctx: StoreContext;
  private readonly counters: GhaStoreStats = {
    restoredEntries: 0,
    savedEntries: 0,
    uploadedBytes: 0,
    warnings: 0,
  };
  private readonly warned = new Set<string>();
  private readonly touched = new Set<string>();
  /** Blobs of the shard this process has hashed (written, restored or checked). */
  private readonly verified = new Set<string>();
  private readonly peers = new Map<string, LocalStore>();
  /** Each slot's shard restore (concurrent lookups wait for the same one). */
  private readonly peerLoads = new Map<string, Promise<LocalStore | null>>();
  /** When each slot's shard was last restored (or found missing). */
  private readonly peerLoadedAt = new Map<string, number>();
  private opening: Promise<void> | undefined;
  private shardStore: LocalStore | undefined;
  /** Whether the service can be used at all (set by `open`). */
  private available = false;
  private dirty = false;
  /** Restoring this slot's own entry failed (not a miss): see `flush`. */
  private ownRestoreFailed = false;
  /** Bumped by every write, so a flush only clears `dirty` for what it saved. */
  private generation = 0;

  constructor(options: GhaStoreOptions, ctx: StoreContext) {
    this.options = options;
    this.ctx = ctx;
    this.dir = options.dir;
    this.scope = options.scope;
    this.slot = ctx.slot;
    this.location = `gha:${ghaKeyPrefix(options.scope, ctx.slot)}* (${options.dir})`;
  }

  /** Loads `@actions/cache` (see `preloadActionsCache`). */
  prepare(): Promise<void> {
    return preloadActionsCache();
  }

  /**
   * Restores this slot's shard now (see `Store.warm`), so that a worker's first cache query does
   * not wait for the whole download. A failure is reported as `open` reports it, and the next
   * lookup tries again.
   */
  async warm(): Promise<void> {
    await this.open().catch(() => undefined);
  }

  stats(): GhaStoreStats {
    return { ...this.counters };
  }

  /** Prepares the shard and restores this slot's newest entry (once; later calls wait for it). */
  open(): Promise<void> {
    this.opening ??= this.doOpen().catch((err: unknown) => {
      this.opening = undefined;
      throw err;
    });
    return this.opening;
  }

  async hasBlobs(digests: readonly string[]): Promise<Set<string>> {
    for (const d of digests) assertDigest(d);
    try {
      const shard = await this.shard();
      const found = await shard.hasBlobs(digests);
      for (const peer of this.peers.values()) {
        const rest = digests.filter((d) => !found.has(d));
        if (rest.length === 0) break;
        for (const d of await peer.hasBlobs(rest)) found.add(d);
      }
      return found;
    } catch (err) {
      this.warn(`blob lookup failed (${errorText(err)}); treating as missing`);
      return new Set();
    }
  }

  async putBlob(
    data: Readable | AsyncIterable<Buffer>,
    expectedDigest?: string,
  ): Promise<BlobInfo> {
    return this.written(await (await this.shard()).putBlob(data, expectedDigest));
  }

  async putBlobFile(file: string): Promise<BlobInfo> {
    return this.written(await (await this.shard()).putBlobFile(file));
  }

  async openBlob(digest: string): Promise<Readable | null> {
    assertDigest(digest);
    try {
      const shard = await this.shard();
      const own = await shard.openBlob(digest);
      if (own) return own;
      for (const peer of this.peers.values()) {
        const s = await peer.openBlob(digest);
        if (s) return s;
      }
      return null;
    } catch (err) {
      this.warn(`reading blob ${digest} failed (${errorText(err)}); a miss`);
      return null;
    }
  }

  async getResult(cacheKey: string): Promise<ResultManifest | null> {
    assertDigest(cacheKey, 'cache key');
    try {
      const shard = await this.shard();
      const own = await shard.getResult(cacheKey);
      if (own) {
        this.touched.add(cacheKey);
        return own;
      }
      return await this.fromPeers(cacheKey);
    } catch (err) {
      this.warn(`result lookup failed (${errorText(err)}); a miss`);
      return null;
    }
  }

  async putResult(manifest: ResultManifest): Promise<void> {
    const shard = await this.shard();
    // saveOutputs skips blobs that `hasBlobs` found in another slot's shard: bring them over.
    if (Array.isArray(manifest.outputs) && this.peers.size > 0) {
      const digests = manifest.outputs.map((o) => o.digest);
      const present = await shard.hasBlobs(digests.filter((d) => typeof d === 'string'));
      for (const d of digests) {
        if (!present.has(d)) await this.copyBlobFromPeers(d, shard);
      }
    }
    await shard.putResult(manifest);
    this.touched.add(manifest.cacheKey);
    this.markDirty();
  }

  async hasResults(cacheKeys: readonly string[]): Promise<Set<string>> {
    for (const k of cacheKeys) assertDigest(k, 'cache key');
    try {
      const shard = await this.shard();
      const found = await shard.hasResults(cacheKeys);
      for (const k of found) this.touched.add(k);
      if (this.options.slots.length > 0) {
        for (const k of new Set(cacheKeys)) {
          if (!found.has(k) && (await this.fromPeers(k))) found.add(k);
        }
      }
      return found;
    } catch (err) {
      this.warn(`result lookup failed (${errorText(err)}); treating as missing`);
      return new Set();
    }
  }

  /**
   * Every shard entry of this store's scope (all slots) as GitHub lists them: needs the GitHub
   * API (see gha-api.ts); the cache service cannot list.
   */
  remoteEntries(fetchImpl?: typeof fetch): Promise<GhaListing> {
    return listGhaCaches(ghaScopePrefix(this.scope), this.ctx.env, fetchImpl);
  }

  /**
   * The results of this slot's shard, then those of every other slot's newest shard (each
   * restored once): the slots of the `slots` option, and, when the GitHub API can list the
   * scope's entries (see gha-api.ts), every slot that has saved one. A result in several shards
   * is listed once.
   */
  async *listResults(prefix = ''): AsyncIterable<ResultListing> {
    const seen = new Set<string>();
    // Shards are local stores: their own listing (prefix `sha256:ab12` or `ab12`), once per key.
    const from = async function* (store: LocalStore) {
      for await (const r of store.listResults(prefix)) {
        if (seen.has(r.cacheKey)) continue;
        seen.add(r.cacheKey);
        yield r;
      }
    };
    yield* from(await this.shard());
    let listing: GhaListing | undefined;
    if (this.readable()) {
      listing = await this.remoteEntries();
      if ('unavailable' in listing)
        this.ctx.onWarning(
          `${this.location}: listing ${this.unlistedShards()} only: ${listing.unavailable}`,
        );
    } else if (this.available) {
      // (Without the service at all, opening the shard has said so.)
      this.ctx.onWarning(
        `${this.location}: listing this machine's copy of the shard only: ACTIONS_CACHE_MODE '${cacheMode(this.ctx.env)}' does not permit reads`,
      );
    }
    const parts = this.slotParts(listing);
    parts.delete(ghaKeyPart(this.slot));
    for (const part of [...parts].sort()) {
      const peer = await this.peer(part);
      if (peer) yield* from(peer);
    }
  }

  /**
   * Saves the shard as one new entry when a result was written since the last save. Never
   * throws: a failed save is a warning (the next flush tries again).
   */
  async flush(): Promise<void> {
    try {
      await this.open();
    } catch (err) {
      this.warn(`cannot open the shard (${errorText(err)}); nothing saved`);
      return;
    }
    if (!this.dirty || !this.available) return;
    const mode = cacheMode(this.ctx.env);
    if (!modeWritable(mode)) {
      this.warn(
        `ACTIONS_CACHE_MODE '${mode}' does not permit writes: results of this run stay local`,
      );
      this.dirty = false;
      return;
    }
    if (this.ownRestoreFailed) {
      // The slot's entry could not be restored (429, 5xx): a new one holding only what this
      // machine has would become the slot's newest and hide the older results from every later
      // run. Try once more; save only over what it brings.
      const failed = await this.restoreOwn({ quiet: true });
      if (failed !== undefined) {
        this.warn(
          `not saving the shard: restoring this slot's entry failed (${failed}), and an entry with only this run's results would hide the older ones from later runs; results of this run stay local`,
        );
        return;
      }
    }
    const generation = this.generation;
    let stage: string | undefined;
    try {
      stage = await mkdtemp(join(this.dir, 'tmp', 'gha-save-'));
      const cutoff = Date.now() - this.options.retainDays * DAY_MS;
      const count = await stageShard(
        this.shardStore!,
        join(stage, SHARD_NAME),
        (m) => Date.parse(m.createdAt) >= cutoff || this.touched.has(m.cacheKey),
        (d) => this.sound(d),
      );
      if (count === 0) {
        if (generation === this.generation) this.dirty = false;
        return;
      }
      const why = await this.upload(stage, ghaNewKey(this.scope, this.slot));
      if (why) this.warn(`${why}: results of this run stay local`);
      else if (generation === this.generation) this.dirty = false;
    } catch (err) {
      this.warn(`saving the shard failed (${errorText(err)}); results of this run stay local`);
    } finally {
      if (stage) await rm(stage, { recursive: true, force: true }).catch(() => {});
    }
  }

  /**
   * Rehashes every blob of each slot's newest entry that this ref can restore (every slot the
   * GitHub API lists for the scope, else this slot's and the `slots` option's). Entries are
   * immutable, so a corrupt one is replaced: a new entry of the same slot holding the rest of it
   * is saved, then the corrupt one is deleted through the API. That needs the cache service's
   * write access and a token with `actions: write`, and only an entry of the current ref can be
   * replaced (a save lands in the current ref's scope); otherwise the entry is reported and left
   * (restores drop corrupt blobs anyway: the results naming them miss). Throws when the cache
   * service cannot be read.
   */
  async verify(): Promise<GhaVerifyResult> {
    await this.open();
    if (!this.readable()) {
      throw new Error(
        this.available
          ? `ACTIONS_CACHE_MODE '${cacheMode(this.ctx.env)}' does not permit reads`
          : 'the Actions cache service is not available here (ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL or ACTIONS_CACHE_URL, which the runner gives JavaScript actions: use the action, or pass them on)',
      );
    }
    const listing = await this.remoteEntries();
    const result: GhaVerifyResult = { checked: 0, corrupt: [], removedResults: 0, entries: [] };
    if ('unavailable' in listing) {
      result.incomplete = `only ${this.unlistedShards()} were looked for: ${listing.unavailable}`;
    }
    for (const part of [...this.slotParts(listing)].sort()) {
      const check = await this.verifyEntry(part, listing);
      if (!check) continue;
      result.entries.push(check);
      result.checked += check.checked;
      result.corrupt.push(...check.corrupt);
      if (check.outcome === 'repaired' || check.outcome === 'replaced') {
        result.removedResults += check.brokenResults;
      }
    }
    return result;
  }

  /**
   * Deletes this scope's entries through the GitHub API (other caches of the repository are
   * never touched) until the scope holds at most `maxBytes`: superseded entries first, oldest
   * first (no restore returns them again), then the least recently used. Throws when the API
   * cannot list or refuses the first delete (it needs a token with `actions: write`); a later
   * failure ends it with `failed` set.
   */
  async prune(maxBytes: number): Promise<GhaPruneResult> {
    const listing = await this.remoteEntries();
    if ('unavailable' in listing) throw new Error(listing.unavailable);
    const { live, superseded } = ghaSuperseded(listing.entries);
    const by = (field: 'createdAt' | 'lastAccessedAt') => (a: GhaCacheEntry, b: GhaCacheEntry) =>
      (Date.parse(a[field]) || 0) - (Date.parse(b[field]) || 0) || a.id - b.id;
    const order = [...superseded.sort(by('createdAt')), ...live.sort(by('lastAccessedAt'))];
    const stale = new Set(superseded);
    const result: GhaPruneResult = {
      removedBlobs: 0,
      removedResults: 0,
      freedBytes: 0,
      bytes: listing.entries.reduce((n, e) => n + e.sizeBytes, 0),
      removedEntries: 0,
      removedSuperseded: 0,
      entriesLeft: listing.entries.length,
    };
    for (const e of order) {
      if (result.bytes <= maxBytes) break;
      try {
        await deleteGhaCache(e.id, this.ctx.env);
      } catch (err) {
        // The first refusal (no actions: write) stops it; what was deleted before is reported.
        if (result.removedEntries === 0) throw err;
        result.failed = `deleting ${e.key} failed: ${errorText(err)}`;
        break;
      }
      result.removedEntries++;
      result.entriesLeft--;
      if (stale.has(e)) result.removedSuperseded++;
      result.freedBytes += e.sizeBytes;
      result.bytes -= e.sizeBytes;
    }
    return result;
  }

  // -------------------------------------------------------------------------------------------

  /** `verify` for one slot: null when the slot has no entry this ref can restore. */
  private async verifyEntry(part: string, listing: GhaListing): Promise<GhaEntryCheck | null> {
    const work = await mkdtemp(join(this.dir, 'tmp', 'gha-verify-'));
    try {
      const copy = await LocalStore.open(join(work, 'shard'), { onWarning: () => {} });
      const restored = await this.restoreInto(this.slotPrefix(part), copy, {
        quiet: true,
      });
      if ('failed' in restored) {
        return {
          key: `${this.slotPrefix(part)}*`,
          ref: '',
          checked: 0,
          corrupt: [],
          brokenResults: 0,
          outcome: 'unreadable',
          detail: restored.failed,
        };
      }
      if (!('key' in restored)) return null;
      const entry =
        'entries' in listing ? listing.entries.find((e) => e.key === restored.key) : undefined;
      const check: GhaEntryCheck = {
        key: restored.key,
        ref: entry?.ref ?? '',
        checked: restored.checked,
        corrupt: restored.corrupt,
        brokenResults: 0,
        outcome: 'ok',
      };
      if (restored.corrupt.length === 0) return check;
      const bad = new Set(restored.corrupt);
      for (const file of await resultFiles(copy.dir)) {
        const m = await readManifest(file);
        if (m?.outputs.some((o) => bad.has(o.digest))) check.brokenResults++;
      }
      const why = this.cannotReplace(entry, listing);
      if (why) return { ...check, outcome: 'reported', detail: why };
      const stage = join(work, 'stage');
      const kept = await stageShard(copy, join(stage, SHARD_NAME), () => true);
      const key = newKeyUnder(this.slotPrefix(part));
      if (kept > 0) {
        const notSaved = await this.upload(stage, key);
        if (notSaved) return { ...check, outcome: 'reported', detail: notSaved };
      }
      const replaced = kept > 0 ? { replacedBy: key } : {};
      try {
        await deleteGhaCache(entry!.id, this.ctx.env);
      } catch (err) {
        return kept > 0
          ? { ...check, ...replaced, outcome: 'replaced', detail: errorText(err) }
          : { ...check, outcome: 'reported', detail: errorText(err) };
      }
      return { ...check, ...replaced, outcome: 'repaired' };
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** Why a corrupt entry cannot be replaced from here, or undefined when it can. */
  private cannotReplace(entry: GhaCacheEntry | undefined, listing: GhaListing): string | undefined {
    if ('unavailable' in listing) return `cannot delete it: ${listing.unavailable}`;
    if (!entry) return 'the GitHub API does not list it';
    const ref = ghaSaveScope(this.ctx.env);
    if (!ref) {
      return 'cannot tell which ref a save from here lands in (GITHUB_REF is not set, and the runtime token names no writable scope)';
    }
    if (entry.ref !== ref) {
      return `it belongs to ${entry.ref || 'another ref'}, and a save from here lands in ${ref}: verify on ${entry.ref || 'that ref'} to replace it`;
    }
    if (!modeWritable(cacheMode(this.ctx.env))) {
      return `ACTIONS_CACHE_MODE '${cacheMode(this.ctx.env)}' does not permit writes`;
    }
    return undefined;
  }

  /** Saves a staged shard as entry `key`; counts it. Undefined when saved, else why not. */
  private async upload(stage: string, key: string): Promise<string | undefined> {
    const outcome = await this.run(stage, (cache) => cache.saveCache([GHA_CACHE_PATH], key));
    const why = await this.notSaved(outcome, key, stage);
    if (why) return why;
    this.counters.savedEntries++;
    this.savedKeys.push(key);
    const size = outcome.log.debug.map((l) => /^File Size: (\d+)$/.exec(l)).find((m) => m !== null);
    if (outcome.ok && outcome.value !== -1 && size) {
      this.counters.uploadedBytes += Number(size[1]);
    }
    return undefined;
  }

  /**
   * The key parts of the slots this store knows: its own, the `slots` option's, and every slot
   * the GitHub API's `listing` names.
   */
  private slotParts(listing?: GhaListing): Set<string> {
    const parts = new Set([this.slot, ...this.options.slots].map(ghaKeyPart));
    if (listing && 'entries' in listing) {
      for (const e of listing.entries) parts.add(ghaKeySlotPart(e.key));
    }
    return parts;
  }

  /** What is looked at without the API's listing, in words. */
  private unlistedShards(): string {
    return `the shards of this slot${this.options.slots.length ? ' and of the slots option' : ''}`;
  }

  /** The key prefix of the slot whose key part is `part`. */
  private slotPrefix(part: string): string {
    return `${ghaScopePrefix(this.scope)}${part}-`;
  }

  private async shard(): Promise<LocalStore> {
    await this.open();
    return this.shardStore!;
  }

  private async doOpen(): Promise<void> {
    this.shardStore = await LocalStore.open(this.dir, { onWarning: (m) => this.warn(m) });
    this.available = await this.serviceAvailable();
    if (!this.available) return;
    const mode = cacheMode(this.ctx.env);
    if (!modeReadable(mode)) {
      this.warn(
        `ACTIONS_CACHE_MODE '${mode}' does not permit reads: starting from the local shard`,
      );
      return;
    }
    await this.restoreOwn();
  }

  /**
   * Restores this slot's own entry into the shard; why it failed (not a miss), else undefined.
   * `ownRestoreFailed` says whether the last attempt failed.
   */
  private async restoreOwn(opts: { quiet?: boolean } = {}): Promise<string | undefined> {
    const own = await this.restoreInto(ghaKeyPrefix(this.scope, this.slot), this.shardStore!, opts);
    if ('key' in own) for (const d of own.verified) this.verified.add(d);
    const failed = 'key' in own ? undefined : own.failed;
    this.ownRestoreFailed = failed !== undefined;
    return failed;
  }

  private async serviceAvailable(): Promise<boolean> {
    const env = this.ctx.env;
    const why = !env.ACTIONS_RUNTIME_TOKEN ? 'ACTIONS_RUNTIME_TOKEN is not set' : undefined;
    const outcome = await runActions(env, {}, async (cache) => cache.isFeatureAvailable());
    const reason = !outcome.ok
      ? `@actions/cache cannot be loaded (${errorText(outcome.error)})`
      : !outcome.value
        ? 'ACTIONS_CACHE_URL / ACTIONS_RESULTS_URL is not set'
        : why;
    if (reason) {
      this.warn(
        `the GitHub Actions cache service is not available (${reason}; the runner sets these for JavaScript and container actions only): going on without it`,
      );
      return false;
    }
    return true;
  }

  /** Runs one `@actions/cache` call with the staging directory as workspace and home. */
  private async run<T>(
    stage: string,
    fn: (cache: CacheModule) => Promise<T>,
  ): Promise<ActionsOutcome<T>> {
    const runnerTemp = join(stage, 'runner-temp');
    await mkdir(runnerTemp, { recursive: true });
    return runActions(
      this.ctx.env,
      { GITHUB_WORKSPACE: stage, HOME: stage, USERPROFILE: stage, RUNNER_TEMP: runnerTemp },
      fn,
    );
  }

  /** Undefined when a save went through (or the key already existed), else why it did not. */
  private async notSaved(
    outcome: ActionsOutcome<number>,
    key: string,
    stage: string,
  ): Promise<string | undefined> {
    // Over v1 (GHES, act) a save whose upload or commit fails after the reservation still
    // returns the reserved id: only its "Failed to save" says that nothing was saved.
    const failed =
      outcome.ok &&
      [...outcome.log.warnings, ...outcome.log.errors].some((l) => l.startsWith('Failed to save'));
    if (outcome.ok && outcome.value !== -1 && !failed) return undefined;
    const detail = outcome.ok ? failureDetail(outcome.log) : errorText(outcome.error);
    const all = outcome.ok
      ? [
          ...outcome.log.info,
          ...outcome.log.debug,
          ...outcome.log.warnings,
          ...outcome.log.errors,
        ].join('\n')
      : detail;
    if (/already exists/i.test(all)) return undefined;
    if (/rate limit|\b429\b|too many requests/i.test(all)) {
      return `the Actions cache rate-limited the upload (HTTP 429) (${detail})`;
    }
    if (/cache write denied/i.test(all)) {
      return `the Actions cache denied writes for this run (${detail})`;
    }
    if (outcome.ok && /Unable to reserve cache/.test(all)) {
      // A reservation failure without a cause: it is success if the key now exists.
      const look = await this.run(stage, (cache) =>
        cache.restoreCache([GHA_CACHE_PATH], key, [], { lookupOnly: true }),
      );
      if (look.ok && look.value === key) return undefined;
    }
    return `saving ${key} to the Actions cache failed: ${detail}`;
  }

  /**
   * Restores the newest entry under `prefix` (a slot's) into `target`: the entry's key and its
   * blobs checked and corrupt; `{}` when there is none; `{failed}` when it could not be read
   * (warned, unless `quiet`: then failures and corrupt blobs are the caller's to report).
   */
  private async restoreInto(
    prefix: string,
    target: LocalStore,
    { quiet = false } = {},
  ): Promise<
    { key: string; checked: number; corrupt: string[]; verified: string[] } | { failed?: string }
  > {
    const fail = (why: string, message: string): { failed: string } => {
      if (!quiet) this.warn(message);
      return { failed: why };
    };
    let stage: string | undefined;
    try {
      stage = await mkdtemp(join(this.dir, 'tmp', 'gha-restore-'));
      const outcome = await this.run(stage, (cache) =>
        cache.restoreCache([GHA_CACHE_PATH], prefix, [prefix]),
      );
      if (!outcome.ok) {
        const why = errorText(outcome.error);
        return fail(why, `restoring ${prefix}* failed (${why}): going on without it`);
      }
      const problems = [...outcome.log.warnings, ...outcome.log.errors];
      if (outcome.value === undefined) {
        if (problems.length === 0) return {};
        const why = failureDetail(outcome.log);
        return fail(
          why,
          `restoring ${prefix}* from the Actions cache failed: ${why}; going on without it`,
        );
      }
      const key = outcome.value;
      const found = await importShard(join(stage, SHARD_NAME), target);
      if (found.corrupt.length > 0 && !quiet) {
        this.warn(
          `${found.corrupt.length} corrupt blob(s) in Actions cache entry ${key} were dropped`,
        );
      }
      this.counters.restoredEntries++;
      this.restoredKeys.push(key);
      return { key, ...found };
    } catch (err) {
      const why = errorText(err);
      return fail(why, `restoring ${prefix}* failed (${why}): going on without it`);
    } finally {
      if (stage) await rm(stage, { recursive: true, force: true }).catch(() => {});
    }
  }

  /**
   * Looks for a result in other slots' shards, restoring each lazily, and again (on a miss) when
   * its last restore is `PEER_REFRESH_MS` old: the slot may have saved a newer entry since.
   */
  private async fromPeers(cacheKey: string): Promise<ResultManifest | null> {
    if (this.options.slots.length === 0) return null;
    for (const peer of this.peers.values()) {
      const m = await peer.getResult(cacheKey);
      if (m) return this.adopt(m, peer);
    }
    for (const slot of this.options.slots) {
      const part = ghaKeyPart(slot);
      const at = this.peerLoadedAt.get(part);
      if (at !== undefined && Date.now() - at >= (this.ctx.peerRefreshMs ?? PEER_REFRESH_MS)) {
        this.peers.delete(part);
        this.peerLoads.delete(part);
      } else if (this.peers.has(part)) continue; // looked in above
      // A restore in progress (another lookup's) is waited for; one done a moment ago that found
      // no entry is not made again.
      const peer = await this.peer(part);
      const m = await peer?.getResult(cacheKey);
      if (m) return this.adopt(m, peer!);
    }
    return null;
  }

  /** Whether the service may be read (it answered at `open`, and the cache mode allows it). */
  private readable(): boolean {
    return this.available && modeReadable(cacheMode(this.ctx.env));
  }

  /**
   * The shard of the slot whose key part is `part` (as `ghaKeyPart` writes it), restored from its
   * newest entry the first time it is asked for; null when there is none or it cannot be read.
   */
  private peer(part: string): Promise<LocalStore | null> {
    let load = this.peerLoads.get(part);
    if (!load) {
      load = this.loadPeer(part);
      this.peerLoads.set(part, load);
    }
    return load;
  }

  private async loadPeer(part: string): Promise<LocalStore | null> {
    this.peerLoadedAt.set(part, Date.now());
    if (!this.readable()) return null;
    // A fresh copy: what an earlier process restored may hold results the slot has dropped since.
    const dir = join(this.dir, 'peers', fsName(part));
    await rm(dir, { recursive: true, force: true }).catch(() => {}); // another process's, in use
    const peer = await LocalStore.open(dir, { onWarning: (m) => this.warn(m) });
    if (!('key' in (await this.restoreInto(this.slotPrefix(part), peer)))) return null;
    this.peers.set(part, peer);
    return peer;
  }

  /** Copies a result found in another slot's shard into this one (the unit lives here now). */
  private async adopt(manifest: ResultManifest, peer: LocalStore): Promise<ResultManifest | null> {
    const shard = this.shardStore!;
    try {
      const digests = manifest.outputs.map((o) => o.digest);
      const present = await shard.hasBlobs(digests);
      for (const d of digests) {
        if (present.has(d)) continue;
        const stream = await peer.openBlob(d);
        if (!stream) return null;
        this.written(await shard.putBlob(stream, d));
      }
      await shard.putResult(manifest);
      this.touched.add(manifest.cacheKey);
      this.markDirty();
      return await shard.getResult(manifest.cacheKey);
    } catch (err) {
      this.warn(
        `result ${manifest.cacheKey} from another slot is unusable (${errorText(err)}); a miss`,
      );
      return null;
    }
  }

  private async copyBlobFromPeers(digest: string, shard: LocalStore): Promise<void> {
    for (const peer of this.peers.values()) {
      const stream = await peer.openBlob(digest);
      if (!stream) continue;
      this.written(await shard.putBlob(stream, digest));
      return;
    }
  }

  /** A blob the shard wrote (hashed on the way in). */
  private written(info: BlobInfo): BlobInfo {
    this.verified.add(info.digest);
    return info;
  }

  /**
   * Whether a shard blob about to be uploaded holds its digest's bytes: read through the shard
   * (which checks them, and removes the file it read when they are wrong) unless this process
   * has hashed it already (blobs an earlier process left on this machine). A corrupt one is
   * then gone, so the results naming it are not uploaded again and again.
   */
  private async sound(digest: string): Promise<boolean> {
    if (this.verified.has(digest)) return true;
    const stream = await this.shardStore!.openBlob(digest);
    if (!stream) return false;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) void chunk;
    } catch (err) {
      if (!(err instanceof CorruptBlobError)) throw err;
      this.warn(
        `blob ${digest} in this machine's copy of the shard (${this.dir}) was corrupt: removed; the results naming it are not saved`,
      );
      return false;
    }
    this.verified.add(digest);
    return true;
  }

  private markDirty(): void {
    this.dirty = true;
    this.generation++;
  }

  private warn(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.counters.warnings++;
    this.ctx.onWarning(`gha store: ${message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Files

function fsName(value: string): string {
  const safe = value.replace(/[^A-Za-z0-9._-]/g, '_');
  return safe === value && safe !== '.' && safe !== '..' && safe.length <= 100
    ? safe
    : `${safe.slice(0, 40)}-${createHash('sha256').update(value).digest('hex').slice(0, 16)}`;
}

/** Regular files `<root>/<2 hex>/<name>` whose name matches and starts with the 2 hex. */
async function listLayout(root: string, name: RegExp): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const shard of await listDir(root)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const n of await listDir(join(root, shard))) {
      if (!name.test(n) || !n.startsWith(shard)) continue;
      const file = join(root, shard, n);
      const st = await lstat(file).catch(() => null);
      if (st?.isFile()) out.push([file, n]);
    }
  }
  return out;
}

/**
 * Moves a restored shard's blobs (only those whose bytes hash to their name) and results into
 * `target`, keeping files `target` already has. Anything else in the archive is ignored. Returns
 * the blobs hashed and the digests of the corrupt ones (not moved).
 */
async function importShard(
  src: string,
  target: LocalStore,
): Promise<{ checked: number; corrupt: string[]; verified: string[] }> {
  const corrupt: string[] = [];
  const verified: string[] = [];
  let checked = 0;
  for (const [file, hex] of await listLayout(join(src, 'blobs', 'sha256'), /^[0-9a-f]{64}$/)) {
    const digest = `sha256:${hex}`;
    const dest = target.blobPath(digest);
    if (await exists(dest)) continue;
    checked++;
    const { digest: actual } = await digestStream(createReadStream(file));
    if (actual !== digest) {
      corrupt.push(digest);
      continue;
    }
    await moveInto(file, dest);
    verified.push(digest);
  }
  for (const [file, hex] of await listLayout(
    join(src, 'results', 'sha256'),
    /^[0-9a-f]{64}\.json$/,
  )) {
    const dest = target.resultPath(`sha256:${hex.slice(0, 64)}`);
    if (await exists(dest)) continue;
    await moveInto(file, dest);
  }
  return { checked, corrupt, verified };
}

/**
 * Hard-links (or copies) into `dest` the results of `source` that `keep` accepts and whose blobs
 * it holds (and `sound` passes), with those blobs; returns the result count.
 */
async function stageShard(
  source: LocalStore,
  dest: string,
  keep: (m: ResultManifest) => boolean,
  sound: (digest: string) => Promise<boolean> = async () => true,
): Promise<number> {
  const blobs = new Set<string>();
  let count = 0;
  for (const file of await resultFiles(source.dir)) {
    const manifest = await readManifest(file);
    if (!manifest || !keep(manifest)) continue;
    const digests = manifest.outputs.map((o) => o.digest);
    if ((await source.hasBlobs(digests)).size !== new Set(digests).size) continue;
    // A blob `sound` refuses is gone from `source`: the next result naming it fails the check above.
    let usable = true;
    for (const d of new Set(digests)) if (!(await sound(d))) usable = false;
    if (!usable) continue;
    const hex = manifest.cacheKey.slice('sha256:'.length);
    await linkOrCopy(file, join(dest, 'results', 'sha256', hex.slice(0, 2), `${hex}.json`));
    for (const d of digests) {
      if (blobs.has(d)) continue;
      blobs.add(d);
      const bhex = d.slice('sha256:'.length);
      await linkOrCopy(source.blobPath(d), join(dest, 'blobs', 'sha256', bhex.slice(0, 2), bhex));
    }
    count++;
  }
  return count;
}

async function resultFiles(dir: string): Promise<string[]> {
  const files = await listLayout(join(dir, 'results', 'sha256'), /^[0-9a-f]{64}\.json$/);
  return files.map(([f]) => f);
}

async function readManifest(file: string): Promise<ResultManifest | null> {
  try {
    const value: unknown = JSON.parse(await readFile(file, 'utf8'));
    return manifestProblems(value).length === 0 ? (value as ResultManifest) : null;
  } catch {
    return null;
  }
}

async function moveInto(src: string, dest: string): Promise<void> {
  await mkdir(join(dest, '..'), { recursive: true });
  try {
    await rename(src, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(src, dest);
  }
}

async function linkOrCopy(src: string, dest: string): Promise<void> {
  await mkdir(join(dest, '..'), { recursive: true });
  try {
    await link(src, dest);
  } catch {
    await copyFile(src, dest);
  }
}

// ---------------------------------------------------------------------------------------------
// Factory

/**
 * Options (all optional): `dir` (shard directory, relative to the config root; default
 * `.dist-build/gha/<slot>`), `scope` (key namespace, default `default`), `slots` (other worker
 * ids whose shards may be read on a miss: an array or a comma-separated string), `retain-days`
 * (default 7; `retainDays` is accepted too). Unknown options and wrong values are a
 * `StoreOptionsError` naming the option, so that the config error points at its line.
 */
export function createGhaStore(options: Record<string, unknown>, ctx: StoreContext): GhaStore {
  if (typeof ctx.slot !== 'string' || ctx.slot === '') {
    throw new TypeError('the worker slot is required');
  }
  const known = ['dir', 'scope', 'slots', 'retain-days', 'retainDays'];
  for (const key of Object.keys(options)) {
    if (!known.includes(key))
      throw new StoreOptionsError(
        `unknown option "${key}"; expected one of: dir, scope, slots, retain-days`,
        key,
      );
  }
  // retain-days, spelled like every other option; retainDays, as earlier releases documented it.
  const { dir, scope = 'default', slots = [] } = options;
  if (options['retain-days'] !== undefined && options.retainDays !== undefined)
    throw new StoreOptionsError('give retain-days or retainDays, not both', 'retainDays');
  const retainDays = options['retain-days'] ?? options.retainDays ?? 7;
  if (dir !== undefined && (typeof dir !== 'string' || dir === '')) {
    throw new StoreOptionsError('dir: must be a non-empty string', 'dir');
  }
  if (typeof scope !== 'string' || scope === '') {
    throw new StoreOptionsError('scope: must be a non-empty string', 'scope');
  }
  const slotList =
    typeof slots === 'string' ? slots.split(',').map((s) => s.trim()) : (slots as unknown[]);
  if (!Array.isArray(slotList) || slotList.some((s) => typeof s !== 'string')) {
    throw new StoreOptionsError('slots: must be a list of worker ids', 'slots');
  }
  if (typeof retainDays !== 'number' || !(retainDays >= 0)) {
    const option = options['retain-days'] !== undefined ? 'retain-days' : 'retainDays';
    throw new StoreOptionsError(`${option}: must be a non-negative number`, option);
  }
  const others = [...new Set(slotList as string[])].filter((s) => s !== '' && s !== ctx.slot);
  return new GhaStore(
    {
      dir: dir
        ? resolve(ctx.root, dir as string)
        : join(resolve(ctx.root), '.dist-build', 'gha', fsName(ctx.slot)),
      scope,
      slots: others,
      retainDays,
    },
    ctx,
  );
}
