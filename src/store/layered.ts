/**
 * `LayeredStore`: one `Store` over an ordered list of stores, fastest first (a local directory,
 * then the GitHub Actions cache, then a registry).
 *
 * - Reads (`getResult`, `openBlob`) try the layers in order. A result found in a slower layer is
 *   copied into every faster layer before it is returned: its blobs first (streamed from the
 *   slower layer and verified against their digests on the way in), then the manifest. A result
 *   whose blobs cannot be read from its layer (gone, corrupt) is a miss there and the read goes
 *   on to the next layer; a copy that fails for another reason is a warning and the result is
 *   still returned (later blob reads fall through too).
 * - Writes go to every layer. The first layer must succeed (its error is the caller's error); a
 *   failure in another layer is a warning (once per layer; later ones are counted). With
 *   `writeBehind` (workers), a write returns once the first layer has it: the slower layers get
 *   it in the background (blobs before the results naming them, a few at a time per layer), and
 *   `flush` waits for them. A job then does not wait for its uploads, nor for a remote store that
 *   hangs. What the first layer evicts before its turn (a full disk) is skipped, not a failure.
 * - `peekResults` (the master's cache query, which every worker answers for every unit) reads
 *   the same way but copies nothing: a result counts where its layer holds it and all its blobs.
 *   `pullBlob` copies one blob into the faster layers when it is about to be used (a dependency
 *   restored, an artifact exported), so a run with nothing to build fetches only what it uses.
 * - `hasBlobs` / `hasResults` are the union over the layers; `flush` flushes every layer.
 * - A read error in a layer other than the first is a warning and a miss there: a cache that
 *   cannot be reached never fails a build.
 *
 * Counters of hits and misses per layer (`stats()`) are written as JSON to `statsFile` on
 * `flush`, for `dist-build cache stats`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { leftByDead } from './fsutil.js';
import type { Readable } from 'node:stream';
import { mapLimit } from './limit.js';
import type {
  BlobInfo,
  BlobSource,
  PeekOptions,
  ResultListing,
  ResultManifest,
  Store,
} from './types.js';
import { CorruptBlobError } from './types.js';

export interface LayeredStoreOptions {
  onWarning?: (message: string) => void;
  /** Where `flush` writes the counters (`<cache dir>/stats/<slot>.json`). */
  statsFile?: string;
  /** Written into the stats file (the worker id). */
  slot?: string;
  /** Written into the stats file: the run the worker serves, when it serves one run only. */
  run?: string;
  /** Writes to the layers after the first go on in the background (see the module comment). */
  writeBehind?: boolean;
  /**
   * With `writeBehind`: a directory on the first layer's disk where each result waiting for the
   * slower layers has a file (`<pid>-<key hex>`), removed once they have it. What a process
   * killed meanwhile left there goes to them when a store on this directory warms up (`warm`).
   */
  pendingDir?: string;
}

/** Writes in flight per slower layer, with `writeBehind`. */
const BEHIND_PER_LAYER = 4;

export interface HitMiss {
  hits: number;
  misses: number;
}

export interface LayerCounters {
  kind: string;
  location: string;
  /** `getResult` lookups answered (hit) or not (miss) by this layer. */
  results: HitMiss;
  /** `openBlob` lookups answered (hit) or not (miss) by this layer. */
  blobs: HitMiss;
  /** Results copied into this layer from a slower one. */
  copiedIn: number;
  /** Failed reads and writes (warnings). */
  errors: number;
}

/** What `stats()` returns and `flush` writes. */
export interface LayeredStats {
  slot?: string;
  /** The run these counters are of (`dist-build run`'s workers; a pool worker has none). */
  run?: string;
  /** ISO 8601: when the counting started (the store was made: the worker started). */
  since?: string;
  /** ISO 8601. */
  updatedAt: string;
  layers: LayerCounters[];
}

