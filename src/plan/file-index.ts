/**
 * Persistent index of file digests, so that unchanged files are not re-read on every run.
 *
 * An entry is keyed by the file's path relative to the root and remembers the `lstat` identity
 * the digest was computed for: size, mtime and ctime, inode and mode. A file whose identity is
 * unchanged is not read again; anything else (content edit, `touch`, chmod, replace, copy) makes
 * it re-hashed. ctime cannot be set from user space, so even an edit that restores the old mtime
 * is noticed. Times are compared as Node's (non-bigint) `mtimeMs`/`ctimeMs`: a double that
 * resolves ~0.25 us today, far finer than the kernel's file timestamp tick (milliseconds), and a
 * change after an entry was stored moves ctime by at least the racy margin below anyway. (The
 * bigint variant of `lstat` costs ~15% more per call in Node 20, plus its garbage.)
 *
 * Racy files (git's "racily clean" problem): with coarse file-system timestamps a file written
 * twice within one timestamp tick keeps its mtime. An entry is therefore only stored when the
 * file's mtime and ctime are older than the moment hashing started by more than `racyMs` (default
 * 2 s, which covers 1-2 s granularity file systems); recent files are simply hashed again next
 * time. A file that changes while it is read (its identity differs before and after) is re-read
 * (up to 3 times) and never stored.
 *
 * Directory listings (like git's untracked cache): the index also remembers the listing (names and
 * types) of every directory read through {@link FileIndex.listDir}, keyed by the directory's
 * `lstat` identity: mtime and ctime, inode and device. Creating, deleting or renaming
 * an entry changes its directory's mtime and ctime, so an unchanged identity means an unchanged
 * listing, and a warm walk costs one `lstat` per directory instead of a `readdir`. (A file's
 * contents do not show in its directory: that is what the per-file entries are for.) The racy
 * rule applies alike: a listing is only stored when the directory's mtime and ctime are older than
 * the moment it was read by more than `racyMs`.
 *
 * Storage: one binary file `<cacheDir>/file-index.bin` (default cacheDir
 * `<root>/.dist-build/index`), written to a temporary file and renamed into place, so readers see
 * either the old or the new index. It is laid out so that loading parses nothing per entry (see
 * {@link StoredIndex}): a warm run over 10,000 files spends its time in `lstat`, not in reading
 * the index. An unreadable, corrupt, truncated or foreign-format index (including older formats)
 * is ignored (cold start), never an error; failing to write it is not an error either. Entries
 * (files and directories) not used for 30 days are dropped when saving.
 *
 * Hashing: SHA-256 via node:crypto (OpenSSL, SHA-NI where available: several times faster than
 * coreutils `sha256sum`). Each file is read synchronously into one reused 1 MiB buffer (no
 * per-file allocation, no promise overhead: measured 2-3x faster than fs.promises with 8-32
 * concurrent reads). With real work (>= 64 files to hash) the calling thread and `threads` worker
 * threads (default: cores - 1, at most 3) pull batches from one queue; the calling thread starts
 * at once, so the ~25 ms a worker needs to boot is never waited for. The same hashing function
 * (one source text) runs on both.
 *
 * A warm run is two bursts of `lstat` calls (one per directory, one per file) and little else:
 * each is split between the calling thread (synchronous `lstat`, ~2.5 us each) and libuv's thread
 * pool working at the same time (see FileIndex.lstatEach). Worker threads are not used for this:
 * one needs ~25 ms to boot, about what the whole check takes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';

export interface FileIndexOptions {
  /** Directory that holds the index file (default `<root>/.dist-build/index`). */
  cacheDir?: string;
  /** Ignore the stored index (start cold); it is still written by {@link FileIndex.save}. */
  fresh?: boolean;
  /** Worker threads helping the calling thread hash (default: cores - 1, at most 3; 0 = none). */
  threads?: number;
  /** Files to hash from which worker threads are used at all (default 64). */
  poolMinFiles?: number;
  /**
   * Files (directories) modified less than this many ms before they are hashed (listed) are not
   * stored (default 2000).
   */
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
  /** Directory listings answered from the index (one `lstat` each). */
  dirHits: number;
  /** Directories read (`readdir`). */
  dirReads: number;
}

/**
 * What a directory holds, as the input walk needs it. `names` are sorted by UTF-16 code units,
 * a directory compared as `name/`, so that a depth-first walk meets full paths in sorted order;
 * `types` has one character per name: `d` directory, `f` regular file, `l` symlink (other kinds of
 * entries are left out).
 */
