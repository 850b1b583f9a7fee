import { createRequire as __dbCreateRequire } from 'node:module'; const require = __dbCreateRequire(import.meta.url);
import {
  CorruptBlobError,
  HashPipe,
  StoreOptionsError,
  VerifiedFileChunks,
  assertDigest,
  digestStream,
  errorText,
  formatSize,
  hashedChunks,
  isVerifiedFor,
  manifestProblems,
  mapLimit,
  verifiedStream
} from "./chunk-QPI3LQR2.js";

// src/store/gha-api.ts
var MAX_PAGES = 1e3;
var TIMEOUT_MS = 15e3;
function api(env, what) {
  const token = env.DIST_BUILD_GITHUB_TOKEN || env.GITHUB_TOKEN;
  const repo = env.GITHUB_REPOSITORY;
  if (!token || !repo) {
    return {
      unavailable: `${what} needs the GitHub API: set GITHUB_TOKEN (or DIST_BUILD_GITHUB_TOKEN) and GITHUB_REPOSITORY`
    };
  }
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repo)) {
    return { unavailable: `GITHUB_REPOSITORY "${repo}" is not owner/name` };
  }
  return {
    base: (env.GITHUB_API_URL || "https://api.github.com").replace(/\/+$/, ""),
    repo,
    headers: {
      accept: "application/vnd.github+json",
      authorization: `Bearer ${token}`,
      "x-github-api-version": "2022-11-28",
      "user-agent": "dist-build"
    }
  };
}
async function call(a, url, method, fetchImpl) {
  try {
    return await fetchImpl(url, {
      method,
      headers: a.headers,
      signal: AbortSignal.timeout(TIMEOUT_MS)
    });
  } catch (err) {
    return {
      unavailable: `the GitHub API at ${a.base} cannot be reached (${err.message})`
    };
  }
}
async function refusal(res, method, url) {
  const body = (await res.text().catch(() => "")).slice(0, 200).replace(/\s+/g, " ");
  const hint = method !== "GET" && (res.status === 403 || res.status === 401) ? " (deleting needs a token with the actions: write permission)" : "";
  return `the GitHub API answered ${res.status} for ${method} ${url.pathname}${body ? `: ${body}` : ""}${hint}`;
}
async function listGhaCaches(prefix, env, fetchImpl = fetch) {
  const a = api(env, "listing");
  if ("unavailable" in a) return a;
  const entries = [];
  for (let page = 1; page <= MAX_PAGES; page++) {
    const url = new URL(`${a.base}/repos/${a.repo}/actions/caches`);
    url.searchParams.set("key", prefix);
    url.searchParams.set("per_page", "100");
    url.searchParams.set("page", String(page));
    url.searchParams.set("sort", "created_at");
    url.searchParams.set("direction", "desc");
    const res = await call(a, url, "GET", fetchImpl);
    if ("unavailable" in res) return res;
    if (!res.ok) return { unavailable: await refusal(res, "GET", url) };
    let data;
    try {
      data = await res.json();
    } catch {
      return { unavailable: `the GitHub API answered ${url.pathname} with something not JSON` };
    }
    const list = Array.isArray(data.actions_caches) ? data.actions_caches : [];
    for (const c of list) {
      if (typeof c.key !== "string" || !c.key.startsWith(prefix)) continue;
      entries.push({
        id: typeof c.id === "number" ? c.id : 0,
        key: c.key,
        version: typeof c.version === "string" ? c.version : "",
        ref: typeof c.ref === "string" ? c.ref : "",
        sizeBytes: typeof c.size_in_bytes === "number" ? c.size_in_bytes : 0,
        createdAt: typeof c.created_at === "string" ? c.created_at : "",
        lastAccessedAt: typeof c.last_accessed_at === "string" ? c.last_accessed_at : ""
      });
    }
    const total = typeof data.total_count === "number" ? data.total_count : 0;
    if (list.length < 100 || page * 100 >= total) return { entries };
  }
  return {
    unavailable: `more than ${MAX_PAGES * 100} entries start with ${prefix}: the listing stops there`
  };
}
async function deleteGhaCache(id, env, fetchImpl = fetch) {
  const a = api(env, "deleting an entry");
  if ("unavailable" in a) throw new Error(a.unavailable);
  if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`no such cache entry id: ${id}`);
  const url = new URL(`${a.base}/repos/${a.repo}/actions/caches/${id}`);
  const res = await call(a, url, "DELETE", fetchImpl);
  if ("unavailable" in res) throw new Error(res.unavailable);
  if (res.ok || res.status === 404) {
    await res.body?.cancel().catch(() => {
    });
    return;
  }
  throw new Error(await refusal(res, "DELETE", url));
}

// src/store/gha.ts
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash, randomBytes as randomBytes2 } from "node:crypto";
import { createReadStream as createReadStream2 } from "node:fs";
import { copyFile, link, lstat as lstat3, mkdir as mkdir2, mkdtemp, readFile as readFile2, rename as rename2, rm as rm3 } from "node:fs/promises";
import { join as join3, resolve } from "node:path";

// src/store/local.ts
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  lstat as lstat2,
  mkdir,
  open,
  readFile,
  rename,
  rm as rm2,
  stat as stat2,
  unlink,
  utimes,
  writeFile
} from "node:fs/promises";
import { join as join2 } from "node:path";

// src/store/fsutil.ts
import { readdirSync, readFileSync, writevSync } from "node:fs";
import { chmod, lstat, readdir, realpath, rm, stat } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
function isNotFound(err) {
  const code = err?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}
