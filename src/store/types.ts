/**
 * The store interface: where workers keep build results, content-addressed. A backend (the local
 * directory store in `local.ts`; a GitHub Actions cache or an OCI registry later) holds two kinds
 * of object:
 *
 * - Blobs: immutable byte strings named by their digest, `"sha256:" + hex(SHA-256(bytes))`. An
 *   invocation's declared outputs are packed into blobs by `pack.ts` (one tar per output path).
 * - Results: one JSON manifest (`ResultManifest`, format `dist-build/result/v1`) per cache key (see
 *   `src/plan/keys.ts`), naming the blobs that hold the outputs of a successful run.
 *
 * Contract shared by every backend:
 * - Writes are all-or-nothing: a reader never sees a partly written blob or manifest, and several
 *   writers of the same blob or result (on one machine or many) are safe.
 * - `openBlob` returns a verified stream: bytes that do not hash to the digest end the stream with
 *   a `CorruptBlobError` instead of a normal end, so a consumer must not commit anything before the
 *   stream has ended cleanly.
 * - A result whose manifest does not validate, or whose blobs are gone, is a miss (`null`), never
 *   an error: the caller rebuilds and overwrites it.
 * - Memory stays bounded whatever the blob size: blobs only ever pass as streams.
 */
import type { Readable } from 'node:stream';

export const RESULT_FORMAT = 'dist-build/result/v1';

/** `sha256:` and 64 lowercase hex digits; the only digest algorithm of format v1. */
export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

export interface BlobInfo {
  /** `sha256:<hex>` */
  digest: string;
  /** Bytes. */
  size: number;
}

/** One packed blob per declared output path. */
export interface OutputEntry {
  /** As declared: relative to the work root, posix separators, no `.`/`..` segments. */
  path: string;
  /** What the output path itself is. */
  type: 'dir' | 'file' | 'symlink';
  /** Digest of the tar blob. */
  digest: string;
  /** Bytes of the tar blob. */
  size: number;
  /** Tar entries packed (files, directories including the output itself, symlinks). */
  files: number;
}

/** What a successful run of one unit produced, stored under its cache key. */
export interface ResultManifest {
  format: typeof RESULT_FORMAT;
  /** `sha256:<hex>`, the unit's content cache key. */
  cacheKey: string;
  /** Unit id (`lib`, `api-image@linux/arm64`). */
  unit: string;
  /** Invocation name. */
  invocation: string;
  exitCode: number;
  durationMs: number;
  /** Id of the worker that built it. */
  worker: string;
  /** ISO 8601. */
  createdAt: string;
  outputs: OutputEntry[];
  /**
   * `hmac-sha256:<hex>` when the store signs results (see signing.ts): over the cache key and the
   * digest of the canonical manifest without this field.
   */
  signature?: string;
}

/** Opens a blob by digest; `null` when it does not exist. */
export type BlobOpener = (digest: string) => Promise<BlobSource | null>;

/**
 * A blob's bytes: a stream, or chunks each valid only until the next is asked for (`openBlobChunks`),
 * which a consumer must be done with when it asks for the next. `destroy()` releases a source
 * that is not read to its end.
 */
export type BlobSource =
  NodeJS.ReadableStream | Readable | (AsyncIterable<Buffer> & { destroy(): void });

/** Options of `Store.peekResults`. */
export interface PeekOptions {
  /**
   * What the layers after the first get, in all: past it, what was found so far is the answer (a
   * slow store is a miss there, not a lost answer).
   */
  slowLayersMs?: number;
  /**
   * Filled with the keys found nowhere that a layer could not be asked about in time (the
   * deadline passed, or the layer was still warming up): a later `getResult` may still find them.
   */
  unsettled?: Set<string>;
}

