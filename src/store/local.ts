/**
 * `LocalStore`: a store in a directory on this machine (a worker's cache directory).
 *
 * Layout
 *
 *     <dir>/blobs/sha256/<first 2 hex>/<64 hex>          blob bytes
 *     <dir>/results/sha256/<first 2 hex>/<64 hex>.json    ResultManifest of a cache key, JSON
 *     <dir>/tmp/                                          files being written
 *
 * Writes go to a fresh file in `tmp/` (hashing blobs on the way) and are renamed into place, so
 * readers see whole files or nothing, and several processes writing the same blob or result at
 * once are safe: the last rename wins and replaces identical bytes (blobs) or an equally valid
 * manifest (results). A blob already present is not written again. `adoptBlobFile` takes a file
 * a caller wrote (and hashed) in `tmp/` (see `tempDir()`) and renames it into place, no copy. No
 * fsync: after a crash a blob may be truncated, which verification turns into a miss.
 *
 * Reads are verified: `openBlob` hashes the bytes as they are read; a blob that does not match its
 * name ends its stream with `CorruptBlobError`, is deleted (unless another writer has replaced it
 * meanwhile) and reported once through `onWarning`. `getResult` treats a manifest that does not
 * parse or validate, or that names a blob that is gone, as a miss and warns once about it.
 *
 * Size cap (`maxBytes`): reads (`openBlob`, `getResult`) and puts of an existing entry set the
 * entry's mtime to now (atime is unreliable under `noatime`), so mtime orders blobs by last use.
 * The store keeps an estimate of its blob bytes (a scan at `open` and every `rescanEvery` blob
 * puts, plus what this process wrote); when a put takes it over the cap, the least recently used
 * blobs, and the results naming them, are evicted until the blobs fit in 90% of the cap (results
 * that name no blob go when they were last used before the last blob evicted). Blobs used
 * within `evictGraceMs` are left alone, so work in flight in another process sharing the directory
 * keeps its blobs; a blob deleted under a reader that has not opened it yet is a miss, and a reader
 * that has opened it keeps reading it (POSIX unlink semantics). `prune(bytes)` does the same on
 * demand, `verify()` rehashes every blob. With or without a cap, a write that finds the disk full
 * (ENOSPC, EDQUOT) gets `makeRoom()`: the least recently used half of the blob bytes is evicted
 * (outside the grace period, as above), with a warning, and the write is tried once more.
 *
 * Memory stays bounded whatever the blob size: blobs only pass as streams.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  lstat,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  utimes,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  digestStream,
  hashedChunks,
  isVerifiedFor,
  verifiedStream,
  VerifiedFileChunks,
} from './digest.js';
import { formatSize } from '../config/size.js';
import { HashPipe } from './hash-pipe.js';
import type { BlobInfo, ResultListing, ResultManifest, Store } from './types.js';
import { assertDigest, CorruptBlobError, manifestProblems } from './types.js';
import { errorText } from './errors.js';
import {
  exists,
  isNoSpace,
  isNotFound,
  isPermissionError,
  listDir,
  processAlive,
  writevAllSync,
} from './fsutil.js';
import { mapLimit } from './limit.js';

export interface LocalStoreOptions {
  /** Called once per problem found in the store (corrupt blob, unusable manifest). */
  onWarning?: (message: string) => void;
  /** Cap on the bytes of blobs; beyond it least recently used blobs are evicted. Default: none. */
  maxBytes?: number;
  /** Blobs used (read or written) more recently than this are never evicted by the cap (60 s). */
  evictGraceMs?: number;
  /** Blob puts between two scans that refresh the size estimate (default 100). */
  rescanEvery?: number;
}

export interface LocalStoreStats {
  blobs: number;
  /** Bytes of blobs. */
  bytes: number;
  results: number;
  /** ISO 8601 time of the most recent use of a blob (absent when empty). */
  lastUsed?: string;
}

export interface PruneResult {
  removedBlobs: number;
  removedResults: number;
  /** Bytes of the removed blobs. */
  freedBytes: number;
  /** Bytes of blobs left. */
  bytes: number;
}