export interface DirListing {
  readonly names: readonly string[];
  readonly types: string;
}

/** Reads a directory (`readdir`; symlinks are entries, not followed) into a {@link DirListing}. */
export function readDirListing(abs: string): DirListing {
  const keyed: { key: string; name: string; type: string }[] = [];
  for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
    const type = e.isDirectory() ? 'd' : e.isFile() ? 'f' : e.isSymbolicLink() ? 'l' : '';
    if (type) keyed.push({ key: type === 'd' ? e.name + '/' : e.name, name: e.name, type });
  }
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { names: keyed.map((k) => k.name), types: keyed.map((k) => k.type).join('') };
}

/** The index file name inside the cache directory. */
export const INDEX_FILE = 'file-index.bin';
/** Where format 1 (JSON) was kept; removed when a new index is written. */
const LEGACY_INDEX_FILE = 'file-digests.json';
const DAY_MS = 86_400_000;
const KEEP_DAYS = 30;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** What the hashing function reports for one path. */
interface HashResult {
  size: number;
  mode: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  digest: string;
  /** Stable while read and old enough to be stored. */
  trusted: boolean;
  retries: number;
}
type HashOutcome = HashResult | { error: string; code?: string };

/** A file entry made in this session (`day` = last use, in days since the epoch). */
interface FileEntry {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  mode: number;
  /** SHA-256, hex. */
  digest: string;
  day: number;
}

/** A directory entry made in this session. */
interface DirEntry {
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
  day: number;
  listing: DirListing;
}

/*
 * The index file (all integers in the writer's byte order, which the header records; sections
 * start at multiples of 8 bytes):
 *
 *   header   8 x u32: magic "DBFI", version, byte-order mark 0x01020304, files F, dirs D,
 *            path text bytes, dir text bytes, CRC-32 of everything after the header
 *   F x 4 x f64   size, mtimeMs, ctimeMs, ino
 *   F x 2 x u32   mode, day
 *   (F+1) x u32   start of each path in the path text, in UTF-16 units (the last = its length)
 *   F x 32 bytes  SHA-256 digests
 *   D x 4 x f64   mtimeMs, ctimeMs, ino, dev
 *   D x 4 x u32   day, length of the dir's path, its entry count N, end of its record in the
 *                 dir text (UTF-16 units; a record starts where the previous one ends)
 *   path text     UTF-8: all file paths concatenated, sorted (UTF-16 order)
 *   dir text      UTF-8: per directory its path, then N type characters, then the N names
 *                 joined by NUL
 *
 * Loading decodes the two texts, checks the offsets and makes typed-array views: no object per
 * entry. A lookup in a
 * sorted request list (what the walk produces) is a merge with the sorted path text; anything
 * else falls back to a map built on first need.
 */
const MAGIC = 0x49464244; // "DBFI" little-endian
const VERSION = 2;
const BOM = 0x01020304;
const HEADER_BYTES = 32;

const align8 = (n: number): number => (n + 7) & ~7;

let crcTable: Uint32Array | undefined;
/** CRC-32 (as zlib's): zlib.crc32 where Node has it (>= 20.15), else the same in JS. */
const crc32: (data: Uint8Array) => number =
  typeof zlib.crc32 === 'function'
    ? (data) => zlib.crc32(data)
    : (data) => {
        if (!crcTable) {
          crcTable = new Uint32Array(256);
          for (let n = 0; n < 256; n++) {
            let c = n;
            for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
            crcTable[n] = c >>> 0;
          }
        }
        let c = 0xffffffff;
        for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
        return (c ^ 0xffffffff) >>> 0;
      };

/** Byte offsets of the sections of an index file with `f` files and `d` dirs. */
function layout(f: number, d: number, pathBytes: number, dirBytes: number) {
  const fnum = HEADER_BYTES;
  const fmeta = fnum + f * 32;
  const foff = fmeta + f * 8;
  const fdig = align8(foff + (f + 1) * 4);
  const dnum = align8(fdig + f * 32);
  const dmeta = dnum + d * 32;
  const ptext = dmeta + d * 16;
  const dtext = ptext + pathBytes;
  return { fnum, fmeta, foff, fdig, dnum, dmeta, ptext, dtext, end: dtext + dirBytes };
}