export interface Store {
  /** Backend name: `'local'`. */
  readonly kind: string;
  /** Where it is, for messages (a directory, a URL). */
  readonly location: string;
  /** The subset of `digests` that the store holds (REAPI's FindMissingBlobs, inverted). */
  hasBlobs(digests: readonly string[]): Promise<Set<string>>;
  /**
   * Stores a stream of bytes, hashing it on the way. With `expectedDigest`, bytes that hash to
   * something else are an error (`CorruptBlobError`) and nothing is stored. A blob that is already
   * present is not written again. As with any Node stream, a chunk belongs to the store once
   * yielded (it may be held until a batch is written): the source must not reuse its memory.
   */
  putBlob(data: Readable | AsyncIterable<Buffer>, expectedDigest?: string): Promise<BlobInfo>;
  /** Same as `putBlob` from a file (which is left as it is). */
  putBlobFile(file: string): Promise<BlobInfo>;
  /**
   * A directory for files meant for `adoptBlobFile` (on the store's filesystem, so adopting one
   * is a rename). Optional, together with `adoptBlobFile`.
   */
  tempDir?(): Promise<string>;
  /**
   * Stores `file` (in `tempDir()`), whose bytes the caller hashed to `digest` while writing it and
   * no longer needs: the store may rename it into place instead of copying it. Whether or not it
   * did, the caller removes `file` afterwards if it is still there. A blob already present is not
   * written again. Optional: without it, callers use `putBlobFile`.
   */
  adoptBlobFile?(file: string, digest: string): Promise<BlobInfo>;
  /**
   * The disk under the store is full (a write into it or its `tempDir` failed with ENOSPC or
   * EDQUOT): frees room by evicting what was used least recently. Bytes freed (0: nothing could
   * go). Optional: without it, a full disk is an error.
   */
  makeRoom?(): Promise<number>;
  /**
   * Where the store keeps blob `digest` as a plain file (whether or not it holds it), for a
   * reader that only reads it. Optional: local stores.
   */
  blobPath?(digest: string): string;
  /** A verified stream of the blob (see the module comment), or `null` if it is not stored. */
  openBlob(digest: string): Promise<Readable | null>;
  /** The result stored under a cache key; `null` for a miss (including an unusable manifest). */
  getResult(cacheKey: string): Promise<ResultManifest | null>;
  /** Stores a result; every blob it names must already be stored. Replaces an older one. */
  putResult(manifest: ResultManifest): Promise<void>;
  /** The subset of `cacheKeys` that have a result. May be approximate (manifest exists). */
  hasResults(cacheKeys: readonly string[]): Promise<Set<string>>;
  /**
   * Work a backend does before its process takes requests (loading a large client library), so
   * that it does not stall the process later, in the middle of a worker's run. Never throws.
   */
  prepare?(): Promise<void>;
  /**
   * Like `openBlob`, for a consumer done with each chunk when it asks for the next (extraction):
   * the blob's verified bytes as chunks read straight into the hashing buffers, without a stream
   * (local stores). Optional: callers use `openBlob` without it.
   */
  openBlobChunks?(digest: string): Promise<BlobSource | null>;
  /**
   * Starts what the store needs before its first lookup can be answered (the Actions cache
   * restores this slot's shard), and resolves when that is done. A worker calls it as it starts,
   * without waiting, so the restore runs while it registers. Never throws.
   */
  warm?(): Promise<void>;
  /**
   * Sends out what a backend buffers (the Actions cache packs a worker's blobs into one entry);
   * called when a worker leaves. Optional: stores that write through have nothing to do.
   */
  flush?(): Promise<void>;
  /** Result keys the store holds, for `dist-build cache ls` (optional: not every backend can list). */
  listResults?(prefix?: string): AsyncIterable<ResultListing>;
  /**
   * Layered stores: the results of `cacheKeys` that exist, each as the first layer that has it
   * (with its blobs) holds it, copying nothing into faster layers; for the master's cache query,
   * which every worker answers for every unit. Optional: without it, callers use `hasResults`
   * and `getResult`.
   */
  peekResults?(
    cacheKeys: readonly string[],
    opts?: PeekOptions,
  ): Promise<Map<string, ResultManifest>>;
  /**
   * Layered stores: brings blob `digest` into the first (local) layer from the first layer that
   * has it, when it is about to be used; whether the first layer holds it now.
   */
  pullBlob?(digest: string): Promise<boolean>;
  /**
   * Layered stores: copies result `cacheKey` into the first layer from a slower one when the
   * first already holds every blob it names (it was used: its blobs were pulled). Never throws.
   */
  pullResult?(cacheKey: string): Promise<void>;
  /**
   * Layered stores: writes the lookup counters to the stats file now (`flush` does too), for a
   * long-lived worker whose `flush` comes only when it stops. Never throws.
   */
  writeStats?(): Promise<void>;
  /**
   * Layered stores: the digests every layer holds, which a save need not write anywhere
   * (`hasBlobs` answers for any layer). Optional: without it, savers use `hasBlobs`.
   */
  storedEverywhere?(digests: readonly string[]): Promise<Set<string>>;
}

export interface ResultListing {
  cacheKey: string;
  unit: string;
  /** Bytes of the blobs it names. */
  size: number;
  createdAt: string;
}

/** Context every backend factory gets (see src/store/open.ts). */
export interface StoreContext {
  /** The config's root: relative `dir` options resolve against it. */
  root: string;
  /** This worker's slot (its worker id), for backends that shard by worker. */
  slot: string;
  /** Warnings: a backend that cannot be used never fails a build, it warns and misses. */
  onWarning: (message: string) => void;
  env: NodeJS.ProcessEnv;
  /** gha: how old another slot's restored shard gets before a miss restores it again (tests). */
  peerRefreshMs?: number;
}