export interface VerifyResult {
  /** Blobs rehashed. */
  checked: number;
  /** Digests of the blobs whose bytes did not match (deleted). */
  corrupt: string[];
  /** Results deleted because they named a corrupt blob (or, for a registry, a missing one). */
  removedResults: number;
  /** Local: cache keys of result files that do not parse or validate (deleted). */
  badResults?: string[];
  /** Registry: blobs that results name and the registry no longer holds. */
  missing?: string[];
}

/** Evicting goes down to this fraction of the cap, so the next puts do not evict again at once. */
const EVICT_TO = 0.9;
const DEFAULT_EVICT_GRACE_MS = 60_000;
const DEFAULT_RESCAN_EVERY = 100;

/** Read buffer size for blobs. */
const READ_CHUNK = 1024 * 1024;
/** Bytes a blob write may buffer before waiting for the disk. */
const WRITE_BUFFER = 1024 * 1024;
/** `open()` removes files in `tmp/` older than this, left by crashed writers. */
const STALE_TMP_MS = 24 * 3600 * 1000;
/** Age after which a temp file whose writer is gone from this host is removed. */
const ORPHAN_TMP_MS = 5 * 60 * 1000;
/** How many `stat` calls a batch existence check has in flight. */
const STAT_CONCURRENCY = 64;

export class LocalStore implements Store {
  readonly kind = 'local';
  readonly location: string;
  private readonly onWarning: (message: string) => void;
  private readonly warned = new Set<string>();
  private dirsReady: Promise<void> | undefined;
  /** The size cap, if any. */
  readonly maxBytes: number | undefined;
  private readonly evictGraceMs: number;
  private readonly rescanEvery: number;
  /** Estimated bytes of blobs (maintained only with a cap). */
  private approxBytes: number | undefined;
  private putsSinceScan = 0;
  private evicting: Promise<void> | undefined;
  private freeing: Promise<number> | undefined;

  constructor(
    readonly dir: string,
    opts: LocalStoreOptions = {},
  ) {
    this.location = dir;
    this.onWarning = opts.onWarning ?? (() => {});
    if (opts.maxBytes !== undefined && !(opts.maxBytes > 0)) {
      throw new RangeError(`maxBytes must be positive, got ${opts.maxBytes}`);
    }
    this.maxBytes = opts.maxBytes;
    this.evictGraceMs = opts.evictGraceMs ?? DEFAULT_EVICT_GRACE_MS;
    this.rescanEvery = Math.max(1, opts.rescanEvery ?? DEFAULT_RESCAN_EVERY);
  }

  /** Creates the directory layout and clears stale temporary files (and measures it, with a cap). */
  static async open(dir: string, opts: LocalStoreOptions = {}): Promise<LocalStore> {
    const store = new LocalStore(dir, opts);
    await store.ensureDirs();
    await store.removeStaleTemp();
    if (store.maxBytes !== undefined) await store.rescan();
    return store;
  }

  blobPath(digest: string): string {
    assertDigest(digest);
    const hex = digest.slice('sha256:'.length);
    return join(this.dir, 'blobs', 'sha256', hex.slice(0, 2), hex);
  }

  resultPath(cacheKey: string): string {
    assertDigest(cacheKey, 'cache key');
    const hex = cacheKey.slice('sha256:'.length);
    return join(this.dir, 'results', 'sha256', hex.slice(0, 2), `${hex}.json`);
  }

  async hasBlobs(digests: readonly string[]): Promise<Set<string>> {
    for (const d of digests) assertDigest(d);
    return this.existing(digests, (d) => this.blobPath(d));
  }

  async hasResults(cacheKeys: readonly string[]): Promise<Set<string>> {
    for (const k of cacheKeys) assertDigest(k, 'cache key');
    return this.existing(cacheKeys, (k) => this.resultPath(k));
  }

