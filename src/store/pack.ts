/**
 * Packing an invocation's declared outputs into store blobs, and restoring them.
 *
 * Format: one tar blob per declared output path (`OutputEntry`), POSIX ustar (tar.ts writes it
 * byte for byte as tar-stream, which wrote earlier blobs; pax headers only for names or link
 * targets that need them: long or non-ASCII). Packing is deterministic, so the same tree gives
 * the same digest on any machine:
 * - entries are named by their path relative to the work root, posix separators
 *   (`out/core/api.json`); directories end in `/` and include the output directory itself;
 * - entries are sorted by the byte order of their UTF-8 names (parents come before children);
 * - mtime 0, uid/gid 0, no uname/gname; modes are reduced to 0755 (directories, symlinks, files
 *   with any exec bit) or 0644 (other files);
 * - symlinks are stored as links with their target text, never followed.
 * Only regular files, directories and symlinks are packed: a socket, FIFO or device inside an
 * output is an `UnsafeArchiveError`, and so is a symlink that restoring would reject (below), so a
 * result that can never be restored is not stored.
 *
 * Both directions work like `tar` itself: plain system calls on 1 MiB slots, no stream layers,
 * with the SHA-256 on the hashing thread for big outputs (hash-pipe.ts), so the hash costs
 * (almost) no time beside the file I/O. The event loop gets a turn at least every few MiB.
 *
 * Saving reads the tree once: each output is packed (two outputs at a time, side by side, so their
 * hashes use two cores) into a temporary file, hashed as it is written (in the store's `tempDir()` when it has one, else under `<root>/.dist-build/tmp/`); then
 * one `hasBlobs` for all of them, and only missing blobs are handed to the store
 * (`adoptBlobFile`, a rename for the local store, or `putBlobFile`); temporary files are always
 * removed. Memory stays bounded: at most `SLOTS_PER_PIPE` slots per output are in flight.
 *
 * Restoring extracts each blob into a staging directory under `<root>/.dist-build/staging/` (same
 * filesystem as the outputs), hashing the whole stream on the way; only when the stream has ended
 * and matched its digest is the old output path moved away and the staged one renamed into place.
 * Extraction rejects, with an `UnsafeArchiveError` naming the entry and before anything is
 * placed: absolute names, `..` segments, entries outside the declared output path, entries below
 * a file or symlink entry, duplicate entries, hard links, devices, FIFOs, entries larger than
 * `maxEntryBytes`, and symlinks whose target is absolute, has a `..` after a name (`a/../..`) or
 * resolves outside the declared output path. A symlink that is the declared output itself may
 * point anywhere inside the work root instead. Restored files get mode 0755 or 0644 (as packed)
 * and the current time as mtime; directories are created in archive order and file bodies are
 * written straight from the input chunks. The mode is set through `open()`/`mkdir()`; a chmod
 * follows only where the umask removed bits.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  close as fsClose,
  closeSync,
  constants as fsConstants,
  fchmodSync,
  fstatSync,
  mkdirSync,
  open as fsOpen,
  openSync,
  readSync,
  symlinkSync,
  write as fsWrite,
  writeSync,
} from 'node:fs';
import type { Dirent, Stats } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rename, rm } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { isVerifiedFor, verifiedStream } from './digest.js';
import {
  addWriteBits,
  isNoSpace,
  isNotFound,
  isPermissionError,
  leftByDead,
  parentOutside,
  removeTree,
} from './fsutil.js';
import { HashPipe, SLOT } from './hash-pipe.js';
import { mapLimit } from './limit.js';
import { END_OF_ARCHIVE, padding, TarReader, writeHeader } from './tar.js';
import type { TarHandler, TarReadHeader, TarWriteHeader } from './tar.js';
import type { BlobOpener, BlobSource, OutputEntry, Store } from './types.js';
import {
  assertDigest,
  CorruptBlobError,
  MissingOutputError,
  outputPathProblem,
  UnsafeArchiveError,
} from './types.js';

/** Default `maxEntryBytes`: 8 GiB. */
export const DEFAULT_MAX_ENTRY_BYTES = 8 * 1024 ** 3;

export interface RestoreOptions {
  /** Largest file entry accepted (bytes). Default 8 GiB. */
  maxEntryBytes?: number;
  /** Where outputs are staged, on the file system of `root` (default `<root>/.dist-build/staging`). */
  stagingDir?: string;
}