/** Bytes that do not hash to the digest they were stored or requested under. */
export class CorruptBlobError extends Error {
  readonly digest: string;
  /** What the bytes did hash to, when known. */
  readonly actual: string | undefined;
  constructor(digest: string, actual?: string, message?: string) {
    super(message ?? `blob ${digest} is corrupt${actual ? ` (its bytes hash to ${actual})` : ''}`);
    this.name = 'CorruptBlobError';
    this.digest = digest;
    this.actual = actual;
  }
}

/** An archive entry (or a file met while packing) that must not be packed or extracted. */
export class UnsafeArchiveError extends Error {
  /** The entry's name as it appears in the archive (root-relative). */
  readonly entry: string;
  constructor(entry: string, reason: string) {
    super(`unsafe archive entry ${JSON.stringify(entry)}: ${reason}`);
    this.name = 'UnsafeArchiveError';
    this.entry = entry;
  }
}

/** A declared output path that does not exist after the run. */
export class MissingOutputError extends Error {
  readonly path: string;
  constructor(path: string) {
    super(`declared output ${path} was not produced`);
    this.name = 'MissingOutputError';
    this.path = path;
  }
}

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST_PATTERN.test(value);
}

/** Throws a `TypeError` for anything but a `sha256:<64 hex>` digest. */
export function assertDigest(value: unknown, what = 'digest'): asserts value is string {
  if (!isDigest(value)) throw new TypeError(`invalid ${what} ${JSON.stringify(value)}`);
}

/**
 * Checks a declared output path: relative, posix, no empty, `.` or `..` segment, not the root
 * itself. Returns the problem, or `null` when it is fine.
 */
export function outputPathProblem(path: string): string | null {
  if (typeof path !== 'string' || path === '') return 'is empty';
  if (path.includes('\0')) return 'contains a NUL character';
  if (path.includes('\\')) return 'contains a backslash (use posix separators)';
  if (path.startsWith('/')) return 'is absolute';
  for (const seg of path.split('/')) {
    if (seg === '..') return 'has a ".." segment';
    if (seg === '' || seg === '.') return 'is not in normal form (empty or "." segment)';
  }
  return null;
}

/**
 * Whether a result's outputs are exactly the declared `outputs` (paths, each once, in any order):
 * a result holding anything else is not the result of that definition.
 */
export function holdsDeclaredOutputs(
  entries: readonly Pick<OutputEntry, 'path'>[],
  outputs: readonly string[],
): boolean {
  const paths = (list: readonly string[]) => [...new Set(list)].sort().join('\n');
  return paths(entries.map((e) => e.path)) === paths(outputs);
}

/** Problems with a manifest (empty when it is valid). */
export function manifestProblems(value: unknown): string[] {
  const problems: string[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return ['not a JSON object'];
  }
  const m = value as Record<string, unknown>;
  if (m.format !== RESULT_FORMAT) problems.push(`format is not ${RESULT_FORMAT}`);
  if (!isDigest(m.cacheKey)) problems.push('cacheKey is not a sha256 digest');
  for (const k of ['unit', 'invocation', 'worker', 'createdAt'] as const) {
    if (typeof m[k] !== 'string') problems.push(`${k} is not a string`);
  }
  if (m.signature !== undefined && typeof m.signature !== 'string') {
    problems.push('signature is not a string');
  }
  if (!Number.isInteger(m.exitCode)) problems.push('exitCode is not an integer');
  if (typeof m.durationMs !== 'number' || !(m.durationMs >= 0)) {
    problems.push('durationMs is not a non-negative number');
  }
  if (!Array.isArray(m.outputs)) {
    problems.push('outputs is not an array');
    return problems;
  }
  const seen = new Set<string>();
  m.outputs.forEach((o: unknown, i) => {
    const e = o as Partial<Record<keyof OutputEntry, unknown>> | null;
    if (typeof e !== 'object' || e === null) {
      problems.push(`outputs[${i}] is not an object`);
      return;
    }
    const pathProblem = outputPathProblem(e.path as string);
    if (pathProblem) problems.push(`outputs[${i}].path ${pathProblem}`);
    else if (seen.has(e.path as string)) problems.push(`outputs[${i}].path is a duplicate`);
    else seen.add(e.path as string);
    if (e.type !== 'dir' && e.type !== 'file' && e.type !== 'symlink') {
      problems.push(`outputs[${i}].type is not dir, file or symlink`);
    }
    if (!isDigest(e.digest)) problems.push(`outputs[${i}].digest is not a sha256 digest`);
    for (const k of ['size', 'files'] as const) {
      if (!Number.isSafeInteger(e[k]) || (e[k] as number) < 0) {
        problems.push(`outputs[${i}].${k} is not a non-negative integer`);
      }
    }
  });
  return problems;
}