  async putBlob(
    data: Readable | AsyncIterable<Buffer>,
    expectedDigest?: string,
  ): Promise<BlobInfo> {
    if (expectedDigest !== undefined) assertDigest(expectedDigest, 'expected digest');
    await this.ensureDirs();
    const tmp = this.tempPath();
    // A stream verified for the expected digest (a blob read from another store) already ends
    // with an error instead of `end` when its bytes are wrong: hashing it again would only cost
    // a second pass. Anything else is hashed here (on the hashing thread when it is big).
    const pipe =
      expectedDigest !== undefined && isVerifiedFor(data, expectedDigest)
        ? undefined
        : new HashPipe();
    let size = 0;
    let moved = false;
    try {
      // Any async iterable of bytes works (not only Node streams); leaving the loop early (an
      // error) destroys the source. Chunks are gathered and written with plain system calls: the
      // page cache takes them faster than a write stream's round trips through the thread pool.
      const chunks = pipe ? hashedChunks(data, pipe) : (data as AsyncIterable<Buffer>);
      const file = await open(tmp, 'wx');
      try {
        let batch: Buffer[] = [];
        let batched = 0;
        for await (const buf of chunks) {
          size += buf.length;
          batch.push(buf);
          batched += buf.length;
          if (batched >= WRITE_BUFFER || batch.length >= 64) {
            writevAllSync(file.fd, batch);
            batch = [];
            batched = 0;
          }
        }
        writevAllSync(file.fd, batch);
      } finally {
        await file.close();
      }
      const digest = pipe ? await pipe.digest() : expectedDigest!;
      if (expectedDigest !== undefined && digest !== expectedDigest) {
        throw new CorruptBlobError(
          expectedDigest,
          digest,
          `data for blob ${expectedDigest} hashes to ${digest}; nothing stored`,
        );
      }
      moved = await this.commit(tmp, this.blobPath(digest), true);
      if (moved) await this.afterPut(size);
      return { digest, size };
    } finally {
      pipe?.dispose();
      if (!moved) await rm(tmp, { force: true });
    }
  }

  async putBlobFile(file: string): Promise<BlobInfo> {
    // Hash first: a blob already stored costs one read and no write. Otherwise the copy is hashed
    // again on the way in, so a file changed in between is caught rather than stored misnamed.
    const info = await digestStream(createReadStream(file, { highWaterMark: READ_CHUNK }));
    if ((await this.hasBlobs([info.digest])).size > 0) return info;
    return this.putBlob(createReadStream(file, { highWaterMark: READ_CHUNK }), info.digest);
  }

  /**
   * Why nothing can be written here (a read-only directory or file system: EACCES, EROFS,
   * EPERM), or undefined when a file can be made in its temp directory.
   */
  async writeProblem(): Promise<string | undefined> {
    const probe = this.tempPath();
    try {
      await this.ensureDirs();
      await writeFile(probe, '', { flag: 'wx' });
    } catch (err) {
      if (isPermissionError(err) || (err as NodeJS.ErrnoException).code === 'EROFS')
        return errorText(err);
      throw err;
    }
    await rm(probe, { force: true });
    return undefined;
  }

  async tempDir(): Promise<string> {
    await this.ensureDirs();
    return join(this.dir, 'tmp');
  }

  async adoptBlobFile(file: string, digest: string): Promise<BlobInfo> {
    assertDigest(digest);
    await this.ensureDirs();
    const { size } = await stat(file);
    // The caller hashed the bytes as it wrote them: a rename, no copy and no second read. (Were
    // the digest wrong, reads would find the blob corrupt and treat it as a miss.)
    const written = await this.commit(file, this.blobPath(digest), true);
    if (written) await this.afterPut(size);
    return { digest, size };
  }

  async openBlob(digest: string): Promise<Readable | null> {
    const opened = await this.openBlobFile(digest);
    if (!opened) return null;
    return verifiedStream(
      opened.handle.createReadStream({ highWaterMark: READ_CHUNK }),
      digest,
      opened.onCorrupt,
    );
  }

  /** The blob's verified bytes, read straight into hashing slots (see `Store.openBlobChunks`). */
  async openBlobChunks(digest: string): Promise<VerifiedFileChunks | null> {
    const opened = await this.openBlobFile(digest);
    return opened && new VerifiedFileChunks(opened.handle, digest, opened.onCorrupt);
  }