/** A loaded index file: views on its bytes, validated but not parsed per entry. */
class StoredIndex {
  private constructor(
    readonly files: number,
    /** size, mtimeMs, ctimeMs, ino per file. */
    readonly fnum: Float64Array,
    /** mode, day per file (day is updated in place). */
    readonly fmeta: Uint32Array,
    /** Path i is `ptext.slice(foff[i], foff[i + 1])`. */
    readonly foff: Uint32Array,
    readonly ptext: string,
    /** Raw digests, 32 bytes each. */
    readonly fdig: Buffer,
    readonly dirs: number,
    /** mtimeMs, ctimeMs, ino, dev per directory. */
    readonly dnum: Float64Array,
    /** day, path length, entry count, record end in `dtext` per directory (day updated). */
    readonly dmeta: Uint32Array,
    readonly dtext: string,
  ) {}

  /** Parses `data`; undefined when it is not a well-formed index of this version. */
  static parse(data: Buffer): StoredIndex | undefined {
    if (data.length < HEADER_BYTES) return undefined;
    let buf = data;
    if (buf.byteOffset % 8 !== 0) {
      buf = Buffer.alloc(data.length);
      data.copy(buf);
    }
    const head = new Uint32Array(buf.buffer, buf.byteOffset, HEADER_BYTES / 4);
    if (head[0] !== MAGIC || head[1] !== VERSION || head[2] !== BOM) return undefined;
    const [f, d, pathBytes, dirBytes] = [head[3]!, head[4]!, head[5]!, head[6]!];
    const at = layout(f, d, pathBytes, dirBytes);
    if (at.end !== buf.length || crc32(buf.subarray(HEADER_BYTES)) !== head[7]) return undefined;
    const u32 = (off: number, n: number) => new Uint32Array(buf.buffer, buf.byteOffset + off, n);
    const f64 = (off: number, n: number) => new Float64Array(buf.buffer, buf.byteOffset + off, n);
    const ptext = buf.toString('utf8', at.ptext, at.dtext);
    const dtext = buf.toString('utf8', at.dtext, at.end);
    // invalid UTF-8 (decoded to U+FFFD) would not re-encode to the same bytes
    if (Buffer.byteLength(ptext) !== pathBytes || Buffer.byteLength(dtext) !== dirBytes) {
      return undefined;
    }
    const foff = u32(at.foff, f + 1);
    const dmeta = u32(at.dmeta, d * 4);
    // offsets must be ascending and fit the texts (invalid UTF-8 would change their lengths)
    if (foff[0] !== 0 || foff[f] !== ptext.length) return undefined;
    for (let i = 0; i < f; i++) if (foff[i]! > foff[i + 1]!) return undefined;
    let start = 0;
    for (let k = 0; k < d; k++) {
      const types = start + dmeta[4 * k + 1]!;
      const n = dmeta[4 * k + 2]!;
      const end = dmeta[4 * k + 3]!;
      if (end < types + n || (n === 0 && end !== types)) return undefined;
      if (!/^[dfl]*$/.test(dtext.slice(types, types + n))) return undefined;
      start = end;
    }
    if (start !== dtext.length) return undefined;
    return new StoredIndex(
      f,
      f64(at.fnum, f * 4),
      u32(at.fmeta, f * 2),
      foff,
      ptext,
      buf.subarray(at.fdig, at.fdig + f * 32),
      d,
      f64(at.dnum, d * 4),
      dmeta,
      dtext,
    );
  }

  path(i: number): string {
    return this.ptext.slice(this.foff[i], this.foff[i + 1]);
  }

  /** Whether file entry i is `path`, without making a string. */
  isPath(i: number, path: string): boolean {
    const start = this.foff[i]!;
    return this.foff[i + 1]! - start === path.length && this.ptext.startsWith(path, start);
  }

  /** All digests as one hex string, made on first use (slicing it beats a conversion each). */
  private hex: string | undefined;

  digest(i: number): string {
    this.hex ??= this.fdig.toString('hex');
    return this.hex.slice(i * 64, i * 64 + 64);
  }

  private dirStart(k: number): number {
    return k === 0 ? 0 : this.dmeta[4 * k - 1]!;
  }

  dirPath(k: number): string {
    const start = this.dirStart(k);
    return this.dtext.slice(start, start + this.dmeta[4 * k + 1]!);
  }

