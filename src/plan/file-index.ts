/**
 * Persistent index of file digests, so that unchanged files are not re-read on every run.
 *
 * An entry is keyed by the file's path relative to the root and remembers the `lstat` identity
 * the digest was computed for: size, mtime and ctime (nanoseconds), inode and mode. A file whose
 * identity is unchanged is not read again; anything else (content edit, `touch`, chmod, replace,
 * copy) makes it re-hashed. ctime cannot be set from user space, so even an edit that restores the
 * old mtime is noticed.
 *
 * Racy files (git's "racily clean" problem): with coarse file-system timestamps a file written
 * twice within one timestamp tick keeps its mtime. An entry is therefore only stored when the
 * file's mtime and ctime are older than the moment hashing started by more than `racyMs` (default
 * 2 s, which covers 1-2 s granularity file systems); recent files are simply hashed again next
 * time. A file that changes while it is read (its identity differs before and after) is re-read
 * (up to 3 times) and never stored.
 *
 * Storage: one JSON file `<cacheDir>/file-digests.json` (default cacheDir
 * `<root>/.dist-build/index`), written to a temporary file and renamed into place, so readers see
 * either the old or the new index. An unreadable, corrupt or foreign-format index is ignored
 * (cold start), never an error; failing to write it is not an error either. Entries not used for
 * 30 days are dropped when saving.
 *
 * Hashing: SHA-256 via node:crypto (OpenSSL, SHA-NI where available: several times faster than
 * coreutils `sha256sum`). Each file is read synchronously into one reused 1 MiB buffer (no
 * per-file allocation, no promise overhead: measured 2-3x faster than fs.promises with 8-32
 * concurrent reads). With real work (>= 64 files to hash) the calling thread and `threads` worker
 * threads (default: cores - 1, at most 3) pull batches from one queue; the calling thread starts
 * at once, so the ~25 ms a worker needs to boot is never waited for. The same hashing function
 * (one source text) runs on both. Stat checks of a warm run stay on the calling thread: a
 * synchronous lstat is ~2.5 us, less than handing the path to a worker would cost.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { Worker } from 'node:worker_threads';

export interface FileIndexOptions {
  /** Directory that holds the index file (default `<root>/.dist-build/index`). */
  cacheDir?: string;
  /** Ignore the stored index (start cold); it is still written by {@link FileIndex.save}. */
  fresh?: boolean;
  /** Worker threads helping the calling thread hash (default: cores - 1, at most 3; 0 = none). */
  threads?: number;
  /** Files to hash from which worker threads are used at all (default 64). */
  poolMinFiles?: number;
  /** Files modified less than this many ms before hashing are not stored (default 2000). */
  racyMs?: number;
  /** Called for every file whose contents were actually read and hashed (tests, diagnostics). */
  onHash?: (path: string) => void;
  /** Wall-clock time in ms (default `Date.now`): the racy-entry check and last-use days. */
  now?: () => number;
}

export interface FileDigest {
  /** Path relative to the root, as requested. */
  path: string;
  kind: 'file' | 'symlink';
  /** SHA-256 (hex) of the contents; of a symlink: of its target path (raw bytes, not followed). */
  digest: string;
  /** Size in bytes (of a symlink: length of its target). */
  size: number;
  /** Any execute bit set (always false for symlinks). */
  executable: boolean;
}

export interface FileIndexStats {
  /** Files answered from the index without reading them. */
  hits: number;
  /** Files read and hashed. */
  hashed: number;
  /** Bytes read and hashed. */
  bytesHashed: number;
  /** Re-reads because a file changed while it was being hashed. */
  retries: number;
  /** Whether a stored index was loaded. */
  loaded: boolean;
}

/** The index file name inside the cache directory. */
export const INDEX_FILE = 'file-digests.json';
const FORMAT = 'dist-build/file-index/v1';
const DAY_MS = 86_400_000;
const KEEP_DAYS = 30;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** What the hashing function reports for one path (bigints as decimal strings). */
interface HashResult {
  size: number;
  mode: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  digest: string;
  /** Stable while read and old enough to be stored. */
  trusted: boolean;
  retries: number;
}
type HashOutcome = HashResult | { error: string; code?: string };

/** One index entry, in memory exactly as stored (`day` = last use, in days since the epoch). */
type Entry = [
  path: string,
  size: number,
  mtimeNs: string,
  ctimeNs: string,
  ino: string,
  mode: number,
  digest: string,
  day: number,
];

/**
 * The hashing routine, as source text so that worker threads (started from a string, which works
 * the same under the bundler, jest and plain node) and the calling thread run the very same code.
 */
