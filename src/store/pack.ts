/**
 * Packing an invocation's declared outputs into store blobs, and restoring them.
 *
 * Format: one tar blob per declared output path (`OutputEntry`), POSIX ustar as tar-stream writes
 * it (pax headers only for names or link targets that need them: long or non-ASCII). Packing is
 * deterministic, so the same tree gives the same digest on any machine:
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
 * Saving reads the tree once: each output is packed into a temporary file, hashed as it is
 * written (in the store's `tempDir()` when it has one, else under `<root>/.dist-build/tmp/`); then
 * one `hasBlobs` for all of them, and only missing blobs are handed to the store
 * (`adoptBlobFile`, a rename for the local store, or `putBlobFile`); temporary files are always
 * removed. Memory stays bounded: files over 256 KiB are streamed in 256 KiB chunks, and at most
 * 16 smaller files are read ahead of the tar stream.
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
 * and the current time as mtime. Entries are checked one by one in archive order, directories
 * created in that order; up to 16 small-file writes are in flight behind them, and a failed write
 * fails the extraction (all writes in flight are awaited before the staging dir is removed). The
 * mode is set through `open()`/`mkdir()`; a chmod follows only where the umask removed bits.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  close as fsClose,
  constants as fsConstants,
  createWriteStream,
  fstat,
  open as fsOpen,
  read as fsRead,
  write as fsWrite,
  fchmod,
} from 'node:fs';
import type { Dirent, Stats } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  symlink,
} from 'node:fs/promises';
import { dirname, join, posix, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Header, Pack } from 'tar-stream';
import { isVerifiedFor, verifiedStream } from './digest.js';
import type { BlobOpener, OutputEntry, Store } from './types.js';
import {
  assertDigest,
  CorruptBlobError,
  MissingOutputError,
  outputPathProblem,
  UnsafeArchiveError,
} from './types.js';
import { isNotFound } from './fsutil.js';

/** Default `maxEntryBytes`: 8 GiB. */
export const DEFAULT_MAX_ENTRY_BYTES = 8 * 1024 ** 3;

export interface RestoreOptions {
  /** Largest file entry accepted (bytes). Default 8 GiB. */
  maxEntryBytes?: number;
}

/** Read size for file contents while packing; files up to this size are read in one go. */
const CHUNK = 256 * 1024;
/** Entries prepared (opened, small files read) ahead of the one being packed. */
const LOOKAHEAD = 16;
/** Bytes a temporary blob file's write stream may buffer before waiting for the disk. */
const WRITE_BUFFER = 1024 * 1024;
const FIXED_HEADER = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' } as const;
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;

