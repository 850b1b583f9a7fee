/**
 * `RegistryStore`: a store in any OCI distribution registry (GHCR, Docker Hub, a self-hosted
 * `registry:2`), spoken to directly over HTTP with `node:http` / `node:https` (see
 * `registry-http.ts`).
 *
 * Layout, in one repository (`ref` = `host[:port]/repo/path`):
 * - Blobs are registry blobs, named by their sha256 digest.
 * - The result of a cache key is an OCI image manifest tagged `r-<64 hex of the cache key>`:
 *   `artifactType` `application/vnd.dist-build.result.v1+json`, the config a blob holding the
 *   `ResultManifest` JSON (same media type), one layer per output blob (media type
 *   `application/vnd.dist-build.output.v1.tar`, `org.opencontainers.image.title` = output path).
 *   A registry that rejects that manifest (no artifact support) gets a plain image manifest
 *   instead (config media type `application/vnd.oci.image.config.v1+json` holding the same JSON,
 *   no `artifactType`), and the store remembers to send plain manifests from then on. Both forms
 *   are read back. The referrers API is never needed.
 *
 * Uploads: a blob already in the repository (HEAD) is not uploaded again; with `mount-from` a
 * blob of known digest is first offered as a cross-repository mount. A blob that fits in one
 * chunk (`chunk-size`, 16 MiB) goes up in one PUT; a larger one in PATCH chunks with
 * `Content-Range`, then a closing PUT with the digest. A file, though, goes up in one PUT whatever
 * its size unless `chunk-size` is set (for proxies that limit request bodies) or the registry
 * answered 413 to a large body (then chunks, for the rest of the process): chunks cost the
 * registry a request and a saved hash state each. Files are streamed from disk straight into
 * the socket, each request body a range of the file (nothing is held in memory, and a body can be
 * sent again after a 401 or a dropped kept-alive connection); `saveOutputs` packs into
 * `tempDir()` and hands the file over with its digest (`adoptBlobFile`, which only reads it; a
 * layered store behind a local one does the same with the file packed for the local store), so
 * it is read once, not hashed again. Other streams are read one chunk ahead, so memory stays
 * bounded by a few chunks whatever the blob size. Large bodies go out only with authorization in
 * hand: the POST that opens the upload session meets the 401, and an expired bearer token is
 * renewed before a large body is sent rather than after the registry refused it.
 *
 * Reads are verified: `openBlob` hashes the bytes as they stream; a blob that does not match ends
 * its stream with `CorruptBlobError`, is reported once through `onWarning`, is deleted from the
 * repository when the registry allows it, and is a miss from then on in this process. A download
 * cut short, or stalled (no bytes for 60 s while the reader waits for some), ends its stream with
 * a `network` `StoreUnavailableError` instead: never taken for corrupt, nothing deleted. A result
 * manifest or config that is missing, does not parse or does not validate is a miss with one
 * warning.
 *
 * Failures of the network or the registry never fail a build: `has*`, `openBlob` and `getResult`
 * warn once per kind of problem (unreachable, authentication, unexpected answers) and miss;
 * `putBlob`, `putBlobFile` and `putResult` throw `StoreUnavailableError`, which callers turn into a
 * warning. After a network failure the registry is left alone for a short while (every call
 * misses at once; 30 s, twice as long after each further failure, up to 10 minutes) rather than
 * waiting for timeouts over and over.
 *
 * Authentication: anonymous until the registry answers 401, then what its `WWW-Authenticate`
 * asks for (see `registry-auth.ts`): bearer tokens for `repository:<repo>:pull,push` (plus pull
 * on the `mount-from` repository when mounting), cached per scope, or basic auth.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseSize } from '../config/size.js';
import { digestStream, sha256Digest, verifiedStream } from './digest.js';
import { StoreOptionsError } from './errors.js';
import { mapLimit } from './limit.js';
import {
  basicHeader,
  loadCredentials,
  parseChallenges,
  TokenCache,
  TokenError,
} from './registry-auth.js';
import type { Credentials } from './registry-auth.js';
import {
  discard,
  fetchTransport,
  HttpError,
  nodeTransport,
  readCappedText,
  readText,
} from './registry-http.js';
import type { HttpAnswer, Transport } from './registry-http.js';
import type { BlobInfo, ResultListing, ResultManifest, Store, StoreContext } from './types.js';
import { assertDigest, CorruptBlobError, isDigest, manifestProblems } from './types.js';

export const RESULT_ARTIFACT_TYPE = 'application/vnd.dist-build.result.v1+json';
export const RESULT_CONFIG_TYPE = RESULT_ARTIFACT_TYPE;
export const OUTPUT_LAYER_TYPE = 'application/vnd.dist-build.output.v1.tar';
export const OCI_MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
export const TITLE_ANNOTATION = 'org.opencontainers.image.title';
const CREATED_ANNOTATION = 'org.opencontainers.image.created';
const UNIT_ANNOTATION = 'dev.dist-build.unit';
const KEY_ANNOTATION = 'dev.dist-build.cache-key';

export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;
export const DEFAULT_CONCURRENCY = 8;
const MIN_CHUNK_SIZE = 64 * 1024;
const MAX_CHUNK_SIZE = 2 * 1024 ** 3;
const MAX_CONCURRENCY = 256;
/** Reads of files being hashed or uploaded. */
const FILE_READ = 1024 * 1024;
/** Largest manifest or result config read (they are small JSON documents). */
const MAX_DOCUMENT = 4 * 1024 * 1024;
/** Longest wait without progress for an answer's headers (sending included) or a blob's bytes. */
const TIMEOUT_MS = 60_000;
/**
 * Bodies from this size on are sent only with authorization in hand (no 401 round with them), and
 * their answer may take long: a registry stores the whole blob first (on S3, a copy).
 */
const LARGE_BODY = 1024 * 1024;
/**
 * The wait for the answer to a large body, once it is all sent: `timeoutMs` times this, plus a
 * millisecond per this many bytes (1 MB/s: an hour for 3.6 GB). Long, but not forever: a registry
 * that took the body and will never answer must not hang the build.
 */
const AFTER_BODY_TIMEOUTS = 5;
const AFTER_BODY_BYTES_PER_MS = 1000;
/**
 * How long the registry is left alone after a network failure; twice as long after each further
 * one with no answer in between, up to `MAX_BACKOFF_MS`: a registry that hangs costs every
 * request sent to it a whole timeout (a job's save waits for it), so it is asked less and less.
 */
const BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 10 * 60_000;
/** How long writes are not tried again after the registry refused one (`writesDenied`). */
const WRITES_DENIED_MS = 10 * 60_000;
const TAGS_PAGE = 1000;
const MAX_REDIRECTS = 5;
const TAG_RE = /^r-([0-9a-f]{64})$/;
/** A repository path as the distribution spec allows it. */
const REPO_RE =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/**
 * The registry cannot be used right now (unreachable, credentials refused, unexpected answers).
 * Thrown by the `put*` methods; callers warn and carry on without the cache.
 */
export class StoreUnavailableError extends Error {
  /** `network`, `auth`, `server` (an unexpected answer) or `protocol` (an unusable one). */
  readonly kind: 'network' | 'auth' | 'server' | 'protocol';
  /** HTTP status, when there was an answer. */
  readonly status: number | undefined;
  constructor(
    kind: StoreUnavailableError['kind'],
    message: string,
    opts: { status?: number; cause?: unknown } = {},
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'StoreUnavailableError';
    this.kind = kind;
    this.status = opts.status;
  }
}

/**
 * A bad option in the store's configuration; `option` names it. A `StoreOptionsError`, so
 * `openStores` reports it as a config problem.
 */
export class RegistryOptionError extends StoreOptionsError {
  declare readonly option: string;
  constructor(option: string, message: string) {
    super(`${option}: ${message}`, option);
    this.name = 'RegistryOptionError';
  }
}

export interface RegistryRef {
  /** Host (and port) as written, lower case: `ghcr.io`, `127.0.0.1:5000`. */
  host: string;
  /** Host the API is spoken to (`registry-1.docker.io` for `docker.io`). */
  apiHost: string;
  /** Repository path: `org/cache`. */
  repository: string;
  /** Loopback (`localhost`, `127.0.0.0/8`, `::1`): plain http by default. */
  loopback: boolean;
}