const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
/** Outputs packed at once. */
const PACKERS = 2;
/** A staging directory of a process that is gone is removed once it is this old (see restoreOutputs). */
const STALE_STAGING_MS = 3600_000;

type Kind = 'dir' | 'file' | 'symlink';

/** One thing to pack, found by `collect`. */
interface Item {
  /** Tar name: root-relative, posix; directories end in `/`. */
  name: string;
  abs: string;
  kind: Kind;
  /** Symlink target. */
  target?: string;
}

/**
 * Packs each declared output (relative to `root`) into one tar blob in `store` and describes it.
 * Duplicate paths are packed once; the entries come back in the order the paths were given.
 */
export async function saveOutputs(
  store: Store,
  root: string,
  outputs: readonly string[],
): Promise<OutputEntry[]> {
  const paths = [...new Set(outputs.map(normalizeOutputPath))];
  if (paths.length === 0) return [];
  const adopt = store.tempDir && store.adoptBlobFile ? store.adoptBlobFile.bind(store) : undefined;
  const tempDir = adopt && store.tempDir ? await store.tempDir() : join(root, '.dist-build', 'tmp');
  await mkdir(tempDir, { recursive: true });
  const temps: string[] = [];
  try {
    // The disk under the store is full: the store makes room (evicting), and the write is tried
    // once more.
    const roomy = async <T>(write: () => Promise<T>): Promise<T> => {
      try {
        return await write();
      } catch (err) {
        if (!isNoSpace(err) || !store.makeRoom || (await store.makeRoom()) === 0) throw err;
        return write();
      }
    };
    // Two outputs are packed side by side: each hash is sequential, so that uses two cores.
    const packed = await mapLimit(paths, PACKERS, async (path) => {
      const { type, items } = await collect(root, path);
      let file = '';
      const { digest, size } = await roomy(async () => {
        if (file) await rm(file, { force: true });
        file = join(tempDir, `${process.pid}-${randomBytes(8).toString('hex')}.tar`);
        temps.push(file);
        return packToFile(items, file);
      });
      const entry: OutputEntry = { path, type, digest, size, files: items.length };
      return { entry, file };
    });
    // Layered: write what any layer lacks (each layer skips a blob it holds).
    const digests = packed.map((p) => p.entry.digest);
    const present = await (store.storedEverywhere
      ? store.storedEverywhere(digests)
      : store.hasBlobs(digests));
    for (const { entry, file } of packed) {
      if (present.has(entry.digest)) continue;
      present.add(entry.digest); // two outputs with identical trees share a blob
      const stored = await roomy(() =>
        adopt ? adopt(file, entry.digest) : store.putBlobFile(file),
      );
      if (stored.digest !== entry.digest) {
        throw new CorruptBlobError(
          entry.digest,
          stored.digest,
          `packed output ${entry.path} was modified before it was stored`,
        );
      }
    }
    return packed.map((p) => p.entry);
  } finally {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
  }
}

/**
 * What `saveOutputs` would describe, without storing anything: each output packed as it would be
 * and hashed, the bytes thrown away (the outputs of a build whose store has no room left).
 */
export async function digestOutputs(
  root: string,
  outputs: readonly string[],
): Promise<OutputEntry[]> {
  const paths = [...new Set(outputs.map(normalizeOutputPath))];
  return mapLimit(paths, PACKERS, async (path) => {
    const { type, items } = await collect(root, path);
    const { digest, size } = await packToFile(items, null);
    return { path, type, digest, size, files: items.length };
  });
}

/** Opens blobs from a store (its streams are verified). */
export function blobOpenerFor(store: Store): BlobOpener {
  return store.openBlobChunks
    ? (digest) => store.openBlobChunks!(digest)
    : (digest) => store.openBlob(digest);
}

/** Whether every output path exists under `root` (no hashing, no content check). */
export async function outputsPresent(
  root: string,
  entries: readonly Pick<OutputEntry, 'path'>[],
): Promise<boolean> {
  for (const e of entries) {
    if (outputPathProblem(e.path) !== null) return false;
    if (!(await lstat(join(root, ...e.path.split('/'))).catch(() => null))) return false;
  }
  return true;
}

/**
 * Restores outputs under `root` from their blobs, one after the other (see the module comment).
 * A missing blob, a corrupt blob or an unsafe entry throws before that output's path is touched;
 * outputs restored before it stay restored.
 */