type Kind = 'dir' | 'file' | 'symlink';
type HeaderArgument = Parameters<Pack['entry']>[0];

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
  const adopt = store.tempDir && store.adoptBlobFile ? store.adoptBlobFile.bind(store) : undefined;
  const tempDir = adopt && store.tempDir ? await store.tempDir() : join(root, '.dist-build', 'tmp');
  await mkdir(tempDir, { recursive: true });
  const temps: string[] = [];
  try {
    const packed: { entry: OutputEntry; file: string }[] = [];
    for (const path of paths) {
      const { type, items } = await collect(root, path);
      const file = join(tempDir, `${process.pid}-${randomBytes(8).toString('hex')}.tar`);
      temps.push(file);
      const { digest, size } = await packToFile(items, file);
      packed.push({ entry: { path, type, digest, size, files: items.length }, file });
    }
    const present = await store.hasBlobs(packed.map((p) => p.entry.digest));
    for (const { entry, file } of packed) {
      if (present.has(entry.digest)) continue;
      present.add(entry.digest); // two outputs with identical trees share a blob
      const stored = adopt ? await adopt(file, entry.digest) : await store.putBlobFile(file);
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

/** Opens blobs from a store (its streams are verified). */
export function blobOpenerFor(store: Store): BlobOpener {
  return (digest) => store.openBlob(digest);
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
  const stagingRoot = join(root, '.dist-build', 'staging');
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
      await rm(`${stage}.old`, { recursive: true, force: true });
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
  const keyed = items.map((item) => ({ item, key: Buffer.from(item.name, 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return { type, items: keyed.map((k) => k.item) };
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
    for (const d of await readdir(abs, { withFileTypes: true })) {
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

/** A tar stream of `items` (already sorted). Leaving its loop early stops packing. */
function packStream(items: readonly Item[]): AsyncIterable<Buffer> {
  const pack = tar.pack();
  writeItems(pack, items).then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(err as Error),
  );
  return pack as AsyncIterable<unknown> as AsyncIterable<Buffer>;
}

/** Packs `items` into a new file, hashing the tar stream on the way; its digest and size. */
async function packToFile(
  items: readonly Item[],
  file: string,
): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const source = packStream(items);
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  }
  // A deep write buffer lets small chunks (tar headers, small files) go out together (writev).
  await pipeline(hashed(), createWriteStream(file, { flags: 'wx', highWaterMark: WRITE_BUFFER }));
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/**
 * Adds the entries in order. File opens and small-file reads run up to `LOOKAHEAD` entries ahead
 * of the one being written (at most `LOOKAHEAD * CHUNK` bytes held), which hides the per-file
 * syscall latency of trees with many small files.
 */
async function writeItems(pack: Pack, items: readonly Item[]): Promise<void> {
  const ahead: Promise<Prepared>[] = [];
  let next = 0;
  const fill = () => {
    while (ahead.length < LOOKAHEAD && next < items.length) {
      const p = prepare(items[next++]!);
      p.catch(() => {}); // handled when its turn comes (or dropped below)
      ahead.push(p);
    }
  };
  try {
    fill();
    while (ahead.length > 0) {
      const prepared = await ahead.shift()!;
      fill();
      await emit(pack, prepared);
    }
  } finally {
    for (const p of ahead) {
      p.then(
        (x) => {
          if (x.fd !== undefined) fdClose(x.fd).catch(() => {});
        },
        () => {},
      );
    }
  }
}

/** An entry ready to be written: small files come with their bytes, big ones with an open file. */
interface Prepared {
  name: string;
  header: HeaderArgument;
  body?: Buffer;
  /** Open descriptor of a big file; `emit` closes it. */
  fd?: number;
}

async function prepare(item: Item): Promise<Prepared> {
  const { name } = item;
  if (item.kind === 'dir') {
    return { name, header: { ...FIXED_HEADER, name, type: 'directory', mode: 0o755 } };
  }
  if (item.kind === 'symlink') {
    const header = { ...FIXED_HEADER, name, type: 'symlink', linkname: item.target!, mode: 0o755 };
    return { name, header: header as HeaderArgument };
  }
  let fd: number;
  try {
    // O_NOFOLLOW: a file replaced by a symlink since the walk is not followed.
    fd = await fdOpen(item.abs, fsConstants.O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw isNotFound(err) || code === 'ELOOP' ? changed(name, 'disappeared') : err;
  }
  try {
    const st = await fdStat(fd);
    if (!st.isFile()) throw changed(name, 'was replaced');
    const size = st.size;
    const mode = st.mode & 0o111 ? 0o755 : 0o644;
    const header: HeaderArgument = { ...FIXED_HEADER, name, type: 'file', mode, size };
    if (size > CHUNK) return { name, header, fd };
    const body = Buffer.allocUnsafe(size);
    for (let pos = 0; pos < size;) {
      const bytesRead = await fdRead(fd, body, pos, size - pos, pos);
      if (bytesRead === 0) throw changed(name, 'shrank');
      pos += bytesRead;
    }
    await fdClose(fd);
    return { name, header, body };
  } catch (err) {
    await fdClose(fd).catch(() => {});
    throw err;
  }
}

// The callback API on plain descriptors costs less per call than `FileHandle`, which shows on
// trees of many small files.
const fdOpen = (path: string, flags: number, mode = 0o666) =>
  new Promise<number>((res, rej) => fsOpen(path, flags, mode, (e, fd) => (e ? rej(e) : res(fd))));
const fdStat = (fd: number) =>
  new Promise<Stats>((res, rej) => fstat(fd, (e, st) => (e ? rej(e) : res(st))));
const fdRead = (fd: number, buf: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((res, rej) =>
    fsRead(fd, buf, offset, length, position, (e, n) => (e ? rej(e) : res(n))),
  );
const fdWrite = (fd: number, buf: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((res, rej) =>
    fsWrite(fd, buf, offset, length, position, (e, n) => (e ? rej(e) : res(n))),
  );
const fdChmod = (fd: number, mode: number) =>
  new Promise<void>((res, rej) => fchmod(fd, mode, (e) => (e ? rej(e) : res())));
const fdClose = (fd: number) =>
  new Promise<void>((res, rej) => fsClose(fd, (e) => (e ? rej(e) : res())));

function changed(name: string, what: string): Error {
  return new Error(`output file ${name} ${what} while packing`);
}

async function emit(pack: Pack, p: Prepared): Promise<void> {
  if (p.body) {
    await new Promise<void>((resolve, reject) => {
      pack.entry(p.header, p.body!, (err) => (err ? reject(err) : resolve()));
    });
    return;
  }
  if (p.fd === undefined) {
    await new Promise<void>((resolve, reject) => {
      pack.entry(p.header, (err) => (err ? reject(err) : resolve()));
    });
    return;
  }
  const fd = p.fd;
  const size = p.header.size!;
  try {
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry(p.header, (err) => (err ? reject(err) : resolve()));
      (async () => {
        // Exactly `size` bytes, read into fresh buffers (the pack may hold on to them).
        for (let pos = 0; pos < size;) {
          const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
          const bytesRead = await fdRead(fd, buf, 0, buf.length, pos);
          if (bytesRead === 0) throw changed(p.name, 'shrank');
          pos += bytesRead;
          if (!sink.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead))) {
            await drained(sink);
          }
        }
        sink.end(null);
      })().catch((err: unknown) => {
        sink.destroy(err as Error);
        reject(err);
      });
    });
  } finally {
    await fdClose(fd);
  }
}

interface Emitter {
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/** Waits for a writable (Node or streamx) to drain; rejects if it closes first. */
function drained(stream: Emitter): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      stream.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      stream.off('drain', onDrain);
      reject(new Error('tar stream closed'));
    };
    stream.once('drain', onDrain);
    stream.once('close', onClose);
  });
}

// ---------------------------------------------------------------------------------------------
// Restoring

/** Small-file writes of one extraction that may be in flight at once. */
const WRITES_IN_FLIGHT = 16;

/**
 * Small-file writes in flight while the archive moves on. The first failure is kept and thrown
 * by the next `add` or by `settle`.
 */
class Writes {
  private readonly inFlight = new Set<Promise<void>>();
  private failed = false;
  private error: unknown;

  /** Starts tracking `write`; waits while `WRITES_IN_FLIGHT` are in flight. */
  async add(write: Promise<void>): Promise<void> {
    const tracked: Promise<void> = write.then(
      () => void this.inFlight.delete(tracked),
      (err: unknown) => {
        this.inFlight.delete(tracked);
        if (!this.failed) {
          this.failed = true;
          this.error = err;
        }
      },
    );
    this.inFlight.add(tracked);
    while (this.inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failed) throw this.error;
  }

  /** Waits for every write; throws the first failure. */
  async settle(): Promise<void> {
    await this.idle();
    if (this.failed) throw this.error;
  }

  /** Waits for every write, never throws. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }
}

/** What extracting one blob shares between its entries. */
interface Extraction {
  out: string;
  stage: string;
  seen: Map<string, Kind>;
  maxEntryBytes: number;
  /** Permission bits that survive creation here (umask, default ACLs): chmod only what loses some. */
  kept: number;
  writes: Writes;
}

/** Extracts one output's blob under `stage` (names stay root-relative). */
async function extractInto(
  source: NodeJS.ReadableStream | Readable,
  entry: OutputEntry,
  stage: string,
  maxEntryBytes: number,
): Promise<void> {
  const out = entry.path;
  const input = isVerifiedFor(source, entry.digest)
    ? (source as Readable)
    : verifiedStream(source, entry.digest);
  const extract = tar.extract();
  const ctx: Extraction = {
    out,
    stage,
    seen: new Map(),
    maxEntryBytes,
    kept: (await lstat(stage)).mode & 0o777,
    writes: new Writes(),
  };
  await mkdir(join(stage, ...posix.dirname(out).split('/')), { recursive: true });

  let current: Promise<void> = Promise.resolve();
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      extract.destroy(err as Error);
      input.destroy();
      // Settle only once the entry being written and the writes in flight have stopped, so the
      // caller can clean up.
      const done = () => reject(err);
      current.then(() => ctx.writes.idle(), done).then(done, done);
    };
    extract.on('entry', (header, stream, next) => {
      const body = stream as AsyncIterable<unknown> as AsyncIterable<Buffer>;
      current = extractEntry(header, body, ctx).then(
        () => next(),
        (err: unknown) => fail(err),
      );
    });
    extract.on('error', fail);
    extract.on('finish', () =>
      current.then(() => ctx.writes.settle()).then(() => !failed && resolve(), fail),
    );
    // Iterating (rather than `pipe`) also surfaces an error the input met before this point.
    (async () => {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        if (failed) return;
        if (!extract.write(chunk)) await drained(extract);
      }
      extract.end(null);
    })().catch(fail);
  });
  if (!ctx.seen.has(out)) {
    throw new Error(`blob ${entry.digest} holds nothing for output ${out}`);
  }
}