/**
 * A store whose `adoptBlobFile` only reads the file and leaves it where it is, wherever it is (the
 * registry store uploads it): it can be handed a file packed for another store, with its digest.
 */
export interface ReadOnlyAdopter {
  readonly adoptReadsOnly?: boolean;
}

function adoptReadsOnly(store: Store): boolean {
  return (store as ReadOnlyAdopter).adoptReadsOnly === true && store.adoptBlobFile !== undefined;
}

/** A result's blobs could not be read from the layer that has the result: a miss there. */
class UnreadableResultError extends Error {}

export class LayeredStore implements Store {
  readonly kind: string;
  readonly location: string;
  readonly layers: readonly Store[];
  readonly listResults?: (prefix?: string) => AsyncIterable<ResultListing>;
  readonly tempDir?: () => Promise<string>;
  readonly adoptBlobFile?: (file: string, digest: string) => Promise<BlobInfo>;
  readonly makeRoom?: () => Promise<number>;
  private readonly counters: LayerCounters[];
  private readonly onWarning: (message: string) => void;
  private readonly warned = new Set<string>();
  /** Per layer: until when it is left alone after it let the cache query's deadline pass. */
  private readonly resting: number[];
  /** Per layer: whether its warm-up (`warm`) is still going on. */
  private readonly warming: boolean[];
  private readonly since: string;
  private statsWrite: Promise<void> = Promise.resolve();
  /** `writeBehind`: every background write not yet done. */
  private readonly behind = new Set<Promise<void>>();
  /** `writeBehind`, per layer: blobs queued or being written there, by digest. */
  private readonly blobsBehind: Map<string, Promise<void>>[];
  /** `writeBehind`, per layer: writes running, and those waiting for a turn. */
  private readonly running: number[];
  private readonly waiting: (() => void)[][];

  constructor(
    layers: readonly Store[],
    private readonly opts: LayeredStoreOptions = {},
  ) {
    if (layers.length === 0) throw new TypeError('a layered store needs at least one store');
    this.layers = [...layers];
    this.kind = [...new Set(layers.map((l) => l.kind))].join('+');
    this.location = layers.map((l) => l.location).join(', ');
    this.onWarning = opts.onWarning ?? (() => {});
    this.resting = layers.map(() => 0);
    this.warming = layers.map(() => false);
    this.since = new Date().toISOString();
    this.blobsBehind = layers.map(() => new Map());
    this.running = layers.map(() => 0);
    this.waiting = layers.map(() => []);
    this.counters = layers.map((l) => ({
      kind: l.kind,
      location: l.location,
      results: { hits: 0, misses: 0 },
      blobs: { hits: 0, misses: 0 },
      copiedIn: 0,
      errors: 0,
    }));
    if (layers.some((l) => l.listResults)) this.listResults = (prefix) => this.listAll(prefix);
    // Single-pass saves: a file packed in the first layer's temp dir goes to the slower layers
    // from that file (with its digest to those whose adopting only reads it, so they need not
    // hash it again), then is renamed into the first layer.
    const first = this.layers[0]!;
    if (first.tempDir && first.adoptBlobFile) {
      this.tempDir = () => first.tempDir!();
      this.adoptBlobFile = async (file, digest) => {
        if (opts.writeBehind) {
          const info = await first.adoptBlobFile!(file, digest);
          for (let i = 1; i < this.layers.length; i++) this.blobBehind(i, digest);
          return info;
        }
        for (let i = 1; i < this.layers.length; i++) {
          const layer = this.layers[i]!;
          await this.tryWrite(i, `blob ${digest}`, () =>
            adoptReadsOnly(layer) ? layer.adoptBlobFile!(file, digest) : layer.putBlobFile(file),
          );
        }
        return first.adoptBlobFile!(file, digest);
      };
    }
    // Saves pack into the first layer and write there first: its disk is the one that fills.
    if (first.makeRoom) this.makeRoom = () => first.makeRoom!();
  }