const HASH_PATH_SOURCE = String.raw`function hashPath(fs, crypto, buf, abs, marginNs, startNs) {
  for (let attempt = 0; ; attempt++) {
    const st = fs.lstatSync(abs, { bigint: true });
    let digest;
    let after;
    if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(abs, { encoding: 'buffer' });
      digest = crypto.createHash('sha256').update(target).digest('hex');
      after = fs.lstatSync(abs, { bigint: true });
    } else if (st.isFile()) {
      const fd = fs.openSync(abs, 'r');
      try {
        const h = crypto.createHash('sha256');
        let n;
        while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
        digest = h.digest('hex');
        after = fs.fstatSync(fd, { bigint: true });
      } finally {
        fs.closeSync(fd);
      }
    } else {
      const err = new Error('not a regular file or symlink: ' + abs);
      err.code = 'EISDIR';
      throw err;
    }
    const stable =
      after.ino === st.ino && after.size === st.size && after.mode === st.mode &&
      after.mtimeNs === st.mtimeNs && after.ctimeNs === st.ctimeNs;
    if (!stable && attempt < 3) continue;
    const newest = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
    return {
      size: Number(st.size),
      mode: Number(st.mode),
      mtimeNs: st.mtimeNs.toString(),
      ctimeNs: st.ctimeNs.toString(),
      ino: st.ino.toString(),
      digest,
      trusted: stable && startNs - newest > marginNs,
      retries: attempt,
    };
  }
}`;

const WORKER_SOURCE = `'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
const hashPath = ${HASH_PATH_SOURCE};
parentPort.on('message', (job) => {
  const margin = BigInt(job.marginNs);
  const start = BigInt(job.startNs);
  const results = job.paths.map((p) => {
    try {
      return hashPath(fs, crypto, buf, p, margin, start);
    } catch (e) {
      return { error: String(e && e.message), code: e && e.code };
    }
  });
  parentPort.postMessage(results);
});`;

type HashFn = (
  fsMod: typeof fs,
  cryptoMod: typeof crypto,
  buf: Buffer,
  abs: string,
  marginNs: bigint,
  startNs: bigint,
) => HashResult;

let localHashFn: HashFn | undefined;
let localBuf: Buffer | undefined;

function hashLocal(abs: string, marginNs: bigint, startNs: bigint): HashOutcome {
  localHashFn ??= new Function(`return ${HASH_PATH_SOURCE};`)() as HashFn;
  localBuf ??= Buffer.allocUnsafe(1 << 20);
  try {
    return localHashFn(fs, crypto, localBuf, abs, marginNs, startNs);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { error: String(err.message), ...(err.code ? { code: err.code } : {}) };
  }
}

/** A slice of one `hash` call, processed by whichever thread takes it first. */
interface Batch {
  paths: string[];
  startNs: bigint;
  done: (results: HashOutcome[]) => void;
}

interface PoolWorker {
  worker: Worker;
  online: boolean;
  batch: Batch | undefined;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Hashes batches on the calling thread AND on `size` worker threads, all pulling from one queue:
 * the calling thread starts at once (workers need ~25 ms to boot) and yields between batches so
 * that idle workers get the next one. Workers are referenced only while they hold a batch, so an
 * idle pool never keeps the process alive. A worker that dies hands its batch back.
 */
class HashPool {
  private readonly workers: PoolWorker[] = [];
  private readonly queue: Batch[] = [];
  private closed = false;
  /** Set when a worker cannot even be created. */
  private broken = false;

  constructor(
    private readonly size: number,
    private readonly marginNs: bigint,
  ) {}

  /** Hashes `paths` (absolute); `startNs` is the wall-clock time hashing started. */
  async hash(paths: string[], startNs: bigint): Promise<HashOutcome[]> {
    if (this.closed) throw new Error('file index is closed');
    if (paths.length === 0) return [];
    this.start();
    const results = new Array<HashOutcome>(paths.length);
    // ~64 batches per call: enough to balance the tail, few enough to keep messaging cheap.
    const size = Math.max(16, Math.min(256, Math.ceil(paths.length / 64)));
    let open = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((resolve) => (resolveAll = resolve));
    for (let i = 0; i < paths.length; i += size) {
      const offset = i;
      open++;
      this.queue.push({
        paths: paths.slice(i, i + size),
        startNs,
        done: (r) => {
          for (let k = 0; k < r.length; k++) results[offset + k] = r[k]!;
          if (--open === 0) resolveAll();
        },
      });
    }
    this.dispatch();
    while (this.queue.length > 0) {
      const b = this.queue.shift()!;
      b.done(b.paths.map((p) => hashLocal(p, this.marginNs, b.startNs)));
      await yieldToEventLoop();
      if (this.closed) throw new Error('file index closed while hashing');
    }
    await all;
    return results;
  }