async function extractEntry(
  header: Header,
  stream: AsyncIterable<Buffer>,
  ctx: Extraction,
): Promise<void> {
  const { out, stage, seen, maxEntryBytes } = ctx;
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
  const size = header.size ?? 0;
  if (kind === 'file' && size > maxEntryBytes) {
    throw unsafe(`is ${size} bytes, more than the limit of ${maxEntryBytes}`);
  }
  const target = header.linkname ?? '';
  if (kind === 'symlink') {
    const linkProblem = symlinkProblem(name, target, name === out ? '' : out);
    if (linkProblem) throw unsafe(linkProblem);
  }
  const before = seen.get(name);
  if (before !== undefined) {
    if (before === 'dir' && kind === 'dir') return drain(stream);
    throw unsafe('appears twice in the archive');
  }
  // Parents inside the output must be directories of this archive (created here if the archive
  // does not list them), never a file or a symlink to write through.
  if (name !== out) {
    const segs = name.split('/');
    for (let i = out.split('/').length; i < segs.length; i++) {
      const parent = segs.slice(0, i).join('/');
      const t = seen.get(parent);
      if (t === undefined) {
        await mkdir(join(stage, ...segs.slice(0, i)), { mode: 0o755 });
        seen.set(parent, 'dir');
      } else if (t !== 'dir') {
        throw unsafe(`is inside ${parent}, which is a ${t === 'file' ? 'file' : 'symlink'}`);
      }
    }
  }
  const dest = join(stage, ...name.split('/'));
  seen.set(name, kind);
  if (kind === 'file') {
    const mode = (header.mode ?? 0) & 0o111 ? 0o755 : 0o644;
    const fixMode = (mode & ctx.kept) !== mode; // exactly `mode`, whatever the umask
    if (size <= CHUNK) {
      // Small files (most of them, in build outputs): one write each, several in flight while
      // the archive moves on (their parent directories already exist: created in order above).
      const parts: Buffer[] = [];
      for await (const chunk of stream) parts.push(chunk);
      const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      await ctx.writes.add(writeSmallFile(dest, data, mode, fixMode));
    } else {
      await pipeline(chunks(stream), createWriteStream(dest, { flags: 'wx', mode }));
      if (fixMode) await chmod(dest, mode);
    }
    return;
  }
  if (kind === 'dir') {
    await mkdir(dest, { mode: 0o755 });
    if ((0o755 & ctx.kept) !== 0o755) await chmod(dest, 0o755);
  } else {
    await symlink(target, dest);
  }
  await drain(stream);
}