  async hasBlobs(digests: readonly string[]): Promise<Set<string>> {
    return this.union(digests, (store, keys) => store.hasBlobs(keys), 'blobs');
  }

  async storedEverywhere(digests: readonly string[]): Promise<Set<string>> {
    let held = new Set(digests);
    // With `writeBehind` a save asks the first layer only: the slower ones are written in the
    // background, where each skips what it holds (a result's write brings over what it lacks),
    // and asking them first would make the save wait for them (a gha shard still restoring).
    const layers = this.opts.writeBehind ? 1 : this.layers.length;
    for (let i = 0; i < layers && held.size > 0; i++) {
      const have = await this.tryRead(i, 'blobs', () => this.layers[i]!.hasBlobs([...held]));
      held = new Set([...held].filter((d) => have?.has(d)));
    }
    return held;
  }

  async hasResults(cacheKeys: readonly string[]): Promise<Set<string>> {
    return this.union(cacheKeys, (store, keys) => store.hasResults(keys), 'results');
  }

  async putBlob(
    data: Readable | AsyncIterable<Buffer>,
    expectedDigest?: string,
  ): Promise<BlobInfo> {
    const info = await this.layers[0]!.putBlob(data, expectedDigest);
    for (let i = 1; i < this.layers.length; i++) {
      if (this.opts.writeBehind) this.blobBehind(i, info.digest);
      else await this.tryWrite(i, `blob ${info.digest}`, () => this.copyBlob(info.digest, 0, i));
    }
    return info;
  }

  async putBlobFile(file: string): Promise<BlobInfo> {
    const info = await this.layers[0]!.putBlobFile(file);
    if (this.opts.writeBehind) {
      for (let i = 1; i < this.layers.length; i++) this.blobBehind(i, info.digest);
      return info;
    }
    for (let i = 1; i < this.layers.length; i++) {
      await this.tryWrite(i, `blob ${info.digest}`, () => this.layers[i]!.putBlobFile(file));
    }
    return info;
  }

  async openBlob(digest: string): Promise<Readable | null> {
    for (let i = 0; i < this.layers.length; i++) {
      const stream = await this.tryRead(i, `blob ${digest}`, () =>
        this.layers[i]!.openBlob(digest),
      );
      if (stream) {
        this.counters[i]!.blobs.hits++;
        return stream;
      }
      this.counters[i]!.blobs.misses++;
    }
    return null;
  }

  /** The first layer's chunks when it holds the blob and can (see `Store.openBlobChunks`). */
  async openBlobChunks(digest: string): Promise<BlobSource | null> {
    const first = this.layers[0]!;
    if (first.openBlobChunks) {
      const chunks = await first.openBlobChunks(digest);
      if (chunks) {
        this.counters[0]!.blobs.hits++;
        return chunks;
      }
    }
    return this.openBlob(digest);
  }

  async getResult(cacheKey: string): Promise<ResultManifest | null> {
    for (let i = 0; i < this.layers.length; i++) {
      const manifest = await this.tryRead(i, `result ${cacheKey}`, () =>
        this.layers[i]!.getResult(cacheKey),
      );
      if (!manifest) {
        this.counters[i]!.results.misses++;
        continue;
      }
      if (i > 0) {
        try {
          await this.copyUp(manifest, i);
        } catch (err) {
          if (!(err instanceof UnreadableResultError)) throw err;
          this.warn(i, `result ${cacheKey}`, err.message);
          this.counters[i]!.results.misses++;
          continue;
        }
      }
      this.counters[i]!.results.hits++;
      return manifest;
    }
    return null;
  }