/** Parses `host[:port]/repo/path`; throws a `RegistryOptionError` for `ref` otherwise. */
/** Whether the first component of a name is a registry host, by Docker's rule. */
function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

export function parseRegistryRef(ref: string, option = 'ref'): RegistryRef {
  const fail = (why: string): never => {
    throw new RegistryOptionError(option, `${JSON.stringify(ref)} ${why}`);
  };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) {
    fail('has a scheme; write host[:port]/repository (plain http: set insecure: true)');
  }
  if (ref.includes('@')) fail('names a digest; write host[:port]/repository');
  const slash = ref.indexOf('/');
  if (slash <= 0) fail('is not host[:port]/repository (e.g. ghcr.io/org/cache)');
  const host = ref.slice(0, slash).toLowerCase();
  const repository = ref.slice(slash + 1);
  const hostMatch =
    /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::(\d{1,5}))?$/.exec(
      host,
    );
  if (!hostMatch) fail(`has an invalid host ${JSON.stringify(host)}`);
  if (!looksLikeHost(host)) {
    // As Docker reads a name: "org/cache" is a repository of Docker Hub, not host "org".
    fail(
      `starts with ${JSON.stringify(host)}, which is not a registry host (a host has a dot or a ` +
        `port, or is localhost): write host[:port]/repository, e.g. ghcr.io/${ref}`,
    );
  }
  const port = hostMatch![2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    fail(`has an invalid port ${port}`);
  }
  if (/:[^/]*$/.test(repository)) fail('has a tag; write host[:port]/repository');
  if (!REPO_RE.test(repository) || repository.length > 255) {
    fail(
      `has an invalid repository ${JSON.stringify(repository)} (lower-case letters, digits and ` +
        'separators . _ __ - between them, components joined by /)',
    );
  }
  const name = hostMatch![1]!;
  const loopback =
    name === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name) || name === '[::1]';
  const apiHost =
    name === 'docker.io' || name === 'index.docker.io' ? 'registry-1.docker.io' : host;
  return { host, apiHost, repository, loopback };
}

export interface RegistryStoreOptions {
  /** `host[:port]/repo/path`. */
  ref: string;
  /** Plain http; default: only for loopback hosts. */
  insecure?: boolean;
  /** A repository of the same registry to mount blobs from. */
  mountFrom?: string;
  /**
   * Bytes per upload chunk (default 16 MiB). Streams go up in chunks of this size; files are sent
   * whole unless it is given (or the registry refuses a large body).
   */
  chunkSize?: number;
  /** Requests in flight for batch queries (default 8). */
  concurrency?: number;
  /** Where credentials come from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Called once per kind of problem. */
  onWarning?: (message: string) => void;
  /**
   * Where `saveOutputs` packs blobs before they are uploaded (`tempDir()`; default under the
   * system's temp dir; `createRegistryStore` uses `<root>/.dist-build/tmp`).
   */
  tempDir?: string;
  /** For tests: a fetch to send every request with (default: `node:http` / `node:https`). */
  fetch?: typeof fetch;
  /** For tests: told of every request to the registry (not the token server) before it goes. */
  onRequest?: (method: string, url: URL) => void;
  /**
   * For tests: the longest wait without progress for an answer's headers (sending included) or
   * for the next bytes of a blob being read (default 60 s).
   */
  timeoutMs?: number;
}

export interface RegistryStoreStats {
  /** Blob bytes sent in PUT/PATCH bodies (manifests not counted). */
  uploadedBytes: number;
  /** HTTP requests made to the registry and its token server. */
  requests: number;
  /** Blobs that arrived by cross-repository mount. */
  mountedBlobs: number;
  /** Whether the registry needed plain manifests (no artifact manifests). */
  plainManifests: boolean;
}

/** Builds a `RegistryStore` from the user's YAML options; errors name the option. */
export function createRegistryStore(
  options: Record<string, unknown>,
  ctx: StoreContext,
): RegistryStore {
  const known = ['ref', 'insecure', 'mount-from', 'chunk-size', 'concurrency'];
  for (const key of Object.keys(options)) {
    if (known.includes(key) || key === 'type') continue;
    throw new RegistryOptionError(
      key,
      `unknown option (the registry store takes ${known.join(', ')})`,
    );
  }
  const ref = options.ref;
  if (ref === undefined || ref === null || ref === '') {
    throw new RegistryOptionError(
      'ref',
      'is required: host[:port]/repository, e.g. ghcr.io/org/cache',
    );
  }
  if (typeof ref !== 'string') throw new RegistryOptionError('ref', 'must be a string');
  const parsed = parseRegistryRef(ref.trim());
  const insecure = options.insecure;
  if (insecure !== undefined && typeof insecure !== 'boolean') {
    throw new RegistryOptionError('insecure', 'must be true or false');
  }
  let mountFrom: string | undefined;
  const mf = options['mount-from'];
  if (mf !== undefined && mf !== null) {
    if (typeof mf !== 'string' || mf === '') {
      throw new RegistryOptionError('mount-from', 'must be a repository path of the same registry');
    }
    mountFrom = mf.startsWith(`${parsed.host}/`) ? mf.slice(parsed.host.length + 1) : mf;
    const first = mountFrom.slice(0, mountFrom.indexOf('/'));
    if (mountFrom.includes('/') && looksLikeHost(first)) {
      throw new RegistryOptionError(
        'mount-from',
        `${JSON.stringify(mf)} is on another registry (${first}): blobs can only be mounted from ` +
          `a repository of ${parsed.host}`,
      );
    }
    if (!REPO_RE.test(mountFrom)) {
      throw new RegistryOptionError(
        'mount-from',
        `${JSON.stringify(mf)} is not a repository path of ${parsed.host} (e.g. org/other-cache)`,
      );
    }
    if (mountFrom === parsed.repository) mountFrom = undefined;
  }
  const chunkSize = sizeOption(options['chunk-size'], 'chunk-size');
  if (chunkSize !== undefined && (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE)) {
    throw new RegistryOptionError(
      'chunk-size',
      `must be between 64 KiB and 2 GiB (got ${chunkSize})`,
    );
  }
  const concurrency = options.concurrency;
  if (
    concurrency !== undefined &&
    (typeof concurrency !== 'number' ||
      !Number.isInteger(concurrency) ||
      concurrency < 1 ||
      concurrency > MAX_CONCURRENCY)
  ) {
    throw new RegistryOptionError('concurrency', `must be an integer from 1 to ${MAX_CONCURRENCY}`);
  }
  return new RegistryStore({
    ref: ref.trim(),
    insecure: insecure as boolean | undefined,
    mountFrom,
    chunkSize,
    concurrency: concurrency as number | undefined,
    env: ctx.env,
    onWarning: ctx.onWarning,
    tempDir: ctx.root ? join(ctx.root, '.dist-build', 'tmp') : undefined,
  });
}

/** Bytes: a number, or a string such as `16MiB` (the config's size syntax, `src/config/size.ts`). */
function sizeOption(value: unknown, option: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' && typeof value !== 'string') {
    throw new RegistryOptionError(
      option,
      `expected bytes (a number, or like "16MiB"), got ${JSON.stringify(value)}`,
    );
  }
  try {
    return parseSize(value);
  } catch (err) {
    throw new RegistryOptionError(option, (err as Error).message);
  }
}

interface RequestSpec {
  method: 'GET' | 'HEAD' | 'PUT' | 'PATCH' | 'POST' | 'DELETE';
  /** A path (`/v2/...`) or an absolute URL (upload locations). */
  url: string | URL;
  headers?: Record<string, string>;
  /** Makes the body; called again when the request is replayed (bytes, or a file range). */
  body?: () => Buffer | Readable;
  /** Bytes of the body (sent as Content-Length). */
  bodyLength?: number;
  /** Count the body in `uploadedBytes` when it is accepted. */
  countUpload?: boolean;
  /** Scopes beyond pull,push on our repository (cross-repository mount). */
  extraScopes?: string[];
  /** What the request is, for messages. */
  what: string;
}

interface Session {
  location: URL;
}