async function exists(path) {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
async function listDir(dir) {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}
function isPermissionError(err) {
  const code = err?.code;
  return code === "EACCES" || code === "EPERM";
}
function isNoSpace(err) {
  const code = err?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}
async function parentOutside(root, path) {
  const realRoot = await realpath(root);
  let existing = dirname(path);
  while (!await lstat(existing).catch(() => null)) existing = dirname(existing);
  const real = await realpath(existing);
  return real === realRoot || real.startsWith(realRoot + sep) ? void 0 : real;
}
async function removeTree(path) {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    if (err.code === "ENOTDIR") return;
    if (!isPermissionError(err)) throw err;
    await addWriteBits(path);
    await rm(path, { recursive: true, force: true });
  }
}
async function addWriteBits(dir) {
  const st = await lstat(dir).catch(() => null);
  if (!st?.isDirectory()) return;
  if ((st.mode & 448) !== 448) await chmod(dir, st.mode & 4095 | 448).catch(() => {
  });
  for (const name of await readdir(dir).catch(() => [])) await addWriteBits(join(dir, name));
}
function writevAllSync(fd, chunks) {
  let rest = chunks.filter((c) => c.length > 0);
  while (rest.length > 0) {
    let n = writevSync(fd, rest);
    let i = 0;
    while (i < rest.length && n >= rest[i].length) n -= rest[i++].length;
    rest = rest.slice(i);
    if (n > 0) rest[0] = rest[0].subarray(n);
  }
}
function leftByDead(dir, ownerOf) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const left = [];
  for (const name of names) {
    const owner = ownerOf(name);
    if (owner === void 0 || !Number.isInteger(owner) || owner === process.pid) continue;
    if (!processAlive(owner)) left.push({ name, owner });
  }
  return left;
}
function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code !== "ESRCH";
  }
}
function processStillAlive(pid, started) {
  return processAlive(pid) && (started === void 0 || processStartTime(pid) === started);
}
function processStartTime(pid) {
  try {
    const stat3 = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat3.slice(stat3.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return void 0;
  }
}

// src/store/local.ts
var EVICT_TO = 0.9;
var DEFAULT_EVICT_GRACE_MS = 6e4;
var DEFAULT_RESCAN_EVERY = 100;
var READ_CHUNK = 1024 * 1024;
var WRITE_BUFFER = 1024 * 1024;
var STALE_TMP_MS = 24 * 3600 * 1e3;
var ORPHAN_TMP_MS = 5 * 60 * 1e3;
var STAT_CONCURRENCY = 64;
var LocalStore = class _LocalStore {
  constructor(dir, opts = {}) {
    this.dir = dir;
    this.location = dir;
    this.onWarning = opts.onWarning ?? (() => {
    });
    if (opts.maxBytes !== void 0 && !(opts.maxBytes > 0)) {
      throw new RangeError(`maxBytes must be positive, got ${opts.maxBytes}`);
    }
    this.maxBytes = opts.maxBytes;
    this.evictGraceMs = opts.evictGraceMs ?? DEFAULT_EVICT_GRACE_MS;
    this.rescanEvery = Math.max(1, opts.rescanEvery ?? DEFAULT_RESCAN_EVERY);
  }
  dir;
  kind = "local";
  location;
  onWarning;
  warned = /* @__PURE__ */ new Set();
  dirsReady;
  /** The size cap, if any. */
  maxBytes;
  evictGraceMs;
  rescanEvery;
  /** Estimated bytes of blobs (maintained only with a cap). */
  approxBytes;
  putsSinceScan = 0;
  evicting;
  freeing;
  /** Creates the directory layout and clears stale temporary files (and measures it, with a cap). */
  static async open(dir, opts = {}) {
    const store = new _LocalStore(dir, opts);
    await store.ensureDirs();
    await store.removeStaleTemp();
    if (store.maxBytes !== void 0) await store.rescan();
    return store;
  }
  blobPath(digest) {
    assertDigest(digest);
    const hex = digest.slice("sha256:".length);
    return join2(this.dir, "blobs", "sha256", hex.slice(0, 2), hex);
  }
  resultPath(cacheKey) {
    assertDigest(cacheKey, "cache key");
    const hex = cacheKey.slice("sha256:".length);
    return join2(this.dir, "results", "sha256", hex.slice(0, 2), `${hex}.json`);
  }
  async hasBlobs(digests) {
    for (const d of digests) assertDigest(d);
    return this.existing(digests, (d) => this.blobPath(d));
  }
  async hasResults(cacheKeys) {
    for (const k of cacheKeys) assertDigest(k, "cache key");
    return this.existing(cacheKeys, (k) => this.resultPath(k));
  }
  async putBlob(data, expectedDigest) {
    if (expectedDigest !== void 0) assertDigest(expectedDigest, "expected digest");
    await this.ensureDirs();
    const tmp = this.tempPath();
    const pipe = expectedDigest !== void 0 && isVerifiedFor(data, expectedDigest) ? void 0 : new HashPipe();
    let size = 0;
    let moved = false;
    try {
      const chunks = pipe ? hashedChunks(data, pipe) : data;
      const file = await open(tmp, "wx");
      try {
        let batch = [];
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
      const digest = pipe ? await pipe.digest() : expectedDigest;
      if (expectedDigest !== void 0 && digest !== expectedDigest) {
        throw new CorruptBlobError(
          expectedDigest,
          digest,
          `data for blob ${expectedDigest} hashes to ${digest}; nothing stored`
        );
      }
      moved = await this.commit(tmp, this.blobPath(digest), true);
      if (moved) await this.afterPut(size);
      return { digest, size };
    } finally {
      pipe?.dispose();
      if (!moved) await rm2(tmp, { force: true });
    }
  }
  async putBlobFile(file) {
    const info = await digestStream(createReadStream(file, { highWaterMark: READ_CHUNK }));
    if ((await this.hasBlobs([info.digest])).size > 0) return info;
    return this.putBlob(createReadStream(file, { highWaterMark: READ_CHUNK }), info.digest);
  }
  /**
   * Why nothing can be written here (a read-only directory or file system: EACCES, EROFS,
   * EPERM), or undefined when a file can be made in its temp directory.
   */
  async writeProblem() {
    const probe = this.tempPath();
    try {
      await this.ensureDirs();
      await writeFile(probe, "", { flag: "wx" });
    } catch (err) {
      if (isPermissionError(err) || err.code === "EROFS")
        return errorText(err);
      throw err;
    }
    await rm2(probe, { force: true });
    return void 0;
  }
  async tempDir() {
    await this.ensureDirs();
    return join2(this.dir, "tmp");
  }
  async adoptBlobFile(file, digest) {
    assertDigest(digest);
    await this.ensureDirs();
    const { size } = await stat2(file);
    const written = await this.commit(file, this.blobPath(digest), true);
    if (written) await this.afterPut(size);
    return { digest, size };
  }
  async openBlob(digest) {
    const opened = await this.openBlobFile(digest);
    if (!opened) return null;
    return verifiedStream(
      opened.handle.createReadStream({ highWaterMark: READ_CHUNK }),
      digest,
      opened.onCorrupt
    );
  }
  /** The blob's verified bytes, read straight into hashing slots (see `Store.openBlobChunks`). */
  async openBlobChunks(digest) {
    const opened = await this.openBlobFile(digest);
    return opened && new VerifiedFileChunks(opened.handle, digest, opened.onCorrupt);
  }
  /**
   * Opens blob `digest` for a verified read (a miss when it is gone or unreadable), marks it
   * used, and says what to do when its bytes turn out not to match.
   */
  async openBlobFile(digest) {
    const path = this.blobPath(digest);
    let handle;
    try {
      handle = await open(path, "r");
    } catch (err) {
      if (isNotFound(err)) return null;
      this.warnUnreadable(digest, err);
      return null;
    }
    let ino;
    try {
      const st = await handle.stat();
      if (!st.isFile()) {
        await handle.close();
        await rm2(path, { recursive: true, force: true }).catch(() => {
        });
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
        const now = await stat2(path).catch(() => null);
        if (now && now.ino === ino) await unlink(path).catch(() => {
        });
        this.warnOnce(
          `blob:${digest}`,
          `${this.location}: removed corrupt blob ${digest} (its bytes hash to ${err.actual})`
        );
      }
    };
  }
  async getResult(cacheKey) {
    const path = this.resultPath(cacheKey);
    let text;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if (isNotFound(err)) return null;
      if (err.code === "EISDIR") {
        await rm2(path, { recursive: true, force: true }).catch(() => {
        });
      }
      this.warnResult(cacheKey, `cannot be read (${errorText(err)})`);
      return null;
    }
    let value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.warnResult(cacheKey, `does not parse (${err.message})`);
      return null;
    }
    const problems = manifestProblems(value);
    if (problems.length > 0) {
      this.warnResult(cacheKey, `is not valid: ${problems.join("; ")}`);
      return null;
    }
    const manifest = value;
    if (manifest.cacheKey !== cacheKey) {
      this.warnResult(cacheKey, `is for another cache key (${manifest.cacheKey})`);
      return null;
    }
    const digests = manifest.outputs.map((o) => o.digest);
    const present = await this.hasBlobs(digests);
    const missing = digests.filter((d) => !present.has(d));
    if (missing.length > 0) {
      this.warnResult(cacheKey, `names missing blobs: ${missing.join(", ")}`);
      return null;
    }
    await touch([path, ...digests.map((d) => this.blobPath(d))]);
    return manifest;
  }
  async putResult(manifest) {
    const problems = manifestProblems(manifest);
    if (problems.length > 0) {
      throw new TypeError(`invalid result manifest: ${problems.join("; ")}`);
    }
    const digests = manifest.outputs.map((o) => o.digest);
    const present = await this.hasBlobs(digests);
    const missing = digests.filter((d) => !present.has(d));
    if (missing.length > 0) {
      throw new Error(
        `result ${manifest.cacheKey} names blobs that are not stored: ${missing.join(", ")}`
      );
    }
    await touch(digests.map((d) => this.blobPath(d)));
    await this.ensureDirs();
    const write = async () => {
      const tmp = this.tempPath();
      try {
        await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}
`, { flag: "wx" });
        await this.commit(tmp, this.resultPath(manifest.cacheKey), false);
      } catch (err) {
        await rm2(tmp, { force: true });
        throw err;
      }
    };
    try {
      await write();
    } catch (err) {
      if (!isNoSpace(err) || await this.makeRoom() === 0) throw err;
      await write();
    }
  }
  /** Counts what is stored (walks the whole store). */
  async stats() {
    const blobs = await this.scanBlobs();
    let bytes = 0;
    let newest = 0;
    for (const b of blobs) {
      bytes += b.size;
      newest = Math.max(newest, b.mtimeMs);
    }
    let results = 0;
    for (const shard of await listDir(join2(this.dir, "results", "sha256"))) {
      const names = await listDir(join2(this.dir, "results", "sha256", shard));
      results += names.filter((n) => n.endsWith(".json")).length;
    }
    const out = { blobs: blobs.length, bytes, results };
    if (newest > 0) out.lastUsed = new Date(newest).toISOString();
    return out;
  }
  /**
   * Evicts least recently used blobs, and the results naming them, until the blobs take at most
   * `maxBytes`. Blobs used within `graceMs` (default 0: none) are kept even if that leaves the
   * store over the limit.
   */
  prune(maxBytes, opts = {}) {
    return this.evictTo(() => maxBytes, opts.graceMs ?? 0);
  }
  /** `prune` to a limit computed from the blob bytes found (one scan of the store). */
  async evictTo(limit, graceMs) {
    const blobs = await this.scanBlobs();
    let bytes = blobs.reduce((sum, b) => sum + b.size, 0);
    const maxBytes = limit(bytes);
    const result = { removedBlobs: 0, removedResults: 0, freedBytes: 0, bytes };
    if (bytes <= maxBytes) {
      this.approxBytes = bytes;
      return result;
    }
    blobs.sort((a, b) => a.mtimeMs - b.mtimeMs);
    const cutoff = Date.now() - graceMs;
    const evicted = /* @__PURE__ */ new Set();
    let newestEvicted = 0;
    for (const b of blobs) {
      if (bytes <= maxBytes || b.mtimeMs > cutoff) break;
      const now = await stat2(b.path).catch(() => null);
      if (now && (now.ino !== b.ino || now.mtimeMs !== b.mtimeMs)) continue;
      if (now) await unlinkIfThere(b.path);
      bytes -= b.size;
      evicted.add(b.digest);
      newestEvicted = b.mtimeMs;
      result.removedBlobs++;
      result.freedBytes += b.size;
    }
    if (evicted.size > 0)
      result.removedResults = await this.removeResultsNaming(evicted, void 0, newestEvicted);
    result.bytes = bytes;
    this.approxBytes = bytes;
    return result;
  }
  /**
   * Rehashes every blob; deletes those whose bytes do not match their name (or that are not files,
   * such as a directory in a blob's place), the results that name them, and result files that do
   * not parse or validate.
   */
  async verify() {
    const corrupt = [];
    const blobs = await this.scanBlobs();
    let checked = 0;
    const remove = async (digest, removal) => {
      try {
        await removal;
      } catch (err) {
        throw new Error(`cannot remove corrupt blob ${digest}: ${errorText(err)}`, { cause: err });
      }
    };
    for (const path of await this.nonFileBlobs()) {
      checked++;
      const digest = `sha256:${path.slice(-64)}`;
      await remove(digest, rm2(path, { recursive: true, force: true }));
      corrupt.push(digest);
      this.warnOnce(`blob:${digest}`, `${this.location}: removed blob ${digest}: not a file`);
    }
    await mapLimit(blobs, 2, async (b) => {
      let actual;
      try {
        actual = (await digestStream(createReadStream(b.path, { highWaterMark: READ_CHUNK }))).digest;
      } catch (err) {
        if (isNotFound(err)) return;
        checked++;
        await remove(b.digest, rm2(b.path, { recursive: true, force: true }));
        corrupt.push(b.digest);
        this.warnUnreadable(b.digest, err);
        return;
      }
      checked++;
      if (actual === b.digest) return;
      const now = await stat2(b.path).catch(() => null);
      if (now && now.ino === b.ino) await remove(b.digest, unlinkIfThere(b.path));
      corrupt.push(b.digest);
      this.warnOnce(
        `blob:${b.digest}`,
        `${this.location}: removed corrupt blob ${b.digest} (its bytes hash to ${actual})`
      );
    });
    corrupt.sort();
    const badResults = [];
    const removedResults = await this.removeResultsNaming(new Set(corrupt), badResults);
    return { checked, corrupt, removedResults, badResults };
  }
  /**
   * Results whose cache key starts with `prefix` (`sha256:ab12` or `ab12`), in key order; entries
   * that do not parse or validate are skipped.
   */
  async *listResults(prefix = "") {
    const hexPrefix = (prefix.startsWith("sha256:") ? prefix.slice(7) : prefix).toLowerCase();
    if (!/^[0-9a-f]*$/.test(hexPrefix)) return;
    for (const r of await this.resultFiles(hexPrefix)) {
      const manifest = await readManifest(r.path);
      if (!manifest || manifest.cacheKey !== r.cacheKey) continue;
      yield {
        cacheKey: manifest.cacheKey,
        unit: manifest.unit,
        size: manifest.outputs.reduce((sum, o) => sum + o.size, 0),
        createdAt: manifest.createdAt
      };
    }
  }
  /** After a blob put: keeps the size estimate and evicts when it is over the cap. */
  async afterPut(added) {
    if (this.maxBytes === void 0) return;
    this.approxBytes = (this.approxBytes ?? 0) + added;
    if (++this.putsSinceScan >= this.rescanEvery) await this.rescan();
    if ((this.approxBytes ?? 0) <= this.maxBytes) return;
    const target = Math.floor(this.maxBytes * EVICT_TO);
    this.evicting ??= this.prune(target, { graceMs: this.evictGraceMs }).then(
      () => void 0,
      (err) => this.onWarning(`${this.location}: evicting failed: ${err.message}`)
    ).finally(() => this.evicting = void 0);
    await this.evicting;
  }
  /**
   * The disk is full: evicts the least recently used half of the blob bytes (blobs used within
   * the grace period stay), and the results naming them. Bytes freed. Callers at the same time
   * share one eviction.
   */
  makeRoom() {
    this.freeing ??= (async () => {
      const r = await this.evictTo((all) => Math.floor(all / 2), this.evictGraceMs);
      const bytes = r.bytes + r.freedBytes;
      this.onWarning(
        r.freedBytes > 0 ? `${this.location}: the disk is full: evicted the ${r.removedBlobs} least recently used blob(s) (${formatSize(r.freedBytes)}) to make room` : bytes === 0 ? `${this.location}: the disk is full, and this store holds nothing to evict` : `${this.location}: the disk is full, and nothing in this store can be evicted (${formatSize(bytes)}, all of it used in the last ${Math.round(this.evictGraceMs / 1e3)} s)`
      );
      return r.freedBytes;
    })().catch((err) => {
      this.onWarning(`${this.location}: evicting failed: ${err.message}`);
      return 0;
    }).finally(() => this.freeing = void 0);
    return this.freeing;
  }
  /** Refreshes the size estimate from the directory (other processes write to it too). */
  async rescan() {
    this.putsSinceScan = 0;
    this.approxBytes = (await this.scanBlobs()).reduce((sum, b) => sum + b.size, 0);
  }
  /** Every blob file with its size and last use. */
  async scanBlobs() {
    const out = [];
    const root = join2(this.dir, "blobs", "sha256");
    for (const shard of await listDir(root)) {
      const shardDir = join2(root, shard);
      for (const name of await listDir(shardDir)) {
        if (!/^[0-9a-f]{64}$/.test(name)) continue;
        const path = join2(shardDir, name);
        const st = await lstat2(path).catch(() => null);
        if (!st?.isFile()) continue;
        out.push({
          digest: `sha256:${name}`,
          path,
          size: st.size,
          mtimeMs: st.mtimeMs,
          ino: st.ino
        });
      }
    }
    return out;
  }
  /** Paths in the blob directories named as blobs that are not regular files. */
  async nonFileBlobs() {
    const out = [];
    const root = join2(this.dir, "blobs", "sha256");
    for (const shard of await listDir(root)) {
      for (const name of await listDir(join2(root, shard))) {
        if (!/^[0-9a-f]{64}$/.test(name)) continue;
        const st = await lstat2(join2(root, shard, name)).catch(() => null);
        if (st && !st.isFile()) out.push(join2(root, shard, name));
      }
    }
    return out;
  }
  /** Result files whose key's hex starts with `hexPrefix`, sorted by key. */
  async resultFiles(hexPrefix = "") {
    const root = join2(this.dir, "results", "sha256");
    const shards = hexPrefix.length >= 2 ? [hexPrefix.slice(0, 2)] : (await listDir(root)).filter((s) => s.startsWith(hexPrefix)).sort();
    const out = [];
    for (const shard of shards) {
      const names = (await listDir(join2(root, shard))).sort();
      for (const name of names) {
        const hex = name.slice(0, -".json".length);
        if (!name.endsWith(".json") || !/^[0-9a-f]{64}$/.test(hex) || !hex.startsWith(hexPrefix))
          continue;
        out.push({ cacheKey: `sha256:${hex}`, path: join2(root, shard, name) });
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
  async removeResultsNaming(digests, bad, unusedSinceMs) {
    let removed = 0;
    for (const r of await this.resultFiles()) {
      const before = await stat2(r.path).catch(() => null);
      const manifest = await readManifest(r.path);
      if (!before) continue;
      if (!manifest || manifest.cacheKey !== r.cacheKey) {
        if (!bad) continue;
        const now2 = await stat2(r.path).catch(() => null);
        if (!now2 || now2.ino !== before.ino || now2.mtimeMs !== before.mtimeMs) continue;
        await rm2(r.path, { recursive: true, force: true });
        bad.push(r.cacheKey);
        continue;
      }
      const named = manifest.outputs.map((o) => o.digest);
      const unused = named.length === 0 && unusedSinceMs !== void 0 && before.mtimeMs <= unusedSinceMs;
      if (!unused && !named.some((d) => digests.has(d))) {
        const present = await this.hasBlobs(named);
        if (named.every((d) => present.has(d))) continue;
      }
      const now = await stat2(r.path).catch(() => null);
      if (!now || now.ino !== before.ino || now.mtimeMs !== before.mtimeMs) continue;
      await unlinkIfThere(r.path);
      removed++;
    }
    return removed;
  }
  ensureDirs() {
    this.dirsReady ??= (async () => {
      for (const sub of [["blobs", "sha256"], ["results", "sha256"], ["tmp"]]) {
        await mkdir(join2(this.dir, ...sub), { recursive: true });
      }
    })().catch((err) => {
      this.dirsReady = void 0;
      throw err;
    });
    return this.dirsReady;
  }
  tempPath() {
    return join2(this.dir, "tmp", `${process.pid}-${randomBytes(8).toString("hex")}`);
  }
  /**
   * Moves a finished temp file into place (true), making its directory when it is the first there.
   * With `keepExisting` (blobs: the name says what the content is) an existing file is left alone
   * and so is the temp file (false); otherwise it is replaced.
   */
  async commit(tmp, dest, keepExisting) {
    if (keepExisting) {
      const [now, fresh] = await Promise.all([
        lstat2(dest).catch(() => null),
        stat2(tmp).catch(() => null)
      ]);
      if (now && now.isFile() && (!fresh || now.size === fresh.size)) return false;
    }
    try {
      await rename(tmp, dest);
    } catch (err) {
      const code = err.code;
      if (code === "EISDIR" || code === "ENOTEMPTY" || code === "EEXIST") {
        await rm2(dest, { recursive: true, force: true });
      } else if (isNotFound(err)) {
        await mkdir(join2(dest, ".."), { recursive: true });
      } else throw err;
      await rename(tmp, dest);
    }
    return true;
  }
  warnUnreadable(digest, err) {
    this.warnOnce(
      `blob:${digest}`,
      `${this.location}: cannot read blob ${digest}: ${errorText(err)}`
    );
  }
  async removeStaleTemp() {
    const dir = join2(this.dir, "tmp");
    const now = Date.now();
    for (const name of await listDir(dir)) {
      const st = await lstat2(join2(dir, name)).catch(() => null);
      if (!st) continue;
      const owner = Number(/^(\d+)-/.exec(name)?.[1]);
      const orphan = owner > 0 && owner !== process.pid && !processAlive(owner);
      const age = now - st.mtimeMs;
      if (age > STALE_TMP_MS || orphan && age > ORPHAN_TMP_MS) {
        await rm2(join2(dir, name), { force: true, recursive: true });
      }
    }
  }
  async existing(keys, pathOf) {
    const found = /* @__PURE__ */ new Set();
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
  warnResult(cacheKey, problem) {
    this.warnOnce(`result:${cacheKey}`, `${this.location}: result ${cacheKey} ${problem}; a miss`);
  }
  warnOnce(id, message) {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.onWarning(message);
  }
};
async function touch(paths) {
  const now = /* @__PURE__ */ new Date();
  await Promise.all(paths.map((p) => utimes(p, now, now).catch(() => {
  })));
}
async function readManifest(path) {
  try {
    const value = JSON.parse(await readFile(path, "utf8"));
    return manifestProblems(value).length === 0 ? value : null;
  } catch {
    return null;
  }
}
async function unlinkIfThere(path) {
  try {
    await unlink(path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

// src/store/gha.ts
var GHA_KEY_FORMAT = "dist-build-v1";
var GHA_CACHE_PATH = "~/dist-build-shard";
var SHARD_NAME = "dist-build-shard";
var ACTIONS_ENV_KEYS = [
  "ACTIONS_CACHE_SERVICE_V2",
  "ACTIONS_RESULTS_URL",
  "ACTIONS_CACHE_URL",
  "ACTIONS_RUNTIME_TOKEN",
  "ACTIONS_CACHE_MODE",
  "GITHUB_SERVER_URL",
  "GITHUB_REF",
  "RUNNER_DEBUG",
  "CACHE_UPLOAD_CONCURRENCY",
  "CACHE_UPLOAD_CHUNK_SIZE",
  "SEGMENT_DOWNLOAD_TIMEOUT_MINS"
];
var KNOWN_MODES = ["none", "read", "write", "write-only"];
var DAY_MS = 24 * 3600 * 1e3;
var MAX_KEY_PART = 120;
function ghaSuperseded(entries) {
  const newest = /* @__PURE__ */ new Map();
  const superseded = [];
  const time = (e) => Date.parse(e.createdAt) || 0;
  for (const e of entries) {
    const group = `${ghaKeySlotPart(e.key)}
${e.ref}
${e.version}`;
    const best = newest.get(group);
    if (!best) newest.set(group, e);
    else if (time(e) > time(best) || time(e) === time(best) && e.id > best.id) {
      superseded.push(best);
      newest.set(group, e);
    } else superseded.push(e);
  }
  return { live: [...newest.values()], superseded };
}
function ghaSaveScope(env) {
  if (env.GITHUB_REF) return env.GITHUB_REF;
  try {
    const payload = (env.ACTIONS_RUNTIME_TOKEN ?? "").split(".")[1] ?? "";
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    const scopes = typeof claims.ac === "string" ? JSON.parse(claims.ac) : [];
    if (!Array.isArray(scopes)) return void 0;
    const writable = scopes.find(
      (x) => typeof x?.Scope === "string" && typeof x.Permission === "number" && x.Permission & 2
    );
    return writable?.Scope;
  } catch {
    return void 0;
  }
}
function ghaKeyPart(value) {
  let out = "";
  for (const ch of value) {
    if (/^[A-Za-z0-9_.]$/.test(ch)) out += ch;
    else
      for (const b of Buffer.from(ch, "utf8"))
        out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  if (out.length > MAX_KEY_PART) {
    out = `h${createHash("sha256").update(value).digest("hex").slice(0, 40)}`;
  }
  return out;
}
function ghaScopePrefix(scope) {
  return `${GHA_KEY_FORMAT}-${ghaKeyPart(scope)}-`;
}
function ghaKeyPrefix(scope, slot) {
  return `${ghaScopePrefix(scope)}${ghaKeyPart(slot)}-`;
}
function ghaKeySlotPart(key) {
  return key.split("-")[GHA_KEY_FORMAT.split("-").length + 1] ?? "";
}
function ghaNewKey(scope, slot, now = /* @__PURE__ */ new Date()) {
  return newKeyUnder(ghaKeyPrefix(scope, slot), now);
}
function newKeyUnder(prefix, now = /* @__PURE__ */ new Date()) {
  const stamp = now.toISOString().replace(/[-:.]/g, "");
  return `${prefix}${stamp}-${randomBytes2(4).toString("hex")}`;
}
var capture = new AsyncLocalStorage();
var queue = Promise.resolve();
var hooks = 0;
var restoreWrites;
var cacheModule;
async function preloadActionsCache() {
  await loadCacheModule().catch(() => {
  });
}
function loadCacheModule() {
  cacheModule ??= import("./cache-XROXA5KX.js").catch((err) => {
    cacheModule = void 0;
    throw err;
  });
  return cacheModule;
}
function serialized(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {
  });
  return run;
}
function hookWrites() {
  if (hooks++ === 0) {
    const streams = [process.stdout, process.stderr];
    const originals = streams.map((s) => s.write);
    streams.forEach((stream, i) => {
      const original = originals[i];
      stream.write = function(...args) {
        const sink = capture.getStore();
        if (!sink) return original.apply(stream, args);
        const [chunk, encOrCb, cb] = args;
        const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
        sink.push(text);
        if (process.env.GITHUB_ACTIONS === "true") {
          for (const line of text.split(/\r?\n/)) {
            if (line.startsWith("::add-mask::")) originals[1].call(process.stderr, `${line}
`);
          }
        }
        const done = typeof encOrCb === "function" ? encOrCb : cb;
        if (typeof done === "function") process.nextTick(done);
        return true;
      };
    });
    restoreWrites = () => streams.forEach((s, i) => s.write = originals[i]);
  }
  return () => {
    if (--hooks === 0) {
      restoreWrites?.();
      restoreWrites = void 0;
    }
  };
}
function unescapeCommand(s) {
  return s.replace(/%0D/g, "\r").replace(/%0A/g, "\n").replace(/%25/g, "%");
}
function parseLog(chunks) {
  const log = { warnings: [], errors: [], debug: [], info: [] };
  for (const line of chunks.join("").split(/\r?\n/)) {
    if (line === "") continue;
    const m = /^::([a-z-]+)(?: [^:]*)?::(.*)$/.exec(line);
    if (!m) {
      log.info.push(line);
      continue;
    }
    const text = unescapeCommand(m[2]);
    if (m[1] === "warning") log.warnings.push(text);
    else if (m[1] === "error") log.errors.push(text);
    else if (m[1] === "debug") log.debug.push(text);
  }
  return log;
}
function runActions(env, overlay, fn) {
  return serialized(async () => {
    const wanted = { ...overlay };
    for (const k of ACTIONS_ENV_KEYS) wanted[k] = env[k];
    const saved = {};
    for (const [k, v] of Object.entries(wanted)) {
      saved[k] = process.env[k];
      if (v === void 0) delete process.env[k];
      else process.env[k] = v;
    }
    const sink = [];
    const unhook = hookWrites();
    try {
      const value = await capture.run(sink, async () => fn(await loadCacheModule()));
      return { ok: true, value, log: parseLog(sink) };
    } catch (error) {
      return { ok: false, error, log: parseLog(sink) };
    } finally {
      unhook();
      for (const [k, v] of Object.entries(saved)) {
        if (v === void 0) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
}
function cacheMode(env) {
  return (env.ACTIONS_CACHE_MODE ?? "").trim().toLowerCase();
}
function modeReadable(mode) {
  return !KNOWN_MODES.includes(mode) || mode === "read" || mode === "write";
}
function modeWritable(mode) {
  return !KNOWN_MODES.includes(mode) || mode === "write" || mode === "write-only";
}
function failureDetail(log) {
  const reserve = log.debug.filter((l) => l.startsWith("Failed to reserve cache"));
  const failed = log.info.filter(
    (l) => /^(Failed to (save|restore)|Cache reservation failed)/.test(l)
  );
  const lines = [.../* @__PURE__ */ new Set([...log.errors, ...log.warnings, ...reserve, ...failed])];
  return lines.join("; ").replace(/\s+/g, " ").slice(0, 1e3) || "no details";
}
var PEER_REFRESH_MS = 6e4;
var GhaStore = class {
  kind = "gha";
  location;
  dir;
  scope;
  slot;
  /** Keys restored (own shard first) and saved by this store. */
  restoredKeys = [];
  savedKeys = [];
  options;
  ctx;
  counters = {
    restoredEntries: 0,
    savedEntries: 0,
    uploadedBytes: 0,
    warnings: 0
  };
  warned = /* @__PURE__ */ new Set();
  touched = /* @__PURE__ */ new Set();
  /** Blobs of the shard this process has hashed (written, restored or checked). */
  verified = /* @__PURE__ */ new Set();
  peers = /* @__PURE__ */ new Map();
  /** Each slot's shard restore (concurrent lookups wait for the same one). */
  peerLoads = /* @__PURE__ */ new Map();
  /** When each slot's shard was last restored (or found missing). */
  peerLoadedAt = /* @__PURE__ */ new Map();
  opening;
  shardStore;
  /** Whether the service can be used at all (set by `open`). */
  available = false;
  dirty = false;
  /** Restoring this slot's own entry failed (not a miss): see `flush`. */
  ownRestoreFailed = false;
  /** Bumped by every write, so a flush only clears `dirty` for what it saved. */
  generation = 0;
  constructor(options, ctx) {
    this.options = options;
    this.ctx = ctx;
    this.dir = options.dir;
    this.scope = options.scope;
    this.slot = ctx.slot;
    this.location = `gha:${ghaKeyPrefix(options.scope, ctx.slot)}* (${options.dir})`;
  }
  /** Loads `@actions/cache` (see `preloadActionsCache`). */
  prepare() {
    return preloadActionsCache();
  }
  /**
   * Restores this slot's shard now (see `Store.warm`), so that a worker's first cache query does
   * not wait for the whole download. A failure is reported as `open` reports it, and the next
   * lookup tries again.
   */
  async warm() {
    await this.open().catch(() => void 0);
  }
  stats() {
    return { ...this.counters };
  }
  /** Prepares the shard and restores this slot's newest entry (once; later calls wait for it). */
  open() {
    this.opening ??= this.doOpen().catch((err) => {
      this.opening = void 0;
      throw err;
    });
    return this.opening;
  }
  async hasBlobs(digests) {
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
      return /* @__PURE__ */ new Set();
    }
  }
  async putBlob(data, expectedDigest) {
    return this.written(await (await this.shard()).putBlob(data, expectedDigest));
  }
  async putBlobFile(file) {
    return this.written(await (await this.shard()).putBlobFile(file));
  }
  async openBlob(digest) {
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
  async getResult(cacheKey) {
    assertDigest(cacheKey, "cache key");
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
  async putResult(manifest) {
    const shard = await this.shard();
    if (Array.isArray(manifest.outputs) && this.peers.size > 0) {
      const digests = manifest.outputs.map((o) => o.digest);
      const present = await shard.hasBlobs(digests.filter((d) => typeof d === "string"));
      for (const d of digests) {
        if (!present.has(d)) await this.copyBlobFromPeers(d, shard);
      }
    }
    await shard.putResult(manifest);
    this.touched.add(manifest.cacheKey);
    this.markDirty();
  }
  async hasResults(cacheKeys) {
    for (const k of cacheKeys) assertDigest(k, "cache key");
    try {
      const shard = await this.shard();
      const found = await shard.hasResults(cacheKeys);
      for (const k of found) this.touched.add(k);
      if (this.options.slots.length > 0) {
        for (const k of new Set(cacheKeys)) {
          if (!found.has(k) && await this.fromPeers(k)) found.add(k);
        }
      }
      return found;
    } catch (err) {
      this.warn(`result lookup failed (${errorText(err)}); treating as missing`);
      return /* @__PURE__ */ new Set();
    }
  }
  /**
   * Every shard entry of this store's scope (all slots) as GitHub lists them: needs the GitHub
   * API (see gha-api.ts); the cache service cannot list.
   */
  remoteEntries(fetchImpl) {
    return listGhaCaches(ghaScopePrefix(this.scope), this.ctx.env, fetchImpl);
  }
  /**
   * The results of this slot's shard, then those of every other slot's newest shard (each
   * restored once): the slots of the `slots` option, and, when the GitHub API can list the
   * scope's entries (see gha-api.ts), every slot that has saved one. A result in several shards
   * is listed once.
   */
  async *listResults(prefix = "") {
    const seen = /* @__PURE__ */ new Set();
    const from = async function* (store) {
      for await (const r of store.listResults(prefix)) {
        if (seen.has(r.cacheKey)) continue;
        seen.add(r.cacheKey);
        yield r;
      }
    };
    yield* from(await this.shard());
    let listing;
    if (this.readable()) {
      listing = await this.remoteEntries();
      if ("unavailable" in listing)
        this.ctx.onWarning(
          `${this.location}: listing ${this.unlistedShards()} only: ${listing.unavailable}`
        );
    } else if (this.available) {
      this.ctx.onWarning(
        `${this.location}: listing this machine's copy of the shard only: ACTIONS_CACHE_MODE '${cacheMode(this.ctx.env)}' does not permit reads`
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
  async flush() {
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
        `ACTIONS_CACHE_MODE '${mode}' does not permit writes: results of this run stay local`
      );
      this.dirty = false;
      return;
    }
    if (this.ownRestoreFailed) {
      const failed = await this.restoreOwn({ quiet: true });
      if (failed !== void 0) {
        this.warn(
          `not saving the shard: restoring this slot's entry failed (${failed}), and an entry with only this run's results would hide the older ones from later runs; results of this run stay local`
        );
        return;
      }
    }
    const generation = this.generation;
    let stage;
    try {
      stage = await mkdtemp(join3(this.dir, "tmp", "gha-save-"));
      const cutoff = Date.now() - this.options.retainDays * DAY_MS;
      const count = await stageShard(
        this.shardStore,
        join3(stage, SHARD_NAME),
        (m) => Date.parse(m.createdAt) >= cutoff || this.touched.has(m.cacheKey),
        (d) => this.sound(d)
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
      if (stage) await rm3(stage, { recursive: true, force: true }).catch(() => {
      });
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
  async verify() {
    await this.open();
    if (!this.readable()) {
      throw new Error(
        this.available ? `ACTIONS_CACHE_MODE '${cacheMode(this.ctx.env)}' does not permit reads` : "the Actions cache service is not available here (ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL or ACTIONS_CACHE_URL, which the runner gives JavaScript actions: use the action, or pass them on)"
      );
    }
    const listing = await this.remoteEntries();
    const result = { checked: 0, corrupt: [], removedResults: 0, entries: [] };
    if ("unavailable" in listing) {
      result.incomplete = `only ${this.unlistedShards()} were looked for: ${listing.unavailable}`;
    }
    for (const part of [...this.slotParts(listing)].sort()) {
      const check = await this.verifyEntry(part, listing);
      if (!check) continue;
      result.entries.push(check);
      result.checked += check.checked;
      result.corrupt.push(...check.corrupt);
      if (check.outcome === "repaired" || check.outcome === "replaced") {
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
  async prune(maxBytes) {
    const listing = await this.remoteEntries();
    if ("unavailable" in listing) throw new Error(listing.unavailable);
    const { live, superseded } = ghaSuperseded(listing.entries);
    const by = (field) => (a, b) => (Date.parse(a[field]) || 0) - (Date.parse(b[field]) || 0) || a.id - b.id;
    const order = [...superseded.sort(by("createdAt")), ...live.sort(by("lastAccessedAt"))];
    const stale = new Set(superseded);
    const result = {
      removedBlobs: 0,
      removedResults: 0,
      freedBytes: 0,
      bytes: listing.entries.reduce((n, e) => n + e.sizeBytes, 0),
      removedEntries: 0,
      removedSuperseded: 0,
      entriesLeft: listing.entries.length
    };
    for (const e of order) {
      if (result.bytes <= maxBytes) break;
      try {
        await deleteGhaCache(e.id, this.ctx.env);
      } catch (err) {
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
  async verifyEntry(part, listing) {
    const work = await mkdtemp(join3(this.dir, "tmp", "gha-verify-"));
    try {
      const copy = await LocalStore.open(join3(work, "shard"), { onWarning: () => {
      } });
      const restored = await this.restoreInto(this.slotPrefix(part), copy, {
        quiet: true
      });
      if ("failed" in restored) {
        return {
          key: `${this.slotPrefix(part)}*`,
          ref: "",
          checked: 0,
          corrupt: [],
          brokenResults: 0,
          outcome: "unreadable",
          detail: restored.failed
        };
      }
      if (!("key" in restored)) return null;
      const entry = "entries" in listing ? listing.entries.find((e) => e.key === restored.key) : void 0;
      const check = {
        key: restored.key,
        ref: entry?.ref ?? "",
        checked: restored.checked,
        corrupt: restored.corrupt,
        brokenResults: 0,
        outcome: "ok"
      };
      if (restored.corrupt.length === 0) return check;
      const bad = new Set(restored.corrupt);
      for (const file of await resultFiles(copy.dir)) {
        const m = await readManifest2(file);
        if (m?.outputs.some((o) => bad.has(o.digest))) check.brokenResults++;
      }
      const why = this.cannotReplace(entry, listing);
      if (why) return { ...check, outcome: "reported", detail: why };
      const stage = join3(work, "stage");
      const kept = await stageShard(copy, join3(stage, SHARD_NAME), () => true);
      const key = newKeyUnder(this.slotPrefix(part));
      if (kept > 0) {
        const notSaved = await this.upload(stage, key);
        if (notSaved) return { ...check, outcome: "reported", detail: notSaved };
      }
      const replaced = kept > 0 ? { replacedBy: key } : {};
      try {
        await deleteGhaCache(entry.id, this.ctx.env);
      } catch (err) {
        return kept > 0 ? { ...check, ...replaced, outcome: "replaced", detail: errorText(err) } : { ...check, outcome: "reported", detail: errorText(err) };
      }
      return { ...check, ...replaced, outcome: "repaired" };
    } finally {
      await rm3(work, { recursive: true, force: true }).catch(() => {
      });
    }
  }
  /** Why a corrupt entry cannot be replaced from here, or undefined when it can. */
  cannotReplace(entry, listing) {
    if ("unavailable" in listing) return `cannot delete it: ${listing.unavailable}`;
    if (!entry) return "the GitHub API does not list it";
    const ref = ghaSaveScope(this.ctx.env);
    if (!ref) {
      return "cannot tell which ref a save from here lands in (GITHUB_REF is not set, and the runtime token names no writable scope)";
    }
    if (entry.ref !== ref) {
      return `it belongs to ${entry.ref || "another ref"}, and a save from here lands in ${ref}: verify on ${entry.ref || "that ref"} to replace it`;
    }
    if (!modeWritable(cacheMode(this.ctx.env))) {
      return `ACTIONS_CACHE_MODE '${cacheMode(this.ctx.env)}' does not permit writes`;
    }
    return void 0;
  }
  /** Saves a staged shard as entry `key`; counts it. Undefined when saved, else why not. */
  async upload(stage, key) {
    const outcome = await this.run(stage, (cache) => cache.saveCache([GHA_CACHE_PATH], key));
    const why = await this.notSaved(outcome, key, stage);
    if (why) return why;
    this.counters.savedEntries++;
    this.savedKeys.push(key);
    const size = outcome.log.debug.map((l) => /^File Size: (\d+)$/.exec(l)).find((m) => m !== null);
    if (outcome.ok && outcome.value !== -1 && size) {
      this.counters.uploadedBytes += Number(size[1]);
    }
    return void 0;
  }
  /**
   * The key parts of the slots this store knows: its own, the `slots` option's, and every slot
   * the GitHub API's `listing` names.
   */
  slotParts(listing) {
    const parts = new Set([this.slot, ...this.options.slots].map(ghaKeyPart));
    if (listing && "entries" in listing) {
      for (const e of listing.entries) parts.add(ghaKeySlotPart(e.key));
    }
    return parts;
  }
  /** What is looked at without the API's listing, in words. */
  unlistedShards() {
    return `the shards of this slot${this.options.slots.length ? " and of the slots option" : ""}`;
  }
  /** The key prefix of the slot whose key part is `part`. */
  slotPrefix(part) {
    return `${ghaScopePrefix(this.scope)}${part}-`;
  }
  async shard() {
    await this.open();
    return this.shardStore;
  }
  async doOpen() {
    this.shardStore = await LocalStore.open(this.dir, { onWarning: (m) => this.warn(m) });
    this.available = await this.serviceAvailable();
    if (!this.available) return;
    const mode = cacheMode(this.ctx.env);
    if (!modeReadable(mode)) {
      this.warn(
        `ACTIONS_CACHE_MODE '${mode}' does not permit reads: starting from the local shard`
      );
      return;
    }
    await this.restoreOwn();
  }
  /**
   * Restores this slot's own entry into the shard; why it failed (not a miss), else undefined.
   * `ownRestoreFailed` says whether the last attempt failed.
   */
  async restoreOwn(opts = {}) {
    const own = await this.restoreInto(ghaKeyPrefix(this.scope, this.slot), this.shardStore, opts);
    if ("key" in own) for (const d of own.verified) this.verified.add(d);
    const failed = "key" in own ? void 0 : own.failed;
    this.ownRestoreFailed = failed !== void 0;
    return failed;
  }
  async serviceAvailable() {
    const env = this.ctx.env;
    const why = !env.ACTIONS_RUNTIME_TOKEN ? "ACTIONS_RUNTIME_TOKEN is not set" : void 0;
    const outcome = await runActions(env, {}, async (cache) => cache.isFeatureAvailable());
    const reason = !outcome.ok ? `@actions/cache cannot be loaded (${errorText(outcome.error)})` : !outcome.value ? "ACTIONS_CACHE_URL / ACTIONS_RESULTS_URL is not set" : why;
    if (reason) {
      this.warn(
        `the GitHub Actions cache service is not available (${reason}; the runner sets these for JavaScript and container actions only): going on without it`
      );
      return false;
    }
    return true;
  }
  /** Runs one `@actions/cache` call with the staging directory as workspace and home. */
  async run(stage, fn) {
    const runnerTemp = join3(stage, "runner-temp");
    await mkdir2(runnerTemp, { recursive: true });
    return runActions(
      this.ctx.env,
      { GITHUB_WORKSPACE: stage, HOME: stage, USERPROFILE: stage, RUNNER_TEMP: runnerTemp },
      fn
    );
  }
  /** Undefined when a save went through (or the key already existed), else why it did not. */
  async notSaved(outcome, key, stage) {
    const failed = outcome.ok && [...outcome.log.warnings, ...outcome.log.errors].some((l) => l.startsWith("Failed to save"));
    if (outcome.ok && outcome.value !== -1 && !failed) return void 0;
    const detail = outcome.ok ? failureDetail(outcome.log) : errorText(outcome.error);
    const all = outcome.ok ? [
      ...outcome.log.info,
      ...outcome.log.debug,
      ...outcome.log.warnings,
      ...outcome.log.errors
    ].join("\n") : detail;
    if (/already exists/i.test(all)) return void 0;
    if (/rate limit|\b429\b|too many requests/i.test(all)) {
      return `the Actions cache rate-limited the upload (HTTP 429) (${detail})`;
    }
    if (/cache write denied/i.test(all)) {
      return `the Actions cache denied writes for this run (${detail})`;
    }
    if (outcome.ok && /Unable to reserve cache/.test(all)) {
      const look = await this.run(
        stage,
        (cache) => cache.restoreCache([GHA_CACHE_PATH], key, [], { lookupOnly: true })
      );
      if (look.ok && look.value === key) return void 0;
    }
    return `saving ${key} to the Actions cache failed: ${detail}`;
  }
  /**
   * Restores the newest entry under `prefix` (a slot's) into `target`: the entry's key and its
   * blobs checked and corrupt; `{}` when there is none; `{failed}` when it could not be read
   * (warned, unless `quiet`: then failures and corrupt blobs are the caller's to report).
   */
  async restoreInto(prefix, target, { quiet = false } = {}) {
    const fail = (why, message) => {
      if (!quiet) this.warn(message);
      return { failed: why };
    };
    let stage;
    try {
      stage = await mkdtemp(join3(this.dir, "tmp", "gha-restore-"));
      const outcome = await this.run(
        stage,
        (cache) => cache.restoreCache([GHA_CACHE_PATH], prefix, [prefix])
      );
      if (!outcome.ok) {
        const why = errorText(outcome.error);
        return fail(why, `restoring ${prefix}* failed (${why}): going on without it`);
      }
      const problems = [...outcome.log.warnings, ...outcome.log.errors];
      if (outcome.value === void 0) {
        if (problems.length === 0) return {};
        const why = failureDetail(outcome.log);
        return fail(
          why,
          `restoring ${prefix}* from the Actions cache failed: ${why}; going on without it`
        );
      }
      const key = outcome.value;
      const found = await importShard(join3(stage, SHARD_NAME), target);
      if (found.corrupt.length > 0 && !quiet) {
        this.warn(
          `${found.corrupt.length} corrupt blob(s) in Actions cache entry ${key} were dropped`
        );
      }
      this.counters.restoredEntries++;
      this.restoredKeys.push(key);
      return { key, ...found };
    } catch (err) {
      const why = errorText(err);
      return fail(why, `restoring ${prefix}* failed (${why}): going on without it`);
    } finally {
      if (stage) await rm3(stage, { recursive: true, force: true }).catch(() => {
      });
    }
  }
  /**
   * Looks for a result in other slots' shards, restoring each lazily, and again (on a miss) when
   * its last restore is `PEER_REFRESH_MS` old: the slot may have saved a newer entry since.
   */
  async fromPeers(cacheKey) {
    if (this.options.slots.length === 0) return null;
    for (const peer of this.peers.values()) {
      const m = await peer.getResult(cacheKey);
      if (m) return this.adopt(m, peer);
    }
    for (const slot of this.options.slots) {
      const part = ghaKeyPart(slot);
      const at = this.peerLoadedAt.get(part);
      if (at !== void 0 && Date.now() - at >= (this.ctx.peerRefreshMs ?? PEER_REFRESH_MS)) {
        this.peers.delete(part);
        this.peerLoads.delete(part);
      } else if (this.peers.has(part)) continue;
      const peer = await this.peer(part);
      const m = await peer?.getResult(cacheKey);
      if (m) return this.adopt(m, peer);
    }
    return null;
  }
  /** Whether the service may be read (it answered at `open`, and the cache mode allows it). */
  readable() {
    return this.available && modeReadable(cacheMode(this.ctx.env));
  }
  /**
   * The shard of the slot whose key part is `part` (as `ghaKeyPart` writes it), restored from its
   * newest entry the first time it is asked for; null when there is none or it cannot be read.
   */
  peer(part) {
    let load = this.peerLoads.get(part);
    if (!load) {
      load = this.loadPeer(part);
      this.peerLoads.set(part, load);
    }
    return load;
  }
  async loadPeer(part) {
    this.peerLoadedAt.set(part, Date.now());
    if (!this.readable()) return null;
    const dir = join3(this.dir, "peers", fsName(part));
    await rm3(dir, { recursive: true, force: true }).catch(() => {
    });
    const peer = await LocalStore.open(dir, { onWarning: (m) => this.warn(m) });
    if (!("key" in await this.restoreInto(this.slotPrefix(part), peer))) return null;
    this.peers.set(part, peer);
    return peer;
  }
  /** Copies a result found in another slot's shard into this one (the unit lives here now). */
  async adopt(manifest, peer) {
    const shard = this.shardStore;
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
        `result ${manifest.cacheKey} from another slot is unusable (${errorText(err)}); a miss`
      );
      return null;
    }
  }
  async copyBlobFromPeers(digest, shard) {
    for (const peer of this.peers.values()) {
      const stream = await peer.openBlob(digest);
      if (!stream) continue;
      this.written(await shard.putBlob(stream, digest));
      return;
    }
  }
  /** A blob the shard wrote (hashed on the way in). */
  written(info) {
    this.verified.add(info.digest);
    return info;
  }
  /**
   * Whether a shard blob about to be uploaded holds its digest's bytes: read through the shard
   * (which checks them, and removes the file it read when they are wrong) unless this process
   * has hashed it already (blobs an earlier process left on this machine). A corrupt one is
   * then gone, so the results naming it are not uploaded again and again.
   */
  async sound(digest) {
    if (this.verified.has(digest)) return true;
    const stream = await this.shardStore.openBlob(digest);
    if (!stream) return false;
    try {
      for await (const chunk of stream) void chunk;
    } catch (err) {
      if (!(err instanceof CorruptBlobError)) throw err;
      this.warn(
        `blob ${digest} in this machine's copy of the shard (${this.dir}) was corrupt: removed; the results naming it are not saved`
      );
      return false;
    }
    this.verified.add(digest);
    return true;
  }
  markDirty() {
    this.dirty = true;
    this.generation++;
  }
  warn(message) {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.counters.warnings++;
    this.ctx.onWarning(`gha store: ${message}`);
  }
};
function fsName(value) {
  const safe = value.replace(/[^A-Za-z0-9._-]/g, "_");
  return safe === value && safe !== "." && safe !== ".." && safe.length <= 100 ? safe : `${safe.slice(0, 40)}-${createHash("sha256").update(value).digest("hex").slice(0, 16)}`;
}
async function listLayout(root, name) {
  const out = [];
  for (const shard of await listDir(root)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const n of await listDir(join3(root, shard))) {
      if (!name.test(n) || !n.startsWith(shard)) continue;
      const file = join3(root, shard, n);
      const st = await lstat3(file).catch(() => null);
      if (st?.isFile()) out.push([file, n]);
    }
  }
  return out;
}
async function importShard(src, target) {
  const corrupt = [];
  const verified = [];
  let checked = 0;
  for (const [file, hex] of await listLayout(join3(src, "blobs", "sha256"), /^[0-9a-f]{64}$/)) {
    const digest = `sha256:${hex}`;
    const dest = target.blobPath(digest);
    if (await exists(dest)) continue;
    checked++;
    const { digest: actual } = await digestStream(createReadStream2(file));
    if (actual !== digest) {
      corrupt.push(digest);
      continue;
    }
    await moveInto(file, dest);
    verified.push(digest);
  }
  for (const [file, hex] of await listLayout(
    join3(src, "results", "sha256"),
    /^[0-9a-f]{64}\.json$/
  )) {
    const dest = target.resultPath(`sha256:${hex.slice(0, 64)}`);
    if (await exists(dest)) continue;
    await moveInto(file, dest);
  }
  return { checked, corrupt, verified };
}
async function stageShard(source, dest, keep, sound = async () => true) {
  const blobs = /* @__PURE__ */ new Set();
  let count = 0;
  for (const file of await resultFiles(source.dir)) {
    const manifest = await readManifest2(file);
    if (!manifest || !keep(manifest)) continue;
    const digests = manifest.outputs.map((o) => o.digest);
    if ((await source.hasBlobs(digests)).size !== new Set(digests).size) continue;
    let usable = true;
    for (const d of new Set(digests)) if (!await sound(d)) usable = false;
    if (!usable) continue;
    const hex = manifest.cacheKey.slice("sha256:".length);
    await linkOrCopy(file, join3(dest, "results", "sha256", hex.slice(0, 2), `${hex}.json`));
    for (const d of digests) {
      if (blobs.has(d)) continue;
      blobs.add(d);
      const bhex = d.slice("sha256:".length);
      await linkOrCopy(source.blobPath(d), join3(dest, "blobs", "sha256", bhex.slice(0, 2), bhex));
    }
    count++;
  }
  return count;
}
async function resultFiles(dir) {
  const files = await listLayout(join3(dir, "results", "sha256"), /^[0-9a-f]{64}\.json$/);
  return files.map(([f]) => f);
}
async function readManifest2(file) {
  try {
    const value = JSON.parse(await readFile2(file, "utf8"));
    return manifestProblems(value).length === 0 ? value : null;
  } catch {
    return null;
  }
}
async function moveInto(src, dest) {
  await mkdir2(join3(dest, ".."), { recursive: true });
  try {
    await rename2(src, dest);
  } catch (err) {
    if (err.code !== "EXDEV") throw err;
    await copyFile(src, dest);
  }
}
async function linkOrCopy(src, dest) {
  await mkdir2(join3(dest, ".."), { recursive: true });
  try {
    await link(src, dest);
  } catch {
    await copyFile(src, dest);
  }
}
function createGhaStore(options, ctx) {
  if (typeof ctx.slot !== "string" || ctx.slot === "") {
    throw new TypeError("the worker slot is required");
  }
  const known = ["dir", "scope", "slots", "retain-days", "retainDays"];
  for (const key of Object.keys(options)) {
    if (!known.includes(key))
      throw new StoreOptionsError(
        `unknown option "${key}"; expected one of: dir, scope, slots, retain-days`,
        key
      );
  }
  const { dir, scope = "default", slots = [] } = options;
  if (options["retain-days"] !== void 0 && options.retainDays !== void 0)
    throw new StoreOptionsError("give retain-days or retainDays, not both", "retainDays");
  const retainDays = options["retain-days"] ?? options.retainDays ?? 7;
  if (dir !== void 0 && (typeof dir !== "string" || dir === "")) {
    throw new StoreOptionsError("dir: must be a non-empty string", "dir");
  }
  if (typeof scope !== "string" || scope === "") {
    throw new StoreOptionsError("scope: must be a non-empty string", "scope");
  }
  const slotList = typeof slots === "string" ? slots.split(",").map((s) => s.trim()) : slots;
  if (!Array.isArray(slotList) || slotList.some((s) => typeof s !== "string")) {
    throw new StoreOptionsError("slots: must be a list of worker ids", "slots");
  }
  if (typeof retainDays !== "number" || !(retainDays >= 0)) {
    const option = options["retain-days"] !== void 0 ? "retain-days" : "retainDays";
    throw new StoreOptionsError(`${option}: must be a non-negative number`, option);
  }
  const others = [...new Set(slotList)].filter((s) => s !== "" && s !== ctx.slot);
  return new GhaStore(
    {
      dir: dir ? resolve(ctx.root, dir) : join3(resolve(ctx.root), ".dist-build", "gha", fsName(ctx.slot)),
      scope,
      slots: others,
      retainDays
    },
    ctx
  );
}

export {
  isNotFound,
  isPermissionError,
  isNoSpace,
  parentOutside,
  removeTree,
  addWriteBits,
  leftByDead,
  processAlive,
  processStillAlive,
  processStartTime,
  LocalStore,
  GHA_KEY_FORMAT,
  GHA_CACHE_PATH,
  ghaSuperseded,
  ghaSaveScope,
  ghaKeyPart,
  ghaScopePrefix,
  ghaKeyPrefix,
  ghaKeySlotPart,
  ghaNewKey,
  preloadActionsCache,
  GhaStore,
  createGhaStore
};