  /**
   * The results of `cacheKeys`, each as the first layer that has it holds it, copying nothing
   * (see `Store.peekResults`): one existence query per layer for the keys still missing, then the
   * manifests found. A result whose layer does not hold all its blobs is a miss there. Counted as
   * `getResult` is: a hit in the layer that answers, a miss in each layer before.
   */
  async peekResults(
    cacheKeys: readonly string[],
    { slowLayersMs, unsettled }: PeekOptions = {},
  ): Promise<Map<string, ResultManifest>> {
    const found = new Map<string, ResultManifest>();
    let rest = [...new Set(cacheKeys)];
    // The layers after the first share one deadline: past it, what is found so far is the answer
    // (a slow store is a miss there, not a lost answer). Their requests are left to end. A layer
    // with one request unanswered for most of the budget hangs: it is left alone for a while;
    // not one still warming up (an Actions cache shard being restored), which is only slow once.
    const deadline = slowLayersMs === undefined ? undefined : Date.now() + slowLayersMs;
    const late = () => deadline !== undefined && Date.now() >= deadline;
    /** Keys a layer was not asked about in time: unsettled, unless a later layer has them. */
    const cut = new Set<string>();
    const read = <T>(i: number, what: string, keys: readonly string[], fn: () => Promise<T>) =>
      i === 0 || deadline === undefined
        ? this.tryRead(i, what, fn)
        : this.tryRead(i, what, async () => {
            const started = Date.now();
            try {
              return await beforeDeadline(fn(), deadline, slowLayersMs!);
            } catch (err) {
              if (!(err instanceof DeadlineError)) throw err;
              for (const k of keys) cut.add(k);
              if (this.warming[i]) return null;
              if (Date.now() - started >= slowLayersMs! / 2) {
                this.resting[i] = Date.now() + REST_MS;
                throw new DeadlineError(`${err.message}; left alone for ${REST_MS / 1000} s`);
              }
              throw err;
            }
          });
    for (let i = 0; i < this.layers.length && rest.length > 0; i++) {
      if (i > 0 && late()) {
        if (!this.isResting(i, true)) for (const k of rest) cut.add(k);
        continue;
      }
      const layer = this.layers[i]!;
      const have = await read(i, 'results', rest, () => layer.hasResults(rest));
      const candidates = rest.filter((k) => have?.has(k));
      this.counters[i]!.results.misses += rest.length - candidates.length;
      await mapLimit(candidates, PEEK_CONCURRENCY, async (key) => {
        if (i > 0 && late()) {
          cut.add(key);
          this.counters[i]!.results.misses++;
          return;
        }
        let manifest = await read(i, `result ${key}`, [key], () => layer.getResult(key));
        if (manifest && i > 0) {
          const digests = blobsOf(manifest);
          const held = late()
            ? (cut.add(key), null)
            : await read(i, `blobs of result ${key}`, [key], () => layer.hasBlobs(digests));
          if (!held || digests.some((d) => !held.has(d))) manifest = null;
        }
        if (manifest) {
          this.counters[i]!.results.hits++;
          found.set(key, manifest);
        } else {
          this.counters[i]!.results.misses++;
        }
      });
      rest = rest.filter((k) => !found.has(k));
    }
    if (unsettled) for (const k of cut) if (!found.has(k)) unsettled.add(k);
    return found;
  }

  /**
   * Starts every layer's warm-up (see `Store.warm`); a layer warming up is not left alone for
   * missing the cache query's deadline. Resolves when all are done.
   */
  async warm(): Promise<void> {
    this.resumePending();
    await Promise.all(
      this.layers.map(async (layer, i) => {
        if (!layer.warm) return;
        this.warming[i] = true;
        try {
          await layer.warm();
        } catch {
          // warm never throws; a store that does anyway is only not warmed up
        } finally {
          this.warming[i] = false;
        }
      }),
    );
  }