export class RegistryStore implements Store {
  readonly kind = 'registry';
  readonly location: string;
  readonly ref: RegistryRef;
  readonly chunkSize: number;
  /** `chunk-size` was given: files larger than a chunk go up in chunks too. */
  private readonly chunkSizeSet: boolean;
  readonly concurrency: number;
  readonly mountFrom: string | undefined;
  /** `adoptBlobFile` only reads the file (see `ReadOnlyAdopter` in layered.ts). */
  readonly adoptReadsOnly = true;
  private readonly origin: string;
  private readonly repoPath: string;
  private readonly transport: Transport;
  private readonly onRequest: ((method: string, url: URL) => void) | undefined;
  private readonly timeoutMs: number;
  private readonly tempPath: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly onWarning: (message: string) => void;
  private readonly warned = new Set<string>();
  private readonly tokens: TokenCache;
  /** Blobs found corrupt in this process: misses from now on. */
  private readonly corrupt = new Set<string>();
  private credentials: Promise<Credentials | null> | undefined;
  private basicAuth: string | undefined;
  private plainManifests = false;
  private mountRefused = false;
  /** The registry answered 413 to a whole file: chunks from now on. */
  private largeBodiesRefused = false;
  private downUntil = 0;
  /** Network failures since the registry last answered (each one doubles the backoff). */
  private downCount = 0;
  private downError: StoreUnavailableError | undefined;
  /**
   * The registry refused a write (a pull-only token, a read-only account): writes fail at once
   * with that error until then, without asking for a token and being refused again each time.
   */
  private writesDeniedUntil = 0;
  private writesDenied: StoreUnavailableError | undefined;
  /** The registry's last `WWW-Authenticate` challenge (`null` until it asks). */
  private challenge: string | null = null;
  private counters = { uploadedBytes: 0, requests: 0, mountedBlobs: 0 };

  constructor(opts: RegistryStoreOptions) {
    this.ref = parseRegistryRef(opts.ref);
    const insecure = opts.insecure ?? this.ref.loopback;
    this.origin = `${insecure ? 'http' : 'https'}://${this.ref.apiHost}`;
    this.location = `${this.ref.host}/${this.ref.repository}`;
    this.repoPath = `/v2/${this.ref.repository}`;
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.chunkSizeSet = opts.chunkSize !== undefined;
    this.concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
    this.mountFrom = opts.mountFrom;
    this.transport = opts.fetch ? fetchTransport(opts.fetch) : nodeTransport;
    this.onRequest = opts.onRequest;
    this.timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
    this.tempPath =
      opts.tempDir ?? join(tmpdir(), `dist-build-registry-${process.getuid?.() ?? 'user'}`);
    this.env = opts.env ?? process.env;
    this.onWarning = opts.onWarning ?? (() => {});
    const fetchImpl = opts.fetch ?? fetch;
    this.tokens = new TokenCache((input, init) => {
      this.counters.requests++;
      return fetchImpl(input, init);
    }, this.timeoutMs);
  }

  /** Counters since the store was made. */
  stats(): RegistryStoreStats {
    return { ...this.counters, plainManifests: this.plainManifests };
  }

  /** The tag of a cache key's result: `r-<64 hex>`. */
  static tagFor(cacheKey: string): string {
    assertDigest(cacheKey, 'cache key');
    return `r-${cacheKey.slice('sha256:'.length)}`;
  }

  // -------------------------------------------------------------------------------------------
  // Store

  async hasBlobs(digests: readonly string[]): Promise<Set<string>> {
    for (const d of digests) assertDigest(d);
    try {
      return await this.existingBlobs(digests);
    } catch (err) {
      return this.miss(err, new Set<string>());
    }
  }

  async hasResults(cacheKeys: readonly string[]): Promise<Set<string>> {
    for (const k of cacheKeys) assertDigest(k, 'cache key');
    try {
      const unique = [...new Set(cacheKeys)];
      const flags = await mapLimit(unique, this.concurrency, async (key) => {
        const res = await this.send({
          method: 'HEAD',
          url: `${this.repoPath}/manifests/${RegistryStore.tagFor(key)}`,
          headers: { accept: OCI_MANIFEST_TYPE },
          what: `HEAD result ${key}`,
        });
        await discard(res);
        if (res.status === 404) return false;
        if (res.ok) return true;
        throw this.unexpected(res, `HEAD result ${key}`);
      });
      return new Set(unique.filter((_, i) => flags[i]));
    } catch (err) {
      return this.miss(err, new Set<string>());
    }
  }

  async putBlob(
    data: Readable | AsyncIterable<Buffer>,
    expectedDigest?: string,
  ): Promise<BlobInfo> {
    if (expectedDigest !== undefined) assertDigest(expectedDigest, 'expected digest');
    let session: Session | undefined;
    try {
      if (expectedDigest !== undefined) {
        const known = await this.knownBlob(expectedDigest);
        if (known) {
          destroySource(data);
          return known;
        }
        const opened = await this.openSession(expectedDigest);
        if (opened.mounted) {
          destroySource(data);
          return await this.stored(opened.mounted);
        }
        session = opened.session;
      }
      const hash = createHash('sha256');
      const chunks = readChunks(data, this.chunkSize, hash)[Symbol.asyncIterator]();
      const first = await chunks.next();
      const firstChunk = first.done ? Buffer.alloc(0) : first.value;
      const second =
        first.done || firstChunk.length < this.chunkSize ? undefined : await chunks.next();
      if (second === undefined || second.done) {
        // One chunk: a monolithic upload, once the digest is known.
        const digest = `sha256:${hash.digest('hex')}`;
        checkExpected(expectedDigest, digest);
        if (session === undefined) {
          const known = await this.knownBlob(digest);
          if (known) return known;
          const opened = await this.openSession(digest);
          if (opened.mounted) return await this.stored(opened.mounted);
          session = opened.session;
        }
        await this.finishUpload(session, digest, firstChunk);
        session = undefined;
        return await this.stored({ digest, size: firstChunk.length });
      }
      session ??= (await this.openSession(undefined)).session!;
      const up: Session = session;
      let offset = 0;
      // Send each chunk while the next one is being read.
      let next: Promise<IteratorResult<Buffer, undefined>> | undefined;
      let current: Buffer | undefined = firstChunk;
      let pendingSecond: Buffer | undefined = second.value;
      while (current !== undefined) {
        if (pendingSecond !== undefined) {
          next = Promise.resolve({ done: false, value: pendingSecond });
          pendingSecond = undefined;
        } else {
          next = chunks.next();
        }
        next.catch(() => {});
        await this.patchChunk(up, offset, current);
        offset += current.length;
        const r = await next;
        current = r.done ? undefined : r.value;
      }
      const digest = `sha256:${hash.digest('hex')}`;
      checkExpected(expectedDigest, digest);
      await this.finishUpload(up, digest, undefined);
      session = undefined;
      return await this.stored({ digest, size: offset });
    } catch (err) {
      destroySource(data);
      throw this.forPut(err);
    } finally {
      if (session) await this.cancelSession(session);
    }
  }

  async putBlobFile(file: string): Promise<BlobInfo> {
    // Hash first: a blob already stored costs one read and no upload. The registry checks the
    // digest of what arrives, so a file that changes meanwhile is refused, not stored misnamed.
    let info: BlobInfo;
    try {
      info = await digestStream(createReadStream(file, { highWaterMark: FILE_READ }));
    } catch (err) {
      throw this.forPut(err);
    }
    return this.uploadFile(file, info);
  }

  /**
   * A blob just uploaded (or mounted) whole. One this process found corrupt (an invocation built
   * again after its blob was) is read back: a registry keeps the bytes it holds for a digest until
   * its garbage collection removes them, and takes an upload of the same digest without storing
   * it again. Served intact, it is no longer corrupt, and a result naming it can be stored.
   */
  private async stored(info: BlobInfo): Promise<BlobInfo> {
    if (!this.corrupt.has(info.digest)) return info;
    const what = `GET blob ${info.digest}`;
    const res = await this.getFollowing(`${this.repoPath}/blobs/${info.digest}`, what);
    if (!res.ok) throw this.unexpected(res, what);
    const served = await digestStream(this.received(res, what));
    if (served.digest === info.digest) {
      this.corrupt.delete(info.digest);
    } else {
      await this.deleteBlob(info.digest);
      this.warnOnce(
        `still-corrupt:${info.digest}`,
        `${this.location}: blob ${info.digest} was uploaded again, but the registry still serves ` +
          'its corrupt copy (a registry keeps the bytes it has for a digest until its garbage ' +
          "collection removes them): results naming it are not stored; run the registry's " +
          'garbage collection',
      );
    }
    return info;
  }