/** Creates `dest` (which must not exist) with `data` and `mode`, on a plain descriptor. */
async function writeSmallFile(
  dest: string,
  data: Buffer,
  mode: number,
  fixMode: boolean,
): Promise<void> {
  const fd = await fdOpen(
    dest,
    fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW,
    mode,
  );
  try {
    for (let pos = 0; pos < data.length;) {
      pos += await fdWrite(fd, data, pos, data.length - pos, pos);
    }
    if (fixMode) await fdChmod(fd, mode);
  } finally {
    await fdClose(fd);
  }
}

/** tar-stream's entry streams are streamx streams: read them as plain async iterables. */
async function* chunks(stream: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const chunk of stream) yield chunk;
}

async function drain(stream: AsyncIterable<Buffer>): Promise<void> {
  // Bodies of directories and symlinks are empty; this only lets the extractor move on.
  for await (const chunk of stream) void chunk;
}

/** Replaces `<root>/<out>` with the staged tree: old path moved aside, staged renamed in. */
async function place(root: string, out: string, staged: string, aside: string): Promise<void> {
  const dest = join(root, ...out.split('/'));
  // The parent must really be inside the root (a symlinked parent pointing elsewhere would make
  // the rename write outside the work tree). Check before creating anything.
  const realRoot = await realpath(root);
  let existing = dirname(dest);
  while (!(await lstat(existing).catch(() => null))) existing = dirname(existing);
  const realExisting = await realpath(existing);
  if (realExisting !== realRoot && !realExisting.startsWith(realRoot + sep)) {
    throw new UnsafeArchiveError(out, `its parent directory resolves outside the work root`);
  }
  await mkdir(dirname(dest), { recursive: true });
  let moved = false;
  try {
    await rename(dest, aside);
    moved = true;
  } catch (err) {
    if (!isNotFound(err)) throw err;
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

function destroyQuietly(stream: NodeJS.ReadableStream | Readable): void {
  const s = stream as Partial<Readable>;
  if (typeof s.destroy === 'function' && !s.destroyed) s.destroy();
}