  /**
   * Copies blob `digest` into the faster layers from the first layer that has it (verified on the
   * way in); whether the first layer holds it now. A copy that fails is a warning.
   */
  async pullBlob(digest: string): Promise<boolean> {
    for (let i = 0; i < this.layers.length; i++) {
      const held = await this.tryRead(i, `blob ${digest}`, () =>
        this.layers[i]!.hasBlobs([digest]),
      );
      if (!held?.has(digest)) continue;
      if (i === 0) return true;
      for (let to = 0; to < i; to++) {
        await this.tryWrite(to, `copy of blob ${digest}`, () => this.copyBlob(digest, i, to));
      }
      return (await this.layers[0]!.hasBlobs([digest])).has(digest);
    }
    return false;
  }

  async pullResult(cacheKey: string): Promise<void> {
    if (this.layers.length === 1) return;
    const first = this.layers[0]!;
    try {
      if ((await first.hasResults([cacheKey])).has(cacheKey)) return;
      for (let i = 1; i < this.layers.length; i++) {
        const manifest = await this.tryRead(i, `result ${cacheKey}`, () =>
          this.layers[i]!.getResult(cacheKey),
        );
        if (!manifest) continue;
        const digests = blobsOf(manifest);
        const held = await first.hasBlobs(digests);
        if (digests.every((d) => held.has(d))) {
          await first.putResult(manifest);
          this.counters[0]!.copiedIn++;
        }
        return;
      }
    } catch (err) {
      this.warn(0, `copy of result ${cacheKey}`, (err as Error).message);
    }
  }

  /**
   * Writes the result to every layer, each first given the blobs it names that it lacks (copied
   * from a layer that holds them: one written some other way than `saveOutputs`). The first
   * layer's refusal is the error; a slower layer's is a warning.
   */
  async putResult(manifest: ResultManifest): Promise<void> {
    const digests = blobsOf(manifest);
    // A blob the first layer cannot get: its putResult says which, as the error.
    await this.fillBlobs(0, digests).catch((err: unknown) =>
      this.warn(0, `copy of the blobs of result ${manifest.cacheKey}`, (err as Error).message),
    );
    await this.layers[0]!.putResult(manifest);
    if (this.opts.writeBehind && this.layers.length > 1) {
      const marker = await this.markPending(manifest.cacheKey);
      const done = this.resultBehind(manifest);
      if (marker) void done.then(() => rm(marker, { force: true }).catch(() => undefined));
      return;
    }
    for (let i = 1; i < this.layers.length; i++) {
      await this.tryWrite(i, `result ${manifest.cacheKey}`, async () => {
        await this.fillBlobs(i, digests);
        await this.layers[i]!.putResult(manifest);
      });
    }
  }

  /**
   * `writeBehind`: result `manifest`, in the first layer, goes to every slower layer in the
   * background, each after its blobs' writes there (whatever became of them: `fillBlobs` copies
   * what is missing). Resolves when every layer is done with it.
   */
  private resultBehind(manifest: ResultManifest): Promise<unknown> {
    const digests = blobsOf(manifest);
    const first = this.layers[0]!;
    const writes: Promise<void>[] = [];
    for (let i = 1; i < this.layers.length; i++) {
      const blobs = digests.map((d) => this.blobsBehind[i]!.get(d));
      const write = async () => {
        // Evicted from the first layer meanwhile (see blobBehind): its blobs may be gone.
        if (!(await first.hasResults([manifest.cacheKey])).has(manifest.cacheKey)) return;
        await this.fillBlobs(i, digests);
        await this.layers[i]!.putResult(manifest);
      };
      writes.push(this.later(i, `result ${manifest.cacheKey}`, write, blobs));
    }
    return Promise.all(writes);
  }