  private start(): void {
    while (this.workers.length < this.size && !this.broken) {
      let worker: Worker;
      try {
        worker = new Worker(WORKER_SOURCE, { eval: true });
      } catch {
        this.broken = true; // no worker threads here: the calling thread does all the work
        return;
      }
      const pw: PoolWorker = { worker, online: false, batch: undefined };
      const w = pw.worker;
      w.unref();
      w.on('online', () => {
        pw.online = true;
        this.dispatch();
      });
      w.on('message', (results: HashOutcome[]) => {
        const b = pw.batch;
        pw.batch = undefined;
        this.dispatch();
        b?.done(results);
      });
      w.on('error', () => this.lose(pw));
      w.on('exit', () => this.lose(pw));
      this.workers.push(pw);
    }
  }

  /** Gives every idle online worker a batch; unreferences the idle ones. */
  private dispatch(): void {
    for (const pw of this.workers) {
      if (!pw.online || pw.batch) continue;
      const b = this.queue.shift();
      if (!b) {
        pw.worker.unref();
        continue;
      }
      pw.batch = b;
      pw.worker.ref();
      pw.worker.postMessage({
        paths: b.paths,
        marginNs: this.marginNs.toString(),
        startNs: b.startNs.toString(),
      });
    }
  }

  /** A worker failed or exited: drop it and finish its batch here. */
  private lose(pw: PoolWorker): void {
    const i = this.workers.indexOf(pw);
    if (i < 0) return;
    this.workers.splice(i, 1);
    pw.online = false;
    const b = pw.batch;
    pw.batch = undefined;
    if (b && !this.closed) b.done(b.paths.map((p) => hashLocal(p, this.marginNs, b.startNs)));
  }

  async close(): Promise<void> {
    this.closed = true;
    const abandoned = [...this.queue.splice(0), ...this.workers.map((pw) => pw.batch)];
    const ws = this.workers.splice(0);
    for (const b of abandoned) {
      b?.done(b.paths.map(() => ({ error: 'file index closed while hashing' })));
    }
    await Promise.all(ws.map((pw) => pw.worker.terminate()));
  }
}

function defaultThreads(): number {
  return Math.max(0, Math.min(3, availableParallelism() - 1));
}

function isEntry(v: unknown): v is Entry {
  return (
    Array.isArray(v) &&
    v.length === 8 &&
    typeof v[0] === 'string' &&
    typeof v[1] === 'number' &&
    typeof v[2] === 'string' &&
    typeof v[3] === 'string' &&
    typeof v[4] === 'string' &&
    typeof v[5] === 'number' &&
    typeof v[6] === 'string' &&
    v[6].length === 64 &&
    typeof v[7] === 'number'
  );
}

/** Persistent (path, size, mtime, ctime, inode, mode) -> SHA-256 index; see the module comment. */
export class FileIndex {
  /** Absolute path of the index file. */
  readonly file: string;
  readonly stats: FileIndexStats = {
    hits: 0,
    hashed: 0,
    bytesHashed: 0,
    retries: 0,
    loaded: false,
  };
  private readonly entries = new Map<string, Entry>();
  /** `root` with a trailing separator: absolute paths by concatenation. */
  private readonly prefix: string;
  private readonly threads: number;
  private readonly poolMinFiles: number;
  private readonly marginNs: bigint;
  private readonly now: () => number;
  private pool: HashPool | undefined;
  private dirty = false;

  private constructor(
    /** Absolute directory that paths are relative to. */
    readonly root: string,
    private readonly opts: FileIndexOptions,
  ) {
    this.file = join(opts.cacheDir ?? join(root, '.dist-build', 'index'), INDEX_FILE);
    this.prefix = root.endsWith(sep) ? root : root + sep;
    this.threads = opts.threads ?? defaultThreads();
    this.poolMinFiles = opts.poolMinFiles ?? 64;
    this.marginNs = BigInt(Math.round((opts.racyMs ?? 2000) * 1e6));
    this.now = opts.now ?? Date.now;
  }

  /** Opens the index for `root`, loading the stored one unless it is missing, corrupt or `fresh`. */
  static async open(root: string, opts: FileIndexOptions = {}): Promise<FileIndex> {
    const index = new FileIndex(root, opts);
    if (!opts.fresh) await index.load();
    return index;
  }