  /** The listing of directory k (undefined if its record is damaged). */
  dirListing(k: number): DirListing | undefined {
    const types = this.dirStart(k) + this.dmeta[4 * k + 1]!;
    const n = this.dmeta[4 * k + 2]!;
    const names = n === 0 ? [] : this.dtext.slice(types + n, this.dmeta[4 * k + 3]).split('\0');
    if (names.length !== n) return undefined;
    return { names, types: this.dtext.slice(types, types + n) };
  }
}

/** One file entry to write: from the stored index (`i`) or made in this session. */
type OutFile = { path: string; i: number; e?: FileEntry };
type OutDir = { path: string; k: number; e?: DirEntry };

/** Encodes an index file (see {@link StoredIndex}). */
function encodeIndex(stored: StoredIndex | undefined, files: OutFile[], dirs: OutDir[]): Buffer {
  const ptext = files.map((o) => o.path).join('');
  const dparts: string[] = [];
  for (const o of dirs) {
    const listing = o.e ? o.e.listing : stored!.dirListing(o.k)!;
    dparts.push(o.path, listing.types, listing.names.join('\0'));
  }
  const dtext = dparts.join('');
  const pathBytes = Buffer.byteLength(ptext, 'utf8');
  const dirBytes = Buffer.byteLength(dtext, 'utf8');
  const f = files.length;
  const d = dirs.length;
  const at = layout(f, d, pathBytes, dirBytes);
  const buf = Buffer.alloc(at.end);
  const u32 = (off: number, n: number) => new Uint32Array(buf.buffer, buf.byteOffset + off, n);
  const f64 = (off: number, n: number) => new Float64Array(buf.buffer, buf.byteOffset + off, n);
  const head = u32(0, 8);
  head.set([MAGIC, VERSION, BOM, f, d, pathBytes, dirBytes, 0]);
  const fnum = f64(at.fnum, f * 4);
  const fmeta = u32(at.fmeta, f * 2);
  const foff = u32(at.foff, f + 1);
  let off = 0;
  for (let j = 0; j < f; j++) {
    const o = files[j]!;
    foff[j] = off;
    off += o.path.length;
    if (o.e) {
      fnum[4 * j] = o.e.size;
      fnum[4 * j + 1] = o.e.mtimeMs;
      fnum[4 * j + 2] = o.e.ctimeMs;
      fnum[4 * j + 3] = o.e.ino;
      fmeta[2 * j] = o.e.mode;
      fmeta[2 * j + 1] = o.e.day;
      buf.write(o.e.digest, at.fdig + 32 * j, 32, 'hex');
    } else {
      const s = stored!;
      fnum.set(s.fnum.subarray(4 * o.i, 4 * o.i + 4), 4 * j);
      fmeta.set(s.fmeta.subarray(2 * o.i, 2 * o.i + 2), 2 * j);
      s.fdig.copy(buf, at.fdig + 32 * j, 32 * o.i, 32 * o.i + 32);
    }
  }
  foff[f] = off;
  const dnum = f64(at.dnum, d * 4);
  const dmeta = u32(at.dmeta, d * 4);
  off = 0;
  for (let k = 0; k < d; k++) {
    const o = dirs[k]!;
    const len = dparts[3 * k]!.length + dparts[3 * k + 1]!.length + dparts[3 * k + 2]!.length;
    if (o.e) {
      dnum[4 * k] = o.e.mtimeMs;
      dnum[4 * k + 1] = o.e.ctimeMs;
      dnum[4 * k + 2] = o.e.ino;
      dnum[4 * k + 3] = o.e.dev;
      dmeta[4 * k] = o.e.day;
    } else {
      dnum.set(stored!.dnum.subarray(4 * o.k, 4 * o.k + 4), 4 * k);
      dmeta[4 * k] = stored!.dmeta[4 * o.k]!;
    }
    dmeta[4 * k + 1] = o.path.length;
    dmeta[4 * k + 2] = dparts[3 * k + 1]!.length;
    off += len;
    dmeta[4 * k + 3] = off;
  }
  buf.write(ptext, at.ptext, pathBytes, 'utf8');
  buf.write(dtext, at.dtext, dirBytes, 'utf8');
  head[7] = crc32(buf.subarray(HEADER_BYTES));
  return buf;
}

/** Sorts by path (UTF-16 code units: the order of the walk's output, near enough). */
const byPath = (a: { path: string }, b: { path: string }): number =>
  a.path < b.path ? -1 : a.path > b.path ? 1 : 0;