  /** The file saying result `cacheKey` waits for the slower layers (see `pendingDir`), if any. */
  private async markPending(cacheKey: string): Promise<string | undefined> {
    const dir = this.opts.pendingDir;
    if (!dir) return undefined;
    const file = join(dir, `${process.pid}-${cacheKey.replace(/^sha256:/, '')}`);
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(file, '');
      return file;
    } catch {
      return undefined; // only a process killed meanwhile would need it
    }
  }

  /**
   * The results a process killed with writes behind left for the slower layers (`pendingDir`):
   * sent to them now, from the first layer (one it no longer holds is dropped); `flush` waits.
   */
  private resumePending(): void {
    const dir = this.opts.pendingDir;
    if (!dir || !this.opts.writeBehind || this.layers.length < 2) return;
    for (const { name } of leftByDead(dir, (n) => Number(/^(\d+)-[0-9a-f]{64}$/.exec(n)?.[1]))) {
      const cacheKey = `sha256:${name.slice(name.indexOf('-') + 1)}`;
      const resumed: Promise<void> = (async () => {
        const manifest = await this.layers[0]!.getResult(cacheKey).catch(() => null);
        if (manifest) await this.resultBehind(manifest);
        await rm(join(dir, name), { force: true });
      })()
        .catch(() => undefined)
        .finally(() => this.behind.delete(resumed));
      this.behind.add(resumed);
    }
  }

  /** Flushes every layer, then writes the counters to `statsFile`. The first layer's error throws. */
  async flush(): Promise<void> {
    while (this.behind.size > 0) await Promise.all(this.behind);
    let firstError: unknown;
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i]!;
      if (!layer.flush) continue;
      try {
        await layer.flush();
      } catch (err) {
        if (i === 0) firstError = err;
        else this.warn(i, 'flush', (err as Error).message, false);
      }
    }
    await this.writeStats();
    if (firstError !== undefined) throw firstError;
  }

  /** Writes the counters to `statsFile`; writes are queued, one at a time. Never throws. */
  writeStats(): Promise<void> {
    const file = this.opts.statsFile;
    if (!file) return Promise.resolve();
    this.statsWrite = this.statsWrite.then(() =>
      writeJsonAtomic(file, this.stats()).catch((err: unknown) =>
        this.onWarning(`cannot write cache stats to ${file}: ${(err as Error).message}`),
      ),
    );
    return this.statsWrite;
  }

  /** Hit and miss counters per layer since the store was made. */
  stats(): LayeredStats {
    return {
      ...(this.opts.slot !== undefined ? { slot: this.opts.slot } : {}),
      ...(this.opts.run !== undefined ? { run: this.opts.run } : {}),
      since: this.since,
      updatedAt: new Date().toISOString(),
      layers: this.counters.map((c) => ({
        ...c,
        results: { ...c.results },
        blobs: { ...c.blobs },
      })),
    };
  }

  /** Copies a result found in layer `from`, with its blobs, into every faster layer. */
  private async copyUp(manifest: ResultManifest, from: number): Promise<void> {
    const digests = blobsOf(manifest);
    for (let to = 0; to < from; to++) {
      const target = this.layers[to]!;
      try {
        const present = await target.hasBlobs(digests);
        // Two at a time: each blob is hashed on its own thread as it arrives.
        const missing = digests.filter((d) => !present.has(d));
        await mapLimit(missing, 2, (d) => this.copyBlob(d, from, to));
        await target.putResult(manifest);
        this.counters[to]!.copiedIn++;
      } catch (err) {
        if (err instanceof UnreadableResultError) throw err;
        if (err instanceof CorruptBlobError && err.digest && digests.includes(err.digest)) {
          throw new UnreadableResultError(
            `names blob ${err.digest}, which is corrupt in ${this.layers[from]!.location}; a miss there`,
          );
        }
        this.warnFailed(to, `copy of result ${manifest.cacheKey}`, err);
      }
    }
  }

  /** Copies into layer `to` each of `digests` it lacks, from the first other layer holding it. */
  private async fillBlobs(to: number, digests: string[]): Promise<void> {
    if (digests.length === 0 || this.layers.length === 1) return;
    const held = await this.layers[to]!.hasBlobs(digests);
    let missing = digests.filter((d) => !held.has(d));
    for (let from = 0; from < this.layers.length && missing.length > 0; from++) {
      if (from === to) continue;
      const there = await this.tryRead(from, 'blobs', () => this.layers[from]!.hasBlobs(missing));
      if (!there) continue;
      for (const d of missing) if (there.has(d)) await this.copyBlob(d, from, to);
      missing = missing.filter((d) => !there.has(d));
    }
  }

  /**
   * Streams blob `digest` from layer `from` into layer `to` (verified by `putBlob`). A read of the
   * source that fails on the way throws a `LayerReadError`, so the failure is layer `from`'s.
   */
  private async copyBlob(digest: string, from: number, to: number): Promise<void> {
    const target = this.layers[to]!;
    if ((await target.hasBlobs([digest])).has(digest)) return;
    const source = await this.layers[from]!.openBlob(digest);
    if (!source) {
      throw new UnreadableResultError(
        `names blob ${digest}, which is gone from ${this.layers[from]!.location}; a miss there`,
      );
    }
    let readError: unknown;
    source.once('error', (err) => (readError = err));
    try {
      await target.putBlob(source, digest);
    } catch (err) {
      if (readError !== undefined && err === readError && !(err instanceof CorruptBlobError)) {
        throw new LayerReadError(from, err as Error);
      }
      // The bytes came from the other layer: say so, or the warning blames the one written to.
      if (err instanceof CorruptBlobError) {
        const origin = this.layers[from]!;
        throw new CorruptBlobError(
          err.digest,
          err.actual,
          `${err.message}, as read from ${origin.kind} (${origin.location})`,
        );
      }
      throw err;
    } finally {
      source.destroy();
    }
  }

  private async union(
    keys: readonly string[],
    ask: (store: Store, keys: string[]) => Promise<Set<string>>,
    what: string,
  ): Promise<Set<string>> {
    const found = new Set<string>();
    let rest = [...new Set(keys)];
    for (let i = 0; i < this.layers.length && rest.length > 0; i++) {
      const have = await this.tryRead(i, what, () => ask(this.layers[i]!, rest));
      if (!have) continue;
      for (const k of have) found.add(k);
      rest = rest.filter((k) => !have.has(k));
    }
    return found;
  }

  private async *listAll(prefix?: string): AsyncIterable<ResultListing> {
    const seen = new Set<string>();
    for (let i = 0; i < this.layers.length; i++) {
      const list = this.layers[i]!.listResults;
      if (!list) continue;
      for await (const r of list.call(this.layers[i]!, prefix)) {
        if (seen.has(r.cacheKey)) continue;
        seen.add(r.cacheKey);
        yield r;
      }
    }
  }

  /** A read from layer `i`: an error there is a warning and a miss, except in the first layer. */
  private async tryRead<T>(i: number, what: string, read: () => Promise<T>): Promise<T | null> {
    if (this.isResting(i)) return null;
    try {
      return await read();
    } catch (err) {
      if (i === 0) throw err;
      this.warn(i, `read of ${what}`, (err as Error).message);
      return null;
    }
  }

  /** A write to layer `i` > 0: an error is a warning. */
  /** `writeBehind`: blob `digest`, now in the first layer, goes to layer `i` in the background. */
  private blobBehind(i: number, digest: string): void {
    const queued = this.blobsBehind[i]!;
    if (queued.has(digest)) return;
    const layer = this.layers[i]!;
    const first = this.layers[0]!;
    const done = this.later(i, `blob ${digest}`, async () => {
      if (!first.blobPath) return this.copyBlob(digest, 0, i);
      // From the first layer's file, as a save from its temp file would (a digest known).
      const file = first.blobPath(digest);
      try {
        return await (adoptReadsOnly(layer)
          ? layer.adoptBlobFile!(file, digest)
          : layer.putBlobFile(file));
      } catch (err) {
        // Evicted from the first layer while queued (a full disk, a prune): nothing to upload,
        // and no failure of this layer (its one warning would hide a real one). The results
        // naming it went with it, and their writes are skipped too.
        if (
          (err as NodeJS.ErrnoException).code === 'ENOENT' &&
          !(await first.hasBlobs([digest])).has(digest)
        )
          return;
        throw err;
      }
    });
    queued.set(digest, done);
    void done.then(() => queued.delete(digest));
  }

  /**
   * `writeBehind`: runs `write` to layer `i` in the background once `after` have settled, at most
   * `BEHIND_PER_LAYER` at a time there; its failure is a warning, as `tryWrite` makes it.
   */
  private later(
    i: number,
    what: string,
    write: () => Promise<unknown>,
    after: (Promise<void> | undefined)[] = [],
  ): Promise<void> {
    const done = Promise.all(after)
      .then(async () => {
        // A write that ends hands its turn to the next one waiting.
        if (this.running[i]! < BEHIND_PER_LAYER) this.running[i]!++;
        else await new Promise<void>((r) => this.waiting[i]!.push(r));
        try {
          await this.tryWrite(i, what, write);
        } finally {
          const next = this.waiting[i]!.shift();
          if (next) next();
          else this.running[i]!--;
        }
      })
      .finally(() => this.behind.delete(done));
    this.behind.add(done);
    return done;
  }

  private async tryWrite(i: number, what: string, write: () => Promise<unknown>): Promise<void> {
    if (this.isResting(i)) return;
    try {
      await write();
    } catch (err) {
      this.warnFailed(i, what, err, 'write of ');
    }
  }

  /**
   * Warns about a failed write to layer `i` (`${verb}${what}` failed), or about the read of the
   * layer it was copying from when that is what failed.
   */
  private warnFailed(i: number, what: string, err: unknown, verb = ''): void {
    if (err instanceof LayerReadError) this.warn(err.layer, `read for ${what}`, err.message);
    else this.warn(i, `${verb}${what}`, (err as Error).message);
  }

  /** Whether layer `i` is left alone now (counted as an error, reported once). */
  private isResting(i: number, quiet = false): boolean {
    if (i === 0 || Date.now() >= this.resting[i]!) return false;
    if (quiet) return true;
    this.warn(
      i,
      'use',
      `it did not answer the cache query in time; left alone for ${REST_MS / 1000} s`,
    );
    return true;
  }

  /** Counts an error of layer `i`; warns about the first one of each layer (or every one). */
  private warn(i: number, what: string, message: string, once = true): void {
    this.counters[i]!.errors++;
    const layer = this.layers[i]!;
    if (once && this.warned.has(`${i}`)) return;
    this.warned.add(`${i}`);
    this.onWarning(
      `cache store ${layer.kind} (${layer.location}): ${what} failed: ${message}` +
        (once ? '; further failures of this store are counted, not reported' : ''),
    );
  }
}

/** The blobs a result names, each once. */
function blobsOf(manifest: ResultManifest): string[] {
  return [...new Set(manifest.outputs.map((o) => o.digest))];
}

/** How long a layer that let the cache query's deadline pass is left alone. */
const REST_MS = 60_000;
/** Results a cache query reads from one layer at a time. */
const PEEK_CONCURRENCY = 8;

class DeadlineError extends Error {}

/** A read of layer `layer` that failed while its blob was being copied into another layer. */
class LayerReadError extends Error {
  constructor(
    readonly layer: number,
    cause: Error,
  ) {
    super(cause.message, { cause });
  }
}

/** `work`, or a `DeadlineError` once `deadline` (ms since the epoch) has passed. */
function beforeDeadline<T>(work: Promise<T>, deadline: number, budgetMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DeadlineError(`no answer within the cache query's ${budgetMs / 1000} s`)),
      Math.max(0, deadline - Date.now()),
    );
  });
  work.catch(() => {}); // answered after the deadline: nobody waits for it
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, file);
}