  private async load(): Promise<void> {
    let data: unknown;
    try {
      data = JSON.parse(await readFile(this.file, 'utf8'));
    } catch {
      return; // missing or unreadable: cold
    }
    if (
      typeof data !== 'object' ||
      data === null ||
      (data as { format?: unknown }).format !== FORMAT ||
      !Array.isArray((data as { entries?: unknown }).entries)
    ) {
      return;
    }
    for (const e of (data as { entries: unknown[] }).entries) {
      if (isEntry(e)) this.entries.set(e[0], e);
    }
    this.stats.loaded = true;
  }

  /** Number of entries currently held. */
  get size(): number {
    return this.entries.size;
  }

  /** SHA-256 (hex) of the contents of `path` (relative to the root). */
  async digest(path: string): Promise<string> {
    return (await this.get(path)).digest;
  }

  /** Digest and metadata of one file. */
  async get(path: string): Promise<FileDigest> {
    return (await this.getMany([path]))[0]!;
  }

  /**
   * Digests and metadata of `paths` (relative to the root, in the same order). Throws when a path
   * is missing or is not a regular file or symlink.
   */
  async getMany(paths: readonly string[]): Promise<FileDigest[]> {
    const out = new Array<FileDigest>(paths.length);
    const missIdx: number[] = [];
    const today = Math.floor(this.now() / DAY_MS);
    for (let i = 0; i < paths.length; i++) {
      const path = paths[i]!;
      const entry = this.entries.get(path);
      if (entry) {
        // a missing file is reported by the hashing step
        const st = fs.lstatSync(this.prefix + path, { bigint: true, throwIfNoEntry: false });
        if (
          st &&
          Number(st.size) === entry[1] &&
          st.mtimeNs.toString() === entry[2] &&
          st.ctimeNs.toString() === entry[3] &&
          st.ino.toString() === entry[4] &&
          Number(st.mode) === entry[5]
        ) {
          this.stats.hits++;
          if (entry[7] !== today) {
            entry[7] = today;
            this.dirty = true;
          }
          out[i] = toDigest(path, entry[5], entry[1], entry[6]);
          continue;
        }
      }
      missIdx.push(i);
    }
    if (missIdx.length === 0) return out;

    const abs = missIdx.map((i) => this.prefix + paths[i]!);
    const startNs = BigInt(Math.floor(this.now())) * 1_000_000n;
    let results: HashOutcome[];
    if (this.threads > 0 && missIdx.length >= this.poolMinFiles) {
      this.pool ??= new HashPool(this.threads, this.marginNs);
      results = await this.pool.hash(abs, startNs);
    } else {
      results = abs.map((p) => hashLocal(p, this.marginNs, startNs));
    }

    const errors: string[] = [];
    missIdx.forEach((i, k) => {
      const path = paths[i]!;
      const r = results[k]!;
      if ('error' in r) {
        if (this.entries.delete(path)) this.dirty = true;
        errors.push(r.code === 'ENOENT' ? `input file "${path}" does not exist` : r.error);
        return;
      }
      this.stats.hashed++;
      this.stats.bytesHashed += r.size;
      this.stats.retries += r.retries;
      this.opts.onHash?.(path);
      if (r.trusted) {
        this.entries.set(path, [
          path,
          r.size,
          r.mtimeNs,
          r.ctimeNs,
          r.ino,
          r.mode,
          r.digest,
          today,
        ]);
        this.dirty = true;
      } else if (this.entries.delete(path)) {
        this.dirty = true;
      }
      out[i] = toDigest(path, r.mode, r.size, r.digest);
    });
    if (errors.length > 0) {
      throw new Error(
        errors.length === 1 ? errors[0] : `${errors.length} errors: ${errors.join('; ')}`,
      );
    }
    return out;
  }

  /**
   * Writes the index if anything changed (temp file + rename). Returns false when it could not be
   * written; that is not an error, the next run is just colder.
   */
  async save(): Promise<boolean> {
    if (!this.dirty) return true;
    const minDay = Math.floor(this.now() / DAY_MS) - KEEP_DAYS;
    const entries: Entry[] = [];
    for (const e of this.entries.values()) if (e[7] >= minDay) entries.push(e);
    const tmp = `${this.file}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(this.file), { recursive: true });
      await writeFile(tmp, JSON.stringify({ format: FORMAT, entries }));
      await rename(tmp, this.file);
      this.dirty = false;
      return true;
    } catch {
      await unlink(tmp).catch(() => undefined);
      return false;
    }
  }

  /** Stops the worker threads (idle ones never keep the process alive, but tests like it). */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }
}

function toDigest(path: string, mode: number, size: number, digest: string): FileDigest {
  const symlink = (mode & S_IFMT) === S_IFLNK;
  return {
    path,
    kind: symlink ? 'symlink' : 'file',
    digest,
    size,
    executable: !symlink && (mode & 0o111) !== 0,
  };
}