  /** Where `saveOutputs` packs blobs for `adoptBlobFile`. */
  async tempDir(): Promise<string> {
    await mkdir(this.tempPath, { recursive: true });
    return this.tempPath;
  }

  /**
   * Uploads `file`, which the caller hashed to `digest` while writing it: no second read to hash
   * it (the registry checks the digest of what arrives). The file is left where it is.
   */
  async adoptBlobFile(file: string, digest: string): Promise<BlobInfo> {
    assertDigest(digest);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      throw this.forPut(err);
    }
    return this.uploadFile(file, { digest, size });
  }

  /**
   * Uploads a file of known digest and size, streamed from disk: one PUT when it fits in a chunk,
   * or whatever its size unless `chunk-size` was set or the registry refused a large body (413);
   * else PATCH chunks (each a range of the file) and a closing PUT.
   */
  private async uploadFile(file: string, info: BlobInfo): Promise<BlobInfo> {
    let session: Session | undefined;
    try {
      const known = await this.knownBlob(info.digest);
      if (known) return info;
      const opened = await this.openSession(info.digest);
      if (opened.mounted) return await this.stored(info);
      session = opened.session;
      const fileBody = (start: number, end: number) => () =>
        createReadStream(file, { start, end: end - 1, highWaterMark: FILE_READ });
      try {
        let whole = info.size <= this.chunkSize || (!this.chunkSizeSet && !this.largeBodiesRefused);
        if (whole) {
          try {
            await this.finishUpload(session, info.digest, {
              body: fileBody(0, info.size),
              length: info.size,
            });
          } catch (err) {
            if (!(err instanceof StoreUnavailableError) || err.status !== 413) throw err;
            if (info.size <= this.chunkSize) throw err;
            // Too large for the registry (or a proxy before it): chunks from now on.
            this.largeBodiesRefused = true;
            await this.cancelSession(session);
            session = undefined;
            session = (await this.openSession(undefined)).session!;
            whole = false;
          }
        }
        if (!whole) {
          for (let offset = 0; offset < info.size; offset += this.chunkSize) {
            const end = Math.min(info.size, offset + this.chunkSize);
            await this.patchChunk(session, offset, {
              body: fileBody(offset, end),
              length: end - offset,
            });
          }
          await this.finishUpload(session, info.digest, undefined);
        }
      } catch (err) {
        if (err instanceof StoreUnavailableError && err.status === 400) {
          throw new CorruptBlobError(
            info.digest,
            undefined,
            `${file} does not hash to ${info.digest} (changed while it was being uploaded to ` +
              `${this.location}?); nothing stored`,
          );
        }
        throw err;
      }
      session = undefined;
      return await this.stored(info);
    } catch (err) {
      throw this.forPut(err);
    } finally {
      if (session) await this.cancelSession(session);
    }
  }

  async openBlob(digest: string): Promise<Readable | null> {
    assertDigest(digest);
    try {
      return await this.readBlob(digest);
    } catch (err) {
      return this.miss(err, null);
    }
  }

  /**
   * `openBlob`, except that a registry that cannot answer throws (`StoreUnavailableError`): `null`
   * is a blob the repository does not hold (or one found corrupt).
   */
  private async readBlob(digest: string): Promise<Readable | null> {
    if (this.corrupt.has(digest)) return null;
    const res = await this.getFollowing(`${this.repoPath}/blobs/${digest}`, `GET blob ${digest}`);
    if (res.status === 404) {
      await discard(res);
      return null;
    }
    if (!res.ok) throw this.unexpected(res, `GET blob ${digest}`);
    return verifiedStream(this.received(res, `GET blob ${digest}`), digest, async (err) => {
      this.corrupt.add(digest);
      const removed = await this.deleteBlob(digest);
      this.warnOnce(
        `corrupt:${digest}`,
        `${this.location}: blob ${digest} is corrupt (its bytes hash to ${err.actual}); not used` +
          (removed ? ', removed from the repository' : ''),
      );
    });
  }

  /**
   * The body of a blob's answer, as it arrives; a connection lost before its end (or fewer bytes
   * than the Content-Length) ends it with a `network` `StoreUnavailableError`, so that a blob cut
   * short in transit is never taken for a corrupt one.
   */
  private received(res: HttpAnswer, what: string): Readable {
    const body = res.body;
    const expected = contentLength(res);
    const fail = (got: number, why: string, cause?: unknown) =>
      new StoreUnavailableError(
        'network',
        `${this.location}: ${what}: the connection was lost after ${got}` +
          `${expected >= 0 ? ` of ${expected}` : ''} bytes (${why})`,
        { cause },
      );
    // A registry that stops sending times out; a consumer that stops reading (extraction waiting
    // for the disk) does not: only the time spent waiting for bytes that were asked for counts.
    const timeoutMs = this.timeoutMs;
    async function* bytes(): AsyncGenerator<Buffer> {
      let got = 0;
      let waitingSince = Date.now();
      const watchdog = setInterval(
        () => {
          if (waitingSince > 0 && Date.now() - waitingSince >= timeoutMs) {
            body.destroy(new Error(`no data for ${timeoutMs / 1000} s`));
          }
        },
        Math.min(5000, Math.max(10, timeoutMs / 4)),
      );
      watchdog.unref();
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          waitingSince = 0;
          got += chunk.length;
          yield chunk;
          waitingSince = Date.now();
        }
      } catch (err) {
        throw fail(got, (err as Error)?.message ?? String(err), err);
      } finally {
        clearInterval(watchdog);
      }
      if (expected >= 0 && got !== expected) throw fail(got, 'short answer');
    }
    return Readable.from(bytes(), { objectMode: false });
  }

  async getResult(cacheKey: string): Promise<ResultManifest | null> {
    const tag = RegistryStore.tagFor(cacheKey);
    try {
      return await this.readResult(tag, cacheKey);
    } catch (err) {
      return this.miss(err, null);
    }
  }

  /**
   * `getResult`, except that a registry that cannot answer throws (`StoreUnavailableError`): `null`
   * is a result the repository does not hold or that cannot be used (warned about).
   */
  private async readResult(
    tag: string,
    cacheKey: string,
    unusable?: string[],
  ): Promise<ResultManifest | null> {
    const doc = await this.fetchManifest(tag);
    if (doc === null) return null;
    const problem = ociManifestProblem(doc);
    if (problem)
      return this.warnResult(cacheKey, unusable, `has an unusable OCI manifest: ${problem}`);
    const config = (doc as OciManifest).config;
    const text = await this.fetchSmallBlob(config.digest, config.size);
    if (text === null)
      return this.warnResult(
        cacheKey,
        unusable,
        `names a config blob ${config.digest} that is gone`,
      );
    if (typeof text !== 'string')
      return this.warnResult(cacheKey, unusable, `has a corrupt config blob ${config.digest}`);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return this.warnResult(cacheKey, unusable, `does not parse (${(err as Error).message})`);
    }
    const problems = manifestProblems(value);
    if (problems.length > 0)
      return this.warnResult(cacheKey, unusable, `is not valid: ${problems.join('; ')}`);
    const manifest = value as ResultManifest;
    if (manifest.cacheKey !== cacheKey) {
      return this.warnResult(cacheKey, unusable, `is for another cache key (${manifest.cacheKey})`);
    }
    // The registry keeps the layers of a manifest it holds; anything else must be checked.
    const layers = new Set((doc as OciManifest).layers.map((l) => l.digest));
    const unlisted = manifest.outputs.map((o) => o.digest).filter((d) => !layers.has(d));
    const bad = manifest.outputs.map((o) => o.digest).filter((d) => this.corrupt.has(d));
    const present = unlisted.length > 0 ? await this.existingBlobs(unlisted) : new Set<string>();
    const missing = [...new Set([...bad, ...unlisted.filter((d) => !present.has(d))])];
    if (missing.length > 0) {
      return this.warnResult(
        cacheKey,
        unusable,
        `names missing or corrupt blobs: ${missing.join(', ')}`,
      );
    }
    return manifest;
  }

  async putResult(manifest: ResultManifest): Promise<void> {
    const problems = manifestProblems(manifest);
    if (problems.length > 0) throw new TypeError(`invalid result manifest: ${problems.join('; ')}`);
    try {
      this.checkWritesAllowed();
      const digests = manifest.outputs.map((o) => o.digest);
      const present = await this.existingBlobs(digests);
      const missing = [...new Set(digests.filter((d) => !present.has(d)))];
      if (missing.length > 0) {
        const corrupt = missing.filter((d) => this.corrupt.has(d));
        throw new Error(
          `result ${manifest.cacheKey} names blobs that are not stored: ${missing.join(', ')}` +
            (corrupt.length > 0 ? ` (found corrupt in the registry: ${corrupt.join(', ')})` : ''),
        );
      }
      const config = Buffer.from(JSON.stringify(manifest));
      const configDigest = sha256Digest(config);
      if (!(await this.knownBlob(configDigest))) {
        const opened = await this.openSession(configDigest);
        if (!opened.mounted) await this.finishUpload(opened.session, configDigest, config);
      }
      await this.putManifest(manifest, { digest: configDigest, size: config.length });
    } catch (err) {
      throw this.forPut(err);
    }
  }

  /**
   * `dist-build cache prune --max-size`: while the blobs the repository's results name (each
   * once) add up to more than `maxBytes`, removes the oldest result (registries keep no access
   * times), then the blobs no remaining result names. Needs a registry that allows deletes (a
   * refusal is an error); the space itself comes back with the registry's garbage collection.
   */
  async prune(maxBytes: number): Promise<{
    removedBlobs: number;
    removedResults: number;
    freedBytes: number;
    bytes: number;
  }> {
    const results = (await this.readableResults()).map((r) => ({
      key: r.cacheKey,
      createdAt: r.createdAt,
      blobs: new Map(r.outputs.map((o) => [o.digest, o.size])),
    }));
    results.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
    const named = new Map<string, { size: number; by: number }>();
    for (const r of results)
      for (const [digest, size] of r.blobs) {
        const n = named.get(digest) ?? { size, by: 0 };
        n.by++;
        named.set(digest, n);
      }
    let bytes = [...named.values()].reduce((sum, n) => sum + n.size, 0);
    const out = { removedBlobs: 0, removedResults: 0, freedBytes: 0, bytes };
    for (const r of results) {
      if (bytes <= maxBytes) break;
      await this.deleteResult(r.key);
      out.removedResults++;
      for (const digest of r.blobs.keys()) {
        const n = named.get(digest)!;
        if (--n.by > 0) continue;
        named.delete(digest);
        bytes -= n.size;
        if (await this.deleteBlob(digest)) {
          out.removedBlobs++;
          out.freedBytes += n.size;
        }
      }
    }
    out.bytes = bytes;
    return out;
  }

  /**
   * Every result the repository lists whose manifest can be read (`prune`, `verify`), with the
   * created time its listing gives. A registry that cannot answer throws: a result it could not
   * read now is not left out (its blobs would pass for named by none). The cache keys of listed
   * results that cannot be used (config blob gone or corrupt, invalid) go to `unusable`.
   */
  private async readableResults(unusable?: string[]): Promise<ResultManifest[]> {
    const out: ResultManifest[] = [];
    for await (const r of this.listResults()) {
      const manifest = await this.readResult(
        RegistryStore.tagFor(r.cacheKey),
        r.cacheKey,
        unusable,
      );
      if (manifest) out.push({ ...manifest, createdAt: r.createdAt });
    }
    return out;
  }

  /** Deletes the manifest (by digest: registries do not delete tags) of a result. */
  private async deleteResult(cacheKey: string): Promise<void> {
    const tag = RegistryStore.tagFor(cacheKey);
    const head = await this.send({
      method: 'HEAD',
      url: `${this.repoPath}/manifests/${tag}`,
      headers: { accept: OCI_MANIFEST_TYPE },
      what: `HEAD manifest ${tag}`,
    });
    await discard(head);
    if (head.status === 404) return; // gone already
    const digest = head.headers.get('docker-content-digest');
    if (!head.ok || !digest) throw this.unexpected(head, `HEAD manifest ${tag}`);
    const res = await this.send({
      method: 'DELETE',
      url: `${this.repoPath}/manifests/${digest}`,
      what: `delete result ${tag}`,
    });
    await discard(res);
    if (res.status !== 202 && res.status !== 200 && res.status !== 204 && res.status !== 404)
      throw this.unexpected(
        res,
        `delete result ${tag} (the registry must allow deletes: storage.delete.enabled)`,
      );
  }

  /**
   * `dist-build cache verify`: downloads and rehashes every blob the repository's results name,
   * each once. A corrupt blob is removed when the registry allows deletes (`openBlob` does it);
   * the results naming it then miss, since a result counts only with all its blobs. Results
   * themselves are small manifests, checked on every read: one that cannot be used (its config
   * blob gone or corrupt, not valid) is in `badResults`, and removed too. A registry that cannot
   * be reached is an error (`StoreUnavailableError`), not a clean bill of health.
   */
  async verify(): Promise<{
    checked: number;
    corrupt: string[];
    missing: string[];
    removedResults: number;
    badResults?: string[];
  }> {
    const badResults: string[] = [];
    const results = await this.readableResults(badResults);
    const digests = new Set(results.flatMap((r) => r.outputs.map((o) => o.digest)));
    const corrupt: string[] = [];
    const missing: string[] = [];
    // A blob the registry does not serve now (5xx, 429, 403) is neither missing nor corrupt: an
    // error, and no result is removed for it.
    await mapLimit([...digests], this.concurrency, async (digest) => {
      const stream = await this.readBlob(digest);
      if (!stream) {
        missing.push(digest);
        return;
      }
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) void chunk;
      } catch (err) {
        if (!(err instanceof CorruptBlobError)) throw err;
        corrupt.push(digest);
      }
    });
    // A result naming a blob that is corrupt or gone can never be used: removed where the
    // registry allows deletes, so that ls, stats and prune stop counting it.
    const unusable = new Set([...corrupt, ...missing]);
    let removedResults = 0;
    const remove = async (cacheKey: string): Promise<boolean> => {
      try {
        await this.deleteResult(cacheKey);
        return true;
      } catch (err) {
        // Deletes disabled (405) or refused: the result stays, and misses. Not reachable: an error.
        if (!(err instanceof StoreUnavailableError) || err.kind === 'network') throw err;
        return false;
      }
    };
    for (const r of results) {
      if (!r.outputs.some((o) => unusable.has(o.digest))) continue;
      if (await remove(r.cacheKey)) removedResults++;
    }
    for (const key of badResults) await remove(key);
    return {
      checked: digests.size,
      corrupt: corrupt.sort(),
      missing: missing.sort(),
      removedResults,
      ...(badResults.length > 0 ? { badResults: badResults.sort() } : {}),
    };
  }

  /** Results in the repository (tags `r-<hex>`), optionally only cache keys starting `prefix`. */
  async *listResults(prefix = ''): AsyncIterable<ResultListing> {
    const want = prefix.startsWith('sha256:') ? prefix : prefix === '' ? '' : `sha256:${prefix}`;
    let url: string | URL | undefined = `${this.repoPath}/tags/list?n=${TAGS_PAGE}`;
    try {
      while (url !== undefined) {
        const res: HttpAnswer = await this.send({ method: 'GET', url, what: 'list tags' });
        if (res.status === 404) {
          await discard(res);
          return;
        }
        if (!res.ok) throw this.unexpected(res, 'list tags');
        const body = parseJson(await readText(res, 64 * MAX_DOCUMENT)) as {
          tags?: unknown;
        } | null;
        const tags = Array.isArray(body?.tags) ? (body.tags as unknown[]) : [];
        const keys = tags
          .map((t) => (typeof t === 'string' ? TAG_RE.exec(t) : null))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => `sha256:${m[1]}`)
          .filter((k) => k.startsWith(want));
        for (let i = 0; i < keys.length; i += this.concurrency) {
          const batch = keys.slice(i, i + this.concurrency);
          const listings = await mapLimit(batch, this.concurrency, (k) => this.listing(k));
          for (const l of listings) if (l) yield l;
        }
        url = nextLink(res.headers.get('link'), res.url || this.origin);
      }
    } catch (err) {
      throw this.forPut(err);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Blobs

  private async existingBlobs(digests: readonly string[]): Promise<Set<string>> {
    const unique = [...new Set(digests)].filter((d) => !this.corrupt.has(d));
    const sizes = await mapLimit(unique, this.concurrency, (d) => this.headBlob(d));
    return new Set(unique.filter((_, i) => sizes[i] !== null));
  }

  /** `{digest, size}` of a blob in the repository (and not known corrupt), or `null`. */
  private async knownBlob(digest: string): Promise<BlobInfo | null> {
    if (this.corrupt.has(digest)) return null;
    const size = await this.headBlob(digest);
    return size === null ? null : { digest, size };
  }

  /** Size of a blob in the repository (-1 when the registry does not say), `null` if absent. */
  private async headBlob(digest: string): Promise<number | null> {
    const what = `HEAD blob ${digest}`;
    const res = await this.send({ method: 'HEAD', url: `${this.repoPath}/blobs/${digest}`, what });
    await discard(res);
    if (res.status === 404) return null;
    if (res.ok) return contentLength(res);
    if (isRedirect(res.status)) return -1; // served from elsewhere (a CDN): it exists
    throw this.unexpected(res, what);
  }

  /** Starts an upload; with a digest and `mount-from`, tries a cross-repository mount first. */
  private async openSession(
    digest: string | undefined,
  ): Promise<
    { session: Session; mounted?: undefined } | { mounted: BlobInfo; session?: undefined }
  > {
    this.checkWritesAllowed();
    const base = `${this.repoPath}/blobs/uploads/`;
    if (digest !== undefined && this.mountFrom !== undefined && !this.mountRefused) {
      const from = this.mountFrom;
      const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
      let res: HttpAnswer | undefined;
      try {
        res = await this.send({
          method: 'POST',
          url: base + query,
          headers: { 'content-length': '0' },
          extraScopes: [`repository:${from}:pull`],
          what: `mount blob ${digest} from ${from}`,
        });
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || err.kind !== 'auth') throw err;
        this.mountRefused = true;
        this.warnOnce(
          'mount',
          `${this.location}: cannot mount blobs from ${from} (${err.message}); uploading instead`,
        );
      }
      if (res?.status === 201) {
        await discard(res);
        this.counters.mountedBlobs++;
        const size = await this.headBlob(digest);
        return { mounted: { digest, size: size ?? -1 } };
      }
      if (res?.status === 202) return { session: await this.sessionFrom(res) };
      if (res) await discard(res);
    }
    const res = await this.send({
      method: 'POST',
      url: base,
      headers: { 'content-length': '0' },
      what: 'start a blob upload',
    });
    if (res.status !== 202) throw this.unexpected(res, 'start a blob upload');
    return { session: await this.sessionFrom(res) };
  }

  private async sessionFrom(res: HttpAnswer): Promise<Session> {
    await discard(res);
    const loc = res.headers.get('location');
    if (!loc)
      throw new StoreUnavailableError(
        'protocol',
        `${this.location}: upload started without a Location`,
      );
    return { location: new URL(loc, this.origin) };
  }

  private async patchChunk(
    session: Session,
    offset: number,
    chunk: Buffer | { body: () => Readable; length: number },
  ): Promise<void> {
    const length = Buffer.isBuffer(chunk) ? chunk.length : chunk.length;
    const body = Buffer.isBuffer(chunk) ? () => chunk : chunk.body;
    const res = await this.send({
      method: 'PATCH',
      url: session.location,
      headers: {
        'content-type': 'application/octet-stream',
        'content-range': `${offset}-${offset + length - 1}`,
      },
      body,
      bodyLength: length,
      countUpload: true,
      what: 'upload a blob chunk',
    });
    if (res.status !== 202) throw this.unexpected(res, `upload a blob chunk at ${offset}`);
    await discard(res);
    const loc = res.headers.get('location');
    if (loc) session.location = new URL(loc, session.location);
  }

  /** The closing PUT, with the last bytes (or none after PATCH chunks). */
  private async finishUpload(
    session: Session,
    digest: string,
    last: Buffer | { body: () => Readable; length: number } | undefined,
  ): Promise<void> {
    const url = new URL(session.location);
    url.searchParams.set('digest', digest);
    const length = last === undefined ? 0 : last.length;
    const body = last === undefined ? undefined : Buffer.isBuffer(last) ? () => last : last.body;
    const res = await this.send({
      method: 'PUT',
      url,
      headers: { 'content-type': 'application/octet-stream' },
      body,
      bodyLength: length,
      countUpload: true,
      what: `finish the upload of ${digest}`,
    });
    if (res.status !== 201 && res.status !== 204 && res.status !== 200) {
      throw this.unexpected(res, `finish the upload of ${digest}`);
    }
    await discard(res);
  }

  private async cancelSession(session: Session): Promise<void> {
    try {
      const res = await this.send({
        method: 'DELETE',
        url: session.location,
        what: 'cancel an upload',
      });
      await discard(res);
    } catch {
      // the registry forgets abandoned uploads by itself
    }
  }

  /** Deletes a blob from the repository when the registry allows it; whether it did. */
  private async deleteBlob(digest: string): Promise<boolean> {
    try {
      const res = await this.send({
        method: 'DELETE',
        url: `${this.repoPath}/blobs/${digest}`,
        what: `delete blob ${digest}`,
      });
      await discard(res);
      return res.status === 202 || res.status === 200 || res.status === 204;
    } catch {
      return false;
    }
  }

  /**
   * A small blob (a result config) read whole and verified: its text, `null` when it is absent,
   * `false` when it is corrupt (warned about).
   */
  private async fetchSmallBlob(digest: string, size: number): Promise<string | null | false> {
    if (this.corrupt.has(digest)) return false;
    const res = await this.getFollowing(`${this.repoPath}/blobs/${digest}`, `GET blob ${digest}`);
    if (res.status === 404) {
      await discard(res);
      return null;
    }
    if (!res.ok) throw this.unexpected(res, `GET blob ${digest}`);
    let text: string;
    try {
      // A connection lost on the way is a `network` error (thrown: not corrupt, nothing deleted).
      const body = this.received(res, `GET blob ${digest}`);
      text = await readCappedText(body, Math.max(size, 0) + 1, () => body.destroy());
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      text = ''; // larger than its descriptor says
    }
    const actual = sha256Digest(text);
    if (actual !== digest || Buffer.byteLength(text) !== size) {
      this.corrupt.add(digest);
      const removed = await this.deleteBlob(digest);
      this.warnOnce(
        `corrupt:${digest}`,
        `${this.location}: blob ${digest} is corrupt (its bytes hash to ${actual}); not used` +
          (removed ? ', removed from the repository' : ''),
      );
      return false;
    }
    return text;
  }

  /** GET that follows redirects itself, sending credentials only to the registry. */
  private async getFollowing(path: string, what: string): Promise<HttpAnswer> {
    let res = await this.send({ method: 'GET', url: path, what });
    for (let i = 0; i < MAX_REDIRECTS && isRedirect(res.status); i++) {
      const loc = res.headers.get('location');
      await discard(res);
      if (!loc)
        throw new StoreUnavailableError(
          'protocol',
          `${this.location}: ${what}: redirect without a Location`,
        );
      const url = new URL(loc, res.url || this.origin);
      res = await this.send({ method: 'GET', url, what });
    }
    return res;
  }

  // -------------------------------------------------------------------------------------------
  // Manifests

  private async fetchManifest(tag: string): Promise<unknown> {
    const what = `GET manifest ${tag}`;
    const res = await this.send({
      method: 'GET',
      url: `${this.repoPath}/manifests/${tag}`,
      headers: { accept: OCI_MANIFEST_TYPE },
      what,
    });
    if (res.status === 404) {
      await discard(res);
      return null;
    }
    if (!res.ok) throw this.unexpected(res, what);
    let text: string;
    try {
      text = await readText(res, MAX_DOCUMENT);
    } catch (err) {
      throw new StoreUnavailableError(
        'protocol',
        `${this.location}: ${what}: ${(err as Error).message}`,
      );
    }
    const value = parseJson(text);
    return value === undefined ? { unparsable: true } : value;
  }

  private async putManifest(
    manifest: ResultManifest,
    config: { digest: string; size: number },
  ): Promise<void> {
    const tag = RegistryStore.tagFor(manifest.cacheKey);
    const attempt = async (plain: boolean): Promise<HttpAnswer> => {
      const doc = buildManifest(manifest, config, plain);
      const body = Buffer.from(JSON.stringify(doc));
      return this.send({
        method: 'PUT',
        url: `${this.repoPath}/manifests/${tag}`,
        headers: { 'content-type': OCI_MANIFEST_TYPE },
        body: () => body,
        bodyLength: body.length,
        what: `PUT manifest ${tag}`,
      });
    };
    let res = await attempt(this.plainManifests);
    if (!this.plainManifests && (res.status === 400 || res.status === 415 || res.status === 422)) {
      // No artifact manifests here (artifactType or the config media type refused): a plain image
      // manifest, from now on.
      const why = await errorSummary(res);
      res = await attempt(true);
      if (res.status === 201 || res.status === 200) {
        this.plainManifests = true;
      } else {
        const again = await errorSummary(res);
        throw new StoreUnavailableError(
          'protocol',
          `${this.location}: the registry refused the result manifest for ${manifest.cacheKey} ` +
            `(HTTP 400 ${why}; plain form: HTTP ${res.status} ${again})`,
          { status: res.status },
        );
      }
    }
    if (res.status !== 201 && res.status !== 200) {
      const why = await errorSummary(res);
      throw new StoreUnavailableError(
        res.status >= 500 ? 'server' : 'protocol',
        `${this.location}: PUT manifest ${tag}: unexpected HTTP ${res.status} ${why}`,
        { status: res.status },
      );
    }
    await discard(res);
  }

  private async listing(cacheKey: string): Promise<ResultListing | null> {
    const doc = await this.fetchManifest(RegistryStore.tagFor(cacheKey));
    if (doc === null || ociManifestProblem(doc)) return null;
    const m = doc as OciManifest;
    const size = m.layers.reduce((n, l) => n + (Number.isSafeInteger(l.size) ? l.size : 0), 0);
    let unit = m.annotations?.[UNIT_ANNOTATION];
    let createdAt = m.annotations?.[CREATED_ANNOTATION];
    if (typeof unit !== 'string' || typeof createdAt !== 'string') {
      const text = await this.fetchSmallBlob(m.config.digest, m.config.size);
      const value = typeof text === 'string' ? parseJson(text) : undefined;
      if (manifestProblems(value).length > 0) return null;
      unit = (value as ResultManifest).unit;
      createdAt = (value as ResultManifest).createdAt;
    }
    return { cacheKey, unit, size, createdAt };
  }

  // -------------------------------------------------------------------------------------------
  // HTTP and authentication

  private scopesFor(extra: readonly string[] = []): string[] {
    return [`repository:${this.ref.repository}:pull,push`, ...extra];
  }

  private authorization(scopeKey: string): string | undefined {
    if (this.basicAuth) return this.basicAuth;
    const token = this.tokens.cached(scopeKey);
    return token ? `Bearer ${token}` : undefined;
  }

  private loadCredentials(): Promise<Credentials | null> {
    this.credentials ??= loadCredentials(this.ref.host, this.env, (m) =>
      this.warnOnce(`credentials:${m}`, `${this.location}: ${m}`),
    );
    return this.credentials;
  }

  /**
   * Answers a 401 to a request sent with `sentWith` (its Authorization header, if any): gets what
   * the challenge asks for, or throws an `auth` error.
   */
  private async authenticate(
    header: string | null,
    scopeKey: string,
    scopes: string[],
    sentWith: string | undefined,
  ): Promise<void> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    const creds = await this.loadCredentials();
    if (bearer) {
      this.tokens.forget(scopeKey);
      const wanted = new Set(scopes);
      for (const s of (bearer.params.scope ?? '').split(' ')) if (s) wanted.add(s);
      try {
        await this.tokens.get(scopeKey, bearer, [...wanted], creds);
      } catch (err) {
        if (err instanceof TokenError) {
          const kind = err.kind === 'auth' ? 'auth' : err.kind === 'network' ? 'network' : 'server';
          throw new StoreUnavailableError(kind, `${this.location}: ${err.message}`, { cause: err });
        }
        throw err;
      }
      return;
    }
    if (basic) {
      if (!creds) {
        throw new StoreUnavailableError(
          'auth',
          `${this.location}: the registry wants credentials (set DIST_BUILD_REGISTRY_USERNAME/PASSWORD or log in with docker login)`,
        );
      }
      const header = basicHeader(creds);
      // Refused only when they were sent: concurrent requests that went out before the first
      // 401 was answered meet it too, and are sent again with them.
      if (sentWith === header) throw this.refused(creds);
      this.basicAuth = header;
      return;
    }
    throw new StoreUnavailableError(
      'auth',
      `${this.location}: the registry answered 401 without a usable challenge`,
    );
  }

  private refused(creds: Credentials): StoreUnavailableError {
    return new StoreUnavailableError(
      'auth',
      `${this.location}: the registry refused the credentials from ${creds.source}`,
      { status: 401 },
    );
  }

  /**
   * One request to the registry, authenticated: after a 401 it authenticates and replays the
   * request once. Network failures throw a `network` `StoreUnavailableError` (and put the
   * registry aside for a while); 401/403 after authenticating throw an `auth` one.
   */
  private async send(spec: RequestSpec): Promise<HttpAnswer> {
    const url =
      typeof spec.url === 'string' && spec.url.startsWith('/')
        ? new URL(spec.url, this.origin)
        : new URL(spec.url);
    const ours = url.origin === this.origin;
    const scopes = this.scopesFor(spec.extraScopes);
    const scopeKey = scopes.join(' ');
    if (Date.now() < this.downUntil && this.downError) {
      const cause = this.downError;
      throw new StoreUnavailableError(
        'network',
        `${this.location}: not asked (${spec.what}): ${cause.message.replace(`${this.location}: `, '')}; asked again in ${Math.ceil((this.downUntil - Date.now()) / 1000)} s`,
        { cause },
      );
    }
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...spec.headers };
      if (spec.bodyLength !== undefined) headers['content-length'] = String(spec.bodyLength);
      if (ours && spec.bodyLength !== undefined && spec.bodyLength >= LARGE_BODY) {
        // Never send a large body just to hear 401: renew an expired token first.
        await this.freshAuthorization(scopeKey, scopes);
      }
      const auth = ours ? this.authorization(scopeKey) : undefined;
      if (auth) headers.authorization = auth;
      let res: HttpAnswer;
      try {
        this.counters.requests++;
        this.onRequest?.(spec.method, url);
        res = await this.transport({
          method: spec.method,
          url,
          headers,
          body: spec.body?.(),
          timeoutMs: this.timeoutMs,
          // Storing a large blob may take the registry a while once it has all of it.
          afterBodyTimeoutMs:
            (spec.bodyLength ?? 0) >= LARGE_BODY
              ? this.timeoutMs * AFTER_BODY_TIMEOUTS +
                Math.ceil(spec.bodyLength! / AFTER_BODY_BYTES_PER_MS)
              : undefined,
        });
      } catch (err) {
        if (!(err instanceof HttpError)) throw err; // the body could not be read
        // A kept-alive connection the server had closed: replay (every body can be made again).
        if (
          attempt === 0 &&
          err.reusedSocket &&
          (err.code === 'ECONNRESET' || err.code === 'EPIPE')
        ) {
          continue;
        }
        const e = new StoreUnavailableError(
          'network',
          `${this.location}: registry ${this.origin} unreachable (${spec.what}: ${(err as Error).message})`,
          { cause: err },
        );
        // Requests that were in flight together fail together: one failure.
        if (Date.now() >= this.downUntil) {
          this.downUntil = Date.now() + Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** this.downCount);
          this.downCount = Math.min(this.downCount + 1, 16);
        }
        this.downError = e;
        throw e;
      }
      this.downCount = 0;
      if (res.status === 401 && ours && attempt === 0) {
        await discard(res);
        this.challenge = res.headers.get('www-authenticate');
        await this.authenticate(this.challenge, scopeKey, scopes, auth);
        continue;
      }
      if (res.status === 401 || res.status === 403) {
        const summary = await errorSummary(res);
        if (res.status === 401 && ours && auth !== undefined && auth === this.basicAuth) {
          const creds = await this.loadCredentials();
          if (creds) throw this.refused(creds);
        }
        throw new StoreUnavailableError(
          'auth',
          `${this.location}: access denied (${spec.what}: HTTP ${res.status}${summary ? ` ${summary}` : ''})`,
          { status: res.status },
        );
      }
      if (spec.countUpload && res.ok && spec.bodyLength)
        this.counters.uploadedBytes += spec.bodyLength;
      return res;
    }
  }

  /**
   * Before a large body: when the registry has asked for a bearer token and the one for `scopeKey`
   * has expired, gets a new one (the body then goes out once, authenticated).
   */
  private async freshAuthorization(scopeKey: string, scopes: string[]): Promise<void> {
    if (this.challenge === null || this.authorization(scopeKey) !== undefined) return;
    if (!parseChallenges(this.challenge).some((c) => c.scheme === 'bearer')) return;
    await this.authenticate(this.challenge, scopeKey, scopes, undefined);
  }

  private unexpected(res: HttpAnswer, what: string): StoreUnavailableError {
    void discard(res);
    const kind = res.status >= 500 || res.status === 429 ? 'server' : 'protocol';
    return new StoreUnavailableError(
      kind,
      `${this.location}: ${what}: unexpected HTTP ${res.status}`,
      {
        status: res.status,
      },
    );
  }

  /** Problems of a read become a warning (once per kind) and `value`. */
  private miss<T>(err: unknown, value: T): T {
    if (err instanceof StoreUnavailableError) {
      this.warnOnce(err.kind, `${err.message}; cache misses`);
    } else {
      // Whatever else went wrong talking to the registry: still only a miss.
      this.warnOnce(
        'unexpected',
        `${this.location}: ${(err as Error)?.message ?? String(err)}; cache misses`,
      );
    }
    return value;
  }

  /** Errors of the `put*` methods: registry problems as `StoreUnavailableError`, others as is. */
  private checkWritesAllowed(): void {
    if (this.writesDenied && Date.now() < this.writesDeniedUntil) throw this.writesDenied;
  }

  private forPut(err: unknown): unknown {
    if (err instanceof StoreUnavailableError && err.kind === 'auth' && err !== this.writesDenied) {
      this.writesDenied = err;
      this.writesDeniedUntil = Date.now() + WRITES_DENIED_MS;
    }
    if (err instanceof StoreUnavailableError || err instanceof CorruptBlobError) return err;
    if (err instanceof Error && err.name === 'AbortError') {
      return new StoreUnavailableError('network', `${this.location}: ${err.message}`, {
        cause: err,
      });
    }
    return err;
  }

  /** A result that cannot be used: a warning (once), listed in `unusable` when given. */
  private warnResult(cacheKey: string, unusable: string[] | undefined, problem: string): null {
    unusable?.push(cacheKey);
    this.warnOnce(`result:${cacheKey}`, `${this.location}: result ${cacheKey} ${problem}; a miss`);
    return null;
  }

  private warnOnce(id: string, message: string): void {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.onWarning(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface OciManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

function buildManifest(
  manifest: ResultManifest,
  config: { digest: string; size: number },
  plain: boolean,
): OciManifest {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_TYPE,
    ...(plain ? {} : { artifactType: RESULT_ARTIFACT_TYPE }),
    config: { mediaType: plain ? OCI_CONFIG_TYPE : RESULT_CONFIG_TYPE, ...config },
    layers: manifest.outputs.map((o) => ({
      mediaType: OUTPUT_LAYER_TYPE,
      digest: o.digest,
      size: o.size,
      annotations: { [TITLE_ANNOTATION]: o.path },
    })),
    annotations: {
      [CREATED_ANNOTATION]: manifest.createdAt,
      [UNIT_ANNOTATION]: manifest.unit,
      [KEY_ANNOTATION]: manifest.cacheKey,
    },
  };
}

/** Why a fetched manifest is not one of ours, or `null`. */
function ociManifestProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return 'not a JSON object';
  const m = value as Record<string, unknown>;
  if ((m as { unparsable?: boolean }).unparsable) return 'does not parse';
  if (m.schemaVersion !== 2) return 'schemaVersion is not 2';
  if (m.mediaType !== undefined && m.mediaType !== OCI_MANIFEST_TYPE)
    return `media type ${String(m.mediaType)}`;
  if (m.artifactType !== undefined && m.artifactType !== RESULT_ARTIFACT_TYPE) {
    return `artifact type ${String(m.artifactType)} is not ${RESULT_ARTIFACT_TYPE}`;
  }
  const c = m.config as Partial<Descriptor> | undefined;
  if (typeof c !== 'object' || c === null) return 'no config';
  if (c.mediaType !== RESULT_CONFIG_TYPE && c.mediaType !== OCI_CONFIG_TYPE) {
    return `config media type ${String(c.mediaType)}`;
  }
  if (!isDigest(c.digest)) return 'config digest is not a sha256 digest';
  if (!Number.isSafeInteger(c.size) || c.size! < 0 || c.size! > MAX_DOCUMENT)
    return 'config size is unusable';
  if (!Array.isArray(m.layers)) return 'layers is not an array';
  for (const l of m.layers as unknown[]) {
    if (typeof l !== 'object' || l === null || !isDigest((l as Descriptor).digest)) {
      return 'a layer has no sha256 digest';
    }
  }
  return null;
}

