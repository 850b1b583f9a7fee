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
 * manifest (results). A blob already present is not written again. No fsync: after a crash a blob
 * may be truncated, which verification turns into a miss.
 *
 * Reads are verified: `openBlob` hashes the bytes as they are read; a blob that does not match its
 * name ends its stream with `CorruptBlobError`, is deleted (unless another writer has replaced it
 * meanwhile) and reported once through `onWarning`. `getResult` treats a manifest that does not
 * parse or validate, or that names a blob that is gone, as a miss and warns once about it.
 *
 * Memory stays bounded whatever the blob size: blobs only pass as streams.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestStream, verifiedStream } from './digest.js';
import type { BlobInfo, ResultManifest, Store } from './types.js';
import { assertDigest, CorruptBlobError, manifestProblems } from './types.js';

export interface LocalStoreOptions {
  /** Called once per problem found in the store (corrupt blob, unusable manifest). */
  onWarning?: (message: string) => void;
}

/** Read buffer size for blobs. */
const READ_CHUNK = 256 * 1024;
/** Bytes a blob write may buffer before waiting for the disk. */
const WRITE_BUFFER = 1024 * 1024;
/** `open()` removes files in `tmp/` older than this, left by crashed writers. */
const STALE_TMP_MS = 24 * 3600 * 1000;
/** How many `stat` calls a batch existence check has in flight. */
const STAT_CONCURRENCY = 64;

export class LocalStore implements Store {
  readonly kind = 'local';
  readonly location: string;
  private readonly onWarning: (message: string) => void;
  private readonly warned = new Set<string>();
  private dirsReady: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    opts: LocalStoreOptions = {},
  ) {
    this.location = dir;
    this.onWarning = opts.onWarning ?? (() => {});
  }

  /** Creates the directory layout and clears stale temporary files. */
  static async open(dir: string, opts: LocalStoreOptions = {}): Promise<LocalStore> {
    const store = new LocalStore(dir, opts);
    await store.ensureDirs();
    await store.removeStaleTemp();
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
    const hash = createHash('sha256');
    let size = 0;
    try {
      // The source is read through a plain async generator, so any async iterable of bytes works
      // (tar-stream's streams are not Node streams); leaving the loop early destroys the source.
      async function* hashed(): AsyncGenerator<Buffer> {
        for await (const chunk of data as AsyncIterable<Buffer | string>) {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          hash.update(buf);
          size += buf.length;
          yield buf;
        }
      }
      // A deep write buffer lets small chunks (tar headers, small files) go out together (writev).
      await pipeline(
        hashed(),
        createWriteStream(tmp, { flags: 'wx', highWaterMark: WRITE_BUFFER }),
      );
      const digest = `sha256:${hash.digest('hex')}`;
      if (expectedDigest !== undefined && digest !== expectedDigest) {
        throw new CorruptBlobError(
          expectedDigest,
          digest,
          `data for blob ${expectedDigest} hashes to ${digest}; nothing stored`,
        );
      }
      await this.commit(tmp, this.blobPath(digest), true);
      return { digest, size };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async putBlobFile(file: string): Promise<BlobInfo> {
    // Hash first: a blob already stored costs one read and no write. Otherwise the copy is hashed
    // again on the way in, so a file changed in between is caught rather than stored misnamed.
    const info = await digestStream(createReadStream(file, { highWaterMark: READ_CHUNK }));
    if ((await this.hasBlobs([info.digest])).size > 0) return info;
    return this.putBlob(createReadStream(file, { highWaterMark: READ_CHUNK }), info.digest);
  }

  async openBlob(digest: string): Promise<Readable | null> {
    const path = this.blobPath(digest);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    let ino: number;
    try {
      ino = (await handle.stat()).ino;
    } catch (err) {
      await handle.close();
      throw err;
    }
    const source = handle.createReadStream({ highWaterMark: READ_CHUNK });
    return verifiedStream(source, digest, async (err) => {
      // Delete only the file we read: a concurrent writer may have renamed a good copy over it.
      const now = await stat(path).catch(() => null);
      if (now && now.ino === ino) await unlink(path).catch(() => {});
      this.warnOnce(
        `blob:${digest}`,
        `${this.location}: removed corrupt blob ${digest} (its bytes hash to ${err.actual})`,
      );
    });
  }

  async getResult(cacheKey: string): Promise<ResultManifest | null> {
    const path = this.resultPath(cacheKey);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
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
    await this.ensureDirs();
    const tmp = this.tempPath();
    try {
      const handle = await open(tmp, 'wx');
      try {
        await handle.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
      } finally {
        await handle.close();
      }
      await this.commit(tmp, this.resultPath(manifest.cacheKey), false);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Counts what is stored (walks the whole store). */
  async stats(): Promise<{ blobs: number; bytes: number; results: number }> {
    let blobs = 0;
    let bytes = 0;
    let results = 0;
    for (const shard of await listDir(join(this.dir, 'blobs', 'sha256'))) {
      const shardDir = join(this.dir, 'blobs', 'sha256', shard);
      for (const name of await listDir(shardDir)) {
        const st = await lstat(join(shardDir, name)).catch(() => null);
        if (!st?.isFile()) continue;
        blobs++;
        bytes += st.size;
      }
    }
    for (const shard of await listDir(join(this.dir, 'results', 'sha256'))) {
      const names = await listDir(join(this.dir, 'results', 'sha256', shard));
      results += names.filter((n) => n.endsWith('.json')).length;
    }
    return { blobs, bytes, results };
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
   * Moves a finished temp file into place. With `keepExisting` (blobs: the name says what the
   * content is) an existing file is left alone; otherwise it is replaced.
   */
  private async commit(tmp: string, dest: string, keepExisting: boolean): Promise<void> {
    if (keepExisting && (await exists(dest))) return;
    await mkdir(join(dest, '..'), { recursive: true });
    await rename(tmp, dest);
  }

  private async removeStaleTemp(): Promise<void> {
    const dir = join(this.dir, 'tmp');
    const cutoff = Date.now() - STALE_TMP_MS;
    for (const name of await listDir(dir)) {
      const st = await lstat(join(dir, name)).catch(() => null);
      if (st && st.mtimeMs < cutoff) await rm(join(dir, name), { force: true, recursive: true });
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

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}