  /**
   * Opens blob `digest` for a verified read (a miss when it is gone or unreadable), marks it
   * used, and says what to do when its bytes turn out not to match.
   */
  private async openBlobFile(
    digest: string,
  ): Promise<{ handle: FileHandle; onCorrupt: (err: CorruptBlobError) => Promise<void> } | null> {
    const path = this.blobPath(digest);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (isNotFound(err)) return null;
      // A blob that cannot be read (permissions, I/O) is not there for this run: a miss.
      this.warnUnreadable(digest, err);
      return null;
    }
    let ino: number;
    try {
      const st = await handle.stat();
      if (!st.isFile()) {
        // Not a blob at all (a directory in its place, say): removed, so a save can put it back.
        await handle.close();
        await rm(path, { recursive: true, force: true }).catch(() => {});
        this.warnOnce(`blob:${digest}`, `${this.location}: removed blob ${digest}: not a file`);
        return null;
      }
      ino = st.ino;
    } catch (err) {
      await handle.close();
      throw err;
    }
    await touch([path]);
    return {
      handle,
      onCorrupt: async (err) => {
        // Delete only the file we read: a concurrent writer may have renamed a good copy over it.
        const now = await stat(path).catch(() => null);
        if (now && now.ino === ino) await unlink(path).catch(() => {});
        this.warnOnce(
          `blob:${digest}`,
          `${this.location}: removed corrupt blob ${digest} (its bytes hash to ${err.actual})`,
        );
      },
    };
  }

  async getResult(cacheKey: string): Promise<ResultManifest | null> {
    const path = this.resultPath(cacheKey);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (isNotFound(err)) return null;
      // Unreadable is a miss, not a failed cache query (which would cost every other result of
      // the query). A directory in its place is removed, so the next result can be stored.
      if ((err as NodeJS.ErrnoException).code === 'EISDIR') {
        await rm(path, { recursive: true, force: true }).catch(() => {});
      }
      this.warnResult(cacheKey, `cannot be read (${errorText(err)})`);
      return null;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.warnResult(cacheKey, `does not parse (${(err as Error).message})`);
      return null;
    }
    const problems = manifestProblems(value);
    if (problems.length > 0) {
      this.warnResult(cacheKey, `is not valid: ${problems.join('; ')}`);
      return null;
    }
    const manifest = value as ResultManifest;
    if (manifest.cacheKey !== cacheKey) {
      this.warnResult(cacheKey, `is for another cache key (${manifest.cacheKey})`);
      return null;
    }
    const digests = manifest.outputs.map((o) => o.digest);
    const present = await this.hasBlobs(digests);
    const missing = digests.filter((d) => !present.has(d));
    if (missing.length > 0) {
      this.warnResult(cacheKey, `names missing blobs: ${missing.join(', ')}`);
      return null;
    }
    await touch([path, ...digests.map((d) => this.blobPath(d))]);
    return manifest;
  }

  async putResult(manifest: ResultManifest): Promise<void> {
    const problems = manifestProblems(manifest);
    if (problems.length > 0) {
      throw new TypeError(`invalid result manifest: ${problems.join('; ')}`);
    }
    const digests = manifest.outputs.map((o) => o.digest);
    const present = await this.hasBlobs(digests);
    const missing = digests.filter((d) => !present.has(d));
    if (missing.length > 0) {
      throw new Error(
        `result ${manifest.cacheKey} names blobs that are not stored: ${missing.join(', ')}`,
      );
    }
    await touch(digests.map((d) => this.blobPath(d)));
    await this.ensureDirs();
    const write = async (): Promise<void> => {
      const tmp = this.tempPath();
      try {
        await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`, { flag: 'wx' });
        await this.commit(tmp, this.resultPath(manifest.cacheKey), false);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    };
    try {
      await write();
    } catch (err) {
      if (!isNoSpace(err) || (await this.makeRoom()) === 0) throw err;
      await write();
    }
  }

  /** Counts what is stored (walks the whole store). */
  async stats(): Promise<LocalStoreStats> {
    const blobs = await this.scanBlobs();
    let bytes = 0;
    let newest = 0;
    for (const b of blobs) {
      bytes += b.size;
      newest = Math.max(newest, b.mtimeMs);
    }
    let results = 0;
    for (const shard of await listDir(join(this.dir, 'results', 'sha256'))) {
      const names = await listDir(join(this.dir, 'results', 'sha256', shard));
      results += names.filter((n) => n.endsWith('.json')).length;
    }
    const out: LocalStoreStats = { blobs: blobs.length, bytes, results };
    if (newest > 0) out.lastUsed = new Date(newest).toISOString();
    return out;
  }

  /**
   * Evicts least recently used blobs, and the results naming them, until the blobs take at most
   * `maxBytes`. Blobs used within `graceMs` (default 0: none) are kept even if that leaves the
   * store over the limit.
   */
  prune(maxBytes: number, opts: { graceMs?: number } = {}): Promise<PruneResult> {
    return this.evictTo(() => maxBytes, opts.graceMs ?? 0);
  }

  /** `prune` to a limit computed from the blob bytes found (one scan of the store). */
  private async evictTo(limit: (bytes: number) => number, graceMs: number): Promise<PruneResult> {
    const blobs = await this.scanBlobs();
    let bytes = blobs.reduce((sum, b) => sum + b.size, 0);
    const maxBytes = limit(bytes);
    const result: PruneResult = { removedBlobs: 0, removedResults: 0, freedBytes: 0, bytes };
    if (bytes <= maxBytes) {
      this.approxBytes = bytes;
      return result;
    }
    blobs.sort((a, b) => a.mtimeMs - b.mtimeMs);
    const cutoff = Date.now() - graceMs;
    const evicted = new Set<string>();
    let newestEvicted = 0;
    for (const b of blobs) {
      if (bytes <= maxBytes || b.mtimeMs > cutoff) break;
      // Used since the scan (its mtime moved): keep it.
      const now = await stat(b.path).catch(() => null);
      if (now && (now.ino !== b.ino || now.mtimeMs !== b.mtimeMs)) continue;
      // One that cannot be removed (a read-only store) stops the prune: it did not free anything.
      if (now) await unlinkIfThere(b.path);
      bytes -= b.size;
      evicted.add(b.digest);
      newestEvicted = b.mtimeMs;
      result.removedBlobs++;
      result.freedBytes += b.size;
    }
    // Only after an eviction (afterPut calls this on writes over the cap): a scan of every result.
    // Results without outputs go too when they were last used before the last blob evicted.
    if (evicted.size > 0)
      result.removedResults = await this.removeResultsNaming(evicted, undefined, newestEvicted);
    result.bytes = bytes;
    this.approxBytes = bytes;
    return result;
  }

  /**
   * Rehashes every blob; deletes those whose bytes do not match their name (or that are not files,
   * such as a directory in a blob's place), the results that name them, and result files that do
   * not parse or validate.
   */
  async verify(): Promise<VerifyResult> {
    const corrupt: string[] = [];
    const blobs = await this.scanBlobs();
    let checked = 0;
    // A corrupt blob that cannot be removed (a read-only store) ends the verify with an error
    // naming it, rather than be reported as removed.
    const remove = async (digest: string, removal: Promise<unknown>): Promise<void> => {
      try {
        await removal;
      } catch (err) {
        throw new Error(`cannot remove corrupt blob ${digest}: ${errorText(err)}`, { cause: err });
      }
    };
    for (const path of await this.nonFileBlobs()) {
      checked++;
      const digest = `sha256:${path.slice(-64)}`;
      await remove(digest, rm(path, { recursive: true, force: true }));
      corrupt.push(digest);
      this.warnOnce(`blob:${digest}`, `${this.location}: removed blob ${digest}: not a file`);
    }
    // Two blobs at a time: each hash is sequential, two use two cores.
    await mapLimit(blobs, 2, async (b) => {
      let actual: string;
      try {
        actual = (await digestStream(createReadStream(b.path, { highWaterMark: READ_CHUNK })))
          .digest;
      } catch (err) {
        if (isNotFound(err)) return; // evicted meanwhile
        // Unreadable: as good as corrupt for every reader (reported; removed if it can be).
        checked++;
        await remove(b.digest, rm(b.path, { recursive: true, force: true }));
        corrupt.push(b.digest);
        this.warnUnreadable(b.digest, err);
        return;
      }
      checked++;
      if (actual === b.digest) return;
      const now = await stat(b.path).catch(() => null);
      if (now && now.ino === b.ino) await remove(b.digest, unlinkIfThere(b.path));
      corrupt.push(b.digest);
      this.warnOnce(
        `blob:${b.digest}`,
        `${this.location}: removed corrupt blob ${b.digest} (its bytes hash to ${actual})`,
      );
    });
    corrupt.sort();
    const badResults: string[] = [];
    const removedResults = await this.removeResultsNaming(new Set(corrupt), badResults);
    return { checked, corrupt, removedResults, badResults };
  }

  /**
   * Results whose cache key starts with `prefix` (`sha256:ab12` or `ab12`), in key order; entries
   * that do not parse or validate are skipped.
   */
  async *listResults(prefix = ''): AsyncIterable<ResultListing> {
    const hexPrefix = (prefix.startsWith('sha256:') ? prefix.slice(7) : prefix).toLowerCase();
    if (!/^[0-9a-f]*$/.test(hexPrefix)) return;
    for (const r of await this.resultFiles(hexPrefix)) {
      const manifest = await readManifest(r.path);
      if (!manifest || manifest.cacheKey !== r.cacheKey) continue;
      yield {
        cacheKey: manifest.cacheKey,
        unit: manifest.unit,
        size: manifest.outputs.reduce((sum, o) => sum + o.size, 0),
        createdAt: manifest.createdAt,
      };
    }
  }

  /** After a blob put: keeps the size estimate and evicts when it is over the cap. */
  private async afterPut(added: number): Promise<void> {
    if (this.maxBytes === undefined) return;
    this.approxBytes = (this.approxBytes ?? 0) + added;
    if (++this.putsSinceScan >= this.rescanEvery) await this.rescan();
    if ((this.approxBytes ?? 0) <= this.maxBytes) return;
    const target = Math.floor(this.maxBytes * EVICT_TO);
    this.evicting ??= this.prune(target, { graceMs: this.evictGraceMs })
      .then(
        () => undefined,
        (err: unknown) =>
          this.onWarning(`${this.location}: evicting failed: ${(err as Error).message}`),
      )
      .finally(() => (this.evicting = undefined));
    await this.evicting;
  }

  /**
   * The disk is full: evicts the least recently used half of the blob bytes (blobs used within
   * the grace period stay), and the results naming them. Bytes freed. Callers at the same time
   * share one eviction.
   */
  makeRoom(): Promise<number> {
    this.freeing ??= (async () => {
      const r = await this.evictTo((all) => Math.floor(all / 2), this.evictGraceMs);
      const bytes = r.bytes + r.freedBytes;
      this.onWarning(
        r.freedBytes > 0
          ? `${this.location}: the disk is full: evicted the ${r.removedBlobs} least recently used blob(s) (${formatSize(r.freedBytes)}) to make room`
          : bytes === 0
            ? `${this.location}: the disk is full, and this store holds nothing to evict`
            : `${this.location}: the disk is full, and nothing in this store can be evicted (${formatSize(bytes)}, all of it used in the last ${Math.round(this.evictGraceMs / 1000)} s)`,
      );
      return r.freedBytes;
    })()
      .catch((err: unknown) => {
        this.onWarning(`${this.location}: evicting failed: ${(err as Error).message}`);
        return 0;
      })
      .finally(() => (this.freeing = undefined));
    return this.freeing;
  }

  /** Refreshes the size estimate from the directory (other processes write to it too). */
  private async rescan(): Promise<void> {
    this.putsSinceScan = 0;
    this.approxBytes = (await this.scanBlobs()).reduce((sum, b) => sum + b.size, 0);
  }

  /** Every blob file with its size and last use. */
  private async scanBlobs(): Promise<BlobFile[]> {
    const out: BlobFile[] = [];
    const root = join(this.dir, 'blobs', 'sha256');
    for (const shard of await listDir(root)) {
      const shardDir = join(root, shard);
      for (const name of await listDir(shardDir)) {
        if (!/^[0-9a-f]{64}$/.test(name)) continue;
        const path = join(shardDir, name);
        const st = await lstat(path).catch(() => null);
        if (!st?.isFile()) continue;
        out.push({
          digest: `sha256:${name}`,
          path,
          size: st.size,
          mtimeMs: st.mtimeMs,
          ino: st.ino,
        });
      }
    }
    return out;
  }

  /** Paths in the blob directories named as blobs that are not regular files. */
  private async nonFileBlobs(): Promise<string[]> {
    const out: string[] = [];
    const root = join(this.dir, 'blobs', 'sha256');
    for (const shard of await listDir(root)) {
      for (const name of await listDir(join(root, shard))) {
        if (!/^[0-9a-f]{64}$/.test(name)) continue;
        const st = await lstat(join(root, shard, name)).catch(() => null);
        if (st && !st.isFile()) out.push(join(root, shard, name));
      }
    }
    return out;
  }

  /** Result files whose key's hex starts with `hexPrefix`, sorted by key. */
  private async resultFiles(hexPrefix = ''): Promise<{ cacheKey: string; path: string }[]> {
    const root = join(this.dir, 'results', 'sha256');
    const shards =
      hexPrefix.length >= 2
        ? [hexPrefix.slice(0, 2)]
        : (await listDir(root)).filter((s) => s.startsWith(hexPrefix)).sort();
    const out: { cacheKey: string; path: string }[] = [];
    for (const shard of shards) {
      const names = (await listDir(join(root, shard))).sort();
      for (const name of names) {
        const hex = name.slice(0, -'.json'.length);
        if (!name.endsWith('.json') || !/^[0-9a-f]{64}$/.test(hex) || !hex.startsWith(hexPrefix))
          continue;
        out.push({ cacheKey: `sha256:${hex}`, path: join(root, shard, name) });
      }
    }
    return out;
  }

  /**
   * Removes the results that name any of `digests`, or a blob that is not there (left by a
   * writer that raced an eviction, or by hand): no result is kept that could only miss. Returns
   * how many. With `bad`, result files that do not parse or validate (results are written
   * whole, by rename: a truncated or edited one) are removed too, their keys pushed there.
   */
  private async removeResultsNaming(
    digests: ReadonlySet<string>,
    bad?: string[],
    unusedSinceMs?: number,
  ): Promise<number> {
    let removed = 0;
    for (const r of await this.resultFiles()) {
      const before = await stat(r.path).catch(() => null);
      const manifest = await readManifest(r.path);
      if (!before) continue;
      if (!manifest || manifest.cacheKey !== r.cacheKey) {
        if (!bad) continue;
        const now = await stat(r.path).catch(() => null);
        if (!now || now.ino !== before.ino || now.mtimeMs !== before.mtimeMs) continue;
        await rm(r.path, { recursive: true, force: true });
        bad.push(r.cacheKey);
        continue;
      }
      const named = manifest.outputs.map((o) => o.digest);
      // A result without outputs names no blob: evicted with the blobs used less recently.
      const unused =
        named.length === 0 && unusedSinceMs !== undefined && before.mtimeMs <= unusedSinceMs;
      if (!unused && !named.some((d) => digests.has(d))) {
        const present = await this.hasBlobs(named);
        if (named.every((d) => present.has(d))) continue;
      }
      // A writer may have put a new result (with its blobs) there since it was read: kept.
      const now = await stat(r.path).catch(() => null);
      if (!now || now.ino !== before.ino || now.mtimeMs !== before.mtimeMs) continue;
      await unlinkIfThere(r.path);
      removed++;
    }
    return removed;
  }

  private ensureDirs(): Promise<void> {
    this.dirsReady ??= (async () => {
      for (const sub of [['blobs', 'sha256'], ['results', 'sha256'], ['tmp']]) {
        await mkdir(join(this.dir, ...sub), { recursive: true });
      }
    })().catch((err: unknown) => {
      this.dirsReady = undefined;
      throw err;
    });
    return this.dirsReady;
  }

  private tempPath(): string {
    return join(this.dir, 'tmp', `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  /**
   * Moves a finished temp file into place (true), making its directory when it is the first there.
   * With `keepExisting` (blobs: the name says what the content is) an existing file is left alone
   * and so is the temp file (false); otherwise it is replaced.
   */
  private async commit(tmp: string, dest: string, keepExisting: boolean): Promise<boolean> {
    if (keepExisting) {
      // Kept when it is a file of the right size; replaced when it cannot be the same bytes (a
      // truncated copy, a directory in its place). A same-size corrupt copy is found when read.
      const [now, fresh] = await Promise.all([
        lstat(dest).catch(() => null),
        stat(tmp).catch(() => null),
      ]);
      if (now && now.isFile() && (!fresh || now.size === fresh.size)) return false;
    }
    try {
      await rename(tmp, dest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') {
        await rm(dest, { recursive: true, force: true });
      } else if (isNotFound(err)) {
        await mkdir(join(dest, '..'), { recursive: true });
      } else throw err;
      await rename(tmp, dest);
    }
    return true;
  }

  private warnUnreadable(digest: string, err: unknown): void {
    this.warnOnce(
      `blob:${digest}`,
      `${this.location}: cannot read blob ${digest}: ${errorText(err)}`,
    );
  }

  private async removeStaleTemp(): Promise<void> {
    const dir = join(this.dir, 'tmp');
    const now = Date.now();
    for (const name of await listDir(dir)) {
      const st = await lstat(join(dir, name)).catch(() => null);
      if (!st) continue;
      // Temp names start with their writer's pid: a killed writer's half-written blob goes after
      // a few minutes without a write (a pid here may be a live writer in another PID namespace
      // sharing the directory, whose file changes while it writes); anything after a day.
      const owner = Number(/^(\d+)-/.exec(name)?.[1]);
      const orphan = owner > 0 && owner !== process.pid && !processAlive(owner);
      const age = now - st.mtimeMs;
      if (age > STALE_TMP_MS || (orphan && age > ORPHAN_TMP_MS)) {
        await rm(join(dir, name), { force: true, recursive: true });
      }
    }
  }

  private async existing(
    keys: readonly string[],
    pathOf: (key: string) => string,
  ): Promise<Set<string>> {
    const found = new Set<string>();
    const unique = [...new Set(keys)];
    for (let i = 0; i < unique.length; i += STAT_CONCURRENCY) {
      const batch = unique.slice(i, i + STAT_CONCURRENCY);
      const flags = await Promise.all(batch.map((k) => exists(pathOf(k))));
      batch.forEach((k, j) => {
        if (flags[j]) found.add(k);
      });
    }
    return found;
  }

  private warnResult(cacheKey: string, problem: string): void {
    this.warnOnce(`result:${cacheKey}`, `${this.location}: result ${cacheKey} ${problem}; a miss`);
  }

  private warnOnce(id: string, message: string): void {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.onWarning(message);
  }
}

interface BlobFile {
  digest: string;
  path: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** Marks entries as used now (best effort: an entry deleted meanwhile is simply skipped). */
async function touch(paths: string[]): Promise<void> {
  const now = new Date();
  await Promise.all(paths.map((p) => utimes(p, now, now).catch(() => {})));
}

/** A result file's manifest, or `null` when it is gone, does not parse or does not validate. */
async function readManifest(path: string): Promise<ResultManifest | null> {
  try {
    const value: unknown = JSON.parse(await readFile(path, 'utf8'));
    return manifestProblems(value).length === 0 ? (value as ResultManifest) : null;
  } catch {
    return null;
  }
}

/** Removes a file; one already gone is removed, any other failure (a read-only store) is thrown. */
async function unlinkIfThere(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