const HASH_PATH_SOURCE = String.raw`function hashPath(fs, crypto, buf, abs, marginMs, startMs) {
  for (let attempt = 0; ; attempt++) {
    const st = fs.lstatSync(abs);
    let digest;
    let after;
    if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(abs, { encoding: 'buffer' });
      digest = crypto.createHash('sha256').update(target).digest('hex');
      after = fs.lstatSync(abs);
    } else if (st.isFile()) {
      const fd = fs.openSync(abs, 'r');
      try {
        const h = crypto.createHash('sha256');
        let n;
        while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
        digest = h.digest('hex');
        after = fs.fstatSync(fd);
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
      after.mtimeMs === st.mtimeMs && after.ctimeMs === st.ctimeMs;
    if (!stable && attempt < 3) continue;
    return {
      size: st.size,
      mode: st.mode,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
      ino: st.ino,
      digest,
      trusted: stable && startMs - Math.max(st.mtimeMs, st.ctimeMs) > marginMs,
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
  const margin = job.marginMs;
  const start = job.startMs;
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
  marginMs: number,
  startMs: number,
) => HashResult;

let localHashFn: HashFn | undefined;
let localBuf: Buffer | undefined;

function hashLocal(abs: string, marginMs: number, startMs: number): HashOutcome {
  localHashFn ??= new Function(`return ${HASH_PATH_SOURCE};`)() as HashFn;
  localBuf ??= Buffer.allocUnsafe(1 << 20);
  try {
    return localHashFn(fs, crypto, localBuf, abs, marginMs, startMs);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { error: String(err.message), ...(err.code ? { code: err.code } : {}) };
  }
}

/** A slice of one `hash` call, processed by whichever thread takes it first. */
interface Batch {
  paths: string[];
  startMs: number;
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
    private readonly marginMs: number,
  ) {}

  /** Hashes `paths` (absolute); `startMs` is the wall-clock time hashing started. */
  async hash(paths: string[], startMs: number): Promise<HashOutcome[]> {
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
        startMs,
        done: (r) => {
          for (let k = 0; k < r.length; k++) results[offset + k] = r[k]!;
          if (--open === 0) resolveAll();
        },
      });
    }
    this.dispatch();
    while (this.queue.length > 0) {
      const b = this.queue.shift()!;
      b.done(b.paths.map((p) => hashLocal(p, this.marginMs, b.startMs)));
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
        marginMs: this.marginMs,
        startMs: b.startMs,
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
    if (b && !this.closed) b.done(b.paths.map((p) => hashLocal(p, this.marginMs, b.startMs)));
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

/** From how many `lstat` calls the thread pool helps (see {@link FileIndex.lstatMany}). */
const PARALLEL_LSTAT_MIN = 512;
/** The share of `lstat` calls made on the calling thread when the thread pool helps. */
const SYNC_LSTAT_SHARE = 0.35;
let cores: number | undefined;
const parallelism = (): number => (cores ??= availableParallelism());

function defaultThreads(): number {
  return Math.max(0, Math.min(3, availableParallelism() - 1));
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
    dirHits: 0,
    dirReads: 0,
  };
  /** The index as loaded (entries superseded or dropped since are flagged in `dead`). */
  private stored: StoredIndex | undefined;
  private dead = new Uint8Array(0);
  /** Stored path -> entry number; built on the first lookup the sorted merge cannot answer. */
  private storedMap: Map<string, number> | undefined;
  /** Stored directories: path -> entry number. */
  private storedDirs = new Map<string, number>();
  private deadDirs = new Uint8Array(0);
  /** Verdicts of {@link verify} per stored directory: 0 none, 1 unchanged, 2 changed or gone. */
  private dirCheck = new Uint8Array(0);
  /** Entries made in this session (they take precedence over stored ones). */
  private readonly added = new Map<string, FileEntry>();
  private readonly addedDirs = new Map<string, DirEntry>();
  /** `root` with a trailing separator: absolute paths by concatenation. */
  private readonly prefix: string;
  private readonly threads: number;
  private readonly poolMinFiles: number;
  private readonly marginMs: number;
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
    this.marginMs = opts.racyMs ?? 2000;
    this.now = opts.now ?? Date.now;
  }

  /** Opens the index for `root`, loading the stored one unless it is missing, corrupt or `fresh`. */
  static async open(root: string, opts: FileIndexOptions = {}): Promise<FileIndex> {
    const index = new FileIndex(root, opts);
    if (!opts.fresh) await index.load();
    return index;
  }

  private async load(): Promise<void> {
    let stored: StoredIndex | undefined;
    try {
      stored = StoredIndex.parse(await readFile(this.file));
    } catch {
      return; // missing or unreadable: cold
    }
    if (!stored) return; // corrupt or another format: cold
    this.stored = stored;
    this.dead = new Uint8Array(stored.files);
    this.deadDirs = new Uint8Array(stored.dirs);
    for (let k = 0; k < stored.dirs; k++) this.storedDirs.set(stored.dirPath(k), k);
    this.stats.loaded = true;
  }

  /** Number of entries currently held. */
  get size(): number {
    let n = this.added.size;
    const s = this.stored;
    if (s) for (let i = 0; i < s.files; i++) if (!this.dead[i]) n++;
    return n;
  }

  /** The live stored entry number of `path` (-1: none); `hint` is where a sorted merge stands. */
  private findStored(path: string, hint: number): number {
    const s = this.stored;
    if (!s) return -1;
    if (hint < s.files && s.isPath(hint, path)) return this.dead[hint] ? -1 : hint;
    if (!this.storedMap) {
      this.storedMap = new Map();
      for (let i = 0; i < s.files; i++) this.storedMap.set(s.path(i), i);
    }
    const i = this.storedMap.get(path);
    return i === undefined || this.dead[i] ? -1 : i;
  }

  /**
   * Checks every stored directory listing against the file system, in one burst of `lstat` calls
   * (shared with the thread pool, see {@link lstatEach}). The next {@link listDir} of each takes
   * the verdict instead of checking again, so call it right before walking, as computeCacheKeys
   * does. Without it, every listDir checks its directory itself; the results are the same.
   * (Files are checked by {@link getMany}, in a burst of their own: only those asked for.)
   */
  async verify(): Promise<void> {
    const s = this.stored;
    if (!s) return;
    const dirs: number[] = [];
    const abs: string[] = [];
    for (let k = 0; k < s.dirs; k++) {
      if (this.deadDirs[k]) continue;
      dirs.push(k);
      const rel = s.dirPath(k);
      abs.push(rel === '' ? this.root : this.prefix + rel);
    }
    const dirCheck = (this.dirCheck = new Uint8Array(s.dirs));
    await this.lstatEach(
      abs.length,
      (j) => abs[j]!,
      (j, st) => {
        const k = dirs[j]!;
        dirCheck[k] = st && st.isDirectory() && this.sameDir(k, st) ? 1 : 2;
      },
    );
  }

  /** Whether stored file i has the identity `st`. */
  private sameFile(i: number, st: fs.Stats): boolean {
    const n = this.stored!.fnum;
    return (
      st.mtimeMs === n[4 * i + 1] &&
      st.ctimeMs === n[4 * i + 2] &&
      st.size === n[4 * i] &&
      st.ino === n[4 * i + 3] &&
      st.mode === this.stored!.fmeta[2 * i]
    );
  }

  /** Whether stored directory k has the identity `st`. */
  private sameDir(k: number, st: fs.Stats): boolean {
    const n = this.stored!.dnum;
    return (
      n[4 * k] === st.mtimeMs &&
      n[4 * k + 1] === st.ctimeMs &&
      n[4 * k + 2] === st.ino &&
      n[4 * k + 3] === st.dev
    );
  }

  /** Marks stored file i as used today (the day is stored with it). */
  private touch(i: number, today: number): void {
    const meta = this.stored!.fmeta;
    if (meta[2 * i + 1] !== today) {
      meta[2 * i + 1] = today;
      this.dirty = true;
    }
  }

  /** Forgets `path` (a file that is gone, or changed too recently to be stored). */
  private forget(path: string, storedAt: number): void {
    if (this.added.delete(path)) this.dirty = true;
    if (storedAt >= 0 && !this.dead[storedAt]) {
      this.dead[storedAt] = 1;
      this.dirty = true;
    }
  }

  /**
   * The listing of directory `rel` (relative to the root, `''` = the root itself): from the index
   * when the directory's identity is unchanged, else read from disk (and stored unless racy).
   * Throws like `readdir` (missing directory, not a directory, no permission).
   */
  listDir(rel: string): DirListing {
    const today = Math.floor(this.now() / DAY_MS);
    const s = this.stored;
    const k = this.storedDirs.get(rel) ?? -1;
    if (k >= 0 && this.dirCheck[k] === 1) {
      this.dirCheck[k] = 0; // a verdict answers one lookup
      const listing = this.deadDirs[k] || this.addedDirs.has(rel) ? undefined : s!.dirListing(k);
      if (listing) {
        this.stats.dirHits++;
        this.touchDir(k, today);
        return listing;
      }
    }
    const abs = rel === '' ? this.root : this.prefix + rel;
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st || !st.isDirectory()) return readDirListing(abs); // throws the usual error
    const added = this.addedDirs.get(rel);
    if (
      added &&
      added.mtimeMs === st.mtimeMs &&
      added.ctimeMs === st.ctimeMs &&
      added.ino === st.ino &&
      added.dev === st.dev
    ) {
      this.stats.dirHits++;
      return added.listing;
    }
    if (k >= 0 && !this.deadDirs[k] && !added && this.sameDir(k, st)) {
      const listing = s!.dirListing(k);
      if (listing) {
        this.stats.dirHits++;
        this.touchDir(k, today);
        return listing;
      }
    }
    this.stats.dirReads++;
    const listing = readDirListing(abs);
    if (k >= 0 && !this.deadDirs[k]) {
      this.deadDirs[k] = 1;
      this.dirty = true;
    }
    if (this.now() - Math.max(st.mtimeMs, st.ctimeMs) > this.marginMs) {
      const { mtimeMs, ctimeMs, ino, dev } = st;
      this.addedDirs.set(rel, { mtimeMs, ctimeMs, ino, dev, day: today, listing });
      this.dirty = true;
    } else if (this.addedDirs.delete(rel)) {
      this.dirty = true;
    }
    return listing;
  }

  /**
   * Calls `fn(j, lstat of pathOf(j))` for every j < n (undefined on any error), in no particular
   * order.
   * Checking a warm tree is a burst of `lstat` calls of a few microseconds of system time each:
   * with more than one core, the calling thread does the first part synchronously while libuv's
   * thread pool does the rest (all queued up front, so that the pool works while the calling
   * thread does). Measured on 2 cores: ~20% less wall time than all on the calling thread. Each
   * Stats object is dropped at once (keeping thousands alive makes every scavenge copy them).
   */
  private async lstatEach(
    n: number,
    pathOf: (j: number) => string,
    fn: (j: number, st: fs.Stats | undefined) => void,
  ): Promise<void> {
    const split =
      n >= PARALLEL_LSTAT_MIN && parallelism() > 1 ? Math.ceil(n * SYNC_LSTAT_SHARE) : n;
    let pending: Promise<void> | undefined;
    if (split < n) {
      pending = new Promise<void>((resolve) => {
        let left = n - split;
        for (let j = split; j < n; j++) {
          fs.lstat(pathOf(j), (err, st) => {
            fn(j, err ? undefined : st);
            if (--left === 0) resolve();
          });
        }
      });
    }
    for (let j = 0; j < split; j++) {
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(pathOf(j), { throwIfNoEntry: false });
      } catch {
        // not a directory on the way, no permission, ...: a miss
      }
      fn(j, st);
    }
    await pending;
  }

  private touchDir(k: number, today: number): void {
    const meta = this.stored!.dmeta;
    if (meta[4 * k] !== today) {
      meta[4 * k] = today;
      this.dirty = true;
    }
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
   * is missing or is not a regular file or symlink. Fastest for sorted lists (as the walk returns).
   */
  async getMany(paths: readonly string[]): Promise<FileDigest[]> {
    const out = new Array<FileDigest>(paths.length);
    const today = Math.floor(this.now() / DAY_MS);
    const s = this.stored;
    const hasAdded = this.added.size > 0;

    // 1. what the index holds for each path: an entry of this session, or a stored one (k)
    const entries: (FileEntry | undefined)[] = hasAdded ? new Array(paths.length) : [];
    const stored = new Int32Array(paths.length).fill(-1);
    /** Paths with an entry to check (their `lstat` decides hit or miss). */
    const check: number[] = [];
    /** 1 = to hash. */
    const miss = new Uint8Array(paths.length);
    let cursor = 0;
    for (let i = 0; i < paths.length; i++) {
      const path = paths[i]!;
      const entry = hasAdded ? this.added.get(path) : undefined;
      if (entry) {
        entries[i] = entry;
        check.push(i);
        continue;
      }
      const k = this.findStored(path, cursor);
      stored[i] = k;
      if (k < 0) {
        miss[i] = 1;
        continue;
      }
      cursor = k + 1;
      check.push(i);
    }

    // 2. lstat those and compare identities (any error is a miss: hashing reports it)
    const verify = (i: number, st: fs.Stats | undefined): void => {
      const entry = hasAdded ? entries[i] : undefined;
      if (!st) {
        miss[i] = 1;
      } else if (entry) {
        if (
          st.mtimeMs === entry.mtimeMs &&
          st.ctimeMs === entry.ctimeMs &&
          st.size === entry.size &&
          st.ino === entry.ino &&
          st.mode === entry.mode
        ) {
          this.stats.hits++;
          out[i] = toDigest(paths[i]!, entry.mode, entry.size, entry.digest);
        } else {
          miss[i] = 1;
        }
      } else {
        const k = stored[i]!;
        if (this.sameFile(k, st)) {
          this.stats.hits++;
          this.touch(k, today);
          out[i] = toDigest(paths[i]!, st.mode, st.size, s!.digest(k));
        } else {
          miss[i] = 1;
        }
      }
    };
    await this.lstatEach(
      check.length,
      (j) => this.prefix + paths[check[j]!]!,
      (j, st) => verify(check[j]!, st),
    );

    const missIdx: number[] = [];
    /** Stored entry number of each miss (-1: none), to drop it when the file is gone. */
    const missStored: number[] = [];
    for (let i = 0; i < paths.length; i++) {
      if (miss[i]) {
        missIdx.push(i);
        missStored.push(stored[i]!);
      }
    }
    if (missIdx.length === 0) return out;

    const abs = missIdx.map((i) => this.prefix + paths[i]!);
    const startMs = this.now();
    let results: HashOutcome[];
    if (this.threads > 0 && missIdx.length >= this.poolMinFiles) {
      this.pool ??= new HashPool(this.threads, this.marginMs);
      results = await this.pool.hash(abs, startMs);
    } else {
      results = abs.map((p) => hashLocal(p, this.marginMs, startMs));
    }

    const errors: string[] = [];
    missIdx.forEach((i, j) => {
      const path = paths[i]!;
      const r = results[j]!;
      const k = missStored[j]!;
      if ('error' in r) {
        this.forget(path, k);
        errors.push(r.code === 'ENOENT' ? `input file "${path}" does not exist` : r.error);
        return;
      }
      const size = r.size;
      this.stats.hashed++;
      this.stats.bytesHashed += size;
      this.stats.retries += r.retries;
      this.opts.onHash?.(path);
      if (r.trusted) {
        const { mtimeMs, ctimeMs, ino, mode, digest } = r;
        this.added.set(path, { size, mtimeMs, ctimeMs, ino, mode, digest, day: today });
        if (k >= 0) this.dead[k] = 1;
        this.dirty = true;
      } else {
        this.forget(path, k);
      }
      out[i] = toDigest(path, r.mode, size, r.digest);
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
    const s = this.stored;
    const files: OutFile[] = [];
    const dirs: OutDir[] = [];
    if (s) {
      for (let i = 0; i < s.files; i++) {
        if (!this.dead[i] && s.fmeta[2 * i + 1]! >= minDay && !this.added.has(s.path(i))) {
          files.push({ path: s.path(i), i });
        }
      }
      for (const [path, k] of this.storedDirs) {
        if (!this.deadDirs[k] && s.dmeta[4 * k]! >= minDay && !this.addedDirs.has(path)) {
          if (s.dirListing(k)) dirs.push({ path, k });
        }
      }
    }
    for (const [path, e] of this.added) if (e.day >= minDay) files.push({ path, i: -1, e });
    for (const [path, e] of this.addedDirs) if (e.day >= minDay) dirs.push({ path, k: -1, e });
    files.sort(byPath);
    const data = encodeIndex(s, files, dirs);
    const tmp = `${this.file}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(this.file), { recursive: true });
      await writeFile(tmp, data);
      await rename(tmp, this.file);
      this.dirty = false;
    } catch {
      await unlink(tmp).catch(() => undefined);
      return false;
    }
    await unlink(join(dirname(this.file), LEGACY_INDEX_FILE)).catch(() => undefined);
    return true;
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