export async function restoreOutputs(
  open: BlobOpener,
  root: string,
  entries: readonly OutputEntry[],
  opts: RestoreOptions = {},
): Promise<void> {
  const maxEntryBytes = opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  const stagingRoot = opts.stagingDir ?? join(root, '.dist-build', 'staging');
  // What a process killed while it restored left there (named by its pid) would stay for ever.
  // Only after an hour: a pid that looks gone may be a live restore in another PID namespace
  // sharing the tree (a container).
  for (const { name } of leftByDead(stagingRoot, (n) => Number(/^(\d+)-/.exec(n)?.[1]))) {
    const st = await lstat(join(stagingRoot, name)).catch(() => null);
    if (st && Date.now() - st.mtimeMs > STALE_STAGING_MS) await removeTree(join(stagingRoot, name));
  }
  for (const entry of entries) {
    const problem = outputPathProblem(entry.path);
    if (problem) throw new UnsafeArchiveError(entry.path, `the output path ${problem}`);
    assertDigest(entry.digest);
    const source = await open(entry.digest);
    if (!source) throw new Error(`blob ${entry.digest} of output ${entry.path} is missing`);
    const stage = join(stagingRoot, `${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(stage, { recursive: true });
      await extractInto(source, entry, stage, maxEntryBytes);
      await place(root, entry.path, join(stage, ...entry.path.split('/')), `${stage}.old`);
    } finally {
      destroyQuietly(source);
      await rm(stage, { recursive: true, force: true });
      // What the output held before: a command's own output may hold read-only directories.
      await removeTree(`${stage}.old`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Packing

function normalizeOutputPath(path: string): string {
  let p = path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (p !== '' && !p.startsWith('/')) p = posix.normalize(p);
  const problem = outputPathProblem(p);
  if (problem) throw new TypeError(`declared output ${JSON.stringify(path)} ${problem}`);
  return p;
}

/** Walks one output (without following symlinks) and returns its entries in tar order. */
async function collect(root: string, out: string): Promise<{ type: Kind; items: Item[] }> {
  const abs = join(root, ...out.split('/'));
  let st: Stats;
  try {
    st = await lstat(abs);
  } catch (err) {
    if (isNotFound(err)) throw new MissingOutputError(out);
    throw err;
  }
  const type = kindOf(st, out);
  const items: Item[] = [];
  await visit(items, out, out, abs, type);
  items.sort((a, b) => compareUtf8(a.name, b.name));
  return { type, items };
}

/**
 * Orders strings as their UTF-8 bytes would be ordered (= code point order) without encoding
 * them: UTF-16 code units order the same except that surrogates (code points above U+FFFF) must
 * come after U+E000-U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return rank(x) - rank(y);
    return x - y;
  }
  return a.length - b.length;
}

function rank(unit: number): number {
  // U+D800-U+DFFF (surrogates) above U+E000-U+FFFF.
  return unit >= 0xe000 ? unit - 0x800 : unit >= 0xd800 ? unit + 0x2000 : unit;
}

async function visit(items: Item[], out: string, name: string, abs: string, kind: Kind) {
  if (kind === 'file') {
    items.push({ name, abs, kind });
  } else if (kind === 'symlink') {
    const target = await readlink(abs);
    const problem = symlinkProblem(name, target, name === out ? '' : out);
    if (problem) throw new UnsafeArchiveError(name, problem);
    items.push({ name, abs, kind, target });
  } else {
    items.push({ name: `${name}/`, abs, kind });
    let entries: Dirent[];
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch (err) {
      throw isPermissionError(err) ? unreadable(name, err) : err;
    }
    for (const d of entries) {
      const childName = `${name}/${d.name}`;
      await visit(items, out, childName, join(abs, d.name), kindOf(d, childName));
    }
  }
}

function kindOf(st: Stats | Dirent, name: string): Kind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  const what = st.isSocket()
    ? 'a socket'
    : st.isFIFO()
      ? 'a FIFO'
      : st.isCharacterDevice() || st.isBlockDevice()
        ? 'a device'
        : 'not a file, directory or symlink';
  throw new UnsafeArchiveError(name, `is ${what}; only files, directories and symlinks are packed`);
}

/**
 * Packs `items` (already sorted) into a new file and returns the tar's digest and size. With
 * `file` null, the tar goes nowhere: only its digest and size are made (`digestOutputs`).
 *
 * Like `tar -c`, with plain system calls: headers and file contents go straight into slot
 * buffers (file contents by `read` into the slot, no copy), and each full slot is written to the
 * file (asynchronously, at its offset) and hashed (`HashPipe`: on the hashing thread for big
 * outputs) while the next one fills. At most `SLOTS_PER_PIPE` slots are in flight, so memory is
 * bounded whatever the output size, and the event loop gets a turn at least every few slots.
 */
async function packToFile(
  items: readonly Item[],
  file: string | null,
): Promise<{ digest: string; size: number }> {
  const out =
    file === null
      ? await fdOpen('/dev/null', fsConstants.O_WRONLY)
      : await fdOpen(
          file,
          fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW,
        );
  const pipe = new HashPipe();
  const writes = new Set<Promise<void>>();
  let writeError: unknown;
  let failedWrite = false;
  let offset = 0;
  let buf = await pipe.acquire();
  let pos = 0;
  const send = (): void => {
    const length = pos;
    const at = offset;
    const slot = buf;
    const w = writeFully(out, slot, length, at).then(
      () => void writes.delete(w),
      (err: unknown) => {
        writes.delete(w);
        if (!failedWrite) [failedWrite, writeError] = [true, err];
      },
    );
    writes.add(w);
    offset += length;
    pipe.submit(slot, length, w);
  };
  const flush = async (): Promise<void> => {
    send();
    buf = await pipe.acquire();
    pos = 0;
    if (failedWrite) throw writeError;
  };
  try {
    for (const item of items) {
      let fd: number | undefined;
      try {
        let header: TarWriteHeader;
        if (item.kind === 'dir') {
          header = { name: item.name, type: 'directory', mode: 0o755, size: 0 };
        } else if (item.kind === 'symlink') {
          header = {
            name: item.name,
            type: 'symlink',
            mode: 0o755,
            size: 0,
            linkname: item.target!,
          };
        } else {
          fd = openForPacking(item);
          const st = fstatSync(fd);
          if (!st.isFile()) throw changed(item.name, 'was replaced');
          header = {
            name: item.name,
            type: 'file',
            mode: st.mode & 0o111 ? 0o755 : 0o644,
            size: st.size,
          };
        }
        let n = writeHeader(buf, pos, SLOT, header);
        if (n === 0) {
          await flush();
          n = writeHeader(buf, pos, SLOT, header);
          if (n === 0) throw new UnsafeArchiveError(item.name, 'has a name too long to pack');
        }
        pos += n;
        if (fd !== undefined) {
          // Exactly `size` bytes (as stat'ed), straight into the slot.
          for (let left = header.size, at = 0; left > 0;) {
            if (pos === SLOT) await flush();
            const bytesRead = readSync(fd, buf, pos, Math.min(SLOT - pos, left), at);
            if (bytesRead === 0) throw changed(item.name, 'shrank');
            pos += bytesRead;
            at += bytesRead;
            left -= bytesRead;
          }
          // Headers start on block boundaries and SLOT is a multiple of the block: this fits.
          const pad = padding(header.size);
          buf.fill(0, pos, pos + pad);
          pos += pad;
        }
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    }
    if (SLOT - pos < END_OF_ARCHIVE.length) await flush();
    END_OF_ARCHIVE.copy(buf, pos);
    pos += END_OF_ARCHIVE.length;
    send();
    while (writes.size > 0) await Promise.all(writes);
    if (failedWrite) throw writeError;
    return { digest: await pipe.digest(), size: offset };
  } catch (err) {
    pipe.dispose();
    while (writes.size > 0) await Promise.all(writes);
    throw err;
  } finally {
    await fdClose(out);
  }
}

function openForPacking(item: Item): number {
  try {
    // O_NOFOLLOW: a file replaced by a symlink since the walk is not followed.
    return openSync(item.abs, fsConstants.O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (isPermissionError(err)) throw unreadable(item.name, err);
    throw isNotFound(err) || code === 'ELOOP' ? changed(item.name, 'disappeared') : err;
  }
}

/**
 * An output entry the worker may not read (a file or directory the command left without read
 * permission): it cannot be packed, on any worker, as a FIFO cannot.
 */
function unreadable(name: string, err: unknown): UnsafeArchiveError {
  return new UnsafeArchiveError(name, `cannot be read (${(err as Error).message})`);
}

async function writeFully(fd: number, buf: Buffer, length: number, position: number) {
  for (let done = 0; done < length;) {
    done += await fdWrite(fd, buf, done, length - done, position + done);
  }
}

// The callback API on plain descriptors costs less per call than `FileHandle`.
const fdOpen = (path: string, flags: number, mode = 0o666) =>
  new Promise<number>((res, rej) => fsOpen(path, flags, mode, (e, fd) => (e ? rej(e) : res(fd))));
const fdWrite = (fd: number, buf: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((res, rej) =>
    fsWrite(fd, buf, offset, length, position, (e, n) => (e ? rej(e) : res(n))),
  );
const fdClose = (fd: number) =>
  new Promise<void>((res, rej) => fsClose(fd, (e) => (e ? rej(e) : res())));

function changed(name: string, what: string): Error {
  return new Error(`output file ${name} ${what} while packing`);
}

// ---------------------------------------------------------------------------------------------
// Restoring

/**
 * Extracts one output's blob under `stage` (names stay root-relative). Like `tar -x`: the archive
 * is parsed as its chunks arrive and every entry is checked, then created with plain system calls
 * (file bodies are written straight from the input chunks); the stream's own verification (the
 * blob's digest) settles whether the staged tree may be placed.
 */
async function extractInto(
  source: BlobSource,
  entry: OutputEntry,
  stage: string,
  maxEntryBytes: number,
): Promise<void> {
  const out = entry.path;
  const input: BlobSource = isVerifiedFor(source, entry.digest)
    ? source
    : verifiedStream(source as Readable, entry.digest);
  await mkdir(join(stage, ...posix.dirname(out).split('/')), { recursive: true });
  const extractor = new Extractor(out, stage, maxEntryBytes, (await lstat(stage)).mode & 0o777);
  const reader = new TarReader(extractor);
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) reader.write(chunk);
    reader.end();
  } finally {
    extractor.close();
    destroyQuietly(input);
  }
  if (!extractor.seen.has(out)) {
    throw new Error(`blob ${entry.digest} holds nothing for output ${out}`);
  }
}

/** Checks and creates the entries of one archive (see `restoreOutputs`). */
class Extractor implements TarHandler {
  readonly seen = new Map<string, Kind>();
  /** The parent of the last entry, checked to be a directory of this archive. */
  private lastParent: string | undefined;
  /** The file being written. */
  private fd: number | undefined;
  private fdMode = 0;
  private fixMode = false;

  /**
   * @param kept permission bits that survive creation here (umask, default ACLs): chmod only
   *   what loses some.
   */
  constructor(
    private readonly out: string,
    private readonly stage: string,
    private readonly maxEntryBytes: number,
    private readonly kept: number,
  ) {}

  entry(header: TarReadHeader): void {
    const { out, stage, seen } = this;
    const raw = header.name;
    const unsafe = (reason: string) => new UnsafeArchiveError(raw, reason);
    let kind: Kind;
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        kind = 'file';
        break;
      case 'directory':
        kind = 'dir';
        break;
      case 'symlink':
        kind = 'symlink';
        break;
      case 'link':
        throw unsafe('is a hard link');
      case 'character-device':
      case 'block-device':
        throw unsafe('is a device');
      case 'fifo':
        throw unsafe('is a FIFO');
      default:
        throw unsafe(`has an unsupported type (${header.type ?? 'unknown'})`);
    }
    const name = kind === 'dir' && raw.endsWith('/') ? raw.slice(0, -1) : raw;
    if (name.startsWith('/')) throw unsafe('is an absolute path');
    if (name.split('/').includes('..')) throw unsafe('has a ".." segment');
    const problem = outputPathProblem(name);
    if (problem) throw unsafe(`name ${problem}`);
    if (name !== out && !name.startsWith(`${out}/`)) {
      throw unsafe(`is outside the declared output ${out}`);
    }
    const size = header.size;
    if (kind === 'file' && size > this.maxEntryBytes) {
      throw unsafe(`is ${size} bytes, more than the limit of ${this.maxEntryBytes}`);
    }
    const target = header.linkname ?? '';
    if (kind === 'symlink') {
      const linkProblem = symlinkProblem(name, target, name === out ? '' : out);
      if (linkProblem) throw unsafe(linkProblem);
    }
    const before = seen.get(name);
    if (before !== undefined) {
      if (before === 'dir' && kind === 'dir') return;
      throw unsafe('appears twice in the archive');
    }
    // Parents inside the output must be directories of this archive (created here if the archive
    // does not list them), never a file or a symlink to write through. Entries come sorted, so
    // most share the previous entry's parent, which is known to be a directory.
    if (name !== out) {
      const parentOf = name.slice(0, name.lastIndexOf('/'));
      if (parentOf !== this.lastParent) {
        const segs = name.split('/');
        for (let i = out.split('/').length; i < segs.length; i++) {
          const parent = segs.slice(0, i).join('/');
          const t = seen.get(parent);
          if (t === undefined) {
            this.mkdir(join(stage, parent));
            seen.set(parent, 'dir');
          } else if (t !== 'dir') {
            throw unsafe(`is inside ${parent}, which is a ${t === 'file' ? 'file' : 'symlink'}`);
          }
        }
        this.lastParent = parentOf;
      }
    }
    // The name is in normal form (checked above) and `stage` is a normalized absolute path:
    // plain concatenation is what `join` would give, without its normalizing pass per entry.
    const dest = `${stage}/${name}`;
    seen.set(name, kind);
    if (kind === 'file') {
      const mode = header.mode & 0o111 ? 0o755 : 0o644;
      this.fd = openSync(
        dest,
        fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW,
        mode,
      );
      this.fdMode = mode;
      this.fixMode = (mode & this.kept) !== mode; // exactly `mode`, whatever the umask
    } else if (kind === 'dir') {
      this.mkdir(dest);
    } else {
      symlinkSync(target, dest);
    }
  }

  data(chunk: Buffer): void {
    if (this.fd === undefined) return; // the body of a directory or symlink: nothing to keep
    for (let done = 0; done < chunk.length;) {
      done += writeSync(this.fd, chunk, done, chunk.length - done);
    }
  }

  entryEnd(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      if (this.fixMode) fchmodSync(fd, this.fdMode);
    } finally {
      closeSync(fd);
    }
  }

  /** Closes the file being written, if any (after a failure). */
  close(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      // already failing: the staging directory is removed anyway
    }
    this.fd = undefined;
  }

  private mkdir(path: string): void {
    mkdirSync(path, { mode: 0o755 });
    if ((0o755 & this.kept) !== 0o755) chmodSync(path, 0o755);
  }
}

/** Replaces `<root>/<out>` with the staged tree: old path moved aside, staged renamed in. */
async function place(root: string, out: string, staged: string, aside: string): Promise<void> {
  const dest = join(root, ...out.split('/'));
  // The parent must really be inside the root (a symlinked parent pointing elsewhere would make
  // the rename write outside the work tree). Check before creating anything.
  if (await parentOutside(root, dest)) {
    throw new UnsafeArchiveError(out, `its parent directory resolves outside the work root`);
  }
  await mkdir(dirname(dest), { recursive: true });
  let moved = false;
  try {
    await rename(dest, aside);
    moved = true;
  } catch (err) {
    if (!isNotFound(err) && !isPermissionError(err)) throw err;
    if (isPermissionError(err)) {
      // A read-only directory cannot move to another parent (its `..` changes): made writable.
      await addWriteBits(dest);
      await rename(dest, aside);
      moved = true;
    }
  }
  try {
    await rename(staged, dest);
  } catch (err) {
    if (moved) await rename(aside, dest).catch(() => {});
    throw err;
  }
}

/**
 * Why a symlink at `name` (root-relative) with target `target` is unsafe, or `null`. The target
 * must be relative, may only have `..` segments at its start (so resolving it lexically is what
 * the filesystem does: it climbs real directories, then descends through entries that are
 * themselves confined), and must resolve inside `scope` (a root-relative directory; `''` = the
 * work root).
 */
function symlinkProblem(name: string, target: string, scope: string): string | null {
  if (target === '') return 'is a symlink with an empty target';
  if (target.includes('\0')) return 'is a symlink whose target contains a NUL character';
  if (target.startsWith('/')) return `is a symlink to an absolute path (${target})`;
  let descending = false;
  for (const seg of target.split('/')) {
    if (seg === '..') {
      if (descending) return `is a symlink whose target has ".." after a name (${target})`;
    } else if (seg !== '' && seg !== '.') descending = true;
  }
  const resolved = posix.normalize(posix.join(posix.dirname(name), target));
  const inside =
    scope === ''
      ? resolved !== '..' && !resolved.startsWith('../')
      : resolved === scope || resolved.startsWith(`${scope}/`);
  if (!inside) {
    return `is a symlink to ${target}, outside ${scope === '' ? 'the work root' : scope}`;
  }
  return null;
}

function destroyQuietly(stream: BlobSource): void {
  const s = stream as Partial<Readable>;
  if (typeof s.destroy === 'function' && !s.destroyed) s.destroy();
}