/**
 * Reads `data` into chunks of exactly `size` bytes (the last one shorter), hashing on the way.
 * Each chunk is a fresh buffer, so a chunk being sent is never overwritten by the next one.
 */
async function* readChunks(
  data: Readable | AsyncIterable<Buffer>,
  size: number,
  hash: ReturnType<typeof createHash>,
): AsyncGenerator<Buffer, undefined> {
  let buf = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const chunk of data as AsyncIterable<Buffer | string>) {
    let bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    hash.update(bytes);
    while (bytes.length > 0) {
      const n = Math.min(bytes.length, size - filled);
      bytes.copy(buf, filled, 0, n);
      filled += n;
      bytes = bytes.subarray(n);
      if (filled === size) {
        yield buf;
        buf = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buf.subarray(0, filled);
  return undefined;
}

function checkExpected(expected: string | undefined, actual: string): void {
  if (expected !== undefined && actual !== expected) {
    throw new CorruptBlobError(
      expected,
      actual,
      `data for blob ${expected} hashes to ${actual}; nothing stored`,
    );
  }
}

function destroySource(data: Readable | AsyncIterable<Buffer>): void {
  const d = data as { destroy?: () => void };
  if (typeof d.destroy === 'function') d.destroy();
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function contentLength(res: HttpAnswer): number {
  const n = Number(res.headers.get('content-length'));
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

/** `CODE: message` of a registry error body, briefly. */
async function errorSummary(res: HttpAnswer): Promise<string> {
  try {
    const body = parseJson(await readText(res, 64 * 1024)) as
      { errors?: { code?: string; message?: string }[] } | undefined;
    const e = body?.errors?.[0];
    return e ? `${e.code ?? ''}${e.message ? `: ${e.message}` : ''}`.slice(0, 300) : '';
  } catch {
    return '';
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The `rel="next"` URL of a `Link` header. */
function nextLink(header: string | null, base: string): URL | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /rel="?next"?/.test(m[2]!)) return new URL(m[1]!, base);
  }
  return undefined;
}
