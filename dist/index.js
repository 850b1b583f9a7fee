import { createRequire as __dbCreateRequire } from 'node:module'; const require = __dbCreateRequire(import.meta.url);
var __defProp = Object.defineProperty;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __esm = (fn, res, err) => function __init() {
  if (err) throw err[0];
  try {
    return fn && (res = (0, fn[__getOwnPropNames(fn)[0]])(fn = 0)), res;
  } catch (e) {
    throw err = [e], e;
  }
};
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};

// src/config/size.ts
function parseSize(value) {
  let bytes;
  if (typeof value === "number") bytes = value;
  else {
    const m = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(value.trim());
    const unit = m ? UNITS[m[2].toLowerCase()] : void 0;
    if (!m || unit === void 0) {
      throw new Error(
        `invalid size "${value}": expected bytes or a number with B, KB, MB, GB, TB, KiB, MiB, GiB or TiB`
      );
    }
    bytes = Number(m[1]) * unit;
  }
  bytes = Math.floor(bytes);
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new Error(`invalid size ${JSON.stringify(value)}: expected at least 1 byte`);
  }
  return bytes;
}
function formatSize(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
var UNITS, SIZE_PATTERN;
var init_size = __esm({
  "src/config/size.ts"() {
    "use strict";
    UNITS = {
      "": 1,
      b: 1,
      k: 1e3,
      kb: 1e3,
      m: 1e6,
      mb: 1e6,
      g: 1e9,
      gb: 1e9,
      t: 1e12,
      tb: 1e12,
      kib: 2 ** 10,
      mib: 2 ** 20,
      gib: 2 ** 30,
      tib: 2 ** 40
    };
    SIZE_PATTERN = "^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$";
  }
});

// src/store/types.ts
function isDigest(value) {
  return typeof value === "string" && DIGEST_PATTERN.test(value);
}
function assertDigest(value, what = "digest") {
  if (!isDigest(value)) throw new TypeError(`invalid ${what} ${JSON.stringify(value)}`);
}
function outputPathProblem(path) {
  if (typeof path !== "string" || path === "") return "is empty";
  if (path.includes("\0")) return "contains a NUL character";
  if (path.includes("\\")) return "contains a backslash (use posix separators)";
  if (path.startsWith("/")) return "is absolute";
  for (const seg of path.split("/")) {
    if (seg === "..") return 'has a ".." segment';
    if (seg === "" || seg === ".") return 'is not in normal form (empty or "." segment)';
  }
  return null;
}
function holdsDeclaredOutputs(entries, outputs) {
  const paths = (list) => [...new Set(list)].sort().join("\n");
  return paths(entries.map((e) => e.path)) === paths(outputs);
}
function manifestProblems(value) {
  const problems = [];
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return ["not a JSON object"];
  }
  const m = value;
  if (m.format !== RESULT_FORMAT) problems.push(`format is not ${RESULT_FORMAT}`);
  if (!isDigest(m.cacheKey)) problems.push("cacheKey is not a sha256 digest");
  for (const k of ["unit", "invocation", "worker", "createdAt"]) {
    if (typeof m[k] !== "string") problems.push(`${k} is not a string`);
  }
  if (m.signature !== void 0 && typeof m.signature !== "string") {
    problems.push("signature is not a string");
  }
  if (!Number.isInteger(m.exitCode)) problems.push("exitCode is not an integer");
  if (typeof m.durationMs !== "number" || !(m.durationMs >= 0)) {
    problems.push("durationMs is not a non-negative number");
  }
  if (!Array.isArray(m.outputs)) {
    problems.push("outputs is not an array");
    return problems;
  }
  const seen = /* @__PURE__ */ new Set();
  m.outputs.forEach((o, i) => {
    const e = o;
    if (typeof e !== "object" || e === null) {
      problems.push(`outputs[${i}] is not an object`);
      return;
    }
    const pathProblem = outputPathProblem(e.path);
    if (pathProblem) problems.push(`outputs[${i}].path ${pathProblem}`);
    else if (seen.has(e.path)) problems.push(`outputs[${i}].path is a duplicate`);
    else seen.add(e.path);
    if (e.type !== "dir" && e.type !== "file" && e.type !== "symlink") {
      problems.push(`outputs[${i}].type is not dir, file or symlink`);
    }
    if (!isDigest(e.digest)) problems.push(`outputs[${i}].digest is not a sha256 digest`);
    for (const k of ["size", "files"]) {
      if (!Number.isSafeInteger(e[k]) || e[k] < 0) {
        problems.push(`outputs[${i}].${k} is not a non-negative integer`);
      }
    }
  });
  return problems;
}
var RESULT_FORMAT, DIGEST_PATTERN, CorruptBlobError, UnsafeArchiveError, MissingOutputError;
var init_types = __esm({
  "src/store/types.ts"() {
    "use strict";
    RESULT_FORMAT = "dist-build/result/v1";
    DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
    CorruptBlobError = class extends Error {
      digest;
      /** What the bytes did hash to, when known. */
      actual;
      constructor(digest, actual, message2) {
        super(message2 ?? `blob ${digest} is corrupt${actual ? ` (its bytes hash to ${actual})` : ""}`);
        this.name = "CorruptBlobError";
        this.digest = digest;
        this.actual = actual;
      }
    };
    UnsafeArchiveError = class extends Error {
      /** The entry's name as it appears in the archive (root-relative). */
      entry;
      constructor(entry, reason) {
        super(`unsafe archive entry ${JSON.stringify(entry)}: ${reason}`);
        this.name = "UnsafeArchiveError";
        this.entry = entry;
      }
    };
    MissingOutputError = class extends Error {
      path;
      constructor(path) {
        super(`declared output ${path} was not produced`);
        this.name = "MissingOutputError";
        this.path = path;
      }
    };
  }
});

// src/store/hash-pipe.ts
import { createHash } from "node:crypto";
import { availableParallelism as availableParallelism2 } from "node:os";
import { Worker as Worker2 } from "node:worker_threads";
function takeSlot() {
  const s = pool.pop();
  if (s) return s;
  const sab = new SharedArrayBuffer(SLOT);
  return { sab, buf: Buffer.from(sab), key: slotKeys++, sentTo: /* @__PURE__ */ new Set() };
}
function giveSlot(s) {
  if (pool.length < POOL_MAX) pool.push(s);
  else for (const t of s.sentTo) t.forget(s.key);
}
function maxHashThreads(env2 = process.env, cores2 = availableParallelism2()) {
  const given = env2.DIST_BUILD_HASH_THREADS;
  if (given === void 0 || given === "") return Math.max(1, Math.min(2, cores2 - 1));
  const n = Number(given);
  if (!Number.isInteger(n) || n < 1 || n > 8) {
    throw new RangeError(
      `DIST_BUILD_HASH_THREADS: expected a whole number from 1 to 8, got "${given}"`
    );
  }
  return n;
}
function pickThread() {
  const idle = threads.find((t) => t.load === 0);
  if (idle) return idle;
  if (threads.length < maxHashThreads()) {
    const t = new HashThread();
    threads.push(t);
    return t;
  }
  return threads.reduce((a, b) => b.load < a.load ? b : a);
}
var SLOT, SLOTS_PER_PIPE, POOL_MAX, THREAD_SOURCE, pool, slotKeys, HashThread, threads, HashPipe;
var init_hash_pipe = __esm({
  "src/store/hash-pipe.ts"() {
    "use strict";
    SLOT = 1024 * 1024;
    SLOTS_PER_PIPE = 4;
    POOL_MAX = 16;
    THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
const slots = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (!h) hashes.set(m.id, (h = createHash('sha256')));
    if (m.sab) slots.set(m.key, m.sab);
    h.update(new Uint8Array(slots.get(m.key), 0, m.length));
    parentPort.postMessage({ id: m.id, slot: m.slot });
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) || createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, hex: h.digest('hex') });
  } else if (m.op === 'drop') {
    hashes.delete(m.id);
  } else if (m.op === 'forget') {
    slots.delete(m.key);
  }
});
`;
    pool = [];
    slotKeys = 0;
    HashThread = class {
      worker;
      pipes = /* @__PURE__ */ new Map();
      nextId = 1;
      /** Replies still to come. */
      due = 0;
      dead;
      constructor() {
        this.worker = new Worker2(THREAD_SOURCE, { eval: true, name: "dist-build sha256" });
        this.worker.unref();
        this.worker.on("message", (m) => {
          this.replied();
          this.pipes.get(m.id)?.onReply(m);
        });
        const die = (err) => {
          this.dead ??= err;
          const i = threads.indexOf(this);
          if (i >= 0) threads.splice(i, 1);
          for (const p of [...this.pipes.values()]) p.onThreadDeath(err);
          this.pipes.clear();
        };
        this.worker.on("error", die);
        this.worker.on("exit", (code) => die(new Error(`the hashing thread exited (code ${code})`)));
      }
      /** Pipes using this thread. */
      get load() {
        return this.pipes.size;
      }
      attach(pipe) {
        if (this.dead) throw this.dead;
        const id = this.nextId++;
        this.pipes.set(id, pipe);
        return id;
      }
      detach(id, drop) {
        if (!this.pipes.delete(id)) return;
        if (drop) this.worker.postMessage({ op: "drop", id });
      }
      /** The thread may let go of a slot's memory. */
      forget(key) {
        this.worker.postMessage({ op: "forget", key });
      }
      /** Sends a request that gets a reply; the thread is referenced while any reply is due. */
      post(msg) {
        if (this.due++ === 0) this.worker.ref();
        this.worker.postMessage(msg);
      }
      replied() {
        if (--this.due === 0) this.worker.unref();
      }
    };
    threads = [];
    HashPipe = class {
      out = /* @__PURE__ */ new Map();
      nextSlot = 0;
      /** Submitted slots not yet hashed, in order, while the pipe is still deciding (inline mode). */
      pending = [];
      id;
      thread;
      /** The slot `update` is gathering into. */
      filling;
      waiters = [];
      digestWaiter;
      error;
      finished = false;
      bytes = 0;
      /** Total bytes submitted. */
      get size() {
        return this.bytes;
      }
      /** A free slot buffer of `SLOT` bytes; waits while `SLOTS_PER_PIPE` are out. */
      async acquire() {
        for (; ; ) {
          if (this.error) throw this.error;
          if (this.out.size < SLOTS_PER_PIPE) break;
          await new Promise((resolve7) => this.waiters.push(resolve7));
        }
        const slot = takeSlot();
        this.out.set(this.nextSlot++, { slot, length: -1, hashed: false, held: false });
        return slot.buf;
      }
      /**
       * Hashes `buf[0, length)` (a buffer from `acquire`, submitted in the order acquired). The slot
       * is reused once hashed and `hold` has settled; a rejected `hold` is not this pipe's business.
       */
      submit(buf, length, hold) {
        const n = this.slotOf(buf);
        const o = this.out.get(n);
        o.length = length;
        this.bytes += length;
        if (hold) {
          o.held = true;
          const release = () => {
            o.held = false;
            this.maybeFree(n);
          };
          hold.then(release, release);
        }
        if (this.id !== void 0) {
          this.send(n, o);
          return;
        }
        this.pending.push(n);
        if (this.pending.length >= SLOTS_PER_PIPE - 1) this.goThreaded();
      }
      /**
       * Copies `data` in (for streams that bring their own buffers): small chunks are gathered into a
       * slot, which goes out when full (or at `digest()`). Returns a promise only when it had to wait
       * for a free slot (await it before the next call).
       */
      update(data) {
        let offset = 0;
        while (offset < data.length) {
          const fill = this.filling;
          if (!fill)
            return this.acquire().then((buf) => {
              this.filling = { buf, used: 0 };
              return this.update(data.subarray(offset));
            });
          const n = Math.min(SLOT - fill.used, data.length - offset);
          fill.buf.fill(data.subarray(offset, offset + n), fill.used, fill.used + n);
          fill.used += n;
          offset += n;
          if (fill.used === SLOT) {
            this.filling = void 0;
            this.submit(fill.buf, SLOT);
          }
        }
        return void 0;
      }
      /** `sha256:<hex>` of everything submitted. The pipe is done afterwards. */
      async digest() {
        if (this.error) throw this.error;
        if (this.filling) {
          const { buf, used } = this.filling;
          this.filling = void 0;
          this.submit(buf, used);
        }
        this.finished = true;
        if (this.id === void 0) {
          const hash = createHash("sha256");
          for (const n of this.pending.splice(0)) {
            const o = this.out.get(n);
            hash.update(o.slot.buf.subarray(0, o.length));
            o.hashed = true;
            this.maybeFree(n);
          }
          return `sha256:${hash.digest("hex")}`;
        }
        const hex = await new Promise((resolve7, reject) => {
          this.digestWaiter = { resolve: resolve7, reject };
          this.thread.post({ op: "digest", id: this.id });
        });
        return `sha256:${hex}`;
      }
      /** Stops using the thread and the slots (slots still held by a write are freed when it ends). */
      dispose() {
        if (this.id !== void 0) this.thread?.detach(this.id, !this.finished);
        this.error ??= new Error("hash pipe disposed");
        this.filling = void 0;
        for (const [n, o] of this.out) {
          o.hashed = true;
          this.maybeFree(n);
        }
        this.wake();
      }
      /** @internal */
      onReply(m) {
        if (m.hex !== void 0) {
          const w = this.digestWaiter;
          this.digestWaiter = void 0;
          if (this.id !== void 0) this.thread?.detach(this.id, false);
          this.id = void 0;
          w?.resolve(m.hex);
          return;
        }
        const o = this.out.get(m.slot);
        if (!o) return;
        o.hashed = true;
        this.maybeFree(m.slot);
      }
      /** @internal */
      onThreadDeath(err) {
        this.error ??= err;
        this.digestWaiter?.reject(err);
        this.digestWaiter = void 0;
        this.wake();
      }
      slotOf(buf) {
        for (const [n, o] of this.out) if (o.slot.buf === buf && o.length < 0) return n;
        throw new Error("submit: not a buffer acquired from this pipe, or submitted twice");
      }
      goThreaded() {
        this.thread = pickThread();
        this.id = this.thread.attach(this);
        for (const n of this.pending.splice(0)) this.send(n, this.out.get(n));
      }
      send(n, o) {
        const t = this.thread;
        const { key, sab } = o.slot;
        const fresh = !o.slot.sentTo.has(t);
        o.slot.sentTo.add(t);
        t.post({
          op: "update",
          id: this.id,
          slot: n,
          key,
          sab: fresh ? sab : void 0,
          length: o.length
        });
      }
      maybeFree(n) {
        const o = this.out.get(n);
        if (!o || !o.hashed || o.held) return;
        this.out.delete(n);
        giveSlot(o.slot);
        this.wake();
      }
      wake() {
        for (const w of this.waiters.splice(0)) w();
      }
    };
  }
});

// src/store/digest.ts
import { createHash as createHash2 } from "node:crypto";
import { readSync } from "node:fs";
import { Readable } from "node:stream";
function sha256Digest(data) {
  return `sha256:${createHash2("sha256").update(data).digest("hex")}`;
}
async function* hashedChunks(source, pipe) {
  for await (const chunk of source) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    const wait = pipe.update(buf);
    if (wait) await wait;
    yield buf;
  }
}
async function digestStream(data) {
  const pipe = new HashPipe();
  try {
    let size2 = 0;
    for await (const buf of hashedChunks(data, pipe)) size2 += buf.length;
    return { digest: await pipe.digest(), size: size2 };
  } finally {
    pipe.dispose();
  }
}
function verifiedStream(source, digest, onCorrupt) {
  async function* verify() {
    const pipe = new HashPipe();
    let actual;
    try {
      yield* hashedChunks(source, pipe);
      actual = await pipe.digest();
    } finally {
      pipe.dispose();
    }
    if (actual === digest) return;
    const err = new CorruptBlobError(digest, actual);
    await Promise.resolve().then(() => onCorrupt?.(err)).catch(() => {
    });
    throw err;
  }
  const stream = Readable.from(verify(), { objectMode: false });
  stream[VERIFIED] = digest;
  return stream;
}
function isVerifiedFor(stream, digest) {
  if (stream instanceof VerifiedFileChunks) return stream.digest === digest;
  return typeof stream === "object" && stream !== null && stream[VERIFIED] === digest;
}
var VERIFIED, VerifiedFileChunks, YIELD_MS;
var init_digest = __esm({
  "src/store/digest.ts"() {
    "use strict";
    init_hash_pipe();
    init_types();
    VERIFIED = /* @__PURE__ */ Symbol.for("dist-build.store.verified-digest");
    VerifiedFileChunks = class {
      constructor(handle, digest, onCorrupt) {
        this.handle = handle;
        this.digest = digest;
        this.onCorrupt = onCorrupt;
      }
      handle;
      digest;
      onCorrupt;
      started = false;
      closed = false;
      [Symbol.asyncIterator]() {
        if (this.started) throw new Error("a blob's chunks are read once");
        this.started = true;
        return this.chunks();
      }
      destroy() {
        if (!this.started) void this.close();
      }
      async close() {
        if (this.closed) return;
        this.closed = true;
        await this.handle.close().catch(() => void 0);
      }
      async *chunks() {
        const pipe = new HashPipe();
        const fd = this.handle.fd;
        let actual;
        try {
          let turn = Date.now();
          for (; ; ) {
            const buf = await pipe.acquire();
            let n = 0;
            for (let r = 1; n < SLOT && r > 0; n += r) r = readSync(fd, buf, n, SLOT - n, null);
            let consumed;
            pipe.submit(buf, n, n ? new Promise((r) => consumed = r) : void 0);
            if (n === 0) break;
            try {
              yield buf.subarray(0, n);
            } finally {
              consumed();
            }
            if (n < SLOT) break;
            if (Date.now() - turn >= YIELD_MS) {
              await new Promise((r) => setImmediate(r));
              turn = Date.now();
            }
          }
          actual = await pipe.digest();
        } finally {
          pipe.dispose();
          await this.close();
        }
        if (actual === this.digest) return;
        const err = new CorruptBlobError(this.digest, actual);
        await Promise.resolve().then(() => this.onCorrupt?.(err)).catch(() => {
        });
        throw err;
      }
    };
    YIELD_MS = 20;
  }
});

// src/store/errors.ts
function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}
var StoreOptionsError;
var init_errors = __esm({
  "src/store/errors.ts"() {
    "use strict";
    StoreOptionsError = class extends Error {
      /**
       * @param option the option the problem is about, when it is one: `openStores` then points at
       *   that option's line in the config.
       */
      constructor(message2, option) {
        super(message2);
        this.option = option;
      }
      option;
      name = "StoreOptionsError";
    };
  }
});

// src/store/fsutil.ts
import { readdirSync as readdirSync2, readFileSync as readFileSync3, writevSync } from "node:fs";
import { chmod, lstat, readdir, realpath, rm, stat } from "node:fs/promises";
import { dirname as dirname3, join as join5, sep as sep5 } from "node:path";
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
  let existing = dirname3(path);
  while (!await lstat(existing).catch(() => null)) existing = dirname3(existing);
  const real = await realpath(existing);
  return real === realRoot || real.startsWith(realRoot + sep5) ? void 0 : real;
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
  for (const name of await readdir(dir).catch(() => [])) await addWriteBits(join5(dir, name));
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
    names = readdirSync2(dir);
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
function processStartTime(pid) {
  try {
    const stat5 = readFileSync3(`/proc/${pid}/stat`, "latin1");
    return stat5.slice(stat5.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return void 0;
  }
}
var init_fsutil = __esm({
  "src/store/fsutil.ts"() {
    "use strict";
  }
});

// src/store/limit.ts
async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  let failed;
  const worker = async () => {
    while (failed === void 0 && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.err;
  return results;
}
var init_limit = __esm({
  "src/store/limit.ts"() {
    "use strict";
  }
});

// src/store/local.ts
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  lstat as lstat2,
  mkdir as mkdir2,
  open,
  readFile as readFile4,
  rename as rename2,
  rm as rm2,
  stat as stat2,
  unlink as unlink2,
  utimes,
  writeFile as writeFile2
} from "node:fs/promises";
import { join as join6 } from "node:path";
async function touch(paths) {
  const now = /* @__PURE__ */ new Date();
  await Promise.all(paths.map((p) => utimes(p, now, now).catch(() => {
  })));
}
async function readManifest(path) {
  try {
    const value = JSON.parse(await readFile4(path, "utf8"));
    return manifestProblems(value).length === 0 ? value : null;
  } catch {
    return null;
  }
}
async function unlinkIfThere(path) {
  try {
    await unlink2(path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
var EVICT_TO, DEFAULT_EVICT_GRACE_MS, DEFAULT_RESCAN_EVERY, READ_CHUNK, WRITE_BUFFER, STALE_TMP_MS, ORPHAN_TMP_MS, STAT_CONCURRENCY, LocalStore;
var init_local = __esm({
  "src/store/local.ts"() {
    "use strict";
    init_digest();
    init_size();
    init_hash_pipe();
    init_types();
    init_errors();
    init_fsutil();
    init_limit();
    EVICT_TO = 0.9;
    DEFAULT_EVICT_GRACE_MS = 6e4;
    DEFAULT_RESCAN_EVERY = 100;
    READ_CHUNK = 1024 * 1024;
    WRITE_BUFFER = 1024 * 1024;
    STALE_TMP_MS = 24 * 3600 * 1e3;
    ORPHAN_TMP_MS = 5 * 60 * 1e3;
    STAT_CONCURRENCY = 64;
    LocalStore = class _LocalStore {
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
        return join6(this.dir, "blobs", "sha256", hex.slice(0, 2), hex);
      }
      resultPath(cacheKey) {
        assertDigest(cacheKey, "cache key");
        const hex = cacheKey.slice("sha256:".length);
        return join6(this.dir, "results", "sha256", hex.slice(0, 2), `${hex}.json`);
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
        let size2 = 0;
        let moved = false;
        try {
          const chunks = pipe ? hashedChunks(data, pipe) : data;
          const file = await open(tmp, "wx");
          try {
            let batch = [];
            let batched = 0;
            for await (const buf of chunks) {
              size2 += buf.length;
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
          if (moved) await this.afterPut(size2);
          return { digest, size: size2 };
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
          await writeFile2(probe, "", { flag: "wx" });
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
        return join6(this.dir, "tmp");
      }
      async adoptBlobFile(file, digest) {
        assertDigest(digest);
        await this.ensureDirs();
        const { size: size2 } = await stat2(file);
        const written = await this.commit(file, this.blobPath(digest), true);
        if (written) await this.afterPut(size2);
        return { digest, size: size2 };
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
            if (now && now.ino === ino) await unlink2(path).catch(() => {
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
          text = await readFile4(path, "utf8");
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
            await writeFile2(tmp, `${JSON.stringify(manifest, null, 2)}
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
        for (const shard of await listDir(join6(this.dir, "results", "sha256"))) {
          const names = await listDir(join6(this.dir, "results", "sha256", shard));
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
        const root = join6(this.dir, "blobs", "sha256");
        for (const shard of await listDir(root)) {
          const shardDir = join6(root, shard);
          for (const name of await listDir(shardDir)) {
            if (!/^[0-9a-f]{64}$/.test(name)) continue;
            const path = join6(shardDir, name);
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
        const root = join6(this.dir, "blobs", "sha256");
        for (const shard of await listDir(root)) {
          for (const name of await listDir(join6(root, shard))) {
            if (!/^[0-9a-f]{64}$/.test(name)) continue;
            const st = await lstat2(join6(root, shard, name)).catch(() => null);
            if (st && !st.isFile()) out.push(join6(root, shard, name));
          }
        }
        return out;
      }
      /** Result files whose key's hex starts with `hexPrefix`, sorted by key. */
      async resultFiles(hexPrefix = "") {
        const root = join6(this.dir, "results", "sha256");
        const shards = hexPrefix.length >= 2 ? [hexPrefix.slice(0, 2)] : (await listDir(root)).filter((s) => s.startsWith(hexPrefix)).sort();
        const out = [];
        for (const shard of shards) {
          const names = (await listDir(join6(root, shard))).sort();
          for (const name of names) {
            const hex = name.slice(0, -".json".length);
            if (!name.endsWith(".json") || !/^[0-9a-f]{64}$/.test(hex) || !hex.startsWith(hexPrefix))
              continue;
            out.push({ cacheKey: `sha256:${hex}`, path: join6(root, shard, name) });
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
            await mkdir2(join6(this.dir, ...sub), { recursive: true });
          }
        })().catch((err) => {
          this.dirsReady = void 0;
          throw err;
        });
        return this.dirsReady;
      }
      tempPath() {
        return join6(this.dir, "tmp", `${process.pid}-${randomBytes(8).toString("hex")}`);
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
          await rename2(tmp, dest);
        } catch (err) {
          const code = err.code;
          if (code === "EISDIR" || code === "ENOTEMPTY" || code === "EEXIST") {
            await rm2(dest, { recursive: true, force: true });
          } else if (isNotFound(err)) {
            await mkdir2(join6(dest, ".."), { recursive: true });
          } else throw err;
          await rename2(tmp, dest);
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
        const dir = join6(this.dir, "tmp");
        const now = Date.now();
        for (const name of await listDir(dir)) {
          const st = await lstat2(join6(dir, name)).catch(() => null);
          if (!st) continue;
          const owner = Number(/^(\d+)-/.exec(name)?.[1]);
          const orphan = owner > 0 && owner !== process.pid && !processAlive(owner);
          const age = now - st.mtimeMs;
          if (age > STALE_TMP_MS || orphan && age > ORPHAN_TMP_MS) {
            await rm2(join6(dir, name), { force: true, recursive: true });
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
      warnOnce(id, message2) {
        if (this.warned.has(id)) return;
        this.warned.add(id);
        this.onWarning(message2);
      }
    };
  }
});

// src/store/gha-api.ts
function api(env2, what) {
  const token = env2.DIST_BUILD_GITHUB_TOKEN || env2.GITHUB_TOKEN;
  const repo = env2.GITHUB_REPOSITORY;
  if (!token || !repo) {
    return {
      unavailable: `${what} needs the GitHub API: set GITHUB_TOKEN (or DIST_BUILD_GITHUB_TOKEN) and GITHUB_REPOSITORY`
    };
  }
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repo)) {
    return { unavailable: `GITHUB_REPOSITORY "${repo}" is not owner/name` };
  }
  return {
    base: (env2.GITHUB_API_URL || "https://api.github.com").replace(/\/+$/, ""),
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
async function listGhaCaches(prefix, env2, fetchImpl = fetch) {
  const a = api(env2, "listing");
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
async function deleteGhaCache(id, env2, fetchImpl = fetch) {
  const a = api(env2, "deleting an entry");
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
var MAX_PAGES, TIMEOUT_MS;
var init_gha_api = __esm({
  "src/store/gha-api.ts"() {
    "use strict";
    MAX_PAGES = 1e3;
    TIMEOUT_MS = 15e3;
  }
});

// src/store/gha.ts
var gha_exports = {};
__export(gha_exports, {
  GHA_CACHE_PATH: () => GHA_CACHE_PATH,
  GHA_KEY_FORMAT: () => GHA_KEY_FORMAT,
  GhaStore: () => GhaStore,
  createGhaStore: () => createGhaStore,
  ghaKeyPart: () => ghaKeyPart,
  ghaKeyPrefix: () => ghaKeyPrefix,
  ghaKeySlotPart: () => ghaKeySlotPart,
  ghaNewKey: () => ghaNewKey,
  ghaSaveScope: () => ghaSaveScope,
  ghaScopePrefix: () => ghaScopePrefix,
  ghaSuperseded: () => ghaSuperseded,
  preloadActionsCache: () => preloadActionsCache
});
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash as createHash3, randomBytes as randomBytes4 } from "node:crypto";
import { createReadStream as createReadStream2 } from "node:fs";
import { copyFile, link, lstat as lstat4, mkdir as mkdir5, mkdtemp, readFile as readFile5, rename as rename5, rm as rm5 } from "node:fs/promises";
import { join as join9, resolve as resolve4 } from "node:path";
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
function ghaSaveScope(env2) {
  if (env2.GITHUB_REF) return env2.GITHUB_REF;
  try {
    const payload = (env2.ACTIONS_RUNTIME_TOKEN ?? "").split(".")[1] ?? "";
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
    out = `h${createHash3("sha256").update(value).digest("hex").slice(0, 40)}`;
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
  return `${prefix}${stamp}-${randomBytes4(4).toString("hex")}`;
}
async function preloadActionsCache() {
  await loadCacheModule().catch(() => {
  });
}
function loadCacheModule() {
  cacheModule ??= import("@actions/cache").catch((err) => {
    cacheModule = void 0;
    throw err;
  });
  return cacheModule;
}
function serialized(fn) {
  const run2 = queue.then(fn, fn);
  queue = run2.catch(() => {
  });
  return run2;
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
function runActions(env2, overlay, fn) {
  return serialized(async () => {
    const wanted = { ...overlay };
    for (const k of ACTIONS_ENV_KEYS) wanted[k] = env2[k];
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
function cacheMode(env2) {
  return (env2.ACTIONS_CACHE_MODE ?? "").trim().toLowerCase();
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
function fsName(value) {
  const safe = value.replace(/[^A-Za-z0-9._-]/g, "_");
  return safe === value && safe !== "." && safe !== ".." && safe.length <= 100 ? safe : `${safe.slice(0, 40)}-${createHash3("sha256").update(value).digest("hex").slice(0, 16)}`;
}
async function listLayout(root, name) {
  const out = [];
  for (const shard of await listDir(root)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const n of await listDir(join9(root, shard))) {
      if (!name.test(n) || !n.startsWith(shard)) continue;
      const file = join9(root, shard, n);
      const st = await lstat4(file).catch(() => null);
      if (st?.isFile()) out.push([file, n]);
    }
  }
  return out;
}
async function importShard(src, target) {
  const corrupt = [];
  const verified = [];
  let checked = 0;
  for (const [file, hex] of await listLayout(join9(src, "blobs", "sha256"), /^[0-9a-f]{64}$/)) {
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
    join9(src, "results", "sha256"),
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
  let count2 = 0;
  for (const file of await resultFiles(source.dir)) {
    const manifest = await readManifest2(file);
    if (!manifest || !keep(manifest)) continue;
    const digests = manifest.outputs.map((o) => o.digest);
    if ((await source.hasBlobs(digests)).size !== new Set(digests).size) continue;
    let usable = true;
    for (const d of new Set(digests)) if (!await sound(d)) usable = false;
    if (!usable) continue;
    const hex = manifest.cacheKey.slice("sha256:".length);
    await linkOrCopy(file, join9(dest, "results", "sha256", hex.slice(0, 2), `${hex}.json`));
    for (const d of digests) {
      if (blobs.has(d)) continue;
      blobs.add(d);
      const bhex = d.slice("sha256:".length);
      await linkOrCopy(source.blobPath(d), join9(dest, "blobs", "sha256", bhex.slice(0, 2), bhex));
    }
    count2++;
  }
  return count2;
}
async function resultFiles(dir) {
  const files = await listLayout(join9(dir, "results", "sha256"), /^[0-9a-f]{64}\.json$/);
  return files.map(([f]) => f);
}
async function readManifest2(file) {
  try {
    const value = JSON.parse(await readFile5(file, "utf8"));
    return manifestProblems(value).length === 0 ? value : null;
  } catch {
    return null;
  }
}
async function moveInto(src, dest) {
  await mkdir5(join9(dest, ".."), { recursive: true });
  try {
    await rename5(src, dest);
  } catch (err) {
    if (err.code !== "EXDEV") throw err;
    await copyFile(src, dest);
  }
}
async function linkOrCopy(src, dest) {
  await mkdir5(join9(dest, ".."), { recursive: true });
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
      dir: dir ? resolve4(ctx.root, dir) : join9(resolve4(ctx.root), ".dist-build", "gha", fsName(ctx.slot)),
      scope,
      slots: others,
      retainDays
    },
    ctx
  );
}
var GHA_KEY_FORMAT, GHA_CACHE_PATH, SHARD_NAME, ACTIONS_ENV_KEYS, KNOWN_MODES, DAY_MS2, MAX_KEY_PART, capture, queue, hooks, restoreWrites, cacheModule, PEER_REFRESH_MS, GhaStore;
var init_gha = __esm({
  "src/store/gha.ts"() {
    "use strict";
    init_gha_api();
    init_digest();
    init_local();
    init_types();
    init_errors();
    init_fsutil();
    GHA_KEY_FORMAT = "dist-build-v1";
    GHA_CACHE_PATH = "~/dist-build-shard";
    SHARD_NAME = "dist-build-shard";
    ACTIONS_ENV_KEYS = [
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
    KNOWN_MODES = ["none", "read", "write", "write-only"];
    DAY_MS2 = 24 * 3600 * 1e3;
    MAX_KEY_PART = 120;
    capture = new AsyncLocalStorage();
    queue = Promise.resolve();
    hooks = 0;
    PEER_REFRESH_MS = 6e4;
    GhaStore = class {
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
          stage = await mkdtemp(join9(this.dir, "tmp", "gha-save-"));
          const cutoff = Date.now() - this.options.retainDays * DAY_MS2;
          const count2 = await stageShard(
            this.shardStore,
            join9(stage, SHARD_NAME),
            (m) => Date.parse(m.createdAt) >= cutoff || this.touched.has(m.cacheKey),
            (d) => this.sound(d)
          );
          if (count2 === 0) {
            if (generation === this.generation) this.dirty = false;
            return;
          }
          const why = await this.upload(stage, ghaNewKey(this.scope, this.slot));
          if (why) this.warn(`${why}: results of this run stay local`);
          else if (generation === this.generation) this.dirty = false;
        } catch (err) {
          this.warn(`saving the shard failed (${errorText(err)}); results of this run stay local`);
        } finally {
          if (stage) await rm5(stage, { recursive: true, force: true }).catch(() => {
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
        const stale2 = new Set(superseded);
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
          if (stale2.has(e)) result.removedSuperseded++;
          result.freedBytes += e.sizeBytes;
          result.bytes -= e.sizeBytes;
        }
        return result;
      }
      // -------------------------------------------------------------------------------------------
      /** `verify` for one slot: null when the slot has no entry this ref can restore. */
      async verifyEntry(part, listing) {
        const work = await mkdtemp(join9(this.dir, "tmp", "gha-verify-"));
        try {
          const copy = await LocalStore.open(join9(work, "shard"), { onWarning: () => {
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
          const stage = join9(work, "stage");
          const kept = await stageShard(copy, join9(stage, SHARD_NAME), () => true);
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
          await rm5(work, { recursive: true, force: true }).catch(() => {
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
        const size2 = outcome.log.debug.map((l) => /^File Size: (\d+)$/.exec(l)).find((m) => m !== null);
        if (outcome.ok && outcome.value !== -1 && size2) {
          this.counters.uploadedBytes += Number(size2[1]);
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
        const env2 = this.ctx.env;
        const why = !env2.ACTIONS_RUNTIME_TOKEN ? "ACTIONS_RUNTIME_TOKEN is not set" : void 0;
        const outcome = await runActions(env2, {}, async (cache) => cache.isFeatureAvailable());
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
        const runnerTemp = join9(stage, "runner-temp");
        await mkdir5(runnerTemp, { recursive: true });
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
        const fail = (why, message2) => {
          if (!quiet) this.warn(message2);
          return { failed: why };
        };
        let stage;
        try {
          stage = await mkdtemp(join9(this.dir, "tmp", "gha-restore-"));
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
          const found = await importShard(join9(stage, SHARD_NAME), target);
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
          if (stage) await rm5(stage, { recursive: true, force: true }).catch(() => {
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
        const dir = join9(this.dir, "peers", fsName(part));
        await rm5(dir, { recursive: true, force: true }).catch(() => {
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
      warn(message2) {
        if (this.warned.has(message2)) return;
        this.warned.add(message2);
        this.counters.warnings++;
        this.ctx.onWarning(`gha store: ${message2}`);
      }
    };
  }
});

// src/store/registry-http.ts
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { Readable as Readable2 } from "node:stream";
function answerOf(res, spec) {
  const status5 = res.statusCode ?? 0;
  if (spec.method === "HEAD" || status5 === 204 || status5 === 304 || res.headers["content-length"] === "0") {
    res.resume();
  }
  return {
    method: spec.method,
    status: status5,
    ok: status5 >= 200 && status5 < 300,
    url: spec.url.href,
    headers: {
      get(name) {
        const v = res.headers[name.toLowerCase()];
        if (v === void 0) return null;
        return Array.isArray(v) ? v.join(", ") : v;
      }
    },
    body: res
  };
}
function fetchTransport(fetchImpl) {
  return async (spec) => {
    const controller = new AbortController();
    const timer = spec.afterBodyTimeoutMs === 0 ? void 0 : setTimeout(
      () => controller.abort(Object.assign(new Error("timed out"), { name: "TimeoutError" })),
      spec.timeoutMs + (spec.afterBodyTimeoutMs ?? 0)
    );
    let res;
    try {
      const body = spec.body instanceof Readable2 ? Readable2.toWeb(spec.body) : spec.body;
      res = await fetchImpl(spec.url, {
        method: spec.method,
        headers: spec.headers,
        body,
        redirect: "manual",
        signal: controller.signal,
        ...spec.body instanceof Readable2 ? { duplex: "half" } : {}
      });
    } catch (err) {
      if (spec.body instanceof Readable2) spec.body.destroy();
      const e = err;
      const timedOut = e?.name === "TimeoutError" || e?.name === "AbortError";
      const code = timedOut ? "ETIMEDOUT" : e?.cause?.code;
      throw new HttpError(
        timedOut ? "timed out" : code ?? e?.message ?? String(err),
        code,
        false,
        err
      );
    } finally {
      clearTimeout(timer);
    }
    return {
      method: spec.method,
      status: res.status,
      ok: res.ok,
      url: res.url || spec.url.href,
      headers: res.headers,
      body: res.body ? Readable2.fromWeb(res.body) : Readable2.from([])
    };
  };
}
function discard(res) {
  const body = res.body;
  if (body.readableEnded || body.destroyed) return Promise.resolve();
  const header = res.headers.get("content-length");
  const length = res.method === "HEAD" ? 0 : header === null ? NaN : Number(header);
  if (!(Number.isFinite(length) && length <= 64 * 1024)) {
    body.destroy();
    return Promise.resolve();
  }
  return new Promise((resolve7) => {
    body.once("end", resolve7);
    body.once("close", resolve7);
    body.once("error", () => resolve7());
    body.resume();
  });
}
function readText(res, max) {
  return readCappedText(res.body, max, () => res.body.destroy());
}
async function readCappedText(body, max, drop) {
  const parts = [];
  let size2 = 0;
  for await (const chunk of body) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    size2 += buf.length;
    if (size2 > max) {
      drop();
      throw new Error(`response larger than ${max} bytes`);
    }
    parts.push(buf);
  }
  return Buffer.concat(parts).toString("utf8");
}
var HttpError, agents, nodeTransport;
var init_registry_http = __esm({
  "src/store/registry-http.ts"() {
    "use strict";
    HttpError = class extends Error {
      code;
      /** The request went out on a kept-alive connection (a reset there is worth one replay). */
      reusedSocket;
      constructor(message2, code, reusedSocket, cause) {
        super(message2, cause !== void 0 ? { cause } : void 0);
        this.name = "HttpError";
        this.code = code;
        this.reusedSocket = reusedSocket;
      }
    };
    agents = {
      http: new HttpAgent({ keepAlive: true, scheduling: "lifo" }),
      https: new HttpsAgent({ keepAlive: true, scheduling: "lifo" })
    };
    nodeTransport = (spec) => new Promise((resolve7, reject) => {
      const https = spec.url.protocol === "https:";
      const request = https ? httpsRequest : httpRequest;
      const req = request(spec.url, {
        method: spec.method,
        headers: spec.headers,
        agent: https ? agents.https : agents.http
      });
      let answered = false;
      let sent = false;
      let sourceError;
      const source = spec.body instanceof Readable2 ? spec.body : void 0;
      const fail = (err) => {
        source?.destroy();
        if (answered) return;
        answered = true;
        if (sourceError) return reject(sourceError);
        const code = err.code;
        const plain = https && /wrong version number/i.test(err.message);
        reject(
          new HttpError(
            plain ? "the server does not speak TLS (a plain-http registry needs insecure: true)" : err.message === "socket hang up" && code ? `${code} (socket hang up)` : err.message.trim(),
            code,
            req.reusedSocket,
            err
          )
        );
      };
      req.setTimeout(spec.timeoutMs, () => {
        req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" }));
      });
      req.on("error", fail);
      req.on("response", (res) => {
        answered = true;
        req.setTimeout(0);
        if (!sent && source) {
          source.unpipe(req);
          source.destroy();
          const close = () => req.destroy();
          res.once("end", close);
          res.once("close", close);
        }
        resolve7(answerOf(res, spec));
      });
      req.on("finish", () => {
        sent = true;
        if (!answered && spec.afterBodyTimeoutMs !== void 0) {
          req.setTimeout(spec.afterBodyTimeoutMs);
        }
      });
      if (source) {
        source.once("error", (err) => {
          sourceError = err;
          req.destroy(err);
        });
        source.pipe(req);
      } else {
        req.end(spec.body);
      }
    });
  }
});

// src/store/registry-auth.ts
import { execFile } from "node:child_process";
import { readFile as readFile6 } from "node:fs/promises";
import { homedir } from "node:os";
import { join as join10 } from "node:path";
function parseChallenges(header) {
  if (!header) return [];
  const out = [];
  const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)/y;
  let pos = 0;
  while (pos < header.length) {
    re.lastIndex = pos;
    const m = re.exec(header);
    if (!m) break;
    pos = re.lastIndex;
    const challenge = { scheme: m[1].toLowerCase(), params: {} };
    out.push(challenge);
    const param = /\s*,?\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]*)\s*,?/y;
    for (; ; ) {
      param.lastIndex = pos;
      const p = param.exec(header);
      if (!p) break;
      const value = p[3] !== void 0 ? p[3].replace(/\\(.)/g, "$1") : p[2];
      challenge.params[p[1].toLowerCase()] = value;
      pos = param.lastIndex;
    }
    while (pos < header.length && /[\s,]/.test(header[pos])) pos++;
  }
  return out;
}
function credentialKeys(host) {
  if (host === "registry-1.docker.io" || host === "docker.io" || host === "index.docker.io") {
    return ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"];
  }
  return [host];
}
function normalizeConfigKey(key) {
  return key.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "").toLowerCase();
}
async function loadCredentials(host, env2, warn) {
  const user = env2.DIST_BUILD_REGISTRY_USERNAME;
  const pass = env2.DIST_BUILD_REGISTRY_PASSWORD;
  if (user && pass) {
    return { username: user, password: pass, source: "DIST_BUILD_REGISTRY_USERNAME/PASSWORD" };
  }
  if (user || pass) {
    warn(
      "only one of DIST_BUILD_REGISTRY_USERNAME and DIST_BUILD_REGISTRY_PASSWORD is set; ignoring it and looking in the Docker config"
    );
  }
  const dir = env2.DOCKER_CONFIG || join10(env2.HOME || homedir(), ".docker");
  const file = join10(dir, "config.json");
  let text;
  try {
    text = await readFile6(file, "utf8");
  } catch {
    return null;
  }
  let config;
  try {
    config = JSON.parse(text);
  } catch (err) {
    warn(`${file} does not parse (${err.message}); using no registry credentials`);
    return null;
  }
  if (typeof config !== "object" || config === null) return null;
  const c = config;
  const auths = typeof c.auths === "object" && c.auths !== null ? c.auths : {};
  const wanted = credentialKeys(host).map(normalizeConfigKey);
  const server = credentialKeys(host)[0];
  const fromHelper = async (name, where) => {
    if (typeof name !== "string" || name === "") return null;
    if (!/^[A-Za-z0-9._-]+$/.test(name)) {
      warn(
        `${file}: ${where} names a credential helper "${name}" that is not a plain name; ignoring it`
      );
      return null;
    }
    const r = await runHelper(name, server, env2);
    if (r.ok && r.username === "<token>") {
      warn(
        `${file}: docker-credential-${name} holds an identity token for ${host}, which dist-build does not use; set DIST_BUILD_REGISTRY_USERNAME/PASSWORD`
      );
      return null;
    }
    if (r.ok) {
      return {
        username: r.username,
        password: r.secret,
        source: `docker-credential-${name} (${where})`
      };
    }
    if (!/credentials not found/i.test(r.why)) {
      warn(
        `${file}: docker-credential-${name} (${where}) gave no credentials for ${host}: ${r.why}`
      );
    }
    return null;
  };
  const helpers = typeof c.credHelpers === "object" && c.credHelpers !== null ? c.credHelpers : {};
  for (const want of wanted) {
    for (const [key, name] of Object.entries(helpers)) {
      if (normalizeConfigKey(key) === want) return fromHelper(name, `credHelpers.${key}`);
    }
  }
  for (const want of wanted) {
    for (const [key, value] of Object.entries(auths)) {
      if (normalizeConfigKey(key) !== want) continue;
      if (typeof value !== "object" || value === null) continue;
      const entry = value;
      if (typeof entry.auth === "string" && entry.auth !== "") {
        const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        if (colon > 0) {
          return {
            username: decoded.slice(0, colon),
            password: decoded.slice(colon + 1),
            source: `${file} (auths.${key})`
          };
        }
        warn(`${file}: auths.${key}.auth is not base64 "user:password"; ignoring it`);
      }
      if (typeof entry.username === "string" && typeof entry.password === "string") {
        return {
          username: entry.username,
          password: entry.password,
          source: `${file} (auths.${key})`
        };
      }
    }
  }
  const credsStore = c.credsStore;
  return fromHelper(credsStore, "credsStore");
}
function runHelper(name, server, env2) {
  return new Promise((resolve7) => {
    const child = execFile(
      `docker-credential-${name}`,
      ["get"],
      { env: env2, timeout: HELPER_TIMEOUT_MS, maxBuffer: 64 * 1024, windowsHide: true },
      (err, stdout, stderr) => {
        if (err) {
          const code = err.code;
          const why = code === "ENOENT" ? `docker-credential-${name} is not on the PATH` : (stdout || stderr || err.message).trim().split("\n")[0];
          resolve7({ ok: false, why });
          return;
        }
        try {
          const out = JSON.parse(stdout);
          if (typeof out.Username === "string" && typeof out.Secret === "string") {
            resolve7({ ok: true, username: out.Username, secret: out.Secret });
          } else resolve7({ ok: false, why: "its answer has no Username and Secret" });
        } catch {
          resolve7({ ok: false, why: "its answer is not JSON" });
        }
      }
    );
    child.stdin?.on("error", () => {
    });
    child.stdin?.end(server);
  });
}
function basicHeader(creds) {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
}
async function readCapped(res, max) {
  const body = res.body;
  if (!body) return "";
  return readCappedText(body, max, () => {
    body.cancel().catch(() => {
    });
  });
}
function describeError(err) {
  const e = err;
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "timed out";
  const cause = e?.cause;
  if (cause?.code) return cause.code;
  if (cause?.message) return cause.message;
  return e?.message ?? String(err);
}
var DEFAULT_TOKEN_SECONDS, TOKEN_MARGIN_MS, MAX_TOKEN_RESPONSE, HELPER_TIMEOUT_MS, TokenError, TokenCache;
var init_registry_auth = __esm({
  "src/store/registry-auth.ts"() {
    "use strict";
    init_registry_http();
    DEFAULT_TOKEN_SECONDS = 60;
    TOKEN_MARGIN_MS = 15e3;
    MAX_TOKEN_RESPONSE = 1024 * 1024;
    HELPER_TIMEOUT_MS = 1e4;
    TokenError = class extends Error {
      /** `auth`: the token server refused the credentials; `network`/`server` otherwise. */
      kind;
      constructor(kind, message2, options) {
        super(message2, options);
        this.name = "TokenError";
        this.kind = kind;
      }
    };
    TokenCache = class {
      constructor(fetchImpl, timeoutMs) {
        this.fetchImpl = fetchImpl;
        this.timeoutMs = timeoutMs;
      }
      fetchImpl;
      timeoutMs;
      tokens = /* @__PURE__ */ new Map();
      pending = /* @__PURE__ */ new Map();
      /** A cached token for `key`, if it is still fresh. */
      cached(key) {
        const t = this.tokens.get(key);
        if (t && t.expires > Date.now()) return t.token;
        if (t) this.tokens.delete(key);
        return void 0;
      }
      forget(key) {
        this.tokens.delete(key);
      }
      /** A token for `scopes` from the challenge's realm (one request at a time per key). */
      get(key, challenge, scopes, creds) {
        const hit = this.cached(key);
        if (hit) return Promise.resolve(hit);
        let p = this.pending.get(key);
        if (!p) {
          p = this.fetchToken(key, challenge, scopes, creds).finally(() => this.pending.delete(key));
          this.pending.set(key, p);
        }
        return p;
      }
      async fetchToken(key, challenge, scopes, creds) {
        const realm = challenge.params.realm;
        if (!realm)
          throw new TokenError("server", "the registry asked for a bearer token without a realm");
        let url;
        try {
          url = new URL(realm);
        } catch {
          throw new TokenError(
            "server",
            `the registry's token realm ${JSON.stringify(realm)} is not a URL`
          );
        }
        if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
        for (const s of scopes) url.searchParams.append("scope", s);
        const headers = { accept: "application/json" };
        if (creds) headers.authorization = basicHeader(creds);
        let res;
        try {
          res = await this.fetchImpl(url, {
            headers,
            signal: AbortSignal.timeout(this.timeoutMs),
            redirect: "follow"
          });
        } catch (err) {
          throw new TokenError(
            "network",
            `token server ${url.origin} unreachable (${describeError(err)})`,
            {
              cause: err
            }
          );
        }
        const text = await readCapped(res, MAX_TOKEN_RESPONSE).catch(() => "");
        if (res.status === 401 || res.status === 403) {
          throw new TokenError(
            "auth",
            `token server ${url.origin} refused ${creds ? `the credentials from ${creds.source}` : "anonymous access"} (HTTP ${res.status})`
          );
        }
        if (!res.ok) {
          throw new TokenError("server", `token server ${url.origin} answered HTTP ${res.status}`);
        }
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          throw new TokenError("server", `token server ${url.origin} sent something that is not JSON`);
        }
        const token = typeof body.token === "string" && body.token !== "" ? body.token : typeof body.access_token === "string" ? body.access_token : "";
        if (!token) throw new TokenError("server", `token server ${url.origin} sent no token`);
        const seconds = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
        const issued = typeof body.issued_at === "string" ? Date.parse(body.issued_at) : NaN;
        const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
        const expires = start + seconds * 1e3 - Math.min(TOKEN_MARGIN_MS, seconds * 1e3 / 4);
        this.tokens.set(key, { token, expires });
        return token;
      }
    };
  }
});

// src/store/registry.ts
var registry_exports = {};
__export(registry_exports, {
  DEFAULT_CHUNK_SIZE: () => DEFAULT_CHUNK_SIZE,
  DEFAULT_CONCURRENCY: () => DEFAULT_CONCURRENCY,
  OCI_CONFIG_TYPE: () => OCI_CONFIG_TYPE,
  OCI_MANIFEST_TYPE: () => OCI_MANIFEST_TYPE,
  OUTPUT_LAYER_TYPE: () => OUTPUT_LAYER_TYPE,
  RESULT_ARTIFACT_TYPE: () => RESULT_ARTIFACT_TYPE,
  RESULT_CONFIG_TYPE: () => RESULT_CONFIG_TYPE,
  RegistryOptionError: () => RegistryOptionError,
  RegistryStore: () => RegistryStore,
  StoreUnavailableError: () => StoreUnavailableError,
  TITLE_ANNOTATION: () => TITLE_ANNOTATION,
  createRegistryStore: () => createRegistryStore,
  parseRegistryRef: () => parseRegistryRef
});
import { createHash as createHash4 } from "node:crypto";
import { createReadStream as createReadStream3 } from "node:fs";
import { mkdir as mkdir6, stat as stat3 } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join as join11 } from "node:path";
import { Readable as Readable3 } from "node:stream";
function looksLikeHost(component) {
  return component.includes(".") || component.includes(":") || component === "localhost";
}
function parseRegistryRef(ref, option = "ref") {
  const fail = (why) => {
    throw new RegistryOptionError(option, `${JSON.stringify(ref)} ${why}`);
  };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) {
    fail("has a scheme; write host[:port]/repository (plain http: set insecure: true)");
  }
  if (ref.includes("@")) fail("names a digest; write host[:port]/repository");
  const slash = ref.indexOf("/");
  if (slash <= 0) fail("is not host[:port]/repository (e.g. ghcr.io/org/cache)");
  const host = ref.slice(0, slash).toLowerCase();
  const repository = ref.slice(slash + 1);
  const hostMatch = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::(\d{1,5}))?$/.exec(
    host
  );
  if (!hostMatch) fail(`has an invalid host ${JSON.stringify(host)}`);
  if (!looksLikeHost(host)) {
    fail(
      `starts with ${JSON.stringify(host)}, which is not a registry host (a host has a dot or a port, or is localhost): write host[:port]/repository, e.g. ghcr.io/${ref}`
    );
  }
  const port = hostMatch[2];
  if (port !== void 0 && (Number(port) < 1 || Number(port) > 65535)) {
    fail(`has an invalid port ${port}`);
  }
  if (/:[^/]*$/.test(repository)) fail("has a tag; write host[:port]/repository");
  if (!REPO_RE.test(repository) || repository.length > 255) {
    fail(
      `has an invalid repository ${JSON.stringify(repository)} (lower-case letters, digits and separators . _ __ - between them, components joined by /)`
    );
  }
  const name = hostMatch[1];
  const loopback = name === "localhost" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name) || name === "[::1]";
  const apiHost = name === "docker.io" || name === "index.docker.io" ? "registry-1.docker.io" : host;
  return { host, apiHost, repository, loopback };
}
function createRegistryStore(options, ctx) {
  const known = ["ref", "insecure", "mount-from", "chunk-size", "concurrency"];
  for (const key of Object.keys(options)) {
    if (known.includes(key) || key === "type") continue;
    throw new RegistryOptionError(
      key,
      `unknown option (the registry store takes ${known.join(", ")})`
    );
  }
  const ref = options.ref;
  if (ref === void 0 || ref === null || ref === "") {
    throw new RegistryOptionError(
      "ref",
      "is required: host[:port]/repository, e.g. ghcr.io/org/cache"
    );
  }
  if (typeof ref !== "string") throw new RegistryOptionError("ref", "must be a string");
  const parsed = parseRegistryRef(ref.trim());
  const insecure = options.insecure;
  if (insecure !== void 0 && typeof insecure !== "boolean") {
    throw new RegistryOptionError("insecure", "must be true or false");
  }
  let mountFrom;
  const mf = options["mount-from"];
  if (mf !== void 0 && mf !== null) {
    if (typeof mf !== "string" || mf === "") {
      throw new RegistryOptionError("mount-from", "must be a repository path of the same registry");
    }
    mountFrom = mf.startsWith(`${parsed.host}/`) ? mf.slice(parsed.host.length + 1) : mf;
    const first = mountFrom.slice(0, mountFrom.indexOf("/"));
    if (mountFrom.includes("/") && looksLikeHost(first)) {
      throw new RegistryOptionError(
        "mount-from",
        `${JSON.stringify(mf)} is on another registry (${first}): blobs can only be mounted from a repository of ${parsed.host}`
      );
    }
    if (!REPO_RE.test(mountFrom)) {
      throw new RegistryOptionError(
        "mount-from",
        `${JSON.stringify(mf)} is not a repository path of ${parsed.host} (e.g. org/other-cache)`
      );
    }
    if (mountFrom === parsed.repository) mountFrom = void 0;
  }
  const chunkSize = sizeOption(options["chunk-size"], "chunk-size");
  if (chunkSize !== void 0 && (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE)) {
    throw new RegistryOptionError(
      "chunk-size",
      `must be between 64 KiB and 2 GiB (got ${chunkSize})`
    );
  }
  const concurrency = options.concurrency;
  if (concurrency !== void 0 && (typeof concurrency !== "number" || !Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY)) {
    throw new RegistryOptionError("concurrency", `must be an integer from 1 to ${MAX_CONCURRENCY}`);
  }
  return new RegistryStore({
    ref: ref.trim(),
    insecure,
    mountFrom,
    chunkSize,
    concurrency,
    env: ctx.env,
    onWarning: ctx.onWarning,
    tempDir: ctx.root ? join11(ctx.root, ".dist-build", "tmp") : void 0
  });
}
function sizeOption(value, option) {
  if (value === void 0 || value === null) return void 0;
  if (typeof value !== "number" && typeof value !== "string") {
    throw new RegistryOptionError(
      option,
      `expected bytes (a number, or like "16MiB"), got ${JSON.stringify(value)}`
    );
  }
  try {
    return parseSize(value);
  } catch (err) {
    throw new RegistryOptionError(option, err.message);
  }
}
function buildManifest(manifest, config, plain) {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_TYPE,
    ...plain ? {} : { artifactType: RESULT_ARTIFACT_TYPE },
    config: { mediaType: plain ? OCI_CONFIG_TYPE : RESULT_CONFIG_TYPE, ...config },
    layers: manifest.outputs.map((o) => ({
      mediaType: OUTPUT_LAYER_TYPE,
      digest: o.digest,
      size: o.size,
      annotations: { [TITLE_ANNOTATION]: o.path }
    })),
    annotations: {
      [CREATED_ANNOTATION]: manifest.createdAt,
      [UNIT_ANNOTATION]: manifest.unit,
      [KEY_ANNOTATION]: manifest.cacheKey
    }
  };
}
function ociManifestProblem(value) {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return "not a JSON object";
  const m = value;
  if (m.unparsable) return "does not parse";
  if (m.schemaVersion !== 2) return "schemaVersion is not 2";
  if (m.mediaType !== void 0 && m.mediaType !== OCI_MANIFEST_TYPE)
    return `media type ${String(m.mediaType)}`;
  if (m.artifactType !== void 0 && m.artifactType !== RESULT_ARTIFACT_TYPE) {
    return `artifact type ${String(m.artifactType)} is not ${RESULT_ARTIFACT_TYPE}`;
  }
  const c = m.config;
  if (typeof c !== "object" || c === null) return "no config";
  if (c.mediaType !== RESULT_CONFIG_TYPE && c.mediaType !== OCI_CONFIG_TYPE) {
    return `config media type ${String(c.mediaType)}`;
  }
  if (!isDigest(c.digest)) return "config digest is not a sha256 digest";
  if (!Number.isSafeInteger(c.size) || c.size < 0 || c.size > MAX_DOCUMENT)
    return "config size is unusable";
  if (!Array.isArray(m.layers)) return "layers is not an array";
  for (const l of m.layers) {
    if (typeof l !== "object" || l === null || !isDigest(l.digest)) {
      return "a layer has no sha256 digest";
    }
  }
  return null;
}
async function* readChunks(data, size2, hash) {
  let buf = Buffer.allocUnsafe(size2);
  let filled = 0;
  for await (const chunk of data) {
    let bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    hash.update(bytes);
    while (bytes.length > 0) {
      const n = Math.min(bytes.length, size2 - filled);
      bytes.copy(buf, filled, 0, n);
      filled += n;
      bytes = bytes.subarray(n);
      if (filled === size2) {
        yield buf;
        buf = Buffer.allocUnsafe(size2);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buf.subarray(0, filled);
  return void 0;
}
function checkExpected(expected, actual) {
  if (expected !== void 0 && actual !== expected) {
    throw new CorruptBlobError(
      expected,
      actual,
      `data for blob ${expected} hashes to ${actual}; nothing stored`
    );
  }
}
function destroySource(data) {
  const d = data;
  if (typeof d.destroy === "function") d.destroy();
}
function isRedirect(status5) {
  return status5 === 301 || status5 === 302 || status5 === 303 || status5 === 307 || status5 === 308;
}
function contentLength(res) {
  const n = Number(res.headers.get("content-length"));
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}
async function errorSummary(res) {
  try {
    const body = parseJson(await readText(res, 64 * 1024));
    const e = body?.errors?.[0];
    return e ? `${e.code ?? ""}${e.message ? `: ${e.message}` : ""}`.slice(0, 300) : "";
  } catch {
    return "";
  }
}
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return void 0;
  }
}
function nextLink(header, base) {
  if (!header) return void 0;
  for (const part of header.split(",")) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /rel="?next"?/.test(m[2])) return new URL(m[1], base);
  }
  return void 0;
}
var RESULT_ARTIFACT_TYPE, RESULT_CONFIG_TYPE, OUTPUT_LAYER_TYPE, OCI_MANIFEST_TYPE, OCI_CONFIG_TYPE, TITLE_ANNOTATION, CREATED_ANNOTATION, UNIT_ANNOTATION, KEY_ANNOTATION, DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, MAX_CONCURRENCY, FILE_READ, MAX_DOCUMENT, TIMEOUT_MS2, LARGE_BODY, AFTER_BODY_TIMEOUTS, AFTER_BODY_BYTES_PER_MS, BACKOFF_MS, MAX_BACKOFF_MS, WRITES_DENIED_MS, TAGS_PAGE, MAX_REDIRECTS, TAG_RE, REPO_RE, StoreUnavailableError, RegistryOptionError, RegistryStore;
var init_registry = __esm({
  "src/store/registry.ts"() {
    "use strict";
    init_size();
    init_digest();
    init_errors();
    init_limit();
    init_registry_auth();
    init_registry_http();
    init_types();
    RESULT_ARTIFACT_TYPE = "application/vnd.dist-build.result.v1+json";
    RESULT_CONFIG_TYPE = RESULT_ARTIFACT_TYPE;
    OUTPUT_LAYER_TYPE = "application/vnd.dist-build.output.v1.tar";
    OCI_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
    OCI_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json";
    TITLE_ANNOTATION = "org.opencontainers.image.title";
    CREATED_ANNOTATION = "org.opencontainers.image.created";
    UNIT_ANNOTATION = "dev.dist-build.unit";
    KEY_ANNOTATION = "dev.dist-build.cache-key";
    DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;
    DEFAULT_CONCURRENCY = 8;
    MIN_CHUNK_SIZE = 64 * 1024;
    MAX_CHUNK_SIZE = 2 * 1024 ** 3;
    MAX_CONCURRENCY = 256;
    FILE_READ = 1024 * 1024;
    MAX_DOCUMENT = 4 * 1024 * 1024;
    TIMEOUT_MS2 = 6e4;
    LARGE_BODY = 1024 * 1024;
    AFTER_BODY_TIMEOUTS = 5;
    AFTER_BODY_BYTES_PER_MS = 1e3;
    BACKOFF_MS = 3e4;
    MAX_BACKOFF_MS = 10 * 6e4;
    WRITES_DENIED_MS = 10 * 6e4;
    TAGS_PAGE = 1e3;
    MAX_REDIRECTS = 5;
    TAG_RE = /^r-([0-9a-f]{64})$/;
    REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
    StoreUnavailableError = class extends Error {
      /** `network`, `auth`, `server` (an unexpected answer) or `protocol` (an unusable one). */
      kind;
      /** HTTP status, when there was an answer. */
      status;
      constructor(kind, message2, opts = {}) {
        super(message2, opts.cause !== void 0 ? { cause: opts.cause } : void 0);
        this.name = "StoreUnavailableError";
        this.kind = kind;
        this.status = opts.status;
      }
    };
    RegistryOptionError = class extends StoreOptionsError {
      constructor(option, message2) {
        super(`${option}: ${message2}`, option);
        this.name = "RegistryOptionError";
      }
    };
    RegistryStore = class _RegistryStore {
      kind = "registry";
      location;
      ref;
      chunkSize;
      /** `chunk-size` was given: files larger than a chunk go up in chunks too. */
      chunkSizeSet;
      concurrency;
      mountFrom;
      /** `adoptBlobFile` only reads the file (see `ReadOnlyAdopter` in layered.ts). */
      adoptReadsOnly = true;
      origin;
      repoPath;
      transport;
      onRequest;
      timeoutMs;
      tempPath;
      env;
      onWarning;
      warned = /* @__PURE__ */ new Set();
      tokens;
      /** Blobs found corrupt in this process: misses from now on. */
      corrupt = /* @__PURE__ */ new Set();
      credentials;
      basicAuth;
      plainManifests = false;
      mountRefused = false;
      /** The registry answered 413 to a whole file: chunks from now on. */
      largeBodiesRefused = false;
      downUntil = 0;
      /** Network failures since the registry last answered (each one doubles the backoff). */
      downCount = 0;
      downError;
      /**
       * The registry refused a write (a pull-only token, a read-only account): writes fail at once
       * with that error until then, without asking for a token and being refused again each time.
       */
      writesDeniedUntil = 0;
      writesDenied;
      /** The registry's last `WWW-Authenticate` challenge (`null` until it asks). */
      challenge = null;
      counters = { uploadedBytes: 0, requests: 0, mountedBlobs: 0 };
      constructor(opts) {
        this.ref = parseRegistryRef(opts.ref);
        const insecure = opts.insecure ?? this.ref.loopback;
        this.origin = `${insecure ? "http" : "https"}://${this.ref.apiHost}`;
        this.location = `${this.ref.host}/${this.ref.repository}`;
        this.repoPath = `/v2/${this.ref.repository}`;
        this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
        this.chunkSizeSet = opts.chunkSize !== void 0;
        this.concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
        this.mountFrom = opts.mountFrom;
        this.transport = opts.fetch ? fetchTransport(opts.fetch) : nodeTransport;
        this.onRequest = opts.onRequest;
        this.timeoutMs = opts.timeoutMs ?? TIMEOUT_MS2;
        this.tempPath = opts.tempDir ?? join11(tmpdir(), `dist-build-registry-${process.getuid?.() ?? "user"}`);
        this.env = opts.env ?? process.env;
        this.onWarning = opts.onWarning ?? (() => {
        });
        const fetchImpl = opts.fetch ?? fetch;
        this.tokens = new TokenCache((input, init) => {
          this.counters.requests++;
          return fetchImpl(input, init);
        }, this.timeoutMs);
      }
      /** Counters since the store was made. */
      stats() {
        return { ...this.counters, plainManifests: this.plainManifests };
      }
      /** The tag of a cache key's result: `r-<64 hex>`. */
      static tagFor(cacheKey) {
        assertDigest(cacheKey, "cache key");
        return `r-${cacheKey.slice("sha256:".length)}`;
      }
      // -------------------------------------------------------------------------------------------
      // Store
      async hasBlobs(digests) {
        for (const d of digests) assertDigest(d);
        try {
          return await this.existingBlobs(digests);
        } catch (err) {
          return this.miss(err, /* @__PURE__ */ new Set());
        }
      }
      async hasResults(cacheKeys) {
        for (const k of cacheKeys) assertDigest(k, "cache key");
        try {
          const unique = [...new Set(cacheKeys)];
          const flags = await mapLimit(unique, this.concurrency, async (key) => {
            const res = await this.send({
              method: "HEAD",
              url: `${this.repoPath}/manifests/${_RegistryStore.tagFor(key)}`,
              headers: { accept: OCI_MANIFEST_TYPE },
              what: `HEAD result ${key}`
            });
            await discard(res);
            if (res.status === 404) return false;
            if (res.ok) return true;
            throw this.unexpected(res, `HEAD result ${key}`);
          });
          return new Set(unique.filter((_, i) => flags[i]));
        } catch (err) {
          return this.miss(err, /* @__PURE__ */ new Set());
        }
      }
      async putBlob(data, expectedDigest) {
        if (expectedDigest !== void 0) assertDigest(expectedDigest, "expected digest");
        let session;
        try {
          if (expectedDigest !== void 0) {
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
          const hash = createHash4("sha256");
          const chunks = readChunks(data, this.chunkSize, hash)[Symbol.asyncIterator]();
          const first = await chunks.next();
          const firstChunk = first.done ? Buffer.alloc(0) : first.value;
          const second = first.done || firstChunk.length < this.chunkSize ? void 0 : await chunks.next();
          if (second === void 0 || second.done) {
            const digest2 = `sha256:${hash.digest("hex")}`;
            checkExpected(expectedDigest, digest2);
            if (session === void 0) {
              const known = await this.knownBlob(digest2);
              if (known) return known;
              const opened = await this.openSession(digest2);
              if (opened.mounted) return await this.stored(opened.mounted);
              session = opened.session;
            }
            await this.finishUpload(session, digest2, firstChunk);
            session = void 0;
            return await this.stored({ digest: digest2, size: firstChunk.length });
          }
          session ??= (await this.openSession(void 0)).session;
          const up = session;
          let offset = 0;
          let next;
          let current = firstChunk;
          let pendingSecond = second.value;
          while (current !== void 0) {
            if (pendingSecond !== void 0) {
              next = Promise.resolve({ done: false, value: pendingSecond });
              pendingSecond = void 0;
            } else {
              next = chunks.next();
            }
            next.catch(() => {
            });
            await this.patchChunk(up, offset, current);
            offset += current.length;
            const r = await next;
            current = r.done ? void 0 : r.value;
          }
          const digest = `sha256:${hash.digest("hex")}`;
          checkExpected(expectedDigest, digest);
          await this.finishUpload(up, digest, void 0);
          session = void 0;
          return await this.stored({ digest, size: offset });
        } catch (err) {
          destroySource(data);
          throw this.forPut(err);
        } finally {
          if (session) await this.cancelSession(session);
        }
      }
      async putBlobFile(file) {
        let info;
        try {
          info = await digestStream(createReadStream3(file, { highWaterMark: FILE_READ }));
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
      async stored(info) {
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
            `${this.location}: blob ${info.digest} was uploaded again, but the registry still serves its corrupt copy (a registry keeps the bytes it has for a digest until its garbage collection removes them): results naming it are not stored; run the registry's garbage collection`
          );
        }
        return info;
      }
      /** Where `saveOutputs` packs blobs for `adoptBlobFile`. */
      async tempDir() {
        await mkdir6(this.tempPath, { recursive: true });
        return this.tempPath;
      }
      /**
       * Uploads `file`, which the caller hashed to `digest` while writing it: no second read to hash
       * it (the registry checks the digest of what arrives). The file is left where it is.
       */
      async adoptBlobFile(file, digest) {
        assertDigest(digest);
        let size2;
        try {
          size2 = (await stat3(file)).size;
        } catch (err) {
          throw this.forPut(err);
        }
        return this.uploadFile(file, { digest, size: size2 });
      }
      /**
       * Uploads a file of known digest and size, streamed from disk: one PUT when it fits in a chunk,
       * or whatever its size unless `chunk-size` was set or the registry refused a large body (413);
       * else PATCH chunks (each a range of the file) and a closing PUT.
       */
      async uploadFile(file, info) {
        let session;
        try {
          const known = await this.knownBlob(info.digest);
          if (known) return info;
          const opened = await this.openSession(info.digest);
          if (opened.mounted) return await this.stored(info);
          session = opened.session;
          const fileBody = (start, end) => () => createReadStream3(file, { start, end: end - 1, highWaterMark: FILE_READ });
          try {
            let whole = info.size <= this.chunkSize || !this.chunkSizeSet && !this.largeBodiesRefused;
            if (whole) {
              try {
                await this.finishUpload(session, info.digest, {
                  body: fileBody(0, info.size),
                  length: info.size
                });
              } catch (err) {
                if (!(err instanceof StoreUnavailableError) || err.status !== 413) throw err;
                if (info.size <= this.chunkSize) throw err;
                this.largeBodiesRefused = true;
                await this.cancelSession(session);
                session = void 0;
                session = (await this.openSession(void 0)).session;
                whole = false;
              }
            }
            if (!whole) {
              for (let offset = 0; offset < info.size; offset += this.chunkSize) {
                const end = Math.min(info.size, offset + this.chunkSize);
                await this.patchChunk(session, offset, {
                  body: fileBody(offset, end),
                  length: end - offset
                });
              }
              await this.finishUpload(session, info.digest, void 0);
            }
          } catch (err) {
            if (err instanceof StoreUnavailableError && err.status === 400) {
              throw new CorruptBlobError(
                info.digest,
                void 0,
                `${file} does not hash to ${info.digest} (changed while it was being uploaded to ${this.location}?); nothing stored`
              );
            }
            throw err;
          }
          session = void 0;
          return await this.stored(info);
        } catch (err) {
          throw this.forPut(err);
        } finally {
          if (session) await this.cancelSession(session);
        }
      }
      async openBlob(digest) {
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
      async readBlob(digest) {
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
            `${this.location}: blob ${digest} is corrupt (its bytes hash to ${err.actual}); not used` + (removed ? ", removed from the repository" : "")
          );
        });
      }
      /**
       * The body of a blob's answer, as it arrives; a connection lost before its end (or fewer bytes
       * than the Content-Length) ends it with a `network` `StoreUnavailableError`, so that a blob cut
       * short in transit is never taken for a corrupt one.
       */
      received(res, what) {
        const body = res.body;
        const expected = contentLength(res);
        const fail = (got, why, cause) => new StoreUnavailableError(
          "network",
          `${this.location}: ${what}: the connection was lost after ${got}${expected >= 0 ? ` of ${expected}` : ""} bytes (${why})`,
          { cause }
        );
        const timeoutMs = this.timeoutMs;
        async function* bytes() {
          let got = 0;
          let waitingSince = Date.now();
          const watchdog = setInterval(
            () => {
              if (waitingSince > 0 && Date.now() - waitingSince >= timeoutMs) {
                body.destroy(new Error(`no data for ${timeoutMs / 1e3} s`));
              }
            },
            Math.min(5e3, Math.max(10, timeoutMs / 4))
          );
          watchdog.unref();
          try {
            for await (const chunk of body) {
              waitingSince = 0;
              got += chunk.length;
              yield chunk;
              waitingSince = Date.now();
            }
          } catch (err) {
            throw fail(got, err?.message ?? String(err), err);
          } finally {
            clearInterval(watchdog);
          }
          if (expected >= 0 && got !== expected) throw fail(got, "short answer");
        }
        return Readable3.from(bytes(), { objectMode: false });
      }
      async getResult(cacheKey) {
        const tag = _RegistryStore.tagFor(cacheKey);
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
      async readResult(tag, cacheKey, unusable) {
        const doc = await this.fetchManifest(tag);
        if (doc === null) return null;
        const problem = ociManifestProblem(doc);
        if (problem)
          return this.warnResult(cacheKey, unusable, `has an unusable OCI manifest: ${problem}`);
        const config = doc.config;
        const text = await this.fetchSmallBlob(config.digest, config.size);
        if (text === null)
          return this.warnResult(
            cacheKey,
            unusable,
            `names a config blob ${config.digest} that is gone`
          );
        if (typeof text !== "string")
          return this.warnResult(cacheKey, unusable, `has a corrupt config blob ${config.digest}`);
        let value;
        try {
          value = JSON.parse(text);
        } catch (err) {
          return this.warnResult(cacheKey, unusable, `does not parse (${err.message})`);
        }
        const problems = manifestProblems(value);
        if (problems.length > 0)
          return this.warnResult(cacheKey, unusable, `is not valid: ${problems.join("; ")}`);
        const manifest = value;
        if (manifest.cacheKey !== cacheKey) {
          return this.warnResult(cacheKey, unusable, `is for another cache key (${manifest.cacheKey})`);
        }
        const layers = new Set(doc.layers.map((l) => l.digest));
        const unlisted = manifest.outputs.map((o) => o.digest).filter((d) => !layers.has(d));
        const bad = manifest.outputs.map((o) => o.digest).filter((d) => this.corrupt.has(d));
        const present = unlisted.length > 0 ? await this.existingBlobs(unlisted) : /* @__PURE__ */ new Set();
        const missing = [.../* @__PURE__ */ new Set([...bad, ...unlisted.filter((d) => !present.has(d))])];
        if (missing.length > 0) {
          return this.warnResult(
            cacheKey,
            unusable,
            `names missing or corrupt blobs: ${missing.join(", ")}`
          );
        }
        return manifest;
      }
      async putResult(manifest) {
        const problems = manifestProblems(manifest);
        if (problems.length > 0) throw new TypeError(`invalid result manifest: ${problems.join("; ")}`);
        try {
          this.checkWritesAllowed();
          const digests = manifest.outputs.map((o) => o.digest);
          const present = await this.existingBlobs(digests);
          const missing = [...new Set(digests.filter((d) => !present.has(d)))];
          if (missing.length > 0) {
            const corrupt = missing.filter((d) => this.corrupt.has(d));
            throw new Error(
              `result ${manifest.cacheKey} names blobs that are not stored: ${missing.join(", ")}` + (corrupt.length > 0 ? ` (found corrupt in the registry: ${corrupt.join(", ")})` : "")
            );
          }
          const config = Buffer.from(JSON.stringify(manifest));
          const configDigest2 = sha256Digest(config);
          if (!await this.knownBlob(configDigest2)) {
            const opened = await this.openSession(configDigest2);
            if (!opened.mounted) await this.finishUpload(opened.session, configDigest2, config);
          }
          await this.putManifest(manifest, { digest: configDigest2, size: config.length });
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
      async prune(maxBytes) {
        const results = (await this.readableResults()).map((r) => ({
          key: r.cacheKey,
          createdAt: r.createdAt,
          blobs: new Map(r.outputs.map((o) => [o.digest, o.size]))
        }));
        results.sort((a, b) => a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0);
        const named = /* @__PURE__ */ new Map();
        for (const r of results)
          for (const [digest, size2] of r.blobs) {
            const n = named.get(digest) ?? { size: size2, by: 0 };
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
            const n = named.get(digest);
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
      async readableResults(unusable) {
        const out = [];
        for await (const r of this.listResults()) {
          const manifest = await this.readResult(
            _RegistryStore.tagFor(r.cacheKey),
            r.cacheKey,
            unusable
          );
          if (manifest) out.push({ ...manifest, createdAt: r.createdAt });
        }
        return out;
      }
      /** Deletes the manifest (by digest: registries do not delete tags) of a result. */
      async deleteResult(cacheKey) {
        const tag = _RegistryStore.tagFor(cacheKey);
        const head = await this.send({
          method: "HEAD",
          url: `${this.repoPath}/manifests/${tag}`,
          headers: { accept: OCI_MANIFEST_TYPE },
          what: `HEAD manifest ${tag}`
        });
        await discard(head);
        if (head.status === 404) return;
        const digest = head.headers.get("docker-content-digest");
        if (!head.ok || !digest) throw this.unexpected(head, `HEAD manifest ${tag}`);
        const res = await this.send({
          method: "DELETE",
          url: `${this.repoPath}/manifests/${digest}`,
          what: `delete result ${tag}`
        });
        await discard(res);
        if (res.status !== 202 && res.status !== 200 && res.status !== 204 && res.status !== 404)
          throw this.unexpected(
            res,
            `delete result ${tag} (the registry must allow deletes: storage.delete.enabled)`
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
      async verify() {
        const badResults = [];
        const results = await this.readableResults(badResults);
        const digests = new Set(results.flatMap((r) => r.outputs.map((o) => o.digest)));
        const corrupt = [];
        const missing = [];
        await mapLimit([...digests], this.concurrency, async (digest) => {
          const stream = await this.readBlob(digest);
          if (!stream) {
            missing.push(digest);
            return;
          }
          try {
            for await (const chunk of stream) void chunk;
          } catch (err) {
            if (!(err instanceof CorruptBlobError)) throw err;
            corrupt.push(digest);
          }
        });
        const unusable = /* @__PURE__ */ new Set([...corrupt, ...missing]);
        let removedResults = 0;
        const remove = async (cacheKey) => {
          try {
            await this.deleteResult(cacheKey);
            return true;
          } catch (err) {
            if (!(err instanceof StoreUnavailableError) || err.kind === "network") throw err;
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
          ...badResults.length > 0 ? { badResults: badResults.sort() } : {}
        };
      }
      /** Results in the repository (tags `r-<hex>`), optionally only cache keys starting `prefix`. */
      async *listResults(prefix = "") {
        const want = prefix.startsWith("sha256:") ? prefix : prefix === "" ? "" : `sha256:${prefix}`;
        let url = `${this.repoPath}/tags/list?n=${TAGS_PAGE}`;
        try {
          while (url !== void 0) {
            const res = await this.send({ method: "GET", url, what: "list tags" });
            if (res.status === 404) {
              await discard(res);
              return;
            }
            if (!res.ok) throw this.unexpected(res, "list tags");
            const body = parseJson(await readText(res, 64 * MAX_DOCUMENT));
            const tags = Array.isArray(body?.tags) ? body.tags : [];
            const keys = tags.map((t) => typeof t === "string" ? TAG_RE.exec(t) : null).filter((m) => m !== null).map((m) => `sha256:${m[1]}`).filter((k) => k.startsWith(want));
            for (let i = 0; i < keys.length; i += this.concurrency) {
              const batch = keys.slice(i, i + this.concurrency);
              const listings = await mapLimit(batch, this.concurrency, (k) => this.listing(k));
              for (const l of listings) if (l) yield l;
            }
            url = nextLink(res.headers.get("link"), res.url || this.origin);
          }
        } catch (err) {
          throw this.forPut(err);
        }
      }
      // -------------------------------------------------------------------------------------------
      // Blobs
      async existingBlobs(digests) {
        const unique = [...new Set(digests)].filter((d) => !this.corrupt.has(d));
        const sizes = await mapLimit(unique, this.concurrency, (d) => this.headBlob(d));
        return new Set(unique.filter((_, i) => sizes[i] !== null));
      }
      /** `{digest, size}` of a blob in the repository (and not known corrupt), or `null`. */
      async knownBlob(digest) {
        if (this.corrupt.has(digest)) return null;
        const size2 = await this.headBlob(digest);
        return size2 === null ? null : { digest, size: size2 };
      }
      /** Size of a blob in the repository (-1 when the registry does not say), `null` if absent. */
      async headBlob(digest) {
        const what = `HEAD blob ${digest}`;
        const res = await this.send({ method: "HEAD", url: `${this.repoPath}/blobs/${digest}`, what });
        await discard(res);
        if (res.status === 404) return null;
        if (res.ok) return contentLength(res);
        if (isRedirect(res.status)) return -1;
        throw this.unexpected(res, what);
      }
      /** Starts an upload; with a digest and `mount-from`, tries a cross-repository mount first. */
      async openSession(digest) {
        this.checkWritesAllowed();
        const base = `${this.repoPath}/blobs/uploads/`;
        if (digest !== void 0 && this.mountFrom !== void 0 && !this.mountRefused) {
          const from = this.mountFrom;
          const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
          let res2;
          try {
            res2 = await this.send({
              method: "POST",
              url: base + query,
              headers: { "content-length": "0" },
              extraScopes: [`repository:${from}:pull`],
              what: `mount blob ${digest} from ${from}`
            });
          } catch (err) {
            if (!(err instanceof StoreUnavailableError) || err.kind !== "auth") throw err;
            this.mountRefused = true;
            this.warnOnce(
              "mount",
              `${this.location}: cannot mount blobs from ${from} (${err.message}); uploading instead`
            );
          }
          if (res2?.status === 201) {
            await discard(res2);
            this.counters.mountedBlobs++;
            const size2 = await this.headBlob(digest);
            return { mounted: { digest, size: size2 ?? -1 } };
          }
          if (res2?.status === 202) return { session: await this.sessionFrom(res2) };
          if (res2) await discard(res2);
        }
        const res = await this.send({
          method: "POST",
          url: base,
          headers: { "content-length": "0" },
          what: "start a blob upload"
        });
        if (res.status !== 202) throw this.unexpected(res, "start a blob upload");
        return { session: await this.sessionFrom(res) };
      }
      async sessionFrom(res) {
        await discard(res);
        const loc = res.headers.get("location");
        if (!loc)
          throw new StoreUnavailableError(
            "protocol",
            `${this.location}: upload started without a Location`
          );
        return { location: new URL(loc, this.origin) };
      }
      async patchChunk(session, offset, chunk) {
        const length = Buffer.isBuffer(chunk) ? chunk.length : chunk.length;
        const body = Buffer.isBuffer(chunk) ? () => chunk : chunk.body;
        const res = await this.send({
          method: "PATCH",
          url: session.location,
          headers: {
            "content-type": "application/octet-stream",
            "content-range": `${offset}-${offset + length - 1}`
          },
          body,
          bodyLength: length,
          countUpload: true,
          what: "upload a blob chunk"
        });
        if (res.status !== 202) throw this.unexpected(res, `upload a blob chunk at ${offset}`);
        await discard(res);
        const loc = res.headers.get("location");
        if (loc) session.location = new URL(loc, session.location);
      }
      /** The closing PUT, with the last bytes (or none after PATCH chunks). */
      async finishUpload(session, digest, last) {
        const url = new URL(session.location);
        url.searchParams.set("digest", digest);
        const length = last === void 0 ? 0 : last.length;
        const body = last === void 0 ? void 0 : Buffer.isBuffer(last) ? () => last : last.body;
        const res = await this.send({
          method: "PUT",
          url,
          headers: { "content-type": "application/octet-stream" },
          body,
          bodyLength: length,
          countUpload: true,
          what: `finish the upload of ${digest}`
        });
        if (res.status !== 201 && res.status !== 204 && res.status !== 200) {
          throw this.unexpected(res, `finish the upload of ${digest}`);
        }
        await discard(res);
      }
      async cancelSession(session) {
        try {
          const res = await this.send({
            method: "DELETE",
            url: session.location,
            what: "cancel an upload"
          });
          await discard(res);
        } catch {
        }
      }
      /** Deletes a blob from the repository when the registry allows it; whether it did. */
      async deleteBlob(digest) {
        try {
          const res = await this.send({
            method: "DELETE",
            url: `${this.repoPath}/blobs/${digest}`,
            what: `delete blob ${digest}`
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
      async fetchSmallBlob(digest, size2) {
        if (this.corrupt.has(digest)) return false;
        const res = await this.getFollowing(`${this.repoPath}/blobs/${digest}`, `GET blob ${digest}`);
        if (res.status === 404) {
          await discard(res);
          return null;
        }
        if (!res.ok) throw this.unexpected(res, `GET blob ${digest}`);
        let text;
        try {
          const body = this.received(res, `GET blob ${digest}`);
          text = await readCappedText(body, Math.max(size2, 0) + 1, () => body.destroy());
        } catch (err) {
          if (err instanceof StoreUnavailableError) throw err;
          text = "";
        }
        const actual = sha256Digest(text);
        if (actual !== digest || Buffer.byteLength(text) !== size2) {
          this.corrupt.add(digest);
          const removed = await this.deleteBlob(digest);
          this.warnOnce(
            `corrupt:${digest}`,
            `${this.location}: blob ${digest} is corrupt (its bytes hash to ${actual}); not used` + (removed ? ", removed from the repository" : "")
          );
          return false;
        }
        return text;
      }
      /** GET that follows redirects itself, sending credentials only to the registry. */
      async getFollowing(path, what) {
        let res = await this.send({ method: "GET", url: path, what });
        for (let i = 0; i < MAX_REDIRECTS && isRedirect(res.status); i++) {
          const loc = res.headers.get("location");
          await discard(res);
          if (!loc)
            throw new StoreUnavailableError(
              "protocol",
              `${this.location}: ${what}: redirect without a Location`
            );
          const url = new URL(loc, res.url || this.origin);
          res = await this.send({ method: "GET", url, what });
        }
        return res;
      }
      // -------------------------------------------------------------------------------------------
      // Manifests
      async fetchManifest(tag) {
        const what = `GET manifest ${tag}`;
        const res = await this.send({
          method: "GET",
          url: `${this.repoPath}/manifests/${tag}`,
          headers: { accept: OCI_MANIFEST_TYPE },
          what
        });
        if (res.status === 404) {
          await discard(res);
          return null;
        }
        if (!res.ok) throw this.unexpected(res, what);
        let text;
        try {
          text = await readText(res, MAX_DOCUMENT);
        } catch (err) {
          throw new StoreUnavailableError(
            "protocol",
            `${this.location}: ${what}: ${err.message}`
          );
        }
        const value = parseJson(text);
        return value === void 0 ? { unparsable: true } : value;
      }
      async putManifest(manifest, config) {
        const tag = _RegistryStore.tagFor(manifest.cacheKey);
        const attempt = async (plain) => {
          const doc = buildManifest(manifest, config, plain);
          const body = Buffer.from(JSON.stringify(doc));
          return this.send({
            method: "PUT",
            url: `${this.repoPath}/manifests/${tag}`,
            headers: { "content-type": OCI_MANIFEST_TYPE },
            body: () => body,
            bodyLength: body.length,
            what: `PUT manifest ${tag}`
          });
        };
        let res = await attempt(this.plainManifests);
        if (!this.plainManifests && (res.status === 400 || res.status === 415 || res.status === 422)) {
          const why = await errorSummary(res);
          res = await attempt(true);
          if (res.status === 201 || res.status === 200) {
            this.plainManifests = true;
          } else {
            const again = await errorSummary(res);
            throw new StoreUnavailableError(
              "protocol",
              `${this.location}: the registry refused the result manifest for ${manifest.cacheKey} (HTTP 400 ${why}; plain form: HTTP ${res.status} ${again})`,
              { status: res.status }
            );
          }
        }
        if (res.status !== 201 && res.status !== 200) {
          const why = await errorSummary(res);
          throw new StoreUnavailableError(
            res.status >= 500 ? "server" : "protocol",
            `${this.location}: PUT manifest ${tag}: unexpected HTTP ${res.status} ${why}`,
            { status: res.status }
          );
        }
        await discard(res);
      }
      async listing(cacheKey) {
        const doc = await this.fetchManifest(_RegistryStore.tagFor(cacheKey));
        if (doc === null || ociManifestProblem(doc)) return null;
        const m = doc;
        const size2 = m.layers.reduce((n, l) => n + (Number.isSafeInteger(l.size) ? l.size : 0), 0);
        let unit = m.annotations?.[UNIT_ANNOTATION];
        let createdAt = m.annotations?.[CREATED_ANNOTATION];
        if (typeof unit !== "string" || typeof createdAt !== "string") {
          const text = await this.fetchSmallBlob(m.config.digest, m.config.size);
          const value = typeof text === "string" ? parseJson(text) : void 0;
          if (manifestProblems(value).length > 0) return null;
          unit = value.unit;
          createdAt = value.createdAt;
        }
        return { cacheKey, unit, size: size2, createdAt };
      }
      // -------------------------------------------------------------------------------------------
      // HTTP and authentication
      scopesFor(extra = []) {
        return [`repository:${this.ref.repository}:pull,push`, ...extra];
      }
      authorization(scopeKey) {
        if (this.basicAuth) return this.basicAuth;
        const token = this.tokens.cached(scopeKey);
        return token ? `Bearer ${token}` : void 0;
      }
      loadCredentials() {
        this.credentials ??= loadCredentials(
          this.ref.host,
          this.env,
          (m) => this.warnOnce(`credentials:${m}`, `${this.location}: ${m}`)
        );
        return this.credentials;
      }
      /**
       * Answers a 401 to a request sent with `sentWith` (its Authorization header, if any): gets what
       * the challenge asks for, or throws an `auth` error.
       */
      async authenticate(header, scopeKey, scopes, sentWith) {
        const challenges = parseChallenges(header);
        const bearer = challenges.find((c) => c.scheme === "bearer");
        const basic = challenges.find((c) => c.scheme === "basic");
        const creds = await this.loadCredentials();
        if (bearer) {
          this.tokens.forget(scopeKey);
          const wanted = new Set(scopes);
          for (const s of (bearer.params.scope ?? "").split(" ")) if (s) wanted.add(s);
          try {
            await this.tokens.get(scopeKey, bearer, [...wanted], creds);
          } catch (err) {
            if (err instanceof TokenError) {
              const kind = err.kind === "auth" ? "auth" : err.kind === "network" ? "network" : "server";
              throw new StoreUnavailableError(kind, `${this.location}: ${err.message}`, { cause: err });
            }
            throw err;
          }
          return;
        }
        if (basic) {
          if (!creds) {
            throw new StoreUnavailableError(
              "auth",
              `${this.location}: the registry wants credentials (set DIST_BUILD_REGISTRY_USERNAME/PASSWORD or log in with docker login)`
            );
          }
          const header2 = basicHeader(creds);
          if (sentWith === header2) throw this.refused(creds);
          this.basicAuth = header2;
          return;
        }
        throw new StoreUnavailableError(
          "auth",
          `${this.location}: the registry answered 401 without a usable challenge`
        );
      }
      refused(creds) {
        return new StoreUnavailableError(
          "auth",
          `${this.location}: the registry refused the credentials from ${creds.source}`,
          { status: 401 }
        );
      }
      /**
       * One request to the registry, authenticated: after a 401 it authenticates and replays the
       * request once. Network failures throw a `network` `StoreUnavailableError` (and put the
       * registry aside for a while); 401/403 after authenticating throw an `auth` one.
       */
      async send(spec) {
        const url = typeof spec.url === "string" && spec.url.startsWith("/") ? new URL(spec.url, this.origin) : new URL(spec.url);
        const ours = url.origin === this.origin;
        const scopes = this.scopesFor(spec.extraScopes);
        const scopeKey = scopes.join(" ");
        if (Date.now() < this.downUntil && this.downError) {
          const cause = this.downError;
          throw new StoreUnavailableError(
            "network",
            `${this.location}: not asked (${spec.what}): ${cause.message.replace(`${this.location}: `, "")}; asked again in ${Math.ceil((this.downUntil - Date.now()) / 1e3)} s`,
            { cause }
          );
        }
        for (let attempt = 0; ; attempt++) {
          const headers = { ...spec.headers };
          if (spec.bodyLength !== void 0) headers["content-length"] = String(spec.bodyLength);
          if (ours && spec.bodyLength !== void 0 && spec.bodyLength >= LARGE_BODY) {
            await this.freshAuthorization(scopeKey, scopes);
          }
          const auth = ours ? this.authorization(scopeKey) : void 0;
          if (auth) headers.authorization = auth;
          let res;
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
              afterBodyTimeoutMs: (spec.bodyLength ?? 0) >= LARGE_BODY ? this.timeoutMs * AFTER_BODY_TIMEOUTS + Math.ceil(spec.bodyLength / AFTER_BODY_BYTES_PER_MS) : void 0
            });
          } catch (err) {
            if (!(err instanceof HttpError)) throw err;
            if (attempt === 0 && err.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE")) {
              continue;
            }
            const e = new StoreUnavailableError(
              "network",
              `${this.location}: registry ${this.origin} unreachable (${spec.what}: ${err.message})`,
              { cause: err }
            );
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
            this.challenge = res.headers.get("www-authenticate");
            await this.authenticate(this.challenge, scopeKey, scopes, auth);
            continue;
          }
          if (res.status === 401 || res.status === 403) {
            const summary = await errorSummary(res);
            if (res.status === 401 && ours && auth !== void 0 && auth === this.basicAuth) {
              const creds = await this.loadCredentials();
              if (creds) throw this.refused(creds);
            }
            throw new StoreUnavailableError(
              "auth",
              `${this.location}: access denied (${spec.what}: HTTP ${res.status}${summary ? ` ${summary}` : ""})`,
              { status: res.status }
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
      async freshAuthorization(scopeKey, scopes) {
        if (this.challenge === null || this.authorization(scopeKey) !== void 0) return;
        if (!parseChallenges(this.challenge).some((c) => c.scheme === "bearer")) return;
        await this.authenticate(this.challenge, scopeKey, scopes, void 0);
      }
      unexpected(res, what) {
        void discard(res);
        const kind = res.status >= 500 || res.status === 429 ? "server" : "protocol";
        return new StoreUnavailableError(
          kind,
          `${this.location}: ${what}: unexpected HTTP ${res.status}`,
          {
            status: res.status
          }
        );
      }
      /** Problems of a read become a warning (once per kind) and `value`. */
      miss(err, value) {
        if (err instanceof StoreUnavailableError) {
          this.warnOnce(err.kind, `${err.message}; cache misses`);
        } else {
          this.warnOnce(
            "unexpected",
            `${this.location}: ${err?.message ?? String(err)}; cache misses`
          );
        }
        return value;
      }
      /** Errors of the `put*` methods: registry problems as `StoreUnavailableError`, others as is. */
      checkWritesAllowed() {
        if (this.writesDenied && Date.now() < this.writesDeniedUntil) throw this.writesDenied;
      }
      forPut(err) {
        if (err instanceof StoreUnavailableError && err.kind === "auth" && err !== this.writesDenied) {
          this.writesDenied = err;
          this.writesDeniedUntil = Date.now() + WRITES_DENIED_MS;
        }
        if (err instanceof StoreUnavailableError || err instanceof CorruptBlobError) return err;
        if (err instanceof Error && err.name === "AbortError") {
          return new StoreUnavailableError("network", `${this.location}: ${err.message}`, {
            cause: err
          });
        }
        return err;
      }
      /** A result that cannot be used: a warning (once), listed in `unusable` when given. */
      warnResult(cacheKey, unusable, problem) {
        unusable?.push(cacheKey);
        this.warnOnce(`result:${cacheKey}`, `${this.location}: result ${cacheKey} ${problem}; a miss`);
        return null;
      }
      warnOnce(id, message2) {
        if (this.warned.has(id)) return;
        this.warned.add(id);
        this.onWarning(message2);
      }
    };
  }
});

// src/config/load.ts
import { isUtf8 } from "node:buffer";
import { readFile } from "node:fs/promises";
import { basename, dirname, relative, resolve, posix, sep } from "node:path";

// src/config/schema-validator.generated.ts
import runtime0 from "ajv/dist/runtime/ucs2length.js";
var schema_validator_generated_default = validate0;
var schema0 = { "$schema": "http://json-schema.org/draft-07/schema#", "$id": "https://github.com/dist-build/dist-build/schema/dist-build.schema.json", "title": "dist-build.yml", "description": "Build invocations that dist-build places on workers with consistent hashing.", "type": "object", "additionalProperties": false, "required": ["version", "invocations"], "properties": { "version": { "const": 1, "description": "Format version; always 1." }, "workers": { "type": "object", "additionalProperties": false, "description": "Matrix size rule: clamp(ceil(invocations / max-per-worker), min, max) workers when none are given.", "properties": { "min": { "type": "integer", "minimum": 1, "default": 1 }, "max": { "type": "integer", "minimum": 1, "maximum": 256, "default": 16 }, "max-per-worker": { "type": "integer", "minimum": 1, "default": 20 } } }, "placement": { "type": "object", "additionalProperties": false, "properties": { "balance": { "type": "number", "minimum": 1, "maximum": 10, "default": 1.1, "description": "Capacity factor: a worker takes at most balance x max(total / workers, longest) seconds of expected work." }, "default-duration": { "type": ["number", "string"], "exclusiveMinimum": 0, "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$", "description": "Expected duration of an invocation with neither history nor estimate.", "default": 60 } } }, "env": { "type": "object", "description": "Environment variables; values are strings (numbers and booleans are converted).", "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }, "additionalProperties": { "type": ["string", "number", "boolean"] } }, "cache": { "type": "object", "additionalProperties": false, "description": "Where workers keep build results.", "properties": { "stores": { "type": "array", "minItems": 1, "default": [{ "type": "local" }], "description": "Cache stores, fastest first: reads fall through in this order and copy hits into the faster stores; writes go to all.", "items": { "type": "object", "required": ["type"], "description": "One store; options other than type belong to its backend and are checked by it.", "properties": { "type": { "enum": ["local", "gha", "registry"], "description": "The backend." }, "dir": { "type": "string", "minLength": 1, "description": "local: the store directory, relative to the config directory (default .dist-build/cache)." }, "max-size": { "type": ["integer", "string"], "minimum": 1, "pattern": "^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$", "description": "local: cap on the bytes of blobs; least recently used entries are evicted beyond it." } }, "additionalProperties": true } }, "sign": { "type": "object", "additionalProperties": false, "description": "Sign results with HMAC-SHA256; when the secret is set, unsigned or badly signed results are misses.", "properties": { "secret-env": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "default": "DIST_BUILD_CACHE_SECRET", "description": "Environment variable holding the secret." }, "required": { "type": "boolean", "default": false, "description": "Fail instead of running unsigned when the secret variable is not set." } } } } }, "invocations": { "type": "object", "minProperties": 1, "description": "Build invocations by name.", "additionalProperties": { "type": "object", "additionalProperties": false, "properties": { "run": { "type": "string", "minLength": 1, "description": "Shell command, run in the config directory." }, "docker": { "type": "object", "additionalProperties": false, "required": ["context"], "description": "A Docker/BuildKit image build.", "properties": { "context": { "type": "string", "minLength": 1 }, "file": { "type": "string", "minLength": 1, "description": "Dockerfile (default: <context>/Dockerfile)." }, "target": { "type": "string", "minLength": 1 }, "platforms": { "type": "array", "items": { "type": "string", "pattern": "^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$", "description": "a platform os/arch[/variant], e.g. linux/amd64 or linux/arm/v7" }, "uniqueItems": true }, "tags": { "type": "array", "items": { "type": "string", "minLength": 1 }, "description": "Image references the built image is tagged with." }, "build-args": { "type": "object", "description": "Environment variables; values are strings (numbers and booleans are converted).", "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }, "additionalProperties": { "type": ["string", "number", "boolean"] } }, "push": { "type": "boolean", "default": false, "description": "Push the image to its tags at the end of the run, from the worker that holds it. Not part of the cache key." }, "network": { "enum": ["default", "host", "none"], "description": "Network of RUN steps (docker build --network): default, host or none. Not part of the cache key." } } }, "inputs": { "type": "array", "items": { "type": "string", "minLength": 1 }, "description": "Globs (relative to the config directory) whose contents make up the cache key." }, "outputs": { "type": "array", "items": { "type": "string", "minLength": 1 }, "description": "Files or directories saved to the cache and exported." }, "needs": { "type": "array", "items": { "type": "string", "minLength": 1 }, "description": "Invocations whose outputs this one needs.", "uniqueItems": true }, "export": { "type": "boolean", "default": false, "description": "A final artifact of the run." }, "env": { "type": "object", "description": "Environment variables; values are strings (numbers and booleans are converted).", "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }, "additionalProperties": { "type": ["string", "number", "boolean"] } }, "platform": { "type": "string", "pattern": "^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$", "description": "Only workers of this platform may take the invocation." }, "labels": { "type": "array", "items": { "type": "string", "minLength": 1 }, "description": "Only workers with all these labels may take the invocation.", "uniqueItems": true }, "timeout": { "type": ["number", "string"], "exclusiveMinimum": 0, "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$", "description": 'seconds as a number, or a string such as "90s", "10m", "1.5h"', "default": 3600 }, "estimate": { "type": ["number", "string"], "exclusiveMinimum": 0, "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$", "description": "Expected duration, used until history exists." } } } } } };
var pattern0 = new RegExp("^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$", "u");
var pattern1 = new RegExp("^[A-Za-z_][A-Za-z0-9_]*$", "u");
var pattern2 = new RegExp("^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$", "u");
var pattern4 = new RegExp("^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$", "u");
var func0 = runtime0.default;
var func1 = Object.prototype.hasOwnProperty;
function validate0(data, { instancePath = "", parentData, parentDataProperty, rootData = data } = {}) {
  ;
  let vErrors = null;
  let errors = 0;
  if (data && typeof data == "object" && !Array.isArray(data)) {
    if (data.version === void 0) {
      const err0 = { instancePath, schemaPath: "#/required", keyword: "required", params: { missingProperty: "version" }, message: "must have required property 'version'" };
      if (vErrors === null) {
        vErrors = [err0];
      } else {
        vErrors.push(err0);
      }
      errors++;
    }
    if (data.invocations === void 0) {
      const err1 = { instancePath, schemaPath: "#/required", keyword: "required", params: { missingProperty: "invocations" }, message: "must have required property 'invocations'" };
      if (vErrors === null) {
        vErrors = [err1];
      } else {
        vErrors.push(err1);
      }
      errors++;
    }
    for (const key0 in data) {
      if (!(key0 === "version" || key0 === "workers" || key0 === "placement" || key0 === "env" || key0 === "cache" || key0 === "invocations")) {
        const err2 = { instancePath, schemaPath: "#/additionalProperties", keyword: "additionalProperties", params: { additionalProperty: key0 }, message: "must NOT have additional properties" };
        if (vErrors === null) {
          vErrors = [err2];
        } else {
          vErrors.push(err2);
        }
        errors++;
      }
    }
    if (data.version !== void 0) {
      if (1 !== data.version) {
        const err3 = { instancePath: instancePath + "/version", schemaPath: "#/properties/version/const", keyword: "const", params: { allowedValue: 1 }, message: "must be equal to constant" };
        if (vErrors === null) {
          vErrors = [err3];
        } else {
          vErrors.push(err3);
        }
        errors++;
      }
    }
    if (data.workers !== void 0) {
      let data1 = data.workers;
      if (data1 && typeof data1 == "object" && !Array.isArray(data1)) {
        for (const key1 in data1) {
          if (!(key1 === "min" || key1 === "max" || key1 === "max-per-worker")) {
            const err4 = { instancePath: instancePath + "/workers", schemaPath: "#/properties/workers/additionalProperties", keyword: "additionalProperties", params: { additionalProperty: key1 }, message: "must NOT have additional properties" };
            if (vErrors === null) {
              vErrors = [err4];
            } else {
              vErrors.push(err4);
            }
            errors++;
          }
        }
        if (data1.min !== void 0) {
          let data2 = data1.min;
          if (!(typeof data2 == "number" && (!(data2 % 1) && !isNaN(data2)) && isFinite(data2))) {
            const err5 = { instancePath: instancePath + "/workers/min", schemaPath: "#/properties/workers/properties/min/type", keyword: "type", params: { type: "integer" }, message: "must be integer" };
            if (vErrors === null) {
              vErrors = [err5];
            } else {
              vErrors.push(err5);
            }
            errors++;
          }
          if (typeof data2 == "number" && isFinite(data2)) {
            if (data2 < 1 || isNaN(data2)) {
              const err6 = { instancePath: instancePath + "/workers/min", schemaPath: "#/properties/workers/properties/min/minimum", keyword: "minimum", params: { comparison: ">=", limit: 1 }, message: "must be >= 1" };
              if (vErrors === null) {
                vErrors = [err6];
              } else {
                vErrors.push(err6);
              }
              errors++;
            }
          }
        }
        if (data1.max !== void 0) {
          let data3 = data1.max;
          if (!(typeof data3 == "number" && (!(data3 % 1) && !isNaN(data3)) && isFinite(data3))) {
            const err7 = { instancePath: instancePath + "/workers/max", schemaPath: "#/properties/workers/properties/max/type", keyword: "type", params: { type: "integer" }, message: "must be integer" };
            if (vErrors === null) {
              vErrors = [err7];
            } else {
              vErrors.push(err7);
            }
            errors++;
          }
          if (typeof data3 == "number" && isFinite(data3)) {
            if (data3 > 256 || isNaN(data3)) {
              const err8 = { instancePath: instancePath + "/workers/max", schemaPath: "#/properties/workers/properties/max/maximum", keyword: "maximum", params: { comparison: "<=", limit: 256 }, message: "must be <= 256" };
              if (vErrors === null) {
                vErrors = [err8];
              } else {
                vErrors.push(err8);
              }
              errors++;
            }
            if (data3 < 1 || isNaN(data3)) {
              const err9 = { instancePath: instancePath + "/workers/max", schemaPath: "#/properties/workers/properties/max/minimum", keyword: "minimum", params: { comparison: ">=", limit: 1 }, message: "must be >= 1" };
              if (vErrors === null) {
                vErrors = [err9];
              } else {
                vErrors.push(err9);
              }
              errors++;
            }
          }
        }
        if (data1["max-per-worker"] !== void 0) {
          let data4 = data1["max-per-worker"];
          if (!(typeof data4 == "number" && (!(data4 % 1) && !isNaN(data4)) && isFinite(data4))) {
            const err10 = { instancePath: instancePath + "/workers/max-per-worker", schemaPath: "#/properties/workers/properties/max-per-worker/type", keyword: "type", params: { type: "integer" }, message: "must be integer" };
            if (vErrors === null) {
              vErrors = [err10];
            } else {
              vErrors.push(err10);
            }
            errors++;
          }
          if (typeof data4 == "number" && isFinite(data4)) {
            if (data4 < 1 || isNaN(data4)) {
              const err11 = { instancePath: instancePath + "/workers/max-per-worker", schemaPath: "#/properties/workers/properties/max-per-worker/minimum", keyword: "minimum", params: { comparison: ">=", limit: 1 }, message: "must be >= 1" };
              if (vErrors === null) {
                vErrors = [err11];
              } else {
                vErrors.push(err11);
              }
              errors++;
            }
          }
        }
      } else {
        const err12 = { instancePath: instancePath + "/workers", schemaPath: "#/properties/workers/type", keyword: "type", params: { type: "object" }, message: "must be object" };
        if (vErrors === null) {
          vErrors = [err12];
        } else {
          vErrors.push(err12);
        }
        errors++;
      }
    }
    if (data.placement !== void 0) {
      let data5 = data.placement;
      if (data5 && typeof data5 == "object" && !Array.isArray(data5)) {
        for (const key2 in data5) {
          if (!(key2 === "balance" || key2 === "default-duration")) {
            const err13 = { instancePath: instancePath + "/placement", schemaPath: "#/properties/placement/additionalProperties", keyword: "additionalProperties", params: { additionalProperty: key2 }, message: "must NOT have additional properties" };
            if (vErrors === null) {
              vErrors = [err13];
            } else {
              vErrors.push(err13);
            }
            errors++;
          }
        }
        if (data5.balance !== void 0) {
          let data6 = data5.balance;
          if (typeof data6 == "number" && isFinite(data6)) {
            if (data6 > 10 || isNaN(data6)) {
              const err14 = { instancePath: instancePath + "/placement/balance", schemaPath: "#/properties/placement/properties/balance/maximum", keyword: "maximum", params: { comparison: "<=", limit: 10 }, message: "must be <= 10" };
              if (vErrors === null) {
                vErrors = [err14];
              } else {
                vErrors.push(err14);
              }
              errors++;
            }
            if (data6 < 1 || isNaN(data6)) {
              const err15 = { instancePath: instancePath + "/placement/balance", schemaPath: "#/properties/placement/properties/balance/minimum", keyword: "minimum", params: { comparison: ">=", limit: 1 }, message: "must be >= 1" };
              if (vErrors === null) {
                vErrors = [err15];
              } else {
                vErrors.push(err15);
              }
              errors++;
            }
          } else {
            const err16 = { instancePath: instancePath + "/placement/balance", schemaPath: "#/properties/placement/properties/balance/type", keyword: "type", params: { type: "number" }, message: "must be number" };
            if (vErrors === null) {
              vErrors = [err16];
            } else {
              vErrors.push(err16);
            }
            errors++;
          }
        }
        if (data5["default-duration"] !== void 0) {
          let data7 = data5["default-duration"];
          if (!(typeof data7 == "number" && isFinite(data7)) && typeof data7 !== "string") {
            const err17 = { instancePath: instancePath + "/placement/default-duration", schemaPath: "#/properties/placement/properties/default-duration/type", keyword: "type", params: { type: schema0.properties.placement.properties["default-duration"].type }, message: "must be number,string" };
            if (vErrors === null) {
              vErrors = [err17];
            } else {
              vErrors.push(err17);
            }
            errors++;
          }
          if (typeof data7 == "number" && isFinite(data7)) {
            if (data7 <= 0 || isNaN(data7)) {
              const err18 = { instancePath: instancePath + "/placement/default-duration", schemaPath: "#/properties/placement/properties/default-duration/exclusiveMinimum", keyword: "exclusiveMinimum", params: { comparison: ">", limit: 0 }, message: "must be > 0" };
              if (vErrors === null) {
                vErrors = [err18];
              } else {
                vErrors.push(err18);
              }
              errors++;
            }
          }
          if (typeof data7 === "string") {
            if (!pattern0.test(data7)) {
              const err19 = { instancePath: instancePath + "/placement/default-duration", schemaPath: "#/properties/placement/properties/default-duration/pattern", keyword: "pattern", params: { pattern: "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" }, message: 'must match pattern "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$"' };
              if (vErrors === null) {
                vErrors = [err19];
              } else {
                vErrors.push(err19);
              }
              errors++;
            }
          }
        }
      } else {
        const err20 = { instancePath: instancePath + "/placement", schemaPath: "#/properties/placement/type", keyword: "type", params: { type: "object" }, message: "must be object" };
        if (vErrors === null) {
          vErrors = [err20];
        } else {
          vErrors.push(err20);
        }
        errors++;
      }
    }
    if (data.env !== void 0) {
      let data8 = data.env;
      if (data8 && typeof data8 == "object" && !Array.isArray(data8)) {
        for (const key3 in data8) {
          const _errs21 = errors;
          if (typeof key3 === "string") {
            if (!pattern1.test(key3)) {
              const err21 = { instancePath: instancePath + "/env", schemaPath: "#/properties/env/propertyNames/pattern", keyword: "pattern", params: { pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }, message: 'must match pattern "^[A-Za-z_][A-Za-z0-9_]*$"', propertyName: key3 };
              if (vErrors === null) {
                vErrors = [err21];
              } else {
                vErrors.push(err21);
              }
              errors++;
            }
          }
          var valid3 = _errs21 === errors;
          if (!valid3) {
            const err22 = { instancePath: instancePath + "/env", schemaPath: "#/properties/env/propertyNames", keyword: "propertyNames", params: { propertyName: key3 }, message: "property name must be valid" };
            if (vErrors === null) {
              vErrors = [err22];
            } else {
              vErrors.push(err22);
            }
            errors++;
          }
        }
        for (const key4 in data8) {
          let data9 = data8[key4];
          if (typeof data9 !== "string" && !(typeof data9 == "number" && isFinite(data9)) && typeof data9 !== "boolean") {
            const err23 = { instancePath: instancePath + "/env/" + key4.replace(/~/g, "~0").replace(/\//g, "~1"), schemaPath: "#/properties/env/additionalProperties/type", keyword: "type", params: { type: schema0.properties.env.additionalProperties.type }, message: "must be string,number,boolean" };
            if (vErrors === null) {
              vErrors = [err23];
            } else {
              vErrors.push(err23);
            }
            errors++;
          }
        }
      } else {
        const err24 = { instancePath: instancePath + "/env", schemaPath: "#/properties/env/type", keyword: "type", params: { type: "object" }, message: "must be object" };
        if (vErrors === null) {
          vErrors = [err24];
        } else {
          vErrors.push(err24);
        }
        errors++;
      }
    }
    if (data.cache !== void 0) {
      let data10 = data.cache;
      if (data10 && typeof data10 == "object" && !Array.isArray(data10)) {
        for (const key5 in data10) {
          if (!(key5 === "stores" || key5 === "sign")) {
            const err25 = { instancePath: instancePath + "/cache", schemaPath: "#/properties/cache/additionalProperties", keyword: "additionalProperties", params: { additionalProperty: key5 }, message: "must NOT have additional properties" };
            if (vErrors === null) {
              vErrors = [err25];
            } else {
              vErrors.push(err25);
            }
            errors++;
          }
        }
        if (data10.stores !== void 0) {
          let data11 = data10.stores;
          if (Array.isArray(data11)) {
            if (data11.length < 1) {
              const err26 = { instancePath: instancePath + "/cache/stores", schemaPath: "#/properties/cache/properties/stores/minItems", keyword: "minItems", params: { limit: 1 }, message: "must NOT have fewer than 1 items" };
              if (vErrors === null) {
                vErrors = [err26];
              } else {
                vErrors.push(err26);
              }
              errors++;
            }
            const len0 = data11.length;
            for (let i0 = 0; i0 < len0; i0++) {
              let data12 = data11[i0];
              if (data12 && typeof data12 == "object" && !Array.isArray(data12)) {
                if (data12.type === void 0) {
                  const err27 = { instancePath: instancePath + "/cache/stores/" + i0, schemaPath: "#/properties/cache/properties/stores/items/required", keyword: "required", params: { missingProperty: "type" }, message: "must have required property 'type'" };
                  if (vErrors === null) {
                    vErrors = [err27];
                  } else {
                    vErrors.push(err27);
                  }
                  errors++;
                }
                if (data12.type !== void 0) {
                  let data13 = data12.type;
                  if (!(data13 === "local" || data13 === "gha" || data13 === "registry")) {
                    const err28 = { instancePath: instancePath + "/cache/stores/" + i0 + "/type", schemaPath: "#/properties/cache/properties/stores/items/properties/type/enum", keyword: "enum", params: { allowedValues: schema0.properties.cache.properties.stores.items.properties.type.enum }, message: "must be equal to one of the allowed values" };
                    if (vErrors === null) {
                      vErrors = [err28];
                    } else {
                      vErrors.push(err28);
                    }
                    errors++;
                  }
                }
                if (data12.dir !== void 0) {
                  let data14 = data12.dir;
                  if (typeof data14 === "string") {
                    if (func0(data14) < 1) {
                      const err29 = { instancePath: instancePath + "/cache/stores/" + i0 + "/dir", schemaPath: "#/properties/cache/properties/stores/items/properties/dir/minLength", keyword: "minLength", params: { limit: 1 }, message: "must NOT have fewer than 1 characters" };
                      if (vErrors === null) {
                        vErrors = [err29];
                      } else {
                        vErrors.push(err29);
                      }
                      errors++;
                    }
                  } else {
                    const err30 = { instancePath: instancePath + "/cache/stores/" + i0 + "/dir", schemaPath: "#/properties/cache/properties/stores/items/properties/dir/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                    if (vErrors === null) {
                      vErrors = [err30];
                    } else {
                      vErrors.push(err30);
                    }
                    errors++;
                  }
                }
                if (data12["max-size"] !== void 0) {
                  let data15 = data12["max-size"];
                  if (!(typeof data15 == "number" && (!(data15 % 1) && !isNaN(data15)) && isFinite(data15)) && typeof data15 !== "string") {
                    const err31 = { instancePath: instancePath + "/cache/stores/" + i0 + "/max-size", schemaPath: "#/properties/cache/properties/stores/items/properties/max-size/type", keyword: "type", params: { type: schema0.properties.cache.properties.stores.items.properties["max-size"].type }, message: "must be integer,string" };
                    if (vErrors === null) {
                      vErrors = [err31];
                    } else {
                      vErrors.push(err31);
                    }
                    errors++;
                  }
                  if (typeof data15 == "number" && isFinite(data15)) {
                    if (data15 < 1 || isNaN(data15)) {
                      const err32 = { instancePath: instancePath + "/cache/stores/" + i0 + "/max-size", schemaPath: "#/properties/cache/properties/stores/items/properties/max-size/minimum", keyword: "minimum", params: { comparison: ">=", limit: 1 }, message: "must be >= 1" };
                      if (vErrors === null) {
                        vErrors = [err32];
                      } else {
                        vErrors.push(err32);
                      }
                      errors++;
                    }
                  }
                  if (typeof data15 === "string") {
                    if (!pattern2.test(data15)) {
                      const err33 = { instancePath: instancePath + "/cache/stores/" + i0 + "/max-size", schemaPath: "#/properties/cache/properties/stores/items/properties/max-size/pattern", keyword: "pattern", params: { pattern: "^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$" }, message: 'must match pattern "^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$"' };
                      if (vErrors === null) {
                        vErrors = [err33];
                      } else {
                        vErrors.push(err33);
                      }
                      errors++;
                    }
                  }
                }
              } else {
                const err34 = { instancePath: instancePath + "/cache/stores/" + i0, schemaPath: "#/properties/cache/properties/stores/items/type", keyword: "type", params: { type: "object" }, message: "must be object" };
                if (vErrors === null) {
                  vErrors = [err34];
                } else {
                  vErrors.push(err34);
                }
                errors++;
              }
            }
          } else {
            const err35 = { instancePath: instancePath + "/cache/stores", schemaPath: "#/properties/cache/properties/stores/type", keyword: "type", params: { type: "array" }, message: "must be array" };
            if (vErrors === null) {
              vErrors = [err35];
            } else {
              vErrors.push(err35);
            }
            errors++;
          }
        }
        if (data10.sign !== void 0) {
          let data16 = data10.sign;
          if (data16 && typeof data16 == "object" && !Array.isArray(data16)) {
            for (const key6 in data16) {
              if (!(key6 === "secret-env" || key6 === "required")) {
                const err36 = { instancePath: instancePath + "/cache/sign", schemaPath: "#/properties/cache/properties/sign/additionalProperties", keyword: "additionalProperties", params: { additionalProperty: key6 }, message: "must NOT have additional properties" };
                if (vErrors === null) {
                  vErrors = [err36];
                } else {
                  vErrors.push(err36);
                }
                errors++;
              }
            }
            if (data16["secret-env"] !== void 0) {
              let data17 = data16["secret-env"];
              if (typeof data17 === "string") {
                if (!pattern1.test(data17)) {
                  const err37 = { instancePath: instancePath + "/cache/sign/secret-env", schemaPath: "#/properties/cache/properties/sign/properties/secret-env/pattern", keyword: "pattern", params: { pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }, message: 'must match pattern "^[A-Za-z_][A-Za-z0-9_]*$"' };
                  if (vErrors === null) {
                    vErrors = [err37];
                  } else {
                    vErrors.push(err37);
                  }
                  errors++;
                }
              } else {
                const err38 = { instancePath: instancePath + "/cache/sign/secret-env", schemaPath: "#/properties/cache/properties/sign/properties/secret-env/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                if (vErrors === null) {
                  vErrors = [err38];
                } else {
                  vErrors.push(err38);
                }
                errors++;
              }
            }
            if (data16.required !== void 0) {
              if (typeof data16.required !== "boolean") {
                const err39 = { instancePath: instancePath + "/cache/sign/required", schemaPath: "#/properties/cache/properties/sign/properties/required/type", keyword: "type", params: { type: "boolean" }, message: "must be boolean" };
                if (vErrors === null) {
                  vErrors = [err39];
                } else {
                  vErrors.push(err39);
                }
                errors++;
              }
            }
          } else {
            const err40 = { instancePath: instancePath + "/cache/sign", schemaPath: "#/properties/cache/properties/sign/type", keyword: "type", params: { type: "object" }, message: "must be object" };
            if (vErrors === null) {
              vErrors = [err40];
            } else {
              vErrors.push(err40);
            }
            errors++;
          }
        }
      } else {
        const err41 = { instancePath: instancePath + "/cache", schemaPath: "#/properties/cache/type", keyword: "type", params: { type: "object" }, message: "must be object" };
        if (vErrors === null) {
          vErrors = [err41];
        } else {
          vErrors.push(err41);
        }
        errors++;
      }
    }
    if (data.invocations !== void 0) {
      let data19 = data.invocations;
      if (data19 && typeof data19 == "object" && !Array.isArray(data19)) {
        if (Object.keys(data19).length < 1) {
          const err42 = { instancePath: instancePath + "/invocations", schemaPath: "#/properties/invocations/minProperties", keyword: "minProperties", params: { limit: 1 }, message: "must NOT have fewer than 1 properties" };
          if (vErrors === null) {
            vErrors = [err42];
          } else {
            vErrors.push(err42);
          }
          errors++;
        }
        for (const key7 in data19) {
          let data20 = data19[key7];
          if (data20 && typeof data20 == "object" && !Array.isArray(data20)) {
            for (const key8 in data20) {
              if (!func1.call(schema0.properties.invocations.additionalProperties.properties, key8)) {
                const err43 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1"), schemaPath: "#/properties/invocations/additionalProperties/additionalProperties", keyword: "additionalProperties", params: { additionalProperty: key8 }, message: "must NOT have additional properties" };
                if (vErrors === null) {
                  vErrors = [err43];
                } else {
                  vErrors.push(err43);
                }
                errors++;
              }
            }
            if (data20.run !== void 0) {
              let data21 = data20.run;
              if (typeof data21 === "string") {
                if (func0(data21) < 1) {
                  const err44 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/run", schemaPath: "#/properties/invocations/additionalProperties/properties/run/minLength", keyword: "minLength", params: { limit: 1 }, message: "must NOT have fewer than 1 characters" };
                  if (vErrors === null) {
                    vErrors = [err44];
                  } else {
                    vErrors.push(err44);
                  }
                  errors++;
                }
              } else {
                const err45 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/run", schemaPath: "#/properties/invocations/additionalProperties/properties/run/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                if (vErrors === null) {
                  vErrors = [err45];
                } else {
                  vErrors.push(err45);
                }
                errors++;
              }
            }
            if (data20.docker !== void 0) {
              let data22 = data20.docker;
              if (data22 && typeof data22 == "object" && !Array.isArray(data22)) {
                if (data22.context === void 0) {
                  const err46 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/required", keyword: "required", params: { missingProperty: "context" }, message: "must have required property 'context'" };
                  if (vErrors === null) {
                    vErrors = [err46];
                  } else {
                    vErrors.push(err46);
                  }
                  errors++;
                }
                for (const key9 in data22) {
                  if (!(key9 === "context" || key9 === "file" || key9 === "target" || key9 === "platforms" || key9 === "tags" || key9 === "build-args" || key9 === "push" || key9 === "network")) {
                    const err47 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/additionalProperties", keyword: "additionalProperties", params: { additionalProperty: key9 }, message: "must NOT have additional properties" };
                    if (vErrors === null) {
                      vErrors = [err47];
                    } else {
                      vErrors.push(err47);
                    }
                    errors++;
                  }
                }
                if (data22.context !== void 0) {
                  let data23 = data22.context;
                  if (typeof data23 === "string") {
                    if (func0(data23) < 1) {
                      const err48 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/context", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/context/minLength", keyword: "minLength", params: { limit: 1 }, message: "must NOT have fewer than 1 characters" };
                      if (vErrors === null) {
                        vErrors = [err48];
                      } else {
                        vErrors.push(err48);
                      }
                      errors++;
                    }
                  } else {
                    const err49 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/context", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/context/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                    if (vErrors === null) {
                      vErrors = [err49];
                    } else {
                      vErrors.push(err49);
                    }
                    errors++;
                  }
                }
                if (data22.file !== void 0) {
                  let data24 = data22.file;
                  if (typeof data24 === "string") {
                    if (func0(data24) < 1) {
                      const err50 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/file", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/file/minLength", keyword: "minLength", params: { limit: 1 }, message: "must NOT have fewer than 1 characters" };
                      if (vErrors === null) {
                        vErrors = [err50];
                      } else {
                        vErrors.push(err50);
                      }
                      errors++;
                    }
                  } else {
                    const err51 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/file", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/file/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                    if (vErrors === null) {
                      vErrors = [err51];
                    } else {
                      vErrors.push(err51);
                    }
                    errors++;
                  }
                }
                if (data22.target !== void 0) {
                  let data25 = data22.target;
                  if (typeof data25 === "string") {
                    if (func0(data25) < 1) {
                      const err52 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/target", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/target/minLength", keyword: "minLength", params: { limit: 1 }, message: "must NOT have fewer than 1 characters" };
                      if (vErrors === null) {
                        vErrors = [err52];
                      } else {
                        vErrors.push(err52);
                      }
                      errors++;
                    }
                  } else {
                    const err53 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/target", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/target/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                    if (vErrors === null) {
                      vErrors = [err53];
                    } else {
                      vErrors.push(err53);
                    }
                    errors++;
                  }
                }
                if (data22.platforms !== void 0) {
                  let data26 = data22.platforms;
                  if (Array.isArray(data26)) {
                    const len1 = data26.length;
                    for (let i1 = 0; i1 < len1; i1++) {
                      let data27 = data26[i1];
                      if (typeof data27 === "string") {
                        if (!pattern4.test(data27)) {
                          const err54 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/platforms/" + i1, schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/platforms/items/pattern", keyword: "pattern", params: { pattern: "^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$" }, message: 'must match pattern "^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$"' };
                          if (vErrors === null) {
                            vErrors = [err54];
                          } else {
                            vErrors.push(err54);
                          }
                          errors++;
                        }
                      } else {
                        const err55 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/platforms/" + i1, schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/platforms/items/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                        if (vErrors === null) {
                          vErrors = [err55];
                        } else {
                          vErrors.push(err55);
                        }
                        errors++;
                      }
                    }
                    let i2 = data26.length;
                    let j0;
                    if (i2 > 1) {
                      const indices0 = {};
                      for (; i2--; ) {
                        let item0 = data26[i2];
                        if (typeof item0 !== "string") {
                          continue;
                        }
                        if (typeof indices0[item0] == "number") {
                          j0 = indices0[item0];
                          const err56 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/platforms", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/platforms/uniqueItems", keyword: "uniqueItems", params: { i: i2, j: j0 }, message: "must NOT have duplicate items (items ## " + j0 + " and " + i2 + " are identical)" };
                          if (vErrors === null) {
                            vErrors = [err56];
                          } else {
                            vErrors.push(err56);
                          }
                          errors++;
                          break;
                        }
                        indices0[item0] = i2;
                      }
                    }
                  } else {
                    const err57 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/platforms", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/platforms/type", keyword: "type", params: { type: "array" }, message: "must be array" };
                    if (vErrors === null) {
                      vErrors = [err57];
                    } else {
                      vErrors.push(err57);
                    }
                    errors++;
                  }
                }
                if (data22.tags !== void 0) {
                  let data28 = data22.tags;
                  if (Array.isArray(data28)) {
                    const len2 = data28.length;
                    for (let i3 = 0; i3 < len2; i3++) {
                      let data29 = data28[i3];
                      if (typeof data29 === "string") {
                        if (func0(data29) < 1) {
                          const err58 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/tags/" + i3, schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/tags/items/minLength", keyword: "minLength", params: { limit: 1 }, message: "must NOT have fewer than 1 characters" };
                          if (vErrors === null) {
                            vErrors = [err58];
                          } else {
                            vErrors.push(err58);
                          }
                          errors++;
                        }
                      } else {
                        const err59 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/tags/" + i3, schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/tags/items/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                        if (vErrors === null) {
                          vErrors = [err59];
                        } else {
                          vErrors.push(err59);
                        }
                        errors++;
                      }
                    }
                  } else {
                    const err60 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/tags", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/tags/type", keyword: "type", params: { type: "array" }, message: "must be array" };
                    if (vErrors === null) {
                      vErrors = [err60];
                    } else {
                      vErrors.push(err60);
                    }
                    errors++;
                  }
                }
                if (data22["build-args"] !== void 0) {
                  let data30 = data22["build-args"];
                  if (data30 && typeof data30 == "object" && !Array.isArray(data30)) {
                    for (const key10 in data30) {
                      const _errs72 = errors;
                      if (typeof key10 === "string") {
                        if (!pattern1.test(key10)) {
                          const err61 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/build-args", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/build-args/propertyNames/pattern", keyword: "pattern", params: { pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }, message: 'must match pattern "^[A-Za-z_][A-Za-z0-9_]*$"', propertyName: key10 };
                          if (vErrors === null) {
                            vErrors = [err61];
                          } else {
                            vErrors.push(err61);
                          }
                          errors++;
                        }
                      }
                      var valid18 = _errs72 === errors;
                      if (!valid18) {
                        const err62 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/build-args", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/build-args/propertyNames", keyword: "propertyNames", params: { propertyName: key10 }, message: "property name must be valid" };
                        if (vErrors === null) {
                          vErrors = [err62];
                        } else {
                          vErrors.push(err62);
                        }
                        errors++;
                      }
                    }
                    for (const key11 in data30) {
                      let data31 = data30[key11];
                      if (typeof data31 !== "string" && !(typeof data31 == "number" && isFinite(data31)) && typeof data31 !== "boolean") {
                        const err63 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/build-args/" + key11.replace(/~/g, "~0").replace(/\//g, "~1"), schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/build-args/additionalProperties/type", keyword: "type", params: { type: schema0.properties.invocations.additionalProperties.properties.docker.properties["build-args"].additionalProperties.type }, message: "must be string,number,boolean" };
                        if (vErrors === null) {
                          vErrors = [err63];
                        } else {
                          vErrors.push(err63);
                        }
                        errors++;
                      }
                    }
                  } else {
                    const err64 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/build-args", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/build-args/type", keyword: "type", params: { type: "object" }, message: "must be object" };
                    if (vErrors === null) {
                      vErrors = [err64];
                    } else {
                      vErrors.push(err64);
                    }
                    errors++;
                  }
                }
                if (data22.push !== void 0) {
                  if (typeof data22.push !== "boolean") {
                    const err65 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/push", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/push/type", keyword: "type", params: { type: "boolean" }, message: "must be boolean" };
                    if (vErrors === null) {
                      vErrors = [err65];
                    } else {
                      vErrors.push(err65);
                    }
                    errors++;
                  }
                }
                if (data22.network !== void 0) {
                  let data33 = data22.network;
                  if (!(data33 === "default" || data33 === "host" || data33 === "none")) {
                    const err66 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker/network", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/properties/network/enum", keyword: "enum", params: { allowedValues: schema0.properties.invocations.additionalProperties.properties.docker.properties.network.enum }, message: "must be equal to one of the allowed values" };
                    if (vErrors === null) {
                      vErrors = [err66];
                    } else {
                      vErrors.push(err66);
                    }
                    errors++;
                  }
                }
              } else {
                const err67 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/docker", schemaPath: "#/properties/invocations/additionalProperties/properties/docker/type", keyword: "type", params: { type: "object" }, message: "must be object" };
                if (vErrors === null) {
                  vErrors = [err67];
                } else {
                  vErrors.push(err67);
                }
                errors++;
              }
            }
            if (data20.inputs !== void 0) {
              let data34 = data20.inputs;
              if (Array.isArray(data34)) {
                const len3 = data34.length;
                for (let i4 = 0; i4 < len3; i4++) {
                  let data35 = data34[i4];
                  if (typeof data35 === "string") {
                    if (func0(data35) < 1) {
                      const err68 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/inputs/" + i4, schemaPath: "#/properties/invocations/additionalProperties/properties/inputs/items/minLength", keyword: "minLength", params: { limit: 1 }, message: "must NOT have fewer than 1 characters" };
                      if (vErrors === null) {
                        vErrors = [err68];
                      } else {
                        vErrors.push(err68);
                      }
                      errors++;
                    }
                  } else {
                    const err69 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/inputs/" + i4, schemaPath: "#/properties/invocations/additionalProperties/properties/inputs/items/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                    if (vErrors === null) {
                      vErrors = [err69];
                    } else {
                      vErrors.push(err69);
                    }
                    errors++;
                  }
                }
              } else {
                const err70 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/inputs", schemaPath: "#/properties/invocations/additionalProperties/properties/inputs/type", keyword: "type", params: { type: "array" }, message: "must be array" };
                if (vErrors === null) {
                  vErrors = [err70];
                } else {
                  vErrors.push(err70);
                }
                errors++;
              }
            }
            if (data20.outputs !== void 0) {
              let data36 = data20.outputs;
              if (Array.isArray(data36)) {
                const len4 = data36.length;
                for (let i5 = 0; i5 < len4; i5++) {
                  let data37 = data36[i5];
                  if (typeof data37 === "string") {
                    if (func0(data37) < 1) {
                      const err71 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/outputs/" + i5, schemaPath: "#/properties/invocations/additionalProperties/properties/outputs/items/minLength", keyword: "minLength", params: { limit: 1 }, message: "must NOT have fewer than 1 characters" };
                      if (vErrors === null) {
                        vErrors = [err71];
                      } else {
                        vErrors.push(err71);
                      }
                      errors++;
                    }
                  } else {
                    const err72 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/outputs/" + i5, schemaPath: "#/properties/invocations/additionalProperties/properties/outputs/items/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                    if (vErrors === null) {
                      vErrors = [err72];
                    } else {
                      vErrors.push(err72);
                    }
                    errors++;
                  }
                }
              } else {
                const err73 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/outputs", schemaPath: "#/properties/invocations/additionalProperties/properties/outputs/type", keyword: "type", params: { type: "array" }, message: "must be array" };
                if (vErrors === null) {
                  vErrors = [err73];
                } else {
                  vErrors.push(err73);
                }
                errors++;
              }
            }
            if (data20.needs !== void 0) {
              let data38 = data20.needs;
              if (Array.isArray(data38)) {
                const len5 = data38.length;
                for (let i6 = 0; i6 < len5; i6++) {
                  let data39 = data38[i6];
                  if (typeof data39 === "string") {
                    if (func0(data39) < 1) {
                      const err74 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/needs/" + i6, schemaPath: "#/properties/invocations/additionalProperties/properties/needs/items/minLength", keyword: "minLength", params: { limit: 1 }, message: "must NOT have fewer than 1 characters" };
                      if (vErrors === null) {
                        vErrors = [err74];
                      } else {
                        vErrors.push(err74);
                      }
                      errors++;
                    }
                  } else {
                    const err75 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/needs/" + i6, schemaPath: "#/properties/invocations/additionalProperties/properties/needs/items/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                    if (vErrors === null) {
                      vErrors = [err75];
                    } else {
                      vErrors.push(err75);
                    }
                    errors++;
                  }
                }
                let i7 = data38.length;
                let j1;
                if (i7 > 1) {
                  const indices1 = {};
                  for (; i7--; ) {
                    let item1 = data38[i7];
                    if (typeof item1 !== "string") {
                      continue;
                    }
                    if (typeof indices1[item1] == "number") {
                      j1 = indices1[item1];
                      const err76 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/needs", schemaPath: "#/properties/invocations/additionalProperties/properties/needs/uniqueItems", keyword: "uniqueItems", params: { i: i7, j: j1 }, message: "must NOT have duplicate items (items ## " + j1 + " and " + i7 + " are identical)" };
                      if (vErrors === null) {
                        vErrors = [err76];
                      } else {
                        vErrors.push(err76);
                      }
                      errors++;
                      break;
                    }
                    indices1[item1] = i7;
                  }
                }
              } else {
                const err77 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/needs", schemaPath: "#/properties/invocations/additionalProperties/properties/needs/type", keyword: "type", params: { type: "array" }, message: "must be array" };
                if (vErrors === null) {
                  vErrors = [err77];
                } else {
                  vErrors.push(err77);
                }
                errors++;
              }
            }
            if (data20.export !== void 0) {
              if (typeof data20.export !== "boolean") {
                const err78 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/export", schemaPath: "#/properties/invocations/additionalProperties/properties/export/type", keyword: "type", params: { type: "boolean" }, message: "must be boolean" };
                if (vErrors === null) {
                  vErrors = [err78];
                } else {
                  vErrors.push(err78);
                }
                errors++;
              }
            }
            if (data20.env !== void 0) {
              let data41 = data20.env;
              if (data41 && typeof data41 == "object" && !Array.isArray(data41)) {
                for (const key12 in data41) {
                  const _errs95 = errors;
                  if (typeof key12 === "string") {
                    if (!pattern1.test(key12)) {
                      const err79 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/env", schemaPath: "#/properties/invocations/additionalProperties/properties/env/propertyNames/pattern", keyword: "pattern", params: { pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }, message: 'must match pattern "^[A-Za-z_][A-Za-z0-9_]*$"', propertyName: key12 };
                      if (vErrors === null) {
                        vErrors = [err79];
                      } else {
                        vErrors.push(err79);
                      }
                      errors++;
                    }
                  }
                  var valid27 = _errs95 === errors;
                  if (!valid27) {
                    const err80 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/env", schemaPath: "#/properties/invocations/additionalProperties/properties/env/propertyNames", keyword: "propertyNames", params: { propertyName: key12 }, message: "property name must be valid" };
                    if (vErrors === null) {
                      vErrors = [err80];
                    } else {
                      vErrors.push(err80);
                    }
                    errors++;
                  }
                }
                for (const key13 in data41) {
                  let data42 = data41[key13];
                  if (typeof data42 !== "string" && !(typeof data42 == "number" && isFinite(data42)) && typeof data42 !== "boolean") {
                    const err81 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/env/" + key13.replace(/~/g, "~0").replace(/\//g, "~1"), schemaPath: "#/properties/invocations/additionalProperties/properties/env/additionalProperties/type", keyword: "type", params: { type: schema0.properties.invocations.additionalProperties.properties.env.additionalProperties.type }, message: "must be string,number,boolean" };
                    if (vErrors === null) {
                      vErrors = [err81];
                    } else {
                      vErrors.push(err81);
                    }
                    errors++;
                  }
                }
              } else {
                const err82 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/env", schemaPath: "#/properties/invocations/additionalProperties/properties/env/type", keyword: "type", params: { type: "object" }, message: "must be object" };
                if (vErrors === null) {
                  vErrors = [err82];
                } else {
                  vErrors.push(err82);
                }
                errors++;
              }
            }
            if (data20.platform !== void 0) {
              let data43 = data20.platform;
              if (typeof data43 === "string") {
                if (!pattern4.test(data43)) {
                  const err83 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/platform", schemaPath: "#/properties/invocations/additionalProperties/properties/platform/pattern", keyword: "pattern", params: { pattern: "^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$" }, message: 'must match pattern "^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$"' };
                  if (vErrors === null) {
                    vErrors = [err83];
                  } else {
                    vErrors.push(err83);
                  }
                  errors++;
                }
              } else {
                const err84 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/platform", schemaPath: "#/properties/invocations/additionalProperties/properties/platform/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                if (vErrors === null) {
                  vErrors = [err84];
                } else {
                  vErrors.push(err84);
                }
                errors++;
              }
            }
            if (data20.labels !== void 0) {
              let data44 = data20.labels;
              if (Array.isArray(data44)) {
                const len6 = data44.length;
                for (let i8 = 0; i8 < len6; i8++) {
                  let data45 = data44[i8];
                  if (typeof data45 === "string") {
                    if (func0(data45) < 1) {
                      const err85 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/labels/" + i8, schemaPath: "#/properties/invocations/additionalProperties/properties/labels/items/minLength", keyword: "minLength", params: { limit: 1 }, message: "must NOT have fewer than 1 characters" };
                      if (vErrors === null) {
                        vErrors = [err85];
                      } else {
                        vErrors.push(err85);
                      }
                      errors++;
                    }
                  } else {
                    const err86 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/labels/" + i8, schemaPath: "#/properties/invocations/additionalProperties/properties/labels/items/type", keyword: "type", params: { type: "string" }, message: "must be string" };
                    if (vErrors === null) {
                      vErrors = [err86];
                    } else {
                      vErrors.push(err86);
                    }
                    errors++;
                  }
                }
                let i9 = data44.length;
                let j2;
                if (i9 > 1) {
                  const indices2 = {};
                  for (; i9--; ) {
                    let item2 = data44[i9];
                    if (typeof item2 !== "string") {
                      continue;
                    }
                    if (typeof indices2[item2] == "number") {
                      j2 = indices2[item2];
                      const err87 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/labels", schemaPath: "#/properties/invocations/additionalProperties/properties/labels/uniqueItems", keyword: "uniqueItems", params: { i: i9, j: j2 }, message: "must NOT have duplicate items (items ## " + j2 + " and " + i9 + " are identical)" };
                      if (vErrors === null) {
                        vErrors = [err87];
                      } else {
                        vErrors.push(err87);
                      }
                      errors++;
                      break;
                    }
                    indices2[item2] = i9;
                  }
                }
              } else {
                const err88 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/labels", schemaPath: "#/properties/invocations/additionalProperties/properties/labels/type", keyword: "type", params: { type: "array" }, message: "must be array" };
                if (vErrors === null) {
                  vErrors = [err88];
                } else {
                  vErrors.push(err88);
                }
                errors++;
              }
            }
            if (data20.timeout !== void 0) {
              let data46 = data20.timeout;
              if (!(typeof data46 == "number" && isFinite(data46)) && typeof data46 !== "string") {
                const err89 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/timeout", schemaPath: "#/properties/invocations/additionalProperties/properties/timeout/type", keyword: "type", params: { type: schema0.properties.invocations.additionalProperties.properties.timeout.type }, message: "must be number,string" };
                if (vErrors === null) {
                  vErrors = [err89];
                } else {
                  vErrors.push(err89);
                }
                errors++;
              }
              if (typeof data46 == "number" && isFinite(data46)) {
                if (data46 <= 0 || isNaN(data46)) {
                  const err90 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/timeout", schemaPath: "#/properties/invocations/additionalProperties/properties/timeout/exclusiveMinimum", keyword: "exclusiveMinimum", params: { comparison: ">", limit: 0 }, message: "must be > 0" };
                  if (vErrors === null) {
                    vErrors = [err90];
                  } else {
                    vErrors.push(err90);
                  }
                  errors++;
                }
              }
              if (typeof data46 === "string") {
                if (!pattern0.test(data46)) {
                  const err91 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/timeout", schemaPath: "#/properties/invocations/additionalProperties/properties/timeout/pattern", keyword: "pattern", params: { pattern: "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" }, message: 'must match pattern "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$"' };
                  if (vErrors === null) {
                    vErrors = [err91];
                  } else {
                    vErrors.push(err91);
                  }
                  errors++;
                }
              }
            }
            if (data20.estimate !== void 0) {
              let data47 = data20.estimate;
              if (!(typeof data47 == "number" && isFinite(data47)) && typeof data47 !== "string") {
                const err92 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/estimate", schemaPath: "#/properties/invocations/additionalProperties/properties/estimate/type", keyword: "type", params: { type: schema0.properties.invocations.additionalProperties.properties.estimate.type }, message: "must be number,string" };
                if (vErrors === null) {
                  vErrors = [err92];
                } else {
                  vErrors.push(err92);
                }
                errors++;
              }
              if (typeof data47 == "number" && isFinite(data47)) {
                if (data47 <= 0 || isNaN(data47)) {
                  const err93 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/estimate", schemaPath: "#/properties/invocations/additionalProperties/properties/estimate/exclusiveMinimum", keyword: "exclusiveMinimum", params: { comparison: ">", limit: 0 }, message: "must be > 0" };
                  if (vErrors === null) {
                    vErrors = [err93];
                  } else {
                    vErrors.push(err93);
                  }
                  errors++;
                }
              }
              if (typeof data47 === "string") {
                if (!pattern0.test(data47)) {
                  const err94 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1") + "/estimate", schemaPath: "#/properties/invocations/additionalProperties/properties/estimate/pattern", keyword: "pattern", params: { pattern: "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" }, message: 'must match pattern "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$"' };
                  if (vErrors === null) {
                    vErrors = [err94];
                  } else {
                    vErrors.push(err94);
                  }
                  errors++;
                }
              }
            }
          } else {
            const err95 = { instancePath: instancePath + "/invocations/" + key7.replace(/~/g, "~0").replace(/\//g, "~1"), schemaPath: "#/properties/invocations/additionalProperties/type", keyword: "type", params: { type: "object" }, message: "must be object" };
            if (vErrors === null) {
              vErrors = [err95];
            } else {
              vErrors.push(err95);
            }
            errors++;
          }
        }
      } else {
        const err96 = { instancePath: instancePath + "/invocations", schemaPath: "#/properties/invocations/type", keyword: "type", params: { type: "object" }, message: "must be object" };
        if (vErrors === null) {
          vErrors = [err96];
        } else {
          vErrors.push(err96);
        }
        errors++;
      }
    }
  } else {
    const err97 = { instancePath, schemaPath: "#/type", keyword: "type", params: { type: "object" }, message: "must be object" };
    if (vErrors === null) {
      vErrors = [err97];
    } else {
      vErrors.push(err97);
    }
    errors++;
  }
  validate0.errors = vErrors;
  return errors === 0;
}

// src/config/load.ts
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, visit } from "yaml";

// src/config/schema.ts
init_size();
var DURATION_PATTERN = "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$";
var PLATFORM_PATTERN = "^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$";
var ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$";
var STORE_TYPES = ["local", "gha", "registry"];
var PATTERN_TEXT = {
  [SIZE_PATTERN]: 'a size: bytes as a number, or a string such as "500MB", "10GiB"',
  [DURATION_PATTERN]: 'seconds as a number, or a string such as "90s", "10m", "1.5h"',
  [PLATFORM_PATTERN]: "a platform os/arch[/variant], e.g. linux/amd64 or linux/arm/v7",
  [ENV_NAME_PATTERN]: 'an environment variable name (letters, digits, "_"; not starting with a digit)'
};
var size = {
  type: ["integer", "string"],
  minimum: 1,
  pattern: SIZE_PATTERN,
  description: 'bytes as a number, or a string such as "500MB", "10GiB" (KB = 1000, KiB = 1024)'
};
var duration = {
  type: ["number", "string"],
  exclusiveMinimum: 0,
  pattern: DURATION_PATTERN,
  description: 'seconds as a number, or a string such as "90s", "10m", "1.5h"'
};
var stringList = (description) => ({ type: "array", items: { type: "string", minLength: 1 }, description });
var env = {
  type: "object",
  description: "Environment variables; values are strings (numbers and booleans are converted).",
  propertyNames: { pattern: ENV_NAME_PATTERN },
  additionalProperties: { type: ["string", "number", "boolean"] }
};
var platform = {
  type: "string",
  pattern: PLATFORM_PATTERN,
  description: "a platform os/arch[/variant], e.g. linux/amd64 or linux/arm/v7"
};
var configSchema = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: "https://github.com/dist-build/dist-build/schema/dist-build.schema.json",
  title: "dist-build.yml",
  description: "Build invocations that dist-build places on workers with consistent hashing.",
  type: "object",
  additionalProperties: false,
  required: ["version", "invocations"],
  properties: {
    version: { const: 1, description: "Format version; always 1." },
    workers: {
      type: "object",
      additionalProperties: false,
      description: "Matrix size rule: clamp(ceil(invocations / max-per-worker), min, max) workers when none are given.",
      properties: {
        min: { type: "integer", minimum: 1, default: 1 },
        max: { type: "integer", minimum: 1, maximum: 256, default: 16 },
        "max-per-worker": { type: "integer", minimum: 1, default: 20 }
      }
    },
    placement: {
      type: "object",
      additionalProperties: false,
      properties: {
        balance: {
          type: "number",
          minimum: 1,
          maximum: 10,
          default: 1.1,
          description: "Capacity factor: a worker takes at most balance x max(total / workers, longest) seconds of expected work."
        },
        "default-duration": {
          ...duration,
          default: 60,
          description: "Expected duration of an invocation with neither history nor estimate."
        }
      }
    },
    env,
    cache: {
      type: "object",
      additionalProperties: false,
      description: "Where workers keep build results.",
      properties: {
        stores: {
          type: "array",
          minItems: 1,
          default: [{ type: "local" }],
          description: "Cache stores, fastest first: reads fall through in this order and copy hits into the faster stores; writes go to all.",
          items: {
            type: "object",
            required: ["type"],
            description: "One store; options other than type belong to its backend and are checked by it.",
            properties: {
              type: { enum: [...STORE_TYPES], description: "The backend." },
              dir: {
                type: "string",
                minLength: 1,
                description: "local: the store directory, relative to the config directory (default .dist-build/cache)."
              },
              "max-size": {
                ...size,
                description: "local: cap on the bytes of blobs; least recently used entries are evicted beyond it."
              }
            },
            additionalProperties: true
          }
        },
        sign: {
          type: "object",
          additionalProperties: false,
          description: "Sign results with HMAC-SHA256; when the secret is set, unsigned or badly signed results are misses.",
          properties: {
            "secret-env": {
              type: "string",
              pattern: ENV_NAME_PATTERN,
              default: "DIST_BUILD_CACHE_SECRET",
              description: "Environment variable holding the secret."
            },
            required: {
              type: "boolean",
              default: false,
              description: "Fail instead of running unsigned when the secret variable is not set."
            }
          }
        }
      }
    },
    invocations: {
      type: "object",
      minProperties: 1,
      description: "Build invocations by name.",
      additionalProperties: {
        type: "object",
        additionalProperties: false,
        properties: {
          run: {
            type: "string",
            minLength: 1,
            description: "Shell command, run in the config directory."
          },
          docker: {
            type: "object",
            additionalProperties: false,
            required: ["context"],
            description: "A Docker/BuildKit image build.",
            properties: {
              context: { type: "string", minLength: 1 },
              file: {
                type: "string",
                minLength: 1,
                description: "Dockerfile (default: <context>/Dockerfile)."
              },
              target: { type: "string", minLength: 1 },
              platforms: { type: "array", items: platform, uniqueItems: true },
              tags: stringList("Image references the built image is tagged with."),
              "build-args": env,
              push: {
                type: "boolean",
                default: false,
                description: "Push the image to its tags at the end of the run, from the worker that holds it. Not part of the cache key."
              },
              network: {
                enum: ["default", "host", "none"],
                description: "Network of RUN steps (docker build --network): default, host or none. Not part of the cache key."
              }
            }
          },
          inputs: stringList(
            "Globs (relative to the config directory) whose contents make up the cache key."
          ),
          outputs: stringList("Files or directories saved to the cache and exported."),
          needs: { ...stringList("Invocations whose outputs this one needs."), uniqueItems: true },
          export: { type: "boolean", default: false, description: "A final artifact of the run." },
          env,
          platform: {
            ...platform,
            description: "Only workers of this platform may take the invocation."
          },
          labels: {
            ...stringList("Only workers with all these labels may take the invocation."),
            uniqueItems: true
          },
          timeout: { ...duration, default: 3600 },
          estimate: { ...duration, description: "Expected duration, used until history exists." }
        }
      }
    }
  }
};

// src/config/errors.ts
function formatIssue(i) {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.col}` : i.file;
  return `${where}: ${i.path ? `${i.path}: ` : ""}${i.message}`;
}
var ConfigError = class extends Error {
  issues;
  constructor(issues) {
    const sorted = [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
    const n = sorted.length;
    super(
      `${n} problem${n === 1 ? "" : "s"} in ${sorted[0]?.file ?? "config"}:
` + sorted.map((i) => `  ${formatIssue(i)}`).join("\n")
    );
    this.name = "ConfigError";
    this.issues = sorted;
  }
};

// src/config/duration.ts
var UNITS2 = { ms: 1e-3, s: 1, m: 60, h: 3600 };
var MAX_DURATION_S = 576 * 3600;
function parseDuration(value) {
  let seconds;
  if (typeof value === "number") seconds = value;
  else {
    const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value);
    if (!m)
      throw new Error(
        `invalid duration "${value}": expected seconds or a number with ms, s, m or h`
      );
    seconds = Number(m[1]) * UNITS2[m[2]];
  }
  if (!(seconds <= MAX_DURATION_S))
    throw new Error(
      `invalid duration ${typeof value === "number" ? value : `"${value}"`}: expected at most 576h (24 days)`
    );
  return seconds;
}
function formatDuration(seconds) {
  if (seconds < 1) return `${Math.round(seconds * 1e3)}ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}m`;
}

// src/config/load.ts
init_size();

// src/config/types.ts
var WORKER_ENV = [
  "DIST_BUILD_WORKER",
  "DIST_BUILD_UNIT",
  "DIST_BUILD_CACHE_KEY"
];
var LABEL = /^[^\s,]+$/;

// src/config/load.ts
var validator = schema_validator_generated_default;
function validateSchema(value) {
  return validator(value) ? [] : validator.errors ?? [];
}
var Locator = class {
  constructor(file, text) {
    this.file = file;
    this.doc = parseDocument(text, {
      lineCounter: this.lines,
      prettyErrors: false,
      // Duplicates are found by normalizeKeys, in one pass (this check is quadratic: 20,000
      // invocations took 19 s), after `1:` and `"1":` have become the same name.
      uniqueKeys: false
    });
  }
  file;
  lines = new LineCounter();
  doc;
  pos(offset) {
    if (offset === void 0) return { line: 0, col: 0 };
    return this.lines.linePos(offset);
  }
  /** The value node at `path`, or the deepest existing ancestor. */
  node(path) {
    for (let n = path.length; n >= 0; n--) {
      const found = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      if (found && typeof found === "object" && "range" in found)
        return found;
    }
    return void 0;
  }
  /** Position of the key `key` inside the map at `path` (for unknown keys), else of the map. */
  issueAtKey(path, key, message2) {
    const map = this.node(path);
    if (map && isMap(map)) {
      const pair = map.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key
      );
      const keyNode = pair?.key;
      if (keyNode?.range) return this.issue([...path, key], message2, keyNode.range[0]);
    }
    return this.issueAt([...path, key], message2);
  }
  issueAt(path, message2) {
    return this.issue(path, message2, this.node(path)?.range?.[0]);
  }
  issue(path, message2, offset) {
    return { file: this.file, ...this.pos(offset), path: formatPath(path), message: message2 };
  }
  yamlErrors() {
    const tags = this.doc.warnings.filter((w) => w.code === "TAG_RESOLVE_FAILED");
    return [...this.doc.errors, ...tags].map((e) => ({
      file: this.file,
      ...this.pos(e.pos[0]),
      path: "",
      message: e.code === "MULTIPLE_DOCS" ? (
        // the parser's text tells a programmer to call parseAllDocuments()
        'a second YAML document starts here ("---"); expected one document'
      ) : e.code === "TAG_RESOLVE_FAILED" ? `${e.message.split("\n")[0].replace(/^Unresolved tag: (\S+).*$/, "unresolved YAML tag $1").replace("tag:yaml.org,2002:", "!!")}: dist-build.yml takes plain values` : shortenQuotes(e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, ""))
    }));
  }
};
function formatPath(path) {
  return path.map(
    (s, i) => typeof s === "number" ? `[${s}]` : /^[A-Za-z0-9_-]+$/.test(s) ? `${i ? "." : ""}${s}` : `[${JSON.stringify(s)}]`
  ).join("");
}
function pointerToPath(pointer, value) {
  if (!pointer) return [];
  const out = [];
  let cur = value;
  for (const raw of pointer.slice(1).split("/")) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const key = Array.isArray(cur) && /^\d+$/.test(seg) ? Number(seg) : seg;
    out.push(key);
    cur = cur && typeof cur === "object" ? cur[String(key)] : void 0;
  }
  return out;
}
function quoteShort(text) {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}
function shortenQuotes(message2) {
  return message2.replace(/"(?:[^"\\]|\\.)*"/g, (q) => {
    try {
      return quoteShort(JSON.parse(q));
    } catch {
      return q;
    }
  });
}
function typeName(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `string ${quoteShort(v)}`;
  return `${typeof v} ${String(v)}`;
}
function schemaAt(path) {
  let s = configSchema;
  for (const seg of path) {
    if (!s) return void 0;
    const props = s.properties;
    if (typeof seg === "number") s = s.items;
    else if (props && seg in props) s = props[seg];
    else
      s = typeof s.additionalProperties === "object" ? s.additionalProperties : void 0;
  }
  return s;
}
function describeSchemaError(e, value, loc, data) {
  const path = pointerToPath(e.instancePath, data);
  const p = e.params;
  if (e.propertyName !== void 0) {
    const what = e.keyword === "pattern" ? `: expected ${PATTERN_TEXT[String(p.pattern)] ?? String(p.pattern)}` : "";
    return loc.issueAtKey(path, e.propertyName, `invalid name "${e.propertyName}"${what}`);
  }
  switch (e.keyword) {
    case "additionalProperties": {
      const key = String(p.additionalProperty);
      const known = Object.keys(schemaAt(path)?.properties ?? {});
      const hint = known.length ? `; expected one of: ${known.join(", ")}` : "";
      return loc.issueAtKey(path, key, `unknown key "${key}"${didYouMean(key, known)}${hint}`);
    }
    case "required":
      return loc.issueAt(path, `missing required key "${String(p.missingProperty)}"`);
    case "type": {
      const types = (Array.isArray(p.type) ? p.type : String(p.type).split(",")).map(
        (t) => t === "object" ? "a mapping" : t === "array" ? "a list" : String(t)
      );
      const expected = types.length > 1 ? `${types.slice(0, -1).join(", ")} or ${types.at(-1)}` : types[0];
      return loc.issueAt(path, `expected ${expected}, got ${typeName(value)}`);
    }
    case "minLength":
      return loc.issueAt(path, "expected a non-empty string");
    case "const":
      return loc.issueAt(
        path,
        `expected ${JSON.stringify(p.allowedValue)}, got ${typeName(value)}`
      );
    case "enum": {
      const allowed = p.allowedValues.map(String);
      const hint = typeof value === "string" ? didYouMean(value, allowed) : "";
      return loc.issueAt(
        path,
        `got ${typeName(value)}${hint}; expected one of: ${allowed.join(", ")}`
      );
    }
    case "pattern": {
      const what = PATTERN_TEXT[String(p.pattern)] ?? `a string matching ${String(p.pattern)}`;
      return loc.issueAt(path, `got ${typeName(value)}; expected ${what}`);
    }
    case "uniqueItems":
      return loc.issueAt(
        path,
        `items must be unique (items ${String(p.j)} and ${String(p.i)} are equal)`
      );
    case "minProperties":
      return loc.issueAt(path, "expected at least one entry");
    case "minItems": {
      const n = value.length;
      const limit = Number(p.limit);
      return loc.issueAt(
        path,
        `expected at least ${limit} ${limit === 1 ? "entry" : "entries"}, got ${n === 0 ? "an empty list" : n}`
      );
    }
    default:
      return loc.issueAt(
        path,
        `${e.message ?? "invalid"}${value === void 0 ? "" : `, got ${typeName(value)}`}`
      );
  }
}
var NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
function levenshtein(a, b) {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}
function didYouMean(word, options) {
  let best;
  let bestD = Infinity;
  for (const o of options) {
    const d = levenshtein(word, o);
    if (d < bestD) [best, bestD] = [o, d];
  }
  return best !== void 0 && bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : "";
}
function cleanRelative(p) {
  if (p.startsWith("/") || /^[A-Za-z]:[\\/]/.test(p) || p.includes("\\")) return void 0;
  const n = posix.normalize(p).replace(/\/+$/, "");
  if (n === ".." || n.startsWith("../")) return void 0;
  return n === "" ? "." : n;
}
function toEnv(raw) {
  const out = {};
  for (const [k, v] of Object.entries(raw ?? {})) out[k] = String(v);
  return out;
}
function findCycles(needs) {
  const state = /* @__PURE__ */ new Map();
  const stack = [];
  const cycles = [];
  const visit3 = (n) => {
    state.set(n, 1);
    stack.push(n);
    for (const m of needs.get(n) ?? []) {
      if (!needs.has(m) || m === n) continue;
      if (state.get(m) === 1) cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit3(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of needs.keys()) if (!state.has(n)) visit3(n);
  return cycles;
}
function normalizeKeys(loc) {
  const issues = [];
  visit(loc.doc, {
    Map(_, map, ancestors) {
      const path = keyPath(ancestors, map);
      const seen = /* @__PURE__ */ new Map();
      for (const pair of map.items) {
        const key = pair.key;
        if (!isScalar(key)) {
          const at = key?.range?.[0] ?? map.range?.[0];
          issues.push(
            loc.issue(path, "a key must be a plain name, not a list, mapping or alias", at)
          );
          continue;
        }
        if (key.type === "PLAIN" && key.value === "<<") {
          issues.push(
            loc.issue(
              path,
              'YAML merge keys ("<<") are not supported: write the keys out (an alias such as *name can stand for a whole value)',
              key.range?.[0]
            )
          );
          continue;
        }
        if (typeof key.value !== "string") key.value = key.source ?? String(key.value);
        const name = key.value;
        if (!seen.has(name)) {
          seen.set(name, key.range?.[0]);
          continue;
        }
        const first = loc.pos(seen.get(name)).line;
        issues.push(
          loc.issue(
            [...path, name],
            `duplicate key "${name}" (first at line ${first})`,
            key.range?.[0]
          )
        );
      }
    }
  });
  return issues;
}
function keyPath(ancestors, node) {
  const path = [];
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const a = chain[i];
    const next = chain[i + 1];
    if (isPair(a) && isScalar(a.key)) path.push(String(a.key.value));
    else if (isSeq(a)) path.push(a.items.indexOf(next));
  }
  return path;
}
function keepEnvSource(loc) {
  const entry = (map, key) => isMap(map) ? map.items.find((p) => isScalar(p.key) && p.key.value === key)?.value : void 0;
  const maps = [entry(loc.doc.contents, "env")];
  const invocations = entry(loc.doc.contents, "invocations");
  if (isMap(invocations)) {
    for (const { value } of invocations.items) {
      maps.push(entry(value, "env"), entry(entry(value, "docker"), "build-args"));
    }
  }
  for (const map of maps) {
    if (!isMap(map)) continue;
    for (const { value: v } of map.items) {
      if (isScalar(v) && typeof v.value === "number" && v.source !== void 0) v.value = v.source;
    }
  }
}
function toData(loc) {
  try {
    return loc.doc.toJS({ maxAliasCount: 1e3 });
  } catch (err) {
    let at;
    visit(loc.doc, {
      Alias(_, alias) {
        at = alias.range?.[0];
        return visit.BREAK;
      }
    });
    throw new ConfigError([loc.issue([], err.message, at)]);
  }
}
function parseConfig(text, file, display = file) {
  const loc = new Locator(display, text);
  const yamlIssues = loc.yamlErrors();
  if (yamlIssues.length) throw new ConfigError(yamlIssues);
  const keyIssues = normalizeKeys(loc);
  if (keyIssues.length) throw new ConfigError(keyIssues);
  keepEnvSource(loc);
  const data = toData(loc);
  if (data === null || data === void 0) {
    throw new ConfigError([
      {
        file: display,
        line: 1,
        col: 1,
        path: "",
        message: "the file is empty; expected a mapping with version and invocations"
      }
    ]);
  }
  const schemaErrors = validateSchema(data);
  if (schemaErrors.length) {
    const seen = /* @__PURE__ */ new Set();
    const issues = [];
    for (const e of schemaErrors.filter((x) => x.keyword !== "propertyNames")) {
      const value = pointerToPath(e.instancePath, data).reduce(
        (v, s) => v && typeof v === "object" ? v[String(s)] : void 0,
        data
      );
      const issue = describeSchemaError(e, value, loc, data);
      const id = `${issue.path}|${issue.message}`;
      if (seen.has(id)) continue;
      seen.add(id);
      issues.push(issue);
    }
    throw new ConfigError(issues);
  }
  return buildConfig(data, resolve(file), loc);
}
function tagReference(tag) {
  let ref = tag.replace(/^docker\.io\//, "").replace(/^library\//, "");
  if (!ref.includes("@") && !ref.slice(ref.lastIndexOf("/") + 1).includes(":")) ref += ":latest";
  return ref;
}
function buildConfig(raw, file, loc) {
  const issues = [];
  const workersRaw = raw.workers ?? {};
  const placementRaw = raw.placement ?? {};
  const workers = {
    min: workersRaw.min ?? 1,
    max: workersRaw.max ?? 16,
    maxPerWorker: workersRaw["max-per-worker"] ?? 20
  };
  if (workers.min > workers.max) {
    issues.push(
      loc.issueAt(["workers", "min"], `min (${workers.min}) is larger than max (${workers.max})`)
    );
  }
  const checkNul = (path, map) => {
    for (const [k, v] of Object.entries(map ?? {})) {
      if (typeof v === "string" && v.includes("\0"))
        issues.push(loc.issueAt([...path, k], "a value cannot contain a NUL character"));
      if (path.at(-1) === "env" && WORKER_ENV.includes(k))
        issues.push(
          loc.issueAtKey(
            [...path],
            k,
            `${k} is set by the worker for each command (${WORKER_ENV.join(", ")})`
          )
        );
    }
  };
  checkNul(["env"], raw.env);
  const globalEnv = toEnv(raw.env);
  const rawInvocations = raw.invocations;
  const names = Object.keys(rawInvocations);
  const lower = /* @__PURE__ */ new Map();
  const invocations = [];
  const duration2 = (path, v) => {
    if (v === void 0) return void 0;
    try {
      return parseDuration(v);
    } catch (err) {
      issues.push(loc.issueAt(path, err.message));
      return void 0;
    }
  };
  const relPath = (at, p) => {
    const clean = cleanRelative(p);
    if (clean === void 0) {
      issues.push(
        loc.issueAt(
          at,
          `"${p}" must be a relative path inside the config directory (not absolute, no "..", separated by "/")`
        )
      );
    }
    return clean;
  };
  const indexedPaths = (path, list, allowNegation) => (list ?? []).flatMap((p, index) => {
    const neg = allowNegation && p.startsWith("!");
    const clean = relPath([...path, index], neg ? p.slice(1) : p);
    return clean === void 0 ? [] : [{ path: neg ? `!${clean}` : clean, index }];
  });
  const relPaths = (path, list, allowNegation) => indexedPaths(path, list, allowNegation).map((p) => p.path);
  const outputAt = [];
  const tagAt = [];
  for (const name of names) {
    const r = rawInvocations[name];
    const at = (...rest) => ["invocations", name, ...rest];
    if (!NAME_PATTERN.test(name)) {
      issues.push(
        loc.issueAtKey(
          ["invocations"],
          name,
          `invalid invocation name "${name}": expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`
        )
      );
    }
    const other = lower.get(name.toLowerCase());
    if (other !== void 0) {
      issues.push(
        loc.issueAtKey(
          ["invocations"],
          name,
          `invocation name "${name}" differs from "${other}" only by case (names become file names)`
        )
      );
    }
    lower.set(name.toLowerCase(), name);
    if (r.run === void 0 === (r.docker === void 0)) {
      issues.push(
        loc.issueAt(
          at(),
          r.run === void 0 ? 'expected one of "run" or "docker"' : '"run" and "docker" cannot both be set'
        )
      );
    }
    let docker;
    if (r.docker) {
      const d = r.docker;
      const context = relPath(at("docker", "context"), d.context);
      const dockerfile = d.file === void 0 ? void 0 : relPath(at("docker", "file"), d.file);
      if (context !== void 0) {
        docker = {
          context,
          file: dockerfile ?? posix.join(context, "Dockerfile"),
          platforms: d.platforms ?? [],
          tags: d.tags ?? [],
          buildArgs: toEnv(d["build-args"]),
          ...d.target === void 0 ? {} : { target: d.target },
          ...d.network === void 0 ? {} : { network: d.network },
          ...d.push === true ? { push: true } : {}
        };
        docker.tags.forEach((t, i) => tagAt.push([name, t, i]));
        if (d.push === true && !(d.tags ?? []).length)
          issues.push(
            loc.issueAt(
              at("docker", "push"),
              "push: true needs tags (the references the image is pushed to)"
            )
          );
      }
      if (r.platform !== void 0) {
        issues.push(
          loc.issueAt(
            at("platform"),
            "docker invocations take their platforms from docker.platforms"
          )
        );
      }
      if (Array.isArray(r.outputs) && r.outputs.length)
        issues.push(
          loc.issueAt(
            at("outputs"),
            "a docker build writes no files into the work tree: its result is its image (saved as .dist-build/images/<unit>.tar, exported as images/<unit>.tar); files from it come out through a run invocation that needs it"
          )
        );
    }
    const needs = r.needs ?? [];
    needs.forEach((n, i) => {
      if (n === name) issues.push(loc.issueAt(at("needs", i), `"${name}" cannot need itself`));
      else if (!Object.hasOwn(rawInvocations, n)) {
        issues.push(
          loc.issueAt(at("needs", i), `unknown invocation "${n}"${didYouMean(n, names)}`)
        );
      }
    });
    const outputs = indexedPaths(at("outputs"), r.outputs, false);
    const listed = /* @__PURE__ */ new Map();
    for (const o of outputs) {
      if (/[*?]/.test(o.path)) {
        const parts = o.path.split("/");
        const dir = parts.slice(
          0,
          parts.findIndex((s) => /[*?]/.test(s))
        ).join("/");
        issues.push(
          loc.issueAt(
            at("outputs", o.index),
            `output "${o.path}" is a pattern; an output is the path of a file or directory${dir ? ` (such as "${dir}")` : ""}`
          )
        );
        continue;
      }
      if (listed.has(o.path)) {
        issues.push(
          loc.issueAt(
            at("outputs", o.index),
            `"${o.path}" is listed twice (outputs[${listed.get(o.path)}])`
          )
        );
      } else listed.set(o.path, o.index);
      outputAt.push([name, o.path, o.index]);
    }
    const rawInputs = r.inputs ?? [];
    rawInputs.forEach((p, i) => {
      if (p === "!") issues.push(loc.issueAt(at("inputs", i), 'expected a pattern after "!"'));
    });
    if (rawInputs.length > 0 && rawInputs.every((p) => p.startsWith("!") && p !== "!")) {
      issues.push(
        loc.issueAt(
          at("inputs"),
          'only exclusions: a "!pattern" leaves files out of what the other patterns match, and there are none (add one, such as "**")'
        )
      );
    }
    const inv = {
      name,
      inputs: relPaths(at("inputs"), r.inputs, true),
      outputs: [...listed.keys()],
      needs,
      export: r.export ?? false,
      env: { ...globalEnv, ...toEnv(r.env) },
      labels: r.labels ?? [],
      timeout: duration2(at("timeout"), r.timeout) ?? 3600
    };
    inv.labels.forEach((label, i) => {
      if (!LABEL.test(label)) {
        issues.push(
          loc.issueAt(
            at("labels", i),
            `label ${JSON.stringify(label)} can never match: a worker's labels have no spaces or commas (one label per item)`
          )
        );
      }
    });
    checkNul(at("env"), r.env);
    checkNul(at("docker", "build-args"), r.docker?.["build-args"]);
    if (r.run !== void 0) {
      inv.run = r.run;
      if (inv.run.includes("\0")) {
        issues.push(loc.issueAt(at("run"), "a command cannot contain a NUL character"));
      }
    }
    if (inv.timeout === 0) {
      issues.push(loc.issueAt(at("timeout"), "expected a timeout longer than 0 s"));
    }
    if (docker) inv.docker = docker;
    if (r.platform !== void 0) inv.platform = r.platform;
    const estimate = duration2(at("estimate"), r.estimate);
    if (estimate === 0) {
      issues.push(loc.issueAt(at("estimate"), "expected an estimate longer than 0 s"));
    }
    if (estimate !== void 0) inv.estimate = estimate;
    invocations.push(inv);
  }
  const exact = /* @__PURE__ */ new Map();
  const below = /* @__PURE__ */ new Map();
  for (const [name, path, index] of outputAt) {
    const parts = path.split("/");
    let clash;
    for (let k = 1; k <= parts.length && !clash; k++) {
      const e = exact.get(parts.slice(0, k).join("/"));
      if (e && e.name !== name) clash = e;
    }
    const under = below.get(path);
    if (!clash && under && under.name !== name) clash = under;
    if (clash) {
      issues.push(
        loc.issueAt(
          ["invocations", name, "outputs", index],
          `output "${path}" overlaps output "${clash.path}" of invocation "${clash.name}"`
        )
      );
    }
    if (!exact.has(path)) exact.set(path, { name, path });
    for (let k = 1; k < parts.length; k++) {
      const parent = parts.slice(0, k).join("/");
      if (!below.has(parent)) below.set(parent, { name, path });
    }
  }
  const tagged = /* @__PURE__ */ new Map();
  for (const [name, tag, index] of tagAt) {
    const ref = tagReference(tag);
    const other = tagged.get(ref);
    if (other !== void 0 && other !== name)
      issues.push(
        loc.issueAt(
          ["invocations", name, "docker", "tags", index],
          `tag "${tag}" is also a tag of invocation "${other}" (each build saves the image its tags name)`
        )
      );
    else tagged.set(ref, name);
  }
  const cycles = findCycles(new Map(invocations.map((i) => [i.name, i.needs])));
  for (const cycle of cycles) {
    const [from, to] = [cycle[0], cycle[1]];
    const index = rawInvocations[from].needs ? rawInvocations[from].needs.indexOf(to) : 0;
    issues.push(
      loc.issueAt(["invocations", from, "needs", index], `needs cycle: ${cycle.join(" -> ")}`)
    );
  }
  const cache = buildCache(raw.cache, loc, issues);
  const own = [
    { path: ".dist-build", what: "dist-build's own directory (its cache, index and run state)" },
    { path: basename(file), what: "the config file" },
    { path: ".git", what: "the repository's .git directory" },
    ...cache.stores.flatMap((store) => {
      const dir = typeof store.dir === "string" ? cleanRelative(
        relative(dirname(file), resolve(dirname(file), store.dir)).split(sep).join("/")
      ) : void 0;
      return dir && dir !== "." ? [{ path: dir, what: `the local store's directory "${dir}"` }] : [];
    })
  ];
  for (const [name, path, index] of outputAt) {
    if (path === ".") {
      issues.push(
        loc.issueAt(
          ["invocations", name, "outputs", index],
          "an output cannot be the whole config directory"
        )
      );
      continue;
    }
    const clash = own.find(
      (o) => path === o.path || path.startsWith(`${o.path}/`) || o.path.startsWith(`${path}/`)
    );
    if (clash) {
      issues.push(
        loc.issueAt(
          ["invocations", name, "outputs", index],
          `output "${path}" ${path === clash.path ? "is" : path.startsWith(`${clash.path}/`) ? "is in" : "holds"} ${clash.what}`
        )
      );
    }
  }
  const defaultDuration = duration2(["placement", "default-duration"], placementRaw["default-duration"]) ?? 60;
  if (defaultDuration === 0) {
    issues.push(
      loc.issueAt(["placement", "default-duration"], "expected a duration longer than 0 s")
    );
  }
  if (issues.length) throw new ConfigError(issues);
  return {
    file,
    root: dirname(file),
    version: 1,
    workers,
    placement: { balance: placementRaw.balance ?? 1.1, defaultDuration },
    env: globalEnv,
    invocations,
    cache
  };
}
var LOCAL_STORE_OPTIONS = ["type", "dir", "max-size"];
function buildCache(raw, loc, issues) {
  const stores = (raw?.stores ?? [{ type: "local" }]).map((s) => ({
    ...s
  }));
  stores.forEach((store, i) => {
    if (store.type !== "local") return;
    const at = ["cache", "stores", i];
    for (const key of Object.keys(store)) {
      if (!LOCAL_STORE_OPTIONS.includes(key)) {
        issues.push(
          loc.issueAtKey(
            at,
            key,
            `unknown option "${key}" of a local store${didYouMean(key, LOCAL_STORE_OPTIONS)}; expected one of: ${LOCAL_STORE_OPTIONS.join(", ")}`
          )
        );
      }
    }
    if (store["max-size"] !== void 0) {
      try {
        parseSize(store["max-size"]);
      } catch (err) {
        issues.push(loc.issueAt([...at, "max-size"], err.message));
      }
    }
  });
  const cache = { stores };
  const locations = (raw?.stores ? stores : []).map((store, i) => {
    const at = ["cache", "stores", i];
    const { line, col } = loc.issueAt(at, "");
    const options = Object.fromEntries(
      Object.keys(store).map((key) => {
        const p = loc.issueAtKey(at, key, "");
        return [key, { line: p.line, col: p.col }];
      })
    );
    return { file: loc.file, line, col, options };
  });
  Object.defineProperty(cache, "locations", { value: locations, enumerable: false });
  const sign = raw?.sign;
  if (sign) {
    cache.sign = {
      secretEnv: sign["secret-env"] ?? "DIST_BUILD_CACHE_SECRET",
      required: sign.required ?? false
    };
  }
  return cache;
}
function decodeConfig(bytes, display) {
  const problem = (line2, col2, message2) => new ConfigError([{ file: display, line: line2, col: col2, path: "", message: message2 }]);
  const bom = bytes.subarray(0, 2).toString("hex");
  if (bom === "fffe" || bom === "feff" || bytes.includes(0)) {
    throw problem(1, 1, "the file is UTF-16 (or binary), not UTF-8 text: save it as UTF-8");
  }
  if (isUtf8(bytes)) return bytes.toString("utf8");
  let line = 1;
  let start = 0;
  let end = bytes.indexOf(10);
  for (; ; ) {
    if (end === -1) end = bytes.length;
    if (!isUtf8(bytes.subarray(start, end)) || end === bytes.length) break;
    [line, start, end] = [line + 1, end + 1, bytes.indexOf(10, end + 1)];
  }
  const col = bytes.subarray(start, end).toString("utf8").indexOf("\uFFFD") + 1;
  throw problem(line, Math.max(col, 1), "bytes that are not UTF-8: save the file as UTF-8");
}
async function loadConfig(path) {
  const file = resolve(path);
  let text;
  try {
    text = decodeConfig(await readFile(file), path);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = err.code;
    const why = code === "ENOENT" ? "file not found" : code === "EISDIR" ? "is a directory" : err.message;
    throw new ConfigError([
      { file: path, line: 0, col: 0, path: "", message: `cannot read config: ${why}` }
    ]);
  }
  return parseConfig(text, file, path);
}

// src/plan/units.ts
function expandUnits(config) {
  const platformsOf = (inv) => inv.docker && inv.docker.platforms.length > 1 ? inv.docker.platforms : [];
  const byName = new Map(config.invocations.map((i) => [i.name, i]));
  const unitIds = (inv) => {
    const ps = platformsOf(inv);
    return ps.length ? ps.map((p) => `${inv.name}@${p}`) : [inv.name];
  };
  const units = [];
  for (const inv of config.invocations) {
    const fanOut = platformsOf(inv);
    const platforms = fanOut.length ? fanOut : [inv.platform ?? inv.docker?.platforms[0]];
    for (const platform2 of platforms) {
      const needs = inv.needs.flatMap((n) => {
        const dep = byName.get(n);
        const depPlatforms = platformsOf(dep);
        if (platform2 !== void 0 && depPlatforms.includes(platform2))
          return [`${dep.name}@${platform2}`];
        return unitIds(dep);
      });
      const keyed = platform2 !== void 0 ? `${inv.name}@${platform2}` : inv.name;
      units.push({
        id: fanOut.length ? keyed : inv.name,
        invocation: inv.name,
        ...platform2 === void 0 ? {} : { platform: platform2 },
        affinityKey: keyed,
        needs,
        labels: inv.labels,
        ...inv.docker ? { executor: "docker" } : {}
      });
    }
  }
  return units;
}
function workerCount(config, units) {
  const { min, max, maxPerWorker } = config.workers;
  return Math.min(max, Math.max(min, Math.ceil(units / maxPerWorker)));
}
var IMAGES_DIR = ".dist-build/images";
function unitFile(unitId) {
  return unitId.replace(/\//g, "-");
}
function imageArchivePath(unitId) {
  return `${IMAGES_DIR}/${unitFile(unitId)}.tar`;
}
function isImageArchive(path) {
  return path.startsWith(`${IMAGES_DIR}/`) && path.endsWith(".tar");
}
function exportedImagePath(path) {
  return `images/${path.slice(IMAGES_DIR.length + 1)}`;
}
function unitOutputs(inv, unitId) {
  return inv.docker ? [...inv.outputs, imageArchivePath(unitId)] : inv.outputs;
}

// src/plan/plan.ts
import { readFile as readFile3 } from "node:fs/promises";
import { isAbsolute as isAbsolute2, relative as relative3, resolve as resolve3, sep as sep4 } from "node:path";

// src/plan/hash.ts
var C1 = 3432918353;
var C2 = 461845907;
function fmix32(h2) {
  h2 ^= h2 >>> 16;
  h2 = Math.imul(h2, 2246822507);
  h2 ^= h2 >>> 13;
  h2 = Math.imul(h2, 3266489909);
  h2 ^= h2 >>> 16;
  return h2 >>> 0;
}
function scramble(k) {
  k = Math.imul(k, C1);
  k = k << 15 | k >>> 17;
  return Math.imul(k, C2);
}
function round(h2, scrambled) {
  h2 ^= scrambled;
  h2 = h2 << 13 | h2 >>> 19;
  return Math.imul(h2, 5) + 3864292196 | 0;
}
function murmur3(bytes, len = bytes.length, seed = 0) {
  let h2 = seed | 0;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    const k = bytes[i] | bytes[i + 1] << 8 | bytes[i + 2] << 16 | bytes[i + 3] << 24;
    h2 = round(h2, scramble(k));
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = bytes[blocks];
    if (tail > 1) k |= bytes[blocks + 1] << 8;
    if (tail > 2) k |= bytes[blocks + 2] << 16;
    h2 ^= scramble(k);
  }
  return fmix32(h2 ^ len);
}
var encoder = new TextEncoder();
var scratch = new Uint8Array(256);
function hashString(s) {
  if (scratch.length < s.length * 3) scratch = new Uint8Array(s.length * 3);
  const { written } = encoder.encodeInto(s, scratch);
  return murmur3(scratch, written);
}
function mixKey(a) {
  return round(0, scramble(a));
}
function mixWorker(b) {
  return scramble(b);
}
function mixScore(key, worker) {
  return fmix32(round(key, worker) ^ 8);
}

// src/plan/simulate.ts
function needsGraph(items) {
  const n = items.length;
  const index = /* @__PURE__ */ new Map();
  for (let i = 0; i < n; i++) {
    const id = items[i].id;
    if (index.has(id)) throw new Error(`duplicate item id "${id}"`);
    index.set(id, i);
  }
  const deps = new Array(n);
  const dependents = new Array(n);
  for (let i = 0; i < n; i++) dependents[i] = [];
  const indegree = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const list = [];
    for (const need of items[i].needs) {
      const j = index.get(need);
      if (j === void 0 || list.includes(j)) continue;
      list.push(j);
      dependents[j].push(i);
    }
    deps[i] = list;
    indegree[i] = list.length;
  }
  const order = [];
  for (let i = 0; i < n; i++) if (indegree[i] === 0) order.push(i);
  for (let head = 0; head < order.length; head++) {
    for (const j of dependents[order[head]]) if (--indegree[j] === 0) order.push(j);
  }
  if (order.length < n) {
    const stuck = [];
    for (let i = 0; i < n; i++) if (indegree[i] > 0) stuck.push(items[i].id);
    stuck.sort();
    const shown = stuck.slice(0, 10).join(", ") + (stuck.length > 10 ? ", ..." : "");
    throw new Error(`needs cycle among: ${shown}`);
  }
  return { index, deps, dependents, order };
}
function tailLengths(items, graph) {
  const tail = new Float64Array(items.length);
  for (let k = graph.order.length - 1; k >= 0; k--) {
    const i = graph.order[k];
    let best = 0;
    for (const j of graph.dependents[i]) if (tail[j] > best) best = tail[j];
    tail[i] = items[i].duration + best;
  }
  return tail;
}
var Heap = class {
  constructor(less) {
    this.less = less;
  }
  less;
  a = [];
  get size() {
    return this.a.length;
  }
  peek() {
    return this.a[0];
  }
  push(x) {
    const a = this.a;
    let i = a.length;
    a.push(x);
    while (i > 0) {
      const p = i - 1 >> 1;
      if (!this.less(x, a[p])) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = x;
  }
  pop() {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (; ; ) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.less(a[r], a[l]) ? r : l;
        if (!this.less(a[c], last)) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
};
function simulateMakespan(items, assignments, graph = needsGraph(items)) {
  const n = items.length;
  if (n === 0) return 0;
  const workerIndex = /* @__PURE__ */ new Map();
  const workerOf = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const w = Object.hasOwn(assignments, items[i].id) ? assignments[items[i].id] : void 0;
    if (w === void 0) throw new Error(`item "${items[i].id}" has no assignment`);
    let wi = workerIndex.get(w);
    if (wi === void 0) {
      wi = workerIndex.size;
      workerIndex.set(w, wi);
    }
    workerOf[i] = wi;
  }
  const tail = tailLengths(items, graph);
  const byId = Array.from({ length: n }, (_, i) => i).sort(
    (x, y) => items[x].id < items[y].id ? -1 : items[x].id > items[y].id ? 1 : 0
  );
  const idRank = new Int32Array(n);
  for (let k = 0; k < n; k++) idRank[byId[k]] = k;
  const before = (x, y) => tail[x] !== tail[y] ? tail[x] > tail[y] : items[x].duration !== items[y].duration ? items[x].duration > items[y].duration : idRank[x] < idRank[y];
  const nw = workerIndex.size;
  const ready = Array.from({ length: nw }, () => new Heap(before));
  const busy = new Uint8Array(nw);
  const finish = new Float64Array(n);
  const events = new Heap(
    (x, y) => finish[x] !== finish[y] ? finish[x] < finish[y] : idRank[x] < idRank[y]
  );
  const waiting = new Int32Array(n);
  const dirty = [];
  for (let i = 0; i < n; i++) {
    waiting[i] = graph.deps[i].length;
    if (waiting[i] === 0) ready[workerOf[i]].push(i);
  }
  for (let w = 0; w < nw; w++) dirty.push(w);
  let now = 0;
  let makespan = 0;
  for (; ; ) {
    for (const w of dirty) {
      if (busy[w] || ready[w].size === 0) continue;
      const i = ready[w].pop();
      finish[i] = now + items[i].duration;
      if (finish[i] > makespan) makespan = finish[i];
      busy[w] = 1;
      events.push(i);
    }
    dirty.length = 0;
    if (events.size === 0) break;
    now = finish[events.peek()];
    while (events.size > 0 && finish[events.peek()] === now) {
      const i = events.pop();
      busy[workerOf[i]] = 0;
      dirty.push(workerOf[i]);
      for (const j of graph.dependents[i]) {
        if (--waiting[j] === 0) {
          ready[workerOf[j]].push(j);
          dirty.push(workerOf[j]);
        }
      }
    }
  }
  return makespan;
}

// src/plan/placement.ts
var ARCH_ALIASES = { x86_64: "amd64", aarch64: "arm64" };
function parsePlatform(text) {
  const [os3 = "", arch = "", variant = ""] = text.trim().toLowerCase().split("/");
  return normalizePlatform(os3.trim(), arch.trim(), variant.trim());
}
function normalizePlatform(os3, arch, variant) {
  const a = ARCH_ALIASES[arch] ?? arch;
  const defaultVariant = a === "arm64" && variant === "v8" || a === "amd64" && variant === "v1";
  return { os: os3, arch: a, variant: defaultVariant ? "" : variant };
}
function formatPlatform(p) {
  const s = `${p.os || "*"}/${p.arch || "*"}`;
  return p.variant ? `${s}/${p.variant}` : s;
}
function matches(want, offer) {
  return (!want.os || !offer.os || want.os === offer.os) && (!want.arch || !offer.arch || want.arch === offer.arch) && (!want.variant || !offer.variant || want.variant === offer.variant);
}
function splitList(text) {
  if (!text) return [];
  return text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}
var parsedCaps = /* @__PURE__ */ new WeakMap();
function parseWorker(worker) {
  const ann = worker.annotations;
  if (!ann) return parseAnnotations({});
  let caps = parsedCaps.get(ann);
  if (!caps) parsedCaps.set(ann, caps = parseAnnotations(ann));
  return caps;
}
function parseAnnotations(ann) {
  const os3 = (ann.os ?? "").trim().toLowerCase();
  const arch = (ann.arch ?? "").trim().toLowerCase();
  const extra = splitList(ann.platforms);
  const platforms = [];
  if (os3 || arch) platforms.push(normalizePlatform(os3, arch, ""));
  for (const p of extra) platforms.push(parsePlatform(p));
  return {
    any: platforms.length === 0,
    platforms,
    labels: new Set(splitList(ann.labels)),
    executors: ann.executor === void 0 ? void 0 : new Set(splitList(ann.executor))
  };
}
function accepts(caps, item) {
  for (const label of item.labels) if (!caps.labels.has(label)) return false;
  if (item.executor && caps.executors && !caps.executors.has(item.executor)) return false;
  if (!item.platform || caps.any) return true;
  const want = parsePlatform(item.platform);
  return caps.platforms.some((offer) => matches(want, offer));
}
function eligible(item, worker) {
  return accepts(parseWorker(worker), item);
}
function describeWorker(worker, item) {
  const caps = parseWorker(worker);
  const platforms = caps.any ? "any platform" : caps.platforms.map(formatPlatform).join(", ");
  const why = item.executor && caps.executors && !caps.executors.has(item.executor) ? worker.annotations?.[item.executor] : void 0;
  const executors = item.executor && caps.executors ? `, executors [${[...caps.executors].join(", ")}]${why ? `, ${item.executor}: ${why}` : ""}` : "";
  return `${worker.id} (${platforms}, labels [${[...caps.labels].join(", ")}]${executors})`;
}
var NoEligibleWorkerError = class extends Error {
  name = "NoEligibleWorkerError";
  /** The item that cannot be placed. */
  item;
  constructor(item, workers) {
    const needs = `needs ${item.platform ? `platform ${item.platform}` : "any platform"}, labels [${item.labels.join(", ")}]${item.executor ? `, a worker with ${item.executor}` : ""}`;
    const shown = workers.slice(0, 20).map((w) => describeWorker(w, item));
    if (workers.length > 20) shown.push(`... and ${workers.length - 20} more`);
    const offered = workers.length === 0 ? "none" : shown.join(", ");
    super(`no worker can take "${item.id}" (${needs}); workers: ${offered}`);
    this.item = item.id;
  }
};
function compareStrings(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
function prepare(items, inputWorkers) {
  const workers = [...inputWorkers].sort((a, b) => compareStrings(a.id, b.id));
  for (let j = 1; j < workers.length; j++) {
    if (workers[j].id === workers[j - 1].id)
      throw new Error(`duplicate worker id "${workers[j].id}"`);
  }
  const nw = workers.length;
  for (const item of items) {
    if (!(item.duration >= 0) || !Number.isFinite(item.duration)) {
      throw new RangeError(`item "${item.id}" has invalid duration ${item.duration}`);
    }
  }
  const graph = needsGraph(items);
  const caps = workers.map(parseWorker);
  const sets = [];
  const setByKey = /* @__PURE__ */ new Map();
  const addSet = (list) => {
    const key = list.join(",");
    let s = setByKey.get(key);
    if (s === void 0) {
      const member = new Uint8Array(nw);
      for (const j of list) member[j] = 1;
      s = sets.length;
      sets.push({ workers: Int32Array.from(list), member });
      setByKey.set(key, s);
    }
    return s;
  };
  const bySignature = /* @__PURE__ */ new Map();
  const setOf = new Int32Array(items.length);
  let failed;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const signature = `${item.executor ?? ""}\0${item.platform ?? ""}\0${[...new Set(item.labels)].sort().join("\0")}`;
    let s = bySignature.get(signature);
    if (s === void 0) {
      const list = [];
      for (let j = 0; j < nw; j++) if (accepts(caps[j], item)) list.push(j);
      s = addSet(list);
      bySignature.set(signature, s);
    }
    setOf[i] = s;
    if (sets[s].workers.length === 0 && (failed === void 0 || item.id < failed.id))
      failed = item;
  }
  if (failed) throw new NoEligibleWorkerError(failed, workers);
  let lowerBound = 0;
  for (const t of tailLengths(items, graph)) if (t > lowerBound) lowerBound = t;
  const itemSets = sets.length;
  const setTotal = new Float64Array(itemSets);
  const byId = Array.from(items.keys()).sort((a, b) => compareStrings(items[a].id, items[b].id));
  for (const i of byId) setTotal[setOf[i]] += items[i].duration;
  const union = [];
  for (let j = 0; j < nw; j++) {
    for (let s = 0; s < itemSets; s++) {
      if (sets[s].member[j]) {
        union.push(j);
        break;
      }
    }
  }
  const candidates = items.length > 0 ? [...sets.slice(0, itemSets), sets[addSet(union)]] : [];
  for (const e of candidates) {
    let confined = 0;
    for (let s = 0; s < itemSets; s++) {
      if (sets[s].workers.every((j) => e.member[j] === 1)) confined += setTotal[s];
    }
    lowerBound = Math.max(lowerBound, confined / e.workers.length);
  }
  const intersections = /* @__PURE__ */ new Map();
  const intersect = (a, b) => {
    if (a === b) return a;
    const key = Math.min(a, b) * 1048576 + Math.max(a, b);
    let r = intersections.get(key);
    if (r === void 0) {
      const list = [];
      for (const j of sets[a].workers) if (sets[b].member[j]) list.push(j);
      r = list.length === 0 ? -1 : addSet(list);
      intersections.set(key, r);
    }
    return r;
  };
  return { workers, sets, setOf, graph, lowerBound, intersect };
}
function buildUnits(items, prep, workerIndex, previous) {
  const { graph, setOf } = prep;
  const n = items.length;
  const next = new Int32Array(n).fill(-1);
  const hasPrev = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const deps = graph.deps[i];
    if (deps.length === 1 && graph.dependents[deps[0]].length === 1) {
      next[deps[0]] = i;
      hasPrev[i] = 1;
    }
  }
  const previousOf = (i) => {
    const id = items[i].id;
    const w = Object.hasOwn(previous, id) ? workerIndex.get(previous[id]) : void 0;
    return w === void 0 ? -1 : w;
  };
  const units = [];
  const emit = (members, set) => {
    const head = items[members[0]];
    let duration2 = 0;
    let prev = previousOf(members[0]);
    for (const i of members) {
      duration2 += items[i].duration;
      if (prev >= 0 && previousOf(i) !== prev) prev = -1;
    }
    if (prev >= 0 && !prep.sets[set].member[prev]) prev = -1;
    units.push({
      members,
      duration: duration2,
      keyHash: hashString(head.affinityKey),
      key: head.affinityKey,
      id: head.id,
      set,
      previous: prev,
      long: false,
      rank: 0
    });
  };
  for (let i = 0; i < n; i++) {
    if (hasPrev[i]) continue;
    let members = [i];
    let set = setOf[i];
    for (let j = next[i]; j >= 0; j = next[j]) {
      const both = prep.intersect(set, setOf[j]);
      if (both >= 0) {
        members.push(j);
        set = both;
      } else {
        emit(members, set);
        members = [j];
        set = setOf[j];
      }
    }
    emit(members, set);
  }
  return units;
}
function compareUnits(a, b, sets) {
  if (a.long !== b.long) return a.long ? -1 : 1;
  const ea = sets[a.set].workers.length;
  const eb = sets[b.set].workers.length;
  if (ea !== eb) return ea - eb;
  if (a.long && a.duration !== b.duration) return b.duration - a.duration;
  if (a.keyHash !== b.keyHash) return a.keyHash - b.keyHash;
  return compareStrings(a.key, b.key) || compareStrings(a.id, b.id);
}
function place(input) {
  const { items, balance } = input;
  if (!(balance >= 1) || !Number.isFinite(balance)) {
    throw new RangeError(`balance must be a number >= 1, got ${balance}`);
  }
  const prep = prepare(items, input.workers);
  const { workers, sets } = prep;
  const nw = workers.length;
  const workerIndex = /* @__PURE__ */ new Map();
  const workerMix = new Int32Array(nw);
  for (let j = 0; j < nw; j++) {
    workerIndex.set(workers[j].id, j);
    workerMix[j] = mixWorker(hashString(workers[j].id));
  }
  const lb = prep.lowerBound;
  const capacity = balance * lb;
  const limit = capacity * (1 + 1e-9);
  const longAbove = capacity - lb;
  const previous = input.previous ?? {};
  const units = buildUnits(items, prep, workerIndex, previous);
  for (const u of units) u.long = u.duration > longAbove;
  units.sort((a, b) => compareUnits(a, b, sets));
  const loads = new Float64Array(nw);
  const assigned = new Int32Array(items.length).fill(-1);
  const put = (members, w, duration2) => {
    for (const i of members) assigned[i] = w;
    loads[w] += duration2;
  };
  const scan = (set, keyHash, duration2) => {
    const list = sets[set].workers;
    const key = mixKey(keyHash);
    let best = -1;
    let bestScore = -1;
    let fallback = -1;
    let fallbackLoad = Infinity;
    let fallbackScore = -1;
    for (let k = 0; k < list.length; k++) {
      const j = list[k];
      const score = mixScore(key, workerMix[j]);
      const load = loads[j];
      if (load + duration2 <= limit) {
        if (score > bestScore) {
          best = j;
          bestScore = score;
        }
      } else if (best < 0 && (load < fallbackLoad || load === fallbackLoad && score > fallbackScore)) {
        fallback = j;
        fallbackLoad = load;
        fallbackScore = score;
      }
    }
    return best >= 0 ? best : -1 - fallback;
  };
  const rest = [];
  const returning = Array.from({ length: nw }, () => []);
  units.forEach((u, rank2) => {
    u.rank = rank2;
    if (u.previous >= 0) returning[u.previous].push(u);
  });
  const leaves = new Uint8Array(units.length);
  for (const list of returning) {
    let excess = -limit;
    for (const u of list) excess += u.duration;
    if (excess <= 0) continue;
    const asc = list.sort((a, b) => a.duration - b.duration || b.rank - a.rank);
    for (let hi = asc.length - 1; excess > 0 && hi >= 0; hi--) {
      let lo = 0;
      for (let top = hi + 1; lo < top; ) {
        const mid = lo + top >>> 1;
        if (asc[mid].duration < excess) lo = mid + 1;
        else top = mid;
      }
      if (lo <= hi) {
        leaves[asc[lo].rank] = 1;
        break;
      }
      leaves[asc[hi].rank] = 1;
      excess -= asc[hi].duration;
    }
  }
  for (const u of units) {
    if (u.previous >= 0 && !leaves[u.rank]) put(u.members, u.previous, u.duration);
    else rest.push(u);
  }
  for (const u of rest) {
    if (u.members.length > 1) {
      const w = scan(u.set, u.keyHash, u.duration);
      if (w >= 0) {
        put(u.members, w, u.duration);
        continue;
      }
      for (const i of u.members) {
        const item = items[i];
        const set = prep.setOf[i];
        const p = Object.hasOwn(previous, item.id) ? workerIndex.get(previous[item.id]) : void 0;
        if (p !== void 0 && sets[set].member[p] && loads[p] + item.duration <= limit) {
          put([i], p, item.duration);
        } else {
          const r2 = scan(set, hashString(item.affinityKey), item.duration);
          put([i], r2 >= 0 ? r2 : -1 - r2, item.duration);
        }
      }
      continue;
    }
    const r = scan(u.set, u.keyHash, u.duration);
    put(u.members, r >= 0 ? r : -1 - r, u.duration);
  }
  const assignments = {};
  for (let i = 0; i < items.length; i++) assignments[items[i].id] = workers[assigned[i]].id;
  const loadOut = {};
  for (let j = 0; j < nw; j++) loadOut[workers[j].id] = loads[j];
  return {
    assignments,
    loads: loadOut,
    capacity,
    lowerBound: lb,
    makespan: simulateMakespan(items, assignments, prep.graph)
  };
}

// src/plan/keys.ts
import crypto2 from "node:crypto";
import { readFileSync as readFileSync2 } from "node:fs";
import { isAbsolute, join as join4, posix as posix3, relative as relative2, resolve as resolve2, sep as sep3 } from "node:path";

// src/plan/dockerignore.ts
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join as join3, posix as posix2 } from "node:path";

// src/plan/inputs.ts
import { lstatSync } from "node:fs";
import { join as join2 } from "node:path";
import picomatch from "picomatch";

// src/plan/file-index.ts
import crypto from "node:crypto";
import fs from "node:fs";
import { mkdir, readFile as readFile2, rename, unlink, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname as dirname2, join, sep as sep2 } from "node:path";
import { Worker } from "node:worker_threads";
import zlib from "node:zlib";
function readDirListing(abs) {
  const keyed = [];
  for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
    const type = e.isDirectory() ? "d" : e.isFile() ? "f" : e.isSymbolicLink() ? "l" : "";
    if (type) keyed.push({ key: type === "d" ? e.name + "/" : e.name, name: e.name, type });
  }
  keyed.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  return { names: keyed.map((k) => k.name), types: keyed.map((k) => k.type).join("") };
}
var INDEX_FILE = "file-index.bin";
var LEGACY_INDEX_FILE = "file-digests.json";
var DAY_MS = 864e5;
var KEEP_DAYS = 30;
var S_IFMT = 61440;
var S_IFLNK = 40960;
var MAGIC = 1229341252;
var VERSION = 2;
var BOM = 16909060;
var HEADER_BYTES = 32;
var align8 = (n) => n + 7 & ~7;
var crcTable;
var crc32 = typeof zlib.crc32 === "function" ? (data) => zlib.crc32(data) : (data) => {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c2 = n;
      for (let k = 0; k < 8; k++) c2 = c2 & 1 ? 3988292384 ^ c2 >>> 1 : c2 >>> 1;
      crcTable[n] = c2 >>> 0;
    }
  }
  let c = 4294967295;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 255] ^ c >>> 8;
  return (c ^ 4294967295) >>> 0;
};
function layout(f, d, pathBytes, dirBytes) {
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
var StoredIndex = class _StoredIndex {
  constructor(files, fnum, fmeta, foff, ptext, fdig, dirs, dnum, dmeta, dtext) {
    this.files = files;
    this.fnum = fnum;
    this.fmeta = fmeta;
    this.foff = foff;
    this.ptext = ptext;
    this.fdig = fdig;
    this.dirs = dirs;
    this.dnum = dnum;
    this.dmeta = dmeta;
    this.dtext = dtext;
  }
  files;
  fnum;
  fmeta;
  foff;
  ptext;
  fdig;
  dirs;
  dnum;
  dmeta;
  dtext;
  /** Parses `data`; undefined when it is not a well-formed index of this version. */
  static parse(data) {
    if (data.length < HEADER_BYTES) return void 0;
    let buf = data;
    if (buf.byteOffset % 8 !== 0) {
      buf = Buffer.alloc(data.length);
      data.copy(buf);
    }
    const head = new Uint32Array(buf.buffer, buf.byteOffset, HEADER_BYTES / 4);
    if (head[0] !== MAGIC || head[1] !== VERSION || head[2] !== BOM) return void 0;
    const [f, d, pathBytes, dirBytes] = [head[3], head[4], head[5], head[6]];
    const at = layout(f, d, pathBytes, dirBytes);
    if (at.end !== buf.length || crc32(buf.subarray(HEADER_BYTES)) !== head[7]) return void 0;
    const u32 = (off, n) => new Uint32Array(buf.buffer, buf.byteOffset + off, n);
    const f64 = (off, n) => new Float64Array(buf.buffer, buf.byteOffset + off, n);
    const ptext = buf.toString("utf8", at.ptext, at.dtext);
    const dtext = buf.toString("utf8", at.dtext, at.end);
    if (Buffer.byteLength(ptext) !== pathBytes || Buffer.byteLength(dtext) !== dirBytes) {
      return void 0;
    }
    const foff = u32(at.foff, f + 1);
    const dmeta = u32(at.dmeta, d * 4);
    if (foff[0] !== 0 || foff[f] !== ptext.length) return void 0;
    for (let i = 0; i < f; i++) if (foff[i] > foff[i + 1]) return void 0;
    let start = 0;
    for (let k = 0; k < d; k++) {
      const types = start + dmeta[4 * k + 1];
      const n = dmeta[4 * k + 2];
      const end = dmeta[4 * k + 3];
      if (end < types + n || n === 0 && end !== types) return void 0;
      if (!/^[dfl]*$/.test(dtext.slice(types, types + n))) return void 0;
      start = end;
    }
    if (start !== dtext.length) return void 0;
    return new _StoredIndex(
      f,
      f64(at.fnum, f * 4),
      u32(at.fmeta, f * 2),
      foff,
      ptext,
      buf.subarray(at.fdig, at.fdig + f * 32),
      d,
      f64(at.dnum, d * 4),
      dmeta,
      dtext
    );
  }
  path(i) {
    return this.ptext.slice(this.foff[i], this.foff[i + 1]);
  }
  /** Whether file entry i is `path`, without making a string. */
  isPath(i, path) {
    const start = this.foff[i];
    return this.foff[i + 1] - start === path.length && this.ptext.startsWith(path, start);
  }
  /** All digests as one hex string, made on first use (slicing it beats a conversion each). */
  hex;
  digest(i) {
    this.hex ??= this.fdig.toString("hex");
    return this.hex.slice(i * 64, i * 64 + 64);
  }
  dirStart(k) {
    return k === 0 ? 0 : this.dmeta[4 * k - 1];
  }
  dirPath(k) {
    const start = this.dirStart(k);
    return this.dtext.slice(start, start + this.dmeta[4 * k + 1]);
  }
  /** The listing of directory k (undefined if its record is damaged). */
  dirListing(k) {
    const types = this.dirStart(k) + this.dmeta[4 * k + 1];
    const n = this.dmeta[4 * k + 2];
    const names = n === 0 ? [] : this.dtext.slice(types + n, this.dmeta[4 * k + 3]).split("\0");
    if (names.length !== n) return void 0;
    return { names, types: this.dtext.slice(types, types + n) };
  }
};
function encodeIndex(stored, files, dirs) {
  const ptext = files.map((o) => o.path).join("");
  const dparts = [];
  for (const o of dirs) {
    const listing = o.e ? o.e.listing : stored.dirListing(o.k);
    dparts.push(o.path, listing.types, listing.names.join("\0"));
  }
  const dtext = dparts.join("");
  const pathBytes = Buffer.byteLength(ptext, "utf8");
  const dirBytes = Buffer.byteLength(dtext, "utf8");
  const f = files.length;
  const d = dirs.length;
  const at = layout(f, d, pathBytes, dirBytes);
  const buf = Buffer.alloc(at.end);
  const u32 = (off2, n) => new Uint32Array(buf.buffer, buf.byteOffset + off2, n);
  const f64 = (off2, n) => new Float64Array(buf.buffer, buf.byteOffset + off2, n);
  const head = u32(0, 8);
  head.set([MAGIC, VERSION, BOM, f, d, pathBytes, dirBytes, 0]);
  const fnum = f64(at.fnum, f * 4);
  const fmeta = u32(at.fmeta, f * 2);
  const foff = u32(at.foff, f + 1);
  let off = 0;
  for (let j = 0; j < f; j++) {
    const o = files[j];
    foff[j] = off;
    off += o.path.length;
    if (o.e) {
      fnum[4 * j] = o.e.size;
      fnum[4 * j + 1] = o.e.mtimeMs;
      fnum[4 * j + 2] = o.e.ctimeMs;
      fnum[4 * j + 3] = o.e.ino;
      fmeta[2 * j] = o.e.mode;
      fmeta[2 * j + 1] = o.e.day;
      buf.write(o.e.digest, at.fdig + 32 * j, 32, "hex");
    } else {
      const s = stored;
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
    const o = dirs[k];
    const len = dparts[3 * k].length + dparts[3 * k + 1].length + dparts[3 * k + 2].length;
    if (o.e) {
      dnum[4 * k] = o.e.mtimeMs;
      dnum[4 * k + 1] = o.e.ctimeMs;
      dnum[4 * k + 2] = o.e.ino;
      dnum[4 * k + 3] = o.e.dev;
      dmeta[4 * k] = o.e.day;
    } else {
      dnum.set(stored.dnum.subarray(4 * o.k, 4 * o.k + 4), 4 * k);
      dmeta[4 * k] = stored.dmeta[4 * o.k];
    }
    dmeta[4 * k + 1] = o.path.length;
    dmeta[4 * k + 2] = dparts[3 * k + 1].length;
    off += len;
    dmeta[4 * k + 3] = off;
  }
  buf.write(ptext, at.ptext, pathBytes, "utf8");
  buf.write(dtext, at.dtext, dirBytes, "utf8");
  head[7] = crc32(buf.subarray(HEADER_BYTES));
  return buf;
}
var byPath = (a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
var HASH_PATH_SOURCE = String.raw`function hashPath(fs, crypto, buf, abs, marginMs, startMs) {
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
var WORKER_SOURCE = `'use strict';
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
var localHashFn;
var localBuf;
function hashLocal(abs, marginMs, startMs) {
  localHashFn ??= new Function(`return ${HASH_PATH_SOURCE};`)();
  localBuf ??= Buffer.allocUnsafe(1 << 20);
  try {
    return localHashFn(fs, crypto, localBuf, abs, marginMs, startMs);
  } catch (e) {
    const err = e;
    return { error: String(err.message), ...err.code ? { code: err.code } : {} };
  }
}
var yieldToEventLoop = () => new Promise((resolve7) => setImmediate(resolve7));
var HashPool = class {
  constructor(size2, marginMs) {
    this.size = size2;
    this.marginMs = marginMs;
  }
  size;
  marginMs;
  workers = [];
  queue = [];
  closed = false;
  /** Set when a worker cannot even be created. */
  broken = false;
  /** Hashes `paths` (absolute); `startMs` is the wall-clock time hashing started. */
  async hash(paths, startMs) {
    if (this.closed) throw new Error("file index is closed");
    if (paths.length === 0) return [];
    this.start();
    const results = new Array(paths.length);
    const size2 = Math.max(16, Math.min(256, Math.ceil(paths.length / 64)));
    let open4 = 0;
    let resolveAll;
    const all = new Promise((resolve7) => resolveAll = resolve7);
    for (let i = 0; i < paths.length; i += size2) {
      const offset = i;
      open4++;
      this.queue.push({
        paths: paths.slice(i, i + size2),
        startMs,
        done: (r) => {
          for (let k = 0; k < r.length; k++) results[offset + k] = r[k];
          if (--open4 === 0) resolveAll();
        }
      });
    }
    this.dispatch();
    while (this.queue.length > 0) {
      const b = this.queue.shift();
      b.done(b.paths.map((p) => hashLocal(p, this.marginMs, b.startMs)));
      await yieldToEventLoop();
      if (this.closed) throw new Error("file index closed while hashing");
    }
    await all;
    return results;
  }
  start() {
    while (this.workers.length < this.size && !this.broken) {
      let worker;
      try {
        worker = new Worker(WORKER_SOURCE, { eval: true });
      } catch {
        this.broken = true;
        return;
      }
      const pw = { worker, online: false, batch: void 0 };
      const w = pw.worker;
      w.unref();
      w.on("online", () => {
        pw.online = true;
        this.dispatch();
      });
      w.on("message", (results) => {
        const b = pw.batch;
        pw.batch = void 0;
        this.dispatch();
        b?.done(results);
      });
      w.on("error", () => this.lose(pw));
      w.on("exit", () => this.lose(pw));
      this.workers.push(pw);
    }
  }
  /** Gives every idle online worker a batch; unreferences the idle ones. */
  dispatch() {
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
        startMs: b.startMs
      });
    }
  }
  /** A worker failed or exited: drop it and finish its batch here. */
  lose(pw) {
    const i = this.workers.indexOf(pw);
    if (i < 0) return;
    this.workers.splice(i, 1);
    pw.online = false;
    const b = pw.batch;
    pw.batch = void 0;
    if (b && !this.closed) b.done(b.paths.map((p) => hashLocal(p, this.marginMs, b.startMs)));
  }
  async close() {
    this.closed = true;
    const abandoned = [...this.queue.splice(0), ...this.workers.map((pw) => pw.batch)];
    const ws = this.workers.splice(0);
    for (const b of abandoned) {
      b?.done(b.paths.map(() => ({ error: "file index closed while hashing" })));
    }
    await Promise.all(ws.map((pw) => pw.worker.terminate()));
  }
};
var PARALLEL_LSTAT_MIN = 512;
var SYNC_LSTAT_SHARE = 0.35;
var cores;
var parallelism = () => cores ??= availableParallelism();
function defaultThreads() {
  return Math.max(0, Math.min(3, availableParallelism() - 1));
}
var FileIndex = class _FileIndex {
  constructor(root, opts) {
    this.root = root;
    this.opts = opts;
    this.file = join(opts.cacheDir ?? join(root, ".dist-build", "index"), INDEX_FILE);
    this.prefix = root.endsWith(sep2) ? root : root + sep2;
    this.threads = opts.threads ?? defaultThreads();
    this.poolMinFiles = opts.poolMinFiles ?? 64;
    this.marginMs = opts.racyMs ?? 2e3;
    this.now = opts.now ?? Date.now;
  }
  root;
  opts;
  /** Absolute path of the index file. */
  file;
  stats = {
    hits: 0,
    hashed: 0,
    bytesHashed: 0,
    retries: 0,
    loaded: false,
    dirHits: 0,
    dirReads: 0
  };
  /** The index as loaded (entries superseded or dropped since are flagged in `dead`). */
  stored;
  dead = new Uint8Array(0);
  /** Stored path -> entry number; built on the first lookup the sorted merge cannot answer. */
  storedMap;
  /** Stored directories: path -> entry number. */
  storedDirs = /* @__PURE__ */ new Map();
  deadDirs = new Uint8Array(0);
  /** Verdicts of {@link verify} per stored directory: 0 none, 1 unchanged, 2 changed or gone. */
  dirCheck = new Uint8Array(0);
  /** Entries made in this session (they take precedence over stored ones). */
  added = /* @__PURE__ */ new Map();
  addedDirs = /* @__PURE__ */ new Map();
  /** `root` with a trailing separator: absolute paths by concatenation. */
  prefix;
  threads;
  poolMinFiles;
  marginMs;
  now;
  pool;
  dirty = false;
  /** Opens the index for `root`, loading the stored one unless it is missing, corrupt or `fresh`. */
  static async open(root, opts = {}) {
    const index = new _FileIndex(root, opts);
    if (!opts.fresh) await index.load();
    return index;
  }
  async load() {
    let stored;
    try {
      stored = StoredIndex.parse(await readFile2(this.file));
    } catch {
      return;
    }
    if (!stored) return;
    this.stored = stored;
    this.dead = new Uint8Array(stored.files);
    this.deadDirs = new Uint8Array(stored.dirs);
    for (let k = 0; k < stored.dirs; k++) this.storedDirs.set(stored.dirPath(k), k);
    this.stats.loaded = true;
  }
  /** Number of entries currently held. */
  get size() {
    let n = this.added.size;
    const s = this.stored;
    if (s) {
      for (let i = 0; i < s.files; i++) if (!this.dead[i]) n++;
    }
    return n;
  }
  /** The live stored entry number of `path` (-1: none); `hint` is where a sorted merge stands. */
  findStored(path, hint) {
    const s = this.stored;
    if (!s) return -1;
    if (hint < s.files && s.isPath(hint, path)) return this.dead[hint] ? -1 : hint;
    if (!this.storedMap) {
      this.storedMap = /* @__PURE__ */ new Map();
      for (let i2 = 0; i2 < s.files; i2++) this.storedMap.set(s.path(i2), i2);
    }
    const i = this.storedMap.get(path);
    return i === void 0 || this.dead[i] ? -1 : i;
  }
  /**
   * Checks every stored directory listing against the file system, in one burst of `lstat` calls
   * (shared with the thread pool, see {@link lstatEach}). The next {@link listDir} of each takes
   * the verdict instead of checking again, so call it right before walking, as computeCacheKeys
   * does. Without it, every listDir checks its directory itself; the results are the same.
   * (Files are checked by {@link getMany}, in a burst of their own: only those asked for.)
   */
  async verify() {
    const s = this.stored;
    if (!s) return;
    const dirs = [];
    const abs = [];
    for (let k = 0; k < s.dirs; k++) {
      if (this.deadDirs[k]) continue;
      dirs.push(k);
      const rel2 = s.dirPath(k);
      abs.push(rel2 === "" ? this.root : this.prefix + rel2);
    }
    const dirCheck = this.dirCheck = new Uint8Array(s.dirs);
    await this.lstatEach(
      abs.length,
      (j) => abs[j],
      (j, st) => {
        const k = dirs[j];
        dirCheck[k] = st && st.isDirectory() && this.sameDir(k, st) ? 1 : 2;
      }
    );
  }
  /** Whether stored file i has the identity `st`. */
  sameFile(i, st) {
    const n = this.stored.fnum;
    return st.mtimeMs === n[4 * i + 1] && st.ctimeMs === n[4 * i + 2] && st.size === n[4 * i] && st.ino === n[4 * i + 3] && st.mode === this.stored.fmeta[2 * i];
  }
  /** Whether stored directory k has the identity `st`. */
  sameDir(k, st) {
    const n = this.stored.dnum;
    return n[4 * k] === st.mtimeMs && n[4 * k + 1] === st.ctimeMs && n[4 * k + 2] === st.ino && n[4 * k + 3] === st.dev;
  }
  /** Marks stored file i as used today (the day is stored with it). */
  touch(i, today) {
    const meta = this.stored.fmeta;
    if (meta[2 * i + 1] !== today) {
      meta[2 * i + 1] = today;
      this.dirty = true;
    }
  }
  /** Forgets `path` (a file that is gone, or changed too recently to be stored). */
  forget(path, storedAt) {
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
  listDir(rel2) {
    const today = Math.floor(this.now() / DAY_MS);
    const s = this.stored;
    const k = this.storedDirs.get(rel2) ?? -1;
    if (k >= 0 && this.dirCheck[k] === 1) {
      this.dirCheck[k] = 0;
      const listing2 = this.deadDirs[k] || this.addedDirs.has(rel2) ? void 0 : s.dirListing(k);
      if (listing2) {
        this.stats.dirHits++;
        this.touchDir(k, today);
        return listing2;
      }
    }
    const abs = rel2 === "" ? this.root : this.prefix + rel2;
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st || !st.isDirectory()) return readDirListing(abs);
    const added = this.addedDirs.get(rel2);
    if (added && added.mtimeMs === st.mtimeMs && added.ctimeMs === st.ctimeMs && added.ino === st.ino && added.dev === st.dev) {
      this.stats.dirHits++;
      return added.listing;
    }
    if (k >= 0 && !this.deadDirs[k] && !added && this.sameDir(k, st)) {
      const listing2 = s.dirListing(k);
      if (listing2) {
        this.stats.dirHits++;
        this.touchDir(k, today);
        return listing2;
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
      this.addedDirs.set(rel2, { mtimeMs, ctimeMs, ino, dev, day: today, listing });
      this.dirty = true;
    } else if (this.addedDirs.delete(rel2)) {
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
  async lstatEach(n, pathOf, fn) {
    const split = n >= PARALLEL_LSTAT_MIN && parallelism() > 1 ? Math.ceil(n * SYNC_LSTAT_SHARE) : n;
    let pending;
    if (split < n) {
      pending = new Promise((resolve7) => {
        let left = n - split;
        for (let j = split; j < n; j++) {
          fs.lstat(pathOf(j), (err, st) => {
            fn(j, err ? void 0 : st);
            if (--left === 0) resolve7();
          });
        }
      });
    }
    for (let j = 0; j < split; j++) {
      let st;
      try {
        st = fs.lstatSync(pathOf(j), { throwIfNoEntry: false });
      } catch {
      }
      fn(j, st);
    }
    await pending;
  }
  touchDir(k, today) {
    const meta = this.stored.dmeta;
    if (meta[4 * k] !== today) {
      meta[4 * k] = today;
      this.dirty = true;
    }
  }
  /** SHA-256 (hex) of the contents of `path` (relative to the root). */
  async digest(path) {
    return (await this.get(path)).digest;
  }
  /** Digest and metadata of one file. */
  async get(path) {
    return (await this.getMany([path]))[0];
  }
  /**
   * Digests and metadata of `paths` (relative to the root, in the same order). Throws when a path
   * is missing or is not a regular file or symlink. Fastest for sorted lists (as the walk returns).
   */
  async getMany(paths) {
    const out = new Array(paths.length);
    const today = Math.floor(this.now() / DAY_MS);
    const s = this.stored;
    const hasAdded = this.added.size > 0;
    const entries = hasAdded ? new Array(paths.length) : [];
    const stored = new Int32Array(paths.length).fill(-1);
    const check = [];
    const miss = new Uint8Array(paths.length);
    let cursor = 0;
    for (let i = 0; i < paths.length; i++) {
      const path = paths[i];
      const entry = hasAdded ? this.added.get(path) : void 0;
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
    const verify = (i, st) => {
      const entry = hasAdded ? entries[i] : void 0;
      if (!st) {
        miss[i] = 1;
      } else if (entry) {
        if (st.mtimeMs === entry.mtimeMs && st.ctimeMs === entry.ctimeMs && st.size === entry.size && st.ino === entry.ino && st.mode === entry.mode) {
          this.stats.hits++;
          out[i] = toDigest(paths[i], entry.mode, entry.size, entry.digest);
        } else {
          miss[i] = 1;
        }
      } else {
        const k = stored[i];
        if (this.sameFile(k, st)) {
          this.stats.hits++;
          this.touch(k, today);
          out[i] = toDigest(paths[i], st.mode, st.size, s.digest(k));
        } else {
          miss[i] = 1;
        }
      }
    };
    await this.lstatEach(
      check.length,
      (j) => this.prefix + paths[check[j]],
      (j, st) => verify(check[j], st)
    );
    const missIdx = [];
    const missStored = [];
    for (let i = 0; i < paths.length; i++) {
      if (miss[i]) {
        missIdx.push(i);
        missStored.push(stored[i]);
      }
    }
    if (missIdx.length === 0) return out;
    const abs = missIdx.map((i) => this.prefix + paths[i]);
    const startMs = this.now();
    let results;
    if (this.threads > 0 && missIdx.length >= this.poolMinFiles) {
      this.pool ??= new HashPool(this.threads, this.marginMs);
      results = await this.pool.hash(abs, startMs);
    } else {
      results = abs.map((p) => hashLocal(p, this.marginMs, startMs));
    }
    const errors = [];
    missIdx.forEach((i, j) => {
      const path = paths[i];
      const r = results[j];
      const k = missStored[j];
      if ("error" in r) {
        this.forget(path, k);
        errors.push(r.code === "ENOENT" ? `input file "${path}" does not exist` : r.error);
        return;
      }
      const size2 = r.size;
      this.stats.hashed++;
      this.stats.bytesHashed += size2;
      this.stats.retries += r.retries;
      this.opts.onHash?.(path);
      if (r.trusted) {
        const { mtimeMs, ctimeMs, ino, mode, digest } = r;
        this.added.set(path, { size: size2, mtimeMs, ctimeMs, ino, mode, digest, day: today });
        if (k >= 0) this.dead[k] = 1;
        this.dirty = true;
      } else {
        this.forget(path, k);
      }
      out[i] = toDigest(path, r.mode, size2, r.digest);
    });
    if (errors.length > 0) {
      throw new Error(
        errors.length === 1 ? errors[0] : `${errors.length} errors: ${errors.join("; ")}`
      );
    }
    return out;
  }
  /**
   * Writes the index if anything changed (temp file + rename). Returns false when it could not be
   * written; that is not an error, the next run is just colder.
   */
  async save() {
    if (!this.dirty) return true;
    const minDay = Math.floor(this.now() / DAY_MS) - KEEP_DAYS;
    const s = this.stored;
    const files = [];
    const dirs = [];
    if (s) {
      for (let i = 0; i < s.files; i++) {
        if (!this.dead[i] && s.fmeta[2 * i + 1] >= minDay && !this.added.has(s.path(i))) {
          files.push({ path: s.path(i), i });
        }
      }
      for (const [path, k] of this.storedDirs) {
        if (!this.deadDirs[k] && s.dmeta[4 * k] >= minDay && !this.addedDirs.has(path)) {
          if (s.dirListing(k)) dirs.push({ path, k });
        }
      }
    }
    for (const [path, e] of this.added) if (e.day >= minDay) files.push({ path, i: -1, e });
    for (const [path, e] of this.addedDirs) if (e.day >= minDay) dirs.push({ path, k: -1, e });
    files.sort(byPath);
    const data = encodeIndex(s, files, dirs);
    const tmp = `${this.file}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`;
    try {
      await mkdir(dirname2(this.file), { recursive: true });
      await writeFile(tmp, data);
      await rename(tmp, this.file);
      this.dirty = false;
    } catch {
      await unlink(tmp).catch(() => void 0);
      return false;
    }
    await unlink(join(dirname2(this.file), LEGACY_INDEX_FILE)).catch(() => void 0);
    return true;
  }
  /** Stops the worker threads (idle ones never keep the process alive, but tests like it). */
  async close() {
    const pool2 = this.pool;
    this.pool = void 0;
    await pool2?.close();
  }
};
function toDigest(path, mode, size2, digest) {
  const symlink = (mode & S_IFMT) === S_IFLNK;
  return {
    path,
    kind: symlink ? "symlink" : "file",
    digest,
    size: size2,
    executable: !symlink && (mode & 73) !== 0
  };
}

// src/plan/inputs.ts
var SKIPPED_UNLESS_NAMED = [".git", "node_modules"];
var ALWAYS_SKIPPED = /* @__PURE__ */ new Set([".dist-build"]);
var DirCache = class {
  constructor(store) {
    this.store = store;
  }
  store;
  map = /* @__PURE__ */ new Map();
  /** The listing of `rel` (relative to `root`, `''` = the root). */
  read(root, rel2) {
    const key = root + "\0" + rel2;
    let listing = this.map.get(key);
    if (!listing) {
      if (this.store && this.store.root === root) listing = this.store.listDir(rel2);
      else listing = readDirListing(rel2 === "" ? root : join2(root, rel2));
      this.map.set(key, listing);
    }
    return listing;
  }
};
var TYPE_DIR = 100;
var SURROGATE = /[\ud800-\udfff]/;
function sortByteOrder(list) {
  if (!list.some((s) => SURROGATE.test(s))) return [...list].sort();
  return list.map((s) => ({ s, b: Buffer.from(s, "utf8") })).sort((x, y) => Buffer.compare(x.b, y.b)).map((x) => x.s);
}
function compareByteOrder(a, b) {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
function normalizePattern(source, p) {
  let s = p;
  while (s.startsWith("./")) s = s.slice(2);
  s = s.replace(/\/+$/, "").replace(/\/{2,}/g, "/");
  if (s === ".") s = "";
  if (s.startsWith("/")) throw new Error(`input pattern "${source}" must be relative to the root`);
  if (s.split("/").some((seg) => seg === ".." || seg === ".")) {
    throw new Error(
      `input pattern "${source}" must stay inside the root (no "." or ".." segments)`
    );
  }
  return s;
}
function compile(source, text) {
  const pattern = normalizePattern(source, text);
  const scan = picomatch.scan(pattern, { unescape: true });
  const isGlob = scan.isGlob;
  const base = scan.base;
  const test = pattern === "" ? () => true : picomatch(pattern, { dot: true, windows: false });
  const segments = pattern.split("/");
  const named = new Set(SKIPPED_UNLESS_NAMED.filter((n) => segments.includes(n)));
  return { source, pattern, base, isGlob, test, named };
}
function compilePatterns(patterns) {
  const positives = [];
  const negatives = [];
  for (const p of patterns) {
    if (p.startsWith("!")) negatives.push(compile(p, p.slice(1)));
    else positives.push(compile(p, p));
  }
  return { positives, negatives };
}
function expandInputs(root, patterns, opts = {}) {
  const dirs = opts.dirCache ?? new DirCache();
  const { positives, negatives } = compilePatterns(patterns);
  const literal = opts.exclude instanceof Set ? opts.exclude : new Set(opts.exclude ?? []);
  const excluded = (rel2) => literal.has(rel2) || negatives.some((n) => n.test(rel2));
  const found = positives.length === 1 ? [] : /* @__PURE__ */ new Set();
  const unmatched = [];
  for (const pat of positives) {
    let hits = 0;
    const hit = Array.isArray(found) ? (rel2) => {
      found.push(rel2);
      hits++;
    } : (rel2) => {
      found.add(rel2);
      hits++;
    };
    const skipDir = (name) => ALWAYS_SKIPPED.has(name) || SKIPPED_UNLESS_NAMED.includes(name) && !pat.named.has(name);
    const skipFile = (name) => name === ".git" && !pat.named.has(name);
    const addAll = (rel2) => {
      const { names, types } = dirs.read(root, rel2);
      const prefix = rel2 === "" ? "" : rel2 + "/";
      for (let i = 0; i < names.length; i++) {
        const name = names[i];
        if (types.charCodeAt(i) === TYPE_DIR) {
          if (!skipDir(name)) addAll(prefix + name);
        } else if (!skipFile(name)) hit(prefix + name);
      }
    };
    const walk = (rel2) => {
      const { names, types } = dirs.read(root, rel2);
      const prefix = rel2 === "" ? "" : rel2 + "/";
      for (let i = 0; i < names.length; i++) {
        const name = names[i];
        const child = prefix + name;
        if (types.charCodeAt(i) === TYPE_DIR) {
          if (skipDir(name)) continue;
          if (pat.test(child)) addAll(child);
          else walk(child);
        } else if (!skipFile(name) && pat.test(child)) {
          hit(child);
        }
      }
    };
    const start = startingPoint(root, pat.base);
    if (start === "dir") {
      if (!pat.isGlob || pat.pattern === "") addAll(pat.base);
      else if (pat.base !== "" && pat.test(pat.base)) addAll(pat.base);
      else walk(pat.base);
    } else if (start === "leaf") {
      if (!pat.isGlob || pat.test(pat.base)) hit(pat.base);
    }
    if (hits === 0) unmatched.push(pat.source);
  }
  let files;
  if (negatives.length === 0 && literal.size === 0)
    files = Array.isArray(found) ? found : [...found];
  else {
    files = [];
    for (const f of found) if (!isExcluded(f, excluded)) files.push(f);
  }
  return { files: sortByteOrder(files), unmatched };
}
function inputMatcher(patterns) {
  const { positives, negatives } = compilePatterns(patterns);
  const negated = (rel2) => negatives.some((n) => n.test(rel2));
  return (rel2) => {
    if (isExcluded(rel2, negated)) return void 0;
    return positives.find((p) => isExcluded(rel2, p.test))?.source;
  };
}
function patternBases(patterns) {
  return compilePatterns(patterns).positives.map((p) => p.base);
}
function isExcluded(rel2, excluded) {
  if (excluded(rel2)) return true;
  for (let i = rel2.indexOf("/"); i !== -1; i = rel2.indexOf("/", i + 1)) {
    if (excluded(rel2.slice(0, i))) return true;
  }
  return false;
}
function startingPoint(root, base) {
  if (base === "") return "dir";
  const parts = base.split("/");
  let abs = root;
  for (let i = 0; i < parts.length; i++) {
    abs = join2(abs, parts[i]);
    let st;
    try {
      st = lstatSync(abs);
    } catch {
      return "none";
    }
    const last = i === parts.length - 1;
    if (st.isDirectory()) {
      if (ALWAYS_SKIPPED.has(parts[i])) return "none";
      if (last) return "dir";
      continue;
    }
    if (!last) return "none";
    return st.isFile() || st.isSymbolicLink() ? "leaf" : "none";
  }
  return "none";
}

// src/plan/dockerignore.ts
var UTF8_BOM = "\uFEFF";
function cleanPath(p) {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(seg);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}
function parseDockerignore(text) {
  const patterns = [];
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  lines.forEach((raw, i) => {
    let line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (i === 0 && line.startsWith(UTF8_BOM)) line = line.slice(1);
    if (line.startsWith("#")) return;
    let pattern = goTrimSpace(line);
    if (pattern === "") return;
    const invert = pattern.startsWith("!");
    if (invert) pattern = goTrimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith("/")) pattern = pattern.slice(1);
    }
    patterns.push(invert ? "!" + pattern : pattern);
  });
  return patterns;
}
function goTrimSpace(s) {
  return s.replace(/^[\s\u0085]+|[\s\u0085]+$/gu, "");
}
var JS_SYNTAX = /* @__PURE__ */ new Set([..."^$\\.*+?()[]{}|/"]);
var Pattern = class {
  constructor(pattern, exclusion) {
    this.pattern = pattern;
    this.exclusion = exclusion;
    const { type, source } = compile2(pattern);
    this.matchType = type;
    if (type === "regexp") {
      try {
        this.regexp = new RegExp(source, "u");
      } catch (err) {
        throw new Error(`invalid .dockerignore pattern "${pattern}": ${err.message}`, {
          cause: err
        });
      }
    }
  }
  pattern;
  exclusion;
  matchType;
  regexp;
  test(path) {
    const p = this.pattern;
    switch (this.matchType) {
      case "exact":
        return path === p;
      case "prefix":
        return path.startsWith(p.slice(0, -2));
      // strip the trailing `**`
      case "suffix": {
        const suffix = p.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith("/") && path === suffix.slice(1);
      }
      case "regexp":
        return this.regexp.test(path);
    }
  }
};
function compile2(pattern) {
  const chars = [...pattern];
  const bad = (why) => new Error(`invalid .dockerignore pattern "${pattern}": ${why}`);
  let re = "^";
  let type = "exact";
  for (let i = 0, iter = 0; i < chars.length; iter++) {
    const ch = chars[i++];
    if (ch === "*") {
      if (chars[i] === "*") {
        i++;
        if (chars[i] === "/") i++;
        if (i >= chars.length) {
          if (type === "exact") type = "prefix";
          else {
            re += ".*";
            type = "regexp";
          }
        } else {
          re += "(?:.*/)?";
          type = "regexp";
        }
        if (iter === 0) type = "suffix";
      } else {
        re += "[^/]*";
        type = "regexp";
      }
    } else if (ch === "?") {
      re += "[^/]";
      type = "regexp";
    } else if (ch === "\\") {
      const next = chars[i++];
      if (next === void 0) throw bad("trailing backslash");
      re += escapeLiteral(next);
      type = "regexp";
    } else if (ch === "[") {
      let cls = "[";
      if (chars[i] === "^") {
        cls += "^";
        i++;
      }
      let ranges = 0;
      const endpoint = () => {
        let c = chars[i];
        if (c === void 0 || c === "-" || c === "]") throw bad("malformed character class");
        if (c === "\\") {
          c = chars[++i];
          if (c === void 0) throw bad("malformed character class");
        }
        i++;
        return escapeInClass(c);
      };
      for (; ; ) {
        if (chars[i] === "]" && ranges > 0) {
          i++;
          break;
        }
        cls += endpoint();
        if (chars[i] === "-") {
          i++;
          cls += "-" + endpoint();
        }
        ranges++;
      }
      re += cls + "]";
      type = "regexp";
    } else {
      re += ch === "^" ? "^" : escapeLiteral(ch);
    }
  }
  if (type === "regexp") re += "$";
  return { type, source: re };
}
function escapeInClass(ch) {
  return "\\]-^[".includes(ch) ? "\\" + ch : ch;
}
function escapeLiteral(ch) {
  return JS_SYNTAX.has(ch) ? "\\" + ch : ch;
}
var DockerignoreMatcher = class _DockerignoreMatcher {
  patterns;
  /** True when at least one pattern is an exception (`!`). */
  exclusions;
  /** True when every exception is a plain path (after dropping a trailing `/**` or `/*`). */
  onlyPrefixExceptions;
  /** `patterns` as returned by {@link parseDockerignore}; throws on an invalid pattern. */
  constructor(patterns) {
    const list = [];
    for (const raw of patterns) {
      let p = goTrimSpace(raw);
      if (p === "") continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith("!")) {
        if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
      }
      list.push(new Pattern(p, exclusion));
    }
    this.patterns = list;
    this.exclusions = list.some((p) => p.exclusion);
    this.onlyPrefixExceptions = list.every(
      (p) => !p.exclusion || !/[*[\]?^\\]/.test(withoutTrailingGlob(p.pattern))
    );
  }
  /** Parses and compiles a `.dockerignore` text. */
  static fromText(text) {
    return new _DockerignoreMatcher(parseDockerignore(text));
  }
  /**
   * Whether `path` (slash-separated, relative to the context) is excluded, evaluating every parent
   * directory as well (moby `MatchesOrParentMatches`). For a walk, prefer
   * {@link matchesUsingParentResults}, which is what BuildKit does.
   */
  matches(path) {
    const file = cleanPath(path);
    if (file === ".") return false;
    const parent = posix2.dirname(file);
    const parentDirs = parent === "." ? [] : parent.split("/");
    let matched = false;
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue;
      let match = pattern.test(file);
      for (let i = 0; !match && i < parentDirs.length; i++) {
        match = pattern.test(parentDirs.slice(0, i + 1).join("/"));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }
  /**
   * moby `MatchesUsingParentResults`: like {@link matches}, but a pattern that matched the parent
   * directory (`parent`, from the parent's own call) counts as matching without re-testing, and a
   * pattern skipped for the parent is only tested against `path` itself. Without `parent`, parent
   * directories are tested as in {@link matches}.
   */
  matchesUsingParentResults(path, parent) {
    const file = cleanPath(path);
    const info = new Array(this.patterns.length).fill(false);
    let matched = false;
    this.patterns.forEach((pattern, i) => {
      let match = parent !== void 0 && parent.length > 0 ? parent[i] : false;
      if (!match) {
        if (pattern.exclusion !== matched) return;
        match = pattern.test(file);
        if (!match && (parent === void 0 || parent.length === 0)) {
          const dir = posix2.dirname(file);
          if (dir !== ".") {
            const parts = dir.split("/");
            for (let k = 0; !match && k < parts.length; k++) {
              match = pattern.test(parts.slice(0, k + 1).join("/"));
            }
          }
        }
      }
      info[i] = match;
      if (match) matched = !pattern.exclusion;
    });
    return { excluded: matched, info };
  }
  /**
   * fsutil's shortcut: an excluded directory is entered only if an exception might re-include
   * something below it (any exception with wildcards, or one whose path lies under `dir`).
   */
  mustEnterExcludedDir(dir) {
    if (!this.onlyPrefixExceptions) return true;
    if (!this.exclusions) return false;
    const dirSlash = dir + "/";
    return this.patterns.some(
      (p) => p.exclusion && (withoutTrailingGlob(p.pattern) + "/").startsWith(dirSlash)
    );
  }
};
function withoutTrailingGlob(p) {
  let s = p;
  if (s.endsWith("/**")) s = s.slice(0, -3);
  if (s.endsWith("/*")) s = s.slice(0, -2);
  return s;
}
function findDockerignore(root, context, dockerfile) {
  const candidates = [dockerfile + ".dockerignore", posix2.join(context, ".dockerignore")];
  for (const c of candidates) {
    try {
      if (statSync(join3(root, c)).isFile()) return posix2.normalize(c);
    } catch {
    }
  }
  return null;
}
function sentOwnFile(root, spec) {
  const context = posix2.normalize(spec.context);
  const prefix = context === "." ? "" : context + "/";
  if (!statSync(join3(root, prefix + ".dist-build"), { throwIfNoEntry: false })?.isDirectory())
    return null;
  const ignoreFile = findDockerignore(root, context, posix2.normalize(spec.file));
  const matcher = ignoreFile ? DockerignoreMatcher.fromText(readFileSync(join3(root, ignoreFile), "utf8")) : void 0;
  const first = (rel2, parentInfo) => {
    for (const entry of readdirSync(join3(root, prefix + rel2), { withFileTypes: true })) {
      const child = `${rel2}/${entry.name}`;
      const r = matcher?.matchesUsingParentResults(child, parentInfo);
      if (entry.isDirectory()) {
        if (r?.excluded && !matcher.mustEnterExcludedDir(child)) continue;
        const found = first(child, r?.info);
        if (found) return found;
      } else if (!r?.excluded && (entry.isFile() || entry.isSymbolicLink())) return prefix + child;
    }
    return null;
  };
  const top = matcher?.matchesUsingParentResults(".dist-build");
  if (top?.excluded && !matcher.mustEnterExcludedDir(".dist-build")) return null;
  return first(".dist-build", top?.info);
}
function underExcluded(rel2, exclude) {
  if (!exclude?.size) return false;
  for (let i = rel2.length; i > 0; i = rel2.lastIndexOf("/", i - 1))
    if (exclude.has(rel2.slice(0, i))) return true;
  return false;
}
function listDockerContext(root, spec, opts = {}) {
  const skip = new Set(opts.skipDirs ?? [".dist-build"]);
  const context = posix2.normalize(spec.context);
  const dockerfile = posix2.normalize(spec.file);
  const ctxAbs = join3(root, context);
  const missing = [];
  const exclude = opts.exclude;
  const contextOut = context !== "." && underExcluded(context, exclude);
  const contextOk = !contextOut && (statSync(ctxAbs, { throwIfNoEntry: false })?.isDirectory() ?? false);
  if (!contextOk && !contextOut) missing.push(spec.context);
  const dockerfileOut = underExcluded(dockerfile, exclude);
  const dockerfileOk = !dockerfileOut && (statSync(join3(root, dockerfile), { throwIfNoEntry: false })?.isFile() ?? false);
  if (!dockerfileOk && !dockerfileOut) missing.push(spec.file);
  const ignoreFile = findDockerignore(root, context, dockerfile);
  const matcher = ignoreFile ? DockerignoreMatcher.fromText(readFileSync(join3(root, ignoreFile), "utf8")) : void 0;
  const prefix = context === "." ? "" : context + "/";
  const out = [];
  const walk = (relDir, parentInfo) => {
    const abs = relDir === "" ? ctxAbs : join3(ctxAbs, relDir);
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const rel2 = relDir === "" ? entry.name : relDir + "/" + entry.name;
      const isDir = entry.isDirectory();
      if (isDir && skip.has(entry.name)) continue;
      if (exclude?.has(prefix + rel2)) continue;
      let info;
      let excluded = false;
      if (matcher) {
        const r = matcher.matchesUsingParentResults(rel2, parentInfo);
        info = r.info;
        excluded = r.excluded;
        if (excluded && isDir && !matcher.mustEnterExcludedDir(rel2)) continue;
      }
      if (isDir) walk(rel2, info);
      else if (!excluded && (entry.isFile() || entry.isSymbolicLink())) out.push(prefix + rel2);
    }
  };
  if (contextOk) walk("", void 0);
  if (dockerfileOk && !out.includes(dockerfile)) out.push(dockerfile);
  return { files: sortByteOrder(out), ignoreFile, missing };
}

// src/plan/keys.ts
var KEY_FORMAT = "dist-build/key/v1";
var RawJson = class {
  constructor(text) {
    this.text = text;
  }
  text;
};
function canonicalJson(value) {
  if (value instanceof RawJson) return value.text;
  if (value === null || typeof value === "boolean") return String(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value))
      throw new Error(`canonical JSON takes integers only: ${value}`);
    return String(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  const keys = Object.keys(value).sort(compareByteOrder);
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(value[k])).join(",") + "}";
}
function sortedPairs(record) {
  return Object.keys(record).sort(compareByteOrder).map((k) => [k, record[k]]);
}
function excludedPaths(config, extra = [], outputs = declaredOutputs(config)) {
  return /* @__PURE__ */ new Set([...outputs, ...storeDirs(config), ...extra]);
}
function storeDirs(config) {
  const dirs = [];
  for (const store of config.cache?.stores ?? []) {
    if (store.type !== "local" && store.type !== "gha") continue;
    if (typeof store.dir !== "string" || store.dir === "") continue;
    const rel2 = relative2(config.root, resolve2(config.root, store.dir));
    if (rel2 && rel2 !== ".." && !rel2.startsWith(`..${sep3}`) && !isAbsolute(rel2))
      dirs.push(rel2.split(sep3).join("/"));
  }
  return dirs;
}
function keyWarnings(units, keys) {
  const messages = /* @__PURE__ */ new Set();
  for (const u of units) {
    const info = keys.get(u.id);
    for (const p of info?.unmatched ?? []) {
      messages.add(`invocations.${u.invocation}: "${p}" matches no file`);
    }
    for (const m of info?.shadowed ?? []) messages.add(m);
  }
  return [...messages];
}
function declaredOutputs(config) {
  return [...new Set(config.invocations.flatMap((i) => i.outputs))];
}
var SHADOW_TESTS = 2e5;
function shadowedInputs(config, dirCache) {
  const invocations = new Map(config.invocations.map((i) => [i.name, i]));
  const closures = /* @__PURE__ */ new Map();
  const needed = (name) => {
    let all = closures.get(name);
    if (all) return all;
    all = /* @__PURE__ */ new Set();
    closures.set(name, all);
    for (const n of invocations.get(name)?.needs ?? []) {
      all.add(n);
      for (const m of needed(n)) all.add(m);
    }
    return all;
  };
  const filesUnder = /* @__PURE__ */ new Map();
  const under = (out) => {
    let files = filesUnder.get(out);
    if (!files) filesUnder.set(out, files = expandInputs(config.root, [out], { dirCache }).files);
    return files;
  };
  const warnings = /* @__PURE__ */ new Map();
  let budget = SHADOW_TESTS;
  for (const inv of config.invocations) {
    if (inv.docker) {
      let own = null;
      try {
        own = sentOwnFile(config.root, inv.docker);
      } catch {
      }
      if (own)
        warnings.set(inv.name, [
          `invocations.${inv.name}.docker.context: "${normRel(inv.docker.context)}" holds .dist-build, dist-build's own directory (cache, run state, the run's keys), and no .dockerignore leaves it out: Docker sends it (${own}, for one), so a COPY of the whole context puts it in the image, and the cache key does not cover it (add .dist-build to .dockerignore)`
        ]);
    }
    if (inv.inputs.length === 0 && !inv.docker) continue;
    const context = inv.docker ? normRel(inv.docker.context) : void 0;
    const bases = [
      ...patternBases(inv.inputs),
      ...context ? [context === "." ? "" : context] : []
    ];
    const reaches = (out) => bases.some(
      (b) => b === "" || b === out || out.startsWith(`${b}/`) || b.startsWith(`${out}/`)
    );
    let match;
    let sent;
    for (const other of config.invocations) {
      if (other === inv || needed(inv.name).has(other.name)) continue;
      for (const out of other.outputs) {
        if (--budget < 0) return warnings;
        if (!reaches(out)) continue;
        match ??= inputMatcher(inv.inputs);
        sent ??= context ? contextSends(config.root, inv.docker) : () => false;
        for (const file of under(out)) {
          if (--budget < 0) return warnings;
          const pattern = match(file);
          if (pattern === void 0 && !sent(file)) continue;
          const list = warnings.get(inv.name) ?? [];
          list.push(
            (pattern !== void 0 ? `invocations.${inv.name}.inputs: "${pattern}" matches ${file}` : `invocations.${inv.name}.docker.context: "${context}" holds ${file}`) + `, an output of ${other.name}, which ${inv.name} does not need: no invocation's outputs are inputs, so changing it would not rebuild ${inv.name} (add needs: [${other.name}], or ${pattern !== void 0 ? "narrow the pattern" : "leave it out with .dockerignore"})`
          );
          warnings.set(inv.name, list);
          break;
        }
      }
    }
  }
  return warnings;
}
function unitFiles(config, inv, dirCache, exclude) {
  const globs = expandInputs(config.root, inv.inputs, { dirCache, exclude });
  if (!inv.docker) return globs;
  const ctx = listDockerContext(config.root, inv.docker, { exclude });
  const all = /* @__PURE__ */ new Set([...ctx.files, ...globs.files]);
  return { files: sortByteOrder([...all]), unmatched: [...ctx.missing, ...globs.unmatched] };
}
function contextSends(root, spec) {
  const context = normRel(spec.context);
  const prefix = context === "." ? "" : `${context}/`;
  let matcher;
  try {
    const ignore = findDockerignore(root, context, normRel(spec.file));
    if (ignore) matcher = DockerignoreMatcher.fromText(readFileSync2(join4(root, ignore), "utf8"));
  } catch {
    return () => false;
  }
  return (rel2) => rel2.startsWith(prefix) && !matcher?.matches(rel2.slice(prefix.length));
}
function dependencyOrder(units, outside) {
  const byId = /* @__PURE__ */ new Map();
  for (const u of units) {
    if (byId.has(u.id)) throw new Error(`unit "${u.id}" is listed twice`);
    byId.set(u.id, u);
  }
  const state = /* @__PURE__ */ new Map();
  const order = [];
  const visit3 = (u, path) => {
    const s = state.get(u.id);
    if (s === "done") return;
    if (s === "visiting") {
      const cycle = [...path.slice(path.indexOf(u.id)), u.id];
      throw new Error(`needs cycle: ${cycle.join(" -> ")}`);
    }
    state.set(u.id, "visiting");
    for (const n of u.needs) {
      const dep = byId.get(n);
      if (!dep && outside?.has(n)) continue;
      if (!dep) throw new Error(`unit "${u.id}" needs unknown unit "${n}"`);
      visit3(dep, [...path, u.id]);
    }
    state.set(u.id, "done");
    order.push(u);
  };
  for (const u of units) visit3(u, []);
  return order;
}
function keyDocument(inv, unit, inputs, needs) {
  const doc = {
    format: KEY_FORMAT,
    kind: inv.docker ? "docker" : "run",
    platform: unit.platform ?? null,
    env: sortedPairs(inv.env),
    // With a docker unit's image archive, whose path names the unit (`unitOutputs`).
    outputs: sortByteOrder([...new Set(unitOutputs(inv, unit.id))]),
    // arrays of strings only: JSON.stringify output is canonical
    inputs: new RawJson(
      JSON.stringify(
        inputs.map((f) => [
          f.path,
          f.kind === "symlink" ? "l" : f.executable ? "x" : "f",
          f.digest
        ])
      )
    ),
    needs
  };
  if (inv.docker) {
    const d = inv.docker;
    const context = normRel(d.context);
    doc.docker = {
      context,
      dockerfile: relativePosix(context, normRel(d.file)),
      target: d.target ?? null,
      buildArgs: sortedPairs(d.buildArgs),
      // The image archive is saved by its tags (`docker load` tags the image with them).
      tags: sortByteOrder([...new Set(d.tags)])
    };
  } else {
    doc.run = inv.run ?? "";
  }
  return doc;
}
function normRel(p) {
  return posix3.normalize(p).replace(/\/+$/, "") || ".";
}
function relativePosix(from, to) {
  const a = from === "." || from === "" ? [] : from.split("/");
  const b = to.split("/");
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
}
async function computeCacheKeys(config, units, opts = {}) {
  const invocations = new Map(config.invocations.map((i) => [i.name, i]));
  const order = dependencyOrder(units, opts.needKeys);
  for (const u of order) {
    if (!invocations.has(u.invocation)) {
      throw new Error(`unit "${u.id}" belongs to unknown invocation "${u.invocation}"`);
    }
  }
  const filesByInvocation = /* @__PURE__ */ new Map();
  let shadowed = /* @__PURE__ */ new Map();
  let list = [];
  let got = [];
  const withFiles = order.some((u) => {
    const inv = invocations.get(u.invocation);
    return inv.inputs.length > 0 || inv.docker !== void 0;
  });
  if (!withFiles) {
    for (const u of order) filesByInvocation.set(u.invocation, { files: list, unmatched: [] });
  }
  const index = !withFiles ? void 0 : opts.index ?? await FileIndex.open(config.root, { cacheDir: opts.cacheDir });
  if (index) {
    try {
      await index.verify();
      const dirCache = new DirCache(index);
      const exclude = excludedPaths(config, opts.exclude, opts.outputs);
      for (const u of order) {
        const inv = invocations.get(u.invocation);
        if (!filesByInvocation.has(inv.name)) {
          filesByInvocation.set(inv.name, unitFiles(config, inv, dirCache, exclude));
        }
      }
      if (!opts.needKeys) shadowed = shadowedInputs(config, new DirCache());
      const lists = [...filesByInvocation.values()];
      if (lists.length === 1) list = lists[0].files;
      else {
        const allPaths = /* @__PURE__ */ new Set();
        for (const { files } of lists) for (const f of files) allPaths.add(f);
        list = [...allPaths];
      }
      got = await index.getMany(list);
      if (!opts.index) await index.save();
    } finally {
      if (!opts.index) await index.close();
    }
  }
  let digests;
  const result = /* @__PURE__ */ new Map();
  for (const u of order) {
    const inv = invocations.get(u.invocation);
    const { files, unmatched } = filesByInvocation.get(inv.name);
    let inputs = got;
    if (files !== list) {
      digests ??= new Map(list.map((p, i) => [p, got[i]]));
      inputs = files.map((f) => digests.get(f));
    }
    const needs = [...new Set(u.needs)].sort(compareByteOrder).map((id) => [id, result.get(id)?.cacheKey ?? opts.needKeys.get(id)]);
    const doc = canonicalJson(keyDocument(inv, u, inputs, needs));
    const cacheKey = "sha256:" + crypto2.createHash("sha256").update(doc, "utf8").digest("hex");
    result.set(u.id, {
      cacheKey,
      files: inputs.length,
      bytes: inputs.reduce((n, f) => n + f.size, 0),
      unmatched: [...unmatched],
      shadowed: shadowed.get(inv.name) ?? [],
      ...opts.documents ? { document: doc } : {}
    });
  }
  return result;
}

// src/plan/plan.ts
function pathBelow(base, path) {
  const rel2 = relative3(base, path);
  return rel2 && rel2 !== ".." && !rel2.startsWith(`..${sep4}`) && !isAbsolute2(rel2) ? rel2 : void 0;
}
function outExclusion(root, out) {
  const rel2 = pathBelow(root, resolve3(out));
  return rel2 ? [rel2.split(sep4).join("/")] : [];
}
var PlanInputError = class extends Error {
  name = "PlanInputError";
};
var MAX_PLANNED_WORKERS = 1e4;
function numberedWorkers(n) {
  if (!Number.isInteger(n) || n < 1)
    throw new PlanInputError(`worker count must be a whole number >= 1, got ${n}`);
  if (n > MAX_PLANNED_WORKERS)
    throw new PlanInputError(
      `worker count ${n}: at most ${MAX_PLANNED_WORKERS} workers can be planned for`
    );
  return Array.from({ length: n }, (_, i) => ({ id: `worker-${i + 1}` }));
}
function expectedDuration(config, unit, history) {
  const h2 = history?.durations[unit.id] ?? history?.durations[unit.invocation];
  if (h2 !== void 0 && h2 > 0) return h2;
  const inv = config.invocations.find((i) => i.name === unit.invocation);
  return inv?.estimate ?? config.placement.defaultDuration;
}
var round2 = (x) => Math.round(x * 1e3) / 1e3;
async function planBuild(config, opts = {}) {
  const units = expandUnits(config);
  const workers = opts.workers ?? numberedWorkers(workerCount(config, units.length));
  const ids = /* @__PURE__ */ new Set();
  for (const w of workers) {
    if (ids.has(w.id)) throw new PlanInputError(`worker id "${w.id}" is given twice`);
    ids.add(w.id);
  }
  const durations = new Map(units.map((u) => [u.id, expectedDuration(config, u, opts.history)]));
  const items = units.map((u) => ({
    id: u.id,
    affinityKey: u.affinityKey,
    duration: durations.get(u.id),
    needs: u.needs,
    labels: u.labels,
    ...u.platform === void 0 ? {} : { platform: u.platform },
    ...u.executor === void 0 ? {} : { executor: u.executor }
  }));
  const result = place({
    items,
    workers,
    balance: config.placement.balance,
    ...opts.previous ? { previous: opts.previous.assignments } : {}
  });
  const keys = opts.keys === false ? void 0 : await computeCacheKeys(config, units, {
    ...opts.cacheDir ? { cacheDir: opts.cacheDir } : {},
    exclude: opts.exclude ?? []
  });
  if (keys && opts.onWarning) for (const m of keyWarnings(units, keys)) opts.onWarning(m);
  const unitsOut = {};
  for (const u of units) {
    const cacheKey = keys?.get(u.id)?.cacheKey;
    unitsOut[u.id] = {
      invocation: u.invocation,
      duration: round2(durations.get(u.id)),
      affinityKey: u.affinityKey,
      ...cacheKey ? { cacheKey } : {}
    };
  }
  return {
    workers: workers.map((w) => w.id),
    matrix: { include: workers.map((w) => ({ worker: w.id })) },
    assignments: result.assignments,
    estimate: {
      makespan: round2(result.makespan),
      lowerBound: round2(result.lowerBound),
      capacity: round2(result.capacity)
    },
    units: unitsOut
  };
}
async function readJson(file, what) {
  let text;
  try {
    text = await readFile3(file, "utf8");
  } catch (err) {
    throw new PlanInputError(
      `${file}: cannot read ${what}: ${err.code ?? err.message}`
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PlanInputError(`${file}: ${what} is not valid JSON: ${err.message}`);
  }
}
var isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
async function readHistory(file) {
  const data = await readJson(file, "history");
  if (!isObject(data) || !isObject(data.durations)) {
    throw new PlanInputError(`${file}: expected {"durations": {"<invocation>": <seconds>}}`);
  }
  for (const [k, v] of Object.entries(data.durations)) {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > MAX_DURATION_S) {
      throw new PlanInputError(
        `${file}: durations.${k}: expected a number of seconds from 0 to ${MAX_DURATION_S} (24 days), got ${JSON.stringify(v)}`
      );
    }
  }
  return { durations: data.durations };
}
async function readPrevious(file) {
  const data = await readJson(file, "previous plan");
  if (!isObject(data) || !isObject(data.assignments)) {
    throw new PlanInputError(
      `${file}: expected the JSON printed by \`dist-build plan --json\` (an "assignments" object)`
    );
  }
  for (const [k, v] of Object.entries(data.assignments)) {
    if (typeof v !== "string")
      throw new PlanInputError(`${file}: assignments.${k}: expected a worker id string`);
  }
  return { assignments: data.assignments };
}
async function readMembers(file) {
  const data = await readJson(file, "members");
  const list = isObject(data) && Array.isArray(data.workers) ? data.workers : data;
  if (!Array.isArray(list) || list.length === 0)
    throw new PlanInputError(
      `${file}: expected a list of {"worker_id", "annotations"} records${Array.isArray(list) ? ", got an empty one" : ""}`
    );
  return list.map((r, i) => {
    if (!isObject(r) || typeof (r.worker_id ?? r.id) !== "string" || (r.worker_id ?? r.id) === "") {
      throw new PlanInputError(
        `${file}: [${i}]: expected {"worker_id": "<id>", "annotations": {...}}`
      );
    }
    const ann = r.annotations;
    if (ann !== void 0 && (!isObject(ann) || Object.values(ann).some((v) => typeof v !== "string"))) {
      throw new PlanInputError(`${file}: [${i}].annotations: expected string values`);
    }
    return {
      id: String(r.worker_id ?? r.id),
      ...ann ? { annotations: ann } : {}
    };
  });
}

// src/version.ts
var VERSION2 = "0.1.0";

// src/store/index.ts
init_types();
init_local();

// src/store/pack.ts
init_digest();
init_fsutil();
init_hash_pipe();
init_limit();
import { randomBytes as randomBytes2 } from "node:crypto";
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
  readSync as readSync2,
  symlinkSync,
  write as fsWrite,
  writeSync
} from "node:fs";
import { lstat as lstat3, mkdir as mkdir3, readdir as readdir2, readlink, rename as rename3, rm as rm3 } from "node:fs/promises";
import { dirname as dirname4, join as join7, posix as posix4 } from "node:path";

// src/store/tar.ts
var BLOCK = 512;
var END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
var TYPEFLAG = { file: 0, symlink: 2, directory: 5 };
var PAX_TYPEFLAG = 72;
function padding(size2) {
  const r = size2 % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}
function oct(value, digits) {
  const s = value.toString(8);
  if (s.length > digits) return "7".repeat(digits) + " ";
  return "0".repeat(digits - s.length) + s + " ";
}
function isAscii(s) {
  return /^[\x00-\x7f]*$/.test(s);
}
function ustarInto(buf, pos, name, typeflag, mode, size2, linkname) {
  if (!isAscii(name)) return false;
  let prefix = "";
  while (name.length > 100) {
    const i = name.indexOf("/");
    if (i === -1) return false;
    prefix += prefix ? "/" + name.slice(0, i) : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (name.length > 100 || prefix.length > 155) return false;
  if (linkname && Buffer.byteLength(linkname) > 100) return false;
  buf.fill(0, pos, pos + BLOCK);
  buf.write(name, pos, "latin1");
  buf.write(oct(mode & 4095, 6), pos + 100, "latin1");
  buf.write("000000 ", pos + 108, "latin1");
  buf.write("000000 ", pos + 116, "latin1");
  if (size2.toString(8).length > 11) {
    buf[pos + 124] = 128;
    let n = size2;
    for (let i = 11; i > 0; i--) {
      buf[pos + 124 + i] = n & 255;
      n = Math.floor(n / 256);
    }
  } else {
    buf.write(oct(size2, 11), pos + 124, "latin1");
  }
  buf.write("00000000000 ", pos + 136, "latin1");
  buf[pos + 156] = 48 + typeflag;
  if (linkname) buf.write(linkname, pos + 157, "utf8");
  buf.write("ustar\x0000", pos + 257, "latin1");
  buf.write("000000 ", pos + 329, "latin1");
  buf.write("000000 ", pos + 337, "latin1");
  if (prefix) buf.write(prefix, pos + 345, "latin1");
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += buf[pos + i];
  for (let i = 156; i < BLOCK; i++) sum += buf[pos + i];
  buf.write(oct(sum, 6), pos + 148, "latin1");
  return true;
}
function paxRecord(key, value) {
  const str2 = ` ${key}=${value}
`;
  const len = Buffer.byteLength(str2);
  let digits = String(len).length;
  if (len + digits >= 10 ** digits) digits++;
  return `${len + digits}${str2}`;
}
function writeHeader(buf, pos, end, h2) {
  if (end - pos < BLOCK) return 0;
  const size2 = h2.type === "file" ? h2.size : 0;
  if (ustarInto(buf, pos, h2.name, TYPEFLAG[h2.type], h2.mode, size2, h2.linkname)) return BLOCK;
  const bytes = paxHeader(h2);
  if (end - pos < bytes.length) return 0;
  bytes.copy(buf, pos);
  return bytes.length;
}
function paxHeader(h2) {
  const flag = TYPEFLAG[h2.type];
  const size2 = h2.type === "file" ? h2.size : 0;
  let pax = paxRecord("path", h2.name);
  if (h2.linkname) pax += paxRecord("linkpath", h2.linkname);
  const body = Buffer.from(pax, "utf8");
  const out = Buffer.alloc(BLOCK + body.length + padding(body.length) + BLOCK);
  const placeholder = h2.type === "directory" ? "PaxHeader/" : "PaxHeader";
  const link2 = h2.linkname ? "PaxHeader" : void 0;
  ustarInto(out, 0, "PaxHeader", PAX_TYPEFLAG, h2.mode, body.length, link2);
  body.copy(out, BLOCK);
  ustarInto(out, out.length - BLOCK, placeholder, flag, h2.mode, size2, link2);
  return out;
}
var TYPES = {
  0: "file",
  1: "link",
  2: "symlink",
  3: "character-device",
  4: "block-device",
  5: "directory",
  6: "fifo",
  7: "contiguous-file",
  72: "pax-header",
  55: "pax-global-header",
  27: "gnu-long-link-path",
  28: "gnu-long-path",
  30: "gnu-long-path"
};
var TarFormatError = class extends Error {
  constructor(message2) {
    super(message2);
    this.name = "TarFormatError";
  }
};
function readString(buf, start, length) {
  let end = start;
  while (end < start + length && buf[end] !== 0) end++;
  return buf.toString("utf8", start, end);
}
function readOctal(buf, start, length) {
  if (buf[start] & 128) {
    if (buf[start] !== 128) throw new TarFormatError("negative number in a tar header");
    let n2 = 0;
    for (let i2 = start + 1; i2 < start + length; i2++) n2 = n2 * 256 + buf[i2];
    return n2;
  }
  let i = start;
  const end = start + length;
  while (i < end && (buf[i] === 32 || buf[i] === 0)) i++;
  let n = 0;
  for (; i < end; i++) {
    const c = buf[i];
    if (c === 32 || c === 0) break;
    if (c < 48 || c > 55) throw new TarFormatError("invalid number in a tar header");
    n = n * 8 + (c - 48);
  }
  return n;
}
function parsePax(body) {
  const out = {};
  let rest = body;
  while (rest.length > 0) {
    const space = rest.indexOf(32);
    if (space <= 0) break;
    const len = Number(rest.toString("latin1", 0, space));
    if (!Number.isInteger(len) || len <= space + 1 || len > rest.length) {
      throw new TarFormatError("invalid pax header record");
    }
    const record = rest.toString("utf8", space + 1, len - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    rest = rest.subarray(len);
  }
  return out;
}
var MAX_META_BYTES = 1024 * 1024;
var TarReader = class {
  constructor(handler) {
    this.handler = handler;
  }
  handler;
  header = Buffer.alloc(BLOCK);
  headerFill = 0;
  /** Body bytes left in the current entry (or metadata body), then padding bytes left. */
  bodyLeft = 0;
  padLeft = 0;
  inEntry = false;
  meta = null;
  pending = {};
  done = false;
  write(chunk) {
    let pos = 0;
    while (pos < chunk.length && !this.done) {
      if (this.bodyLeft > 0) {
        const n2 = Math.min(this.bodyLeft, chunk.length - pos);
        const piece = chunk.subarray(pos, pos + n2);
        if (this.meta) this.meta.parts.push(Buffer.from(piece));
        else this.handler.data(piece);
        this.bodyLeft -= n2;
        pos += n2;
        if (this.bodyLeft === 0) this.finishBody();
        continue;
      }
      if (this.padLeft > 0) {
        const n2 = Math.min(this.padLeft, chunk.length - pos);
        this.padLeft -= n2;
        pos += n2;
        continue;
      }
      const n = Math.min(BLOCK - this.headerFill, chunk.length - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + n);
      this.headerFill += n;
      pos += n;
      if (this.headerFill === BLOCK) {
        this.headerFill = 0;
        this.onHeader();
      }
    }
  }
  /** The input ended: throws unless the archive was complete. */
  end() {
    if (this.done) return;
    if (this.bodyLeft > 0 || this.padLeft > 0 || this.headerFill > 0 || this.meta || this.inEntry) {
      throw new TarFormatError("unexpected end of the tar archive");
    }
    this.done = true;
  }
  onHeader() {
    const b = this.header;
    let sum = 8 * 32;
    let zero = true;
    for (let i = 0; i < BLOCK; i++) {
      if (b[i] !== 0) zero = false;
      if (i < 148 || i >= 156) sum += b[i];
    }
    if (zero) {
      this.done = true;
      return;
    }
    if (sum !== readOctal(b, 148, 8)) {
      throw new TarFormatError("invalid tar header checksum (not a tar archive, or corrupt)");
    }
    const flag = b[156] === 0 ? 0 : b[156] - 48;
    let name = readString(b, 0, 100);
    const magic = b.toString("latin1", 257, 263);
    if (magic === "ustar\0" && b[345] !== 0) name = `${readString(b, 345, 155)}/${name}`;
    const size2 = readOctal(b, 124, 12);
    const type = TYPES[flag] ?? null;
    if (type === "pax-header" || type === "gnu-long-path" || type === "gnu-long-link-path") {
      if (size2 > MAX_META_BYTES) throw new TarFormatError(`a ${type} of ${size2} bytes is too big`);
      const kind = type === "pax-header" ? "pax" : type === "gnu-long-path" ? "long-name" : "long-link";
      this.meta = { kind, parts: [] };
      this.bodyLeft = size2;
      this.padLeft = padding(size2);
      if (size2 === 0) this.finishBody();
      return;
    }
    const header = {
      name: this.pending.name ?? name,
      type: flag === 0 && name.endsWith("/") && this.pending.name === void 0 ? "directory" : type,
      mode: readOctal(b, 100, 8),
      size: this.pending.size ?? size2,
      linkname: this.pending.linkname ?? (b[157] === 0 ? null : readString(b, 157, 100))
    };
    this.pending = {};
    this.inEntry = true;
    this.handler.entry(header);
    this.bodyLeft = header.size;
    this.padLeft = padding(header.size);
    if (header.size === 0) this.finishBody();
  }
  finishBody() {
    if (this.meta) {
      const body = Buffer.concat(this.meta.parts);
      const { kind } = this.meta;
      this.meta = null;
      if (kind === "pax") {
        const pax = parsePax(body);
        if (pax.path !== void 0) this.pending.name = pax.path;
        if (pax.linkpath !== void 0) this.pending.linkname = pax.linkpath;
        if (pax.size !== void 0) {
          const size2 = Number(pax.size);
          if (!Number.isSafeInteger(size2) || size2 < 0) {
            throw new TarFormatError("invalid size in a pax header");
          }
          this.pending.size = size2;
        }
      } else {
        const value = readString(body, 0, body.length);
        if (kind === "long-name") this.pending.name = value;
        else this.pending.linkname = value;
      }
      return;
    }
    this.inEntry = false;
    this.handler.entryEnd();
  }
};

// src/store/pack.ts
init_types();
var DEFAULT_MAX_ENTRY_BYTES = 8 * 1024 ** 3;
var O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
var PACKERS = 2;
var STALE_STAGING_MS = 36e5;
async function saveOutputs(store, root, outputs) {
  const paths = [...new Set(outputs.map(normalizeOutputPath))];
  if (paths.length === 0) return [];
  const adopt = store.tempDir && store.adoptBlobFile ? store.adoptBlobFile.bind(store) : void 0;
  const tempDir = adopt && store.tempDir ? await store.tempDir() : join7(root, ".dist-build", "tmp");
  await mkdir3(tempDir, { recursive: true });
  const temps = [];
  try {
    const roomy = async (write) => {
      try {
        return await write();
      } catch (err) {
        if (!isNoSpace(err) || !store.makeRoom || await store.makeRoom() === 0) throw err;
        return write();
      }
    };
    const packed = await mapLimit(paths, PACKERS, async (path) => {
      const { type, items } = await collect(root, path);
      let file = "";
      const { digest, size: size2 } = await roomy(async () => {
        if (file) await rm3(file, { force: true });
        file = join7(tempDir, `${process.pid}-${randomBytes2(8).toString("hex")}.tar`);
        temps.push(file);
        return packToFile(items, file);
      });
      const entry = { path, type, digest, size: size2, files: items.length };
      return { entry, file };
    });
    const digests = packed.map((p) => p.entry.digest);
    const present = await (store.storedEverywhere ? store.storedEverywhere(digests) : store.hasBlobs(digests));
    for (const { entry, file } of packed) {
      if (present.has(entry.digest)) continue;
      present.add(entry.digest);
      const stored = await roomy(
        () => adopt ? adopt(file, entry.digest) : store.putBlobFile(file)
      );
      if (stored.digest !== entry.digest) {
        throw new CorruptBlobError(
          entry.digest,
          stored.digest,
          `packed output ${entry.path} was modified before it was stored`
        );
      }
    }
    return packed.map((p) => p.entry);
  } finally {
    await Promise.all(temps.map((t) => rm3(t, { force: true })));
  }
}
async function digestOutputs(root, outputs) {
  const paths = [...new Set(outputs.map(normalizeOutputPath))];
  return mapLimit(paths, PACKERS, async (path) => {
    const { type, items } = await collect(root, path);
    const { digest, size: size2 } = await packToFile(items, null);
    return { path, type, digest, size: size2, files: items.length };
  });
}
function blobOpenerFor(store) {
  return store.openBlobChunks ? (digest) => store.openBlobChunks(digest) : (digest) => store.openBlob(digest);
}
async function outputsPresent(root, entries) {
  for (const e of entries) {
    if (outputPathProblem(e.path) !== null) return false;
    if (!await lstat3(join7(root, ...e.path.split("/"))).catch(() => null)) return false;
  }
  return true;
}
async function restoreOutputs(open4, root, entries, opts = {}) {
  const maxEntryBytes = opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  const stagingRoot = opts.stagingDir ?? join7(root, ".dist-build", "staging");
  for (const { name } of leftByDead(stagingRoot, (n) => Number(/^(\d+)-/.exec(n)?.[1]))) {
    const st = await lstat3(join7(stagingRoot, name)).catch(() => null);
    if (st && Date.now() - st.mtimeMs > STALE_STAGING_MS) await removeTree(join7(stagingRoot, name));
  }
  for (const entry of entries) {
    const problem = outputPathProblem(entry.path);
    if (problem) throw new UnsafeArchiveError(entry.path, `the output path ${problem}`);
    assertDigest(entry.digest);
    const source = await open4(entry.digest);
    if (!source) throw new Error(`blob ${entry.digest} of output ${entry.path} is missing`);
    const stage = join7(stagingRoot, `${process.pid}-${randomBytes2(6).toString("hex")}`);
    try {
      await mkdir3(stage, { recursive: true });
      await extractInto(source, entry, stage, maxEntryBytes);
      await place2(root, entry.path, join7(stage, ...entry.path.split("/")), `${stage}.old`);
    } finally {
      destroyQuietly(source);
      await rm3(stage, { recursive: true, force: true });
      await removeTree(`${stage}.old`);
    }
  }
}
function normalizeOutputPath(path) {
  let p = path.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
  if (p !== "" && !p.startsWith("/")) p = posix4.normalize(p);
  const problem = outputPathProblem(p);
  if (problem) throw new TypeError(`declared output ${JSON.stringify(path)} ${problem}`);
  return p;
}
async function collect(root, out) {
  const abs = join7(root, ...out.split("/"));
  let st;
  try {
    st = await lstat3(abs);
  } catch (err) {
    if (isNotFound(err)) throw new MissingOutputError(out);
    throw err;
  }
  const type = kindOf(st, out);
  const items = [];
  await visit2(items, out, out, abs, type);
  items.sort((a, b) => compareUtf8(a.name, b.name));
  return { type, items };
}
function compareUtf8(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 55296 && y >= 55296) return rank(x) - rank(y);
    return x - y;
  }
  return a.length - b.length;
}
function rank(unit) {
  return unit >= 57344 ? unit - 2048 : unit >= 55296 ? unit + 8192 : unit;
}
async function visit2(items, out, name, abs, kind) {
  if (kind === "file") {
    items.push({ name, abs, kind });
  } else if (kind === "symlink") {
    const target = await readlink(abs);
    const problem = symlinkProblem(name, target, name === out ? "" : out);
    if (problem) throw new UnsafeArchiveError(name, problem);
    items.push({ name, abs, kind, target });
  } else {
    items.push({ name: `${name}/`, abs, kind });
    let entries;
    try {
      entries = await readdir2(abs, { withFileTypes: true });
    } catch (err) {
      throw isPermissionError(err) ? unreadable(name, err) : err;
    }
    for (const d of entries) {
      const childName = `${name}/${d.name}`;
      await visit2(items, out, childName, join7(abs, d.name), kindOf(d, childName));
    }
  }
}
function kindOf(st, name) {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  const what = st.isSocket() ? "a socket" : st.isFIFO() ? "a FIFO" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : "not a file, directory or symlink";
  throw new UnsafeArchiveError(name, `is ${what}; only files, directories and symlinks are packed`);
}
async function packToFile(items, file) {
  const out = file === null ? await fdOpen("/dev/null", fsConstants.O_WRONLY) : await fdOpen(
    file,
    fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW
  );
  const pipe = new HashPipe();
  const writes = /* @__PURE__ */ new Set();
  let writeError;
  let failedWrite = false;
  let offset = 0;
  let buf = await pipe.acquire();
  let pos = 0;
  const send = () => {
    const length = pos;
    const at = offset;
    const slot = buf;
    const w = writeFully(out, slot, length, at).then(
      () => void writes.delete(w),
      (err) => {
        writes.delete(w);
        if (!failedWrite) [failedWrite, writeError] = [true, err];
      }
    );
    writes.add(w);
    offset += length;
    pipe.submit(slot, length, w);
  };
  const flush = async () => {
    send();
    buf = await pipe.acquire();
    pos = 0;
    if (failedWrite) throw writeError;
  };
  try {
    for (const item of items) {
      let fd;
      try {
        let header;
        if (item.kind === "dir") {
          header = { name: item.name, type: "directory", mode: 493, size: 0 };
        } else if (item.kind === "symlink") {
          header = {
            name: item.name,
            type: "symlink",
            mode: 493,
            size: 0,
            linkname: item.target
          };
        } else {
          fd = openForPacking(item);
          const st = fstatSync(fd);
          if (!st.isFile()) throw changed(item.name, "was replaced");
          header = {
            name: item.name,
            type: "file",
            mode: st.mode & 73 ? 493 : 420,
            size: st.size
          };
        }
        let n = writeHeader(buf, pos, SLOT, header);
        if (n === 0) {
          await flush();
          n = writeHeader(buf, pos, SLOT, header);
          if (n === 0) throw new UnsafeArchiveError(item.name, "has a name too long to pack");
        }
        pos += n;
        if (fd !== void 0) {
          for (let left = header.size, at = 0; left > 0; ) {
            if (pos === SLOT) await flush();
            const bytesRead = readSync2(fd, buf, pos, Math.min(SLOT - pos, left), at);
            if (bytesRead === 0) throw changed(item.name, "shrank");
            pos += bytesRead;
            at += bytesRead;
            left -= bytesRead;
          }
          const pad = padding(header.size);
          buf.fill(0, pos, pos + pad);
          pos += pad;
        }
      } finally {
        if (fd !== void 0) closeSync(fd);
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
function openForPacking(item) {
  try {
    return openSync(item.abs, fsConstants.O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    const code = err.code;
    if (isPermissionError(err)) throw unreadable(item.name, err);
    throw isNotFound(err) || code === "ELOOP" ? changed(item.name, "disappeared") : err;
  }
}
function unreadable(name, err) {
  return new UnsafeArchiveError(name, `cannot be read (${err.message})`);
}
async function writeFully(fd, buf, length, position) {
  for (let done = 0; done < length; ) {
    done += await fdWrite(fd, buf, done, length - done, position + done);
  }
}
var fdOpen = (path, flags, mode = 438) => new Promise((res, rej) => fsOpen(path, flags, mode, (e, fd) => e ? rej(e) : res(fd)));
var fdWrite = (fd, buf, offset, length, position) => new Promise(
  (res, rej) => fsWrite(fd, buf, offset, length, position, (e, n) => e ? rej(e) : res(n))
);
var fdClose = (fd) => new Promise((res, rej) => fsClose(fd, (e) => e ? rej(e) : res()));
function changed(name, what) {
  return new Error(`output file ${name} ${what} while packing`);
}
async function extractInto(source, entry, stage, maxEntryBytes) {
  const out = entry.path;
  const input = isVerifiedFor(source, entry.digest) ? source : verifiedStream(source, entry.digest);
  await mkdir3(join7(stage, ...posix4.dirname(out).split("/")), { recursive: true });
  const extractor = new Extractor(out, stage, maxEntryBytes, (await lstat3(stage)).mode & 511);
  const reader = new TarReader(extractor);
  try {
    for await (const chunk of input) reader.write(chunk);
    reader.end();
  } finally {
    extractor.close();
    destroyQuietly(input);
  }
  if (!extractor.seen.has(out)) {
    throw new Error(`blob ${entry.digest} holds nothing for output ${out}`);
  }
}
var Extractor = class {
  /**
   * @param kept permission bits that survive creation here (umask, default ACLs): chmod only
   *   what loses some.
   */
  constructor(out, stage, maxEntryBytes, kept) {
    this.out = out;
    this.stage = stage;
    this.maxEntryBytes = maxEntryBytes;
    this.kept = kept;
  }
  out;
  stage;
  maxEntryBytes;
  kept;
  seen = /* @__PURE__ */ new Map();
  /** The parent of the last entry, checked to be a directory of this archive. */
  lastParent;
  /** The file being written. */
  fd;
  fdMode = 0;
  fixMode = false;
  entry(header) {
    const { out, stage, seen } = this;
    const raw = header.name;
    const unsafe = (reason) => new UnsafeArchiveError(raw, reason);
    let kind;
    switch (header.type) {
      case "file":
      case "contiguous-file":
        kind = "file";
        break;
      case "directory":
        kind = "dir";
        break;
      case "symlink":
        kind = "symlink";
        break;
      case "link":
        throw unsafe("is a hard link");
      case "character-device":
      case "block-device":
        throw unsafe("is a device");
      case "fifo":
        throw unsafe("is a FIFO");
      default:
        throw unsafe(`has an unsupported type (${header.type ?? "unknown"})`);
    }
    const name = kind === "dir" && raw.endsWith("/") ? raw.slice(0, -1) : raw;
    if (name.startsWith("/")) throw unsafe("is an absolute path");
    if (name.split("/").includes("..")) throw unsafe('has a ".." segment');
    const problem = outputPathProblem(name);
    if (problem) throw unsafe(`name ${problem}`);
    if (name !== out && !name.startsWith(`${out}/`)) {
      throw unsafe(`is outside the declared output ${out}`);
    }
    const size2 = header.size;
    if (kind === "file" && size2 > this.maxEntryBytes) {
      throw unsafe(`is ${size2} bytes, more than the limit of ${this.maxEntryBytes}`);
    }
    const target = header.linkname ?? "";
    if (kind === "symlink") {
      const linkProblem = symlinkProblem(name, target, name === out ? "" : out);
      if (linkProblem) throw unsafe(linkProblem);
    }
    const before = seen.get(name);
    if (before !== void 0) {
      if (before === "dir" && kind === "dir") return;
      throw unsafe("appears twice in the archive");
    }
    if (name !== out) {
      const parentOf = name.slice(0, name.lastIndexOf("/"));
      if (parentOf !== this.lastParent) {
        const segs = name.split("/");
        for (let i = out.split("/").length; i < segs.length; i++) {
          const parent = segs.slice(0, i).join("/");
          const t = seen.get(parent);
          if (t === void 0) {
            this.mkdir(join7(stage, parent));
            seen.set(parent, "dir");
          } else if (t !== "dir") {
            throw unsafe(`is inside ${parent}, which is a ${t === "file" ? "file" : "symlink"}`);
          }
        }
        this.lastParent = parentOf;
      }
    }
    const dest = `${stage}/${name}`;
    seen.set(name, kind);
    if (kind === "file") {
      const mode = header.mode & 73 ? 493 : 420;
      this.fd = openSync(
        dest,
        fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW,
        mode
      );
      this.fdMode = mode;
      this.fixMode = (mode & this.kept) !== mode;
    } else if (kind === "dir") {
      this.mkdir(dest);
    } else {
      symlinkSync(target, dest);
    }
  }
  data(chunk) {
    if (this.fd === void 0) return;
    for (let done = 0; done < chunk.length; ) {
      done += writeSync(this.fd, chunk, done, chunk.length - done);
    }
  }
  entryEnd() {
    if (this.fd === void 0) return;
    const fd = this.fd;
    this.fd = void 0;
    try {
      if (this.fixMode) fchmodSync(fd, this.fdMode);
    } finally {
      closeSync(fd);
    }
  }
  /** Closes the file being written, if any (after a failure). */
  close() {
    if (this.fd === void 0) return;
    try {
      closeSync(this.fd);
    } catch {
    }
    this.fd = void 0;
  }
  mkdir(path) {
    mkdirSync(path, { mode: 493 });
    if ((493 & this.kept) !== 493) chmodSync(path, 493);
  }
};
async function place2(root, out, staged, aside) {
  const dest = join7(root, ...out.split("/"));
  if (await parentOutside(root, dest)) {
    throw new UnsafeArchiveError(out, `its parent directory resolves outside the work root`);
  }
  await mkdir3(dirname4(dest), { recursive: true });
  let moved = false;
  try {
    await rename3(dest, aside);
    moved = true;
  } catch (err) {
    if (!isNotFound(err) && !isPermissionError(err)) throw err;
    if (isPermissionError(err)) {
      await addWriteBits(dest);
      await rename3(dest, aside);
      moved = true;
    }
  }
  try {
    await rename3(staged, dest);
  } catch (err) {
    if (moved) await rename3(aside, dest).catch(() => {
    });
    throw err;
  }
}
function symlinkProblem(name, target, scope) {
  if (target === "") return "is a symlink with an empty target";
  if (target.includes("\0")) return "is a symlink whose target contains a NUL character";
  if (target.startsWith("/")) return `is a symlink to an absolute path (${target})`;
  let descending = false;
  for (const seg of target.split("/")) {
    if (seg === "..") {
      if (descending) return `is a symlink whose target has ".." after a name (${target})`;
    } else if (seg !== "" && seg !== ".") descending = true;
  }
  const resolved = posix4.normalize(posix4.join(posix4.dirname(name), target));
  const inside = scope === "" ? resolved !== ".." && !resolved.startsWith("../") : resolved === scope || resolved.startsWith(`${scope}/`);
  if (!inside) {
    return `is a symlink to ${target}, outside ${scope === "" ? "the work root" : scope}`;
  }
  return null;
}
function destroyQuietly(stream) {
  const s = stream;
  if (typeof s.destroy === "function" && !s.destroyed) s.destroy();
}

// src/store/index.ts
init_digest();

// src/store/layered.ts
init_fsutil();
init_limit();
init_types();
import { randomBytes as randomBytes3 } from "node:crypto";
import { mkdir as mkdir4, rename as rename4, rm as rm4, writeFile as writeFile3 } from "node:fs/promises";
import { dirname as dirname5, join as join8 } from "node:path";
var BEHIND_PER_LAYER = 4;
function adoptReadsOnly(store) {
  return store.adoptReadsOnly === true && store.adoptBlobFile !== void 0;
}
var UnreadableResultError = class extends Error {
};
var LayeredStore = class {
  constructor(layers, opts = {}) {
    this.opts = opts;
    if (layers.length === 0) throw new TypeError("a layered store needs at least one store");
    this.layers = [...layers];
    this.kind = [...new Set(layers.map((l) => l.kind))].join("+");
    this.location = layers.map((l) => l.location).join(", ");
    this.onWarning = opts.onWarning ?? (() => {
    });
    this.resting = layers.map(() => 0);
    this.warming = layers.map(() => false);
    this.since = (/* @__PURE__ */ new Date()).toISOString();
    this.blobsBehind = layers.map(() => /* @__PURE__ */ new Map());
    this.running = layers.map(() => 0);
    this.waiting = layers.map(() => []);
    this.counters = layers.map((l) => ({
      kind: l.kind,
      location: l.location,
      results: { hits: 0, misses: 0 },
      blobs: { hits: 0, misses: 0 },
      copiedIn: 0,
      errors: 0
    }));
    if (layers.some((l) => l.listResults)) this.listResults = (prefix) => this.listAll(prefix);
    const first = this.layers[0];
    if (first.tempDir && first.adoptBlobFile) {
      this.tempDir = () => first.tempDir();
      this.adoptBlobFile = async (file, digest) => {
        if (opts.writeBehind) {
          const info = await first.adoptBlobFile(file, digest);
          for (let i = 1; i < this.layers.length; i++) this.blobBehind(i, digest);
          return info;
        }
        for (let i = 1; i < this.layers.length; i++) {
          const layer = this.layers[i];
          await this.tryWrite(
            i,
            `blob ${digest}`,
            () => adoptReadsOnly(layer) ? layer.adoptBlobFile(file, digest) : layer.putBlobFile(file)
          );
        }
        return first.adoptBlobFile(file, digest);
      };
    }
    if (first.makeRoom) this.makeRoom = () => first.makeRoom();
  }
  opts;
  kind;
  location;
  layers;
  listResults;
  tempDir;
  adoptBlobFile;
  makeRoom;
  counters;
  onWarning;
  warned = /* @__PURE__ */ new Set();
  /** Per layer: until when it is left alone after it let the cache query's deadline pass. */
  resting;
  /** Per layer: whether its warm-up (`warm`) is still going on. */
  warming;
  since;
  statsWrite = Promise.resolve();
  /** `writeBehind`: every background write not yet done. */
  behind = /* @__PURE__ */ new Set();
  /** `writeBehind`, per layer: blobs queued or being written there, by digest. */
  blobsBehind;
  /** `writeBehind`, per layer: writes running, and those waiting for a turn. */
  running;
  waiting;
  async hasBlobs(digests) {
    return this.union(digests, (store, keys) => store.hasBlobs(keys), "blobs");
  }
  async storedEverywhere(digests) {
    let held = new Set(digests);
    const layers = this.opts.writeBehind ? 1 : this.layers.length;
    for (let i = 0; i < layers && held.size > 0; i++) {
      const have = await this.tryRead(i, "blobs", () => this.layers[i].hasBlobs([...held]));
      held = new Set([...held].filter((d) => have?.has(d)));
    }
    return held;
  }
  async hasResults(cacheKeys) {
    return this.union(cacheKeys, (store, keys) => store.hasResults(keys), "results");
  }
  async putBlob(data, expectedDigest) {
    const info = await this.layers[0].putBlob(data, expectedDigest);
    for (let i = 1; i < this.layers.length; i++) {
      if (this.opts.writeBehind) this.blobBehind(i, info.digest);
      else await this.tryWrite(i, `blob ${info.digest}`, () => this.copyBlob(info.digest, 0, i));
    }
    return info;
  }
  async putBlobFile(file) {
    const info = await this.layers[0].putBlobFile(file);
    if (this.opts.writeBehind) {
      for (let i = 1; i < this.layers.length; i++) this.blobBehind(i, info.digest);
      return info;
    }
    for (let i = 1; i < this.layers.length; i++) {
      await this.tryWrite(i, `blob ${info.digest}`, () => this.layers[i].putBlobFile(file));
    }
    return info;
  }
  async openBlob(digest) {
    for (let i = 0; i < this.layers.length; i++) {
      const stream = await this.tryRead(
        i,
        `blob ${digest}`,
        () => this.layers[i].openBlob(digest)
      );
      if (stream) {
        this.counters[i].blobs.hits++;
        return stream;
      }
      this.counters[i].blobs.misses++;
    }
    return null;
  }
  /** The first layer's chunks when it holds the blob and can (see `Store.openBlobChunks`). */
  async openBlobChunks(digest) {
    const first = this.layers[0];
    if (first.openBlobChunks) {
      const chunks = await first.openBlobChunks(digest);
      if (chunks) {
        this.counters[0].blobs.hits++;
        return chunks;
      }
    }
    return this.openBlob(digest);
  }
  async getResult(cacheKey) {
    for (let i = 0; i < this.layers.length; i++) {
      const manifest = await this.tryRead(
        i,
        `result ${cacheKey}`,
        () => this.layers[i].getResult(cacheKey)
      );
      if (!manifest) {
        this.counters[i].results.misses++;
        continue;
      }
      if (i > 0) {
        try {
          await this.copyUp(manifest, i);
        } catch (err) {
          if (!(err instanceof UnreadableResultError)) throw err;
          this.warn(i, `result ${cacheKey}`, err.message);
          this.counters[i].results.misses++;
          continue;
        }
      }
      this.counters[i].results.hits++;
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
  async peekResults(cacheKeys, { slowLayersMs, unsettled } = {}) {
    const found = /* @__PURE__ */ new Map();
    let rest = [...new Set(cacheKeys)];
    const deadline = slowLayersMs === void 0 ? void 0 : Date.now() + slowLayersMs;
    const late = () => deadline !== void 0 && Date.now() >= deadline;
    const cut = /* @__PURE__ */ new Set();
    const read = (i, what, keys, fn) => i === 0 || deadline === void 0 ? this.tryRead(i, what, fn) : this.tryRead(i, what, async () => {
      const started = Date.now();
      try {
        return await beforeDeadline(fn(), deadline, slowLayersMs);
      } catch (err) {
        if (!(err instanceof DeadlineError)) throw err;
        for (const k of keys) cut.add(k);
        if (this.warming[i]) return null;
        if (Date.now() - started >= slowLayersMs / 2) {
          this.resting[i] = Date.now() + REST_MS;
          throw new DeadlineError(`${err.message}; left alone for ${REST_MS / 1e3} s`);
        }
        throw err;
      }
    });
    for (let i = 0; i < this.layers.length && rest.length > 0; i++) {
      if (i > 0 && late()) {
        if (!this.isResting(i, true)) for (const k of rest) cut.add(k);
        continue;
      }
      const layer = this.layers[i];
      const have = await read(i, "results", rest, () => layer.hasResults(rest));
      const candidates = rest.filter((k) => have?.has(k));
      this.counters[i].results.misses += rest.length - candidates.length;
      await mapLimit(candidates, PEEK_CONCURRENCY, async (key) => {
        if (i > 0 && late()) {
          cut.add(key);
          this.counters[i].results.misses++;
          return;
        }
        let manifest = await read(i, `result ${key}`, [key], () => layer.getResult(key));
        if (manifest && i > 0) {
          const digests = blobsOf(manifest);
          const held = late() ? (cut.add(key), null) : await read(i, `blobs of result ${key}`, [key], () => layer.hasBlobs(digests));
          if (!held || digests.some((d) => !held.has(d))) manifest = null;
        }
        if (manifest) {
          this.counters[i].results.hits++;
          found.set(key, manifest);
        } else {
          this.counters[i].results.misses++;
        }
      });
      rest = rest.filter((k) => !found.has(k));
    }
    if (unsettled) {
      for (const k of cut) if (!found.has(k)) unsettled.add(k);
    }
    return found;
  }
  /**
   * Starts every layer's warm-up (see `Store.warm`); a layer warming up is not left alone for
   * missing the cache query's deadline. Resolves when all are done.
   */
  async warm() {
    this.resumePending();
    await Promise.all(
      this.layers.map(async (layer, i) => {
        if (!layer.warm) return;
        this.warming[i] = true;
        try {
          await layer.warm();
        } catch {
        } finally {
          this.warming[i] = false;
        }
      })
    );
  }
  /**
   * Copies blob `digest` into the faster layers from the first layer that has it (verified on the
   * way in); whether the first layer holds it now. A copy that fails is a warning.
   */
  async pullBlob(digest) {
    for (let i = 0; i < this.layers.length; i++) {
      const held = await this.tryRead(
        i,
        `blob ${digest}`,
        () => this.layers[i].hasBlobs([digest])
      );
      if (!held?.has(digest)) continue;
      if (i === 0) return true;
      for (let to = 0; to < i; to++) {
        await this.tryWrite(to, `copy of blob ${digest}`, () => this.copyBlob(digest, i, to));
      }
      return (await this.layers[0].hasBlobs([digest])).has(digest);
    }
    return false;
  }
  async pullResult(cacheKey) {
    if (this.layers.length === 1) return;
    const first = this.layers[0];
    try {
      if ((await first.hasResults([cacheKey])).has(cacheKey)) return;
      for (let i = 1; i < this.layers.length; i++) {
        const manifest = await this.tryRead(
          i,
          `result ${cacheKey}`,
          () => this.layers[i].getResult(cacheKey)
        );
        if (!manifest) continue;
        const digests = blobsOf(manifest);
        const held = await first.hasBlobs(digests);
        if (digests.every((d) => held.has(d))) {
          await first.putResult(manifest);
          this.counters[0].copiedIn++;
        }
        return;
      }
    } catch (err) {
      this.warn(0, `copy of result ${cacheKey}`, err.message);
    }
  }
  /**
   * Writes the result to every layer, each first given the blobs it names that it lacks (copied
   * from a layer that holds them: one written some other way than `saveOutputs`). The first
   * layer's refusal is the error; a slower layer's is a warning.
   */
  async putResult(manifest) {
    const digests = blobsOf(manifest);
    await this.fillBlobs(0, digests).catch(
      (err) => this.warn(0, `copy of the blobs of result ${manifest.cacheKey}`, err.message)
    );
    await this.layers[0].putResult(manifest);
    if (this.opts.writeBehind && this.layers.length > 1) {
      const marker = await this.markPending(manifest.cacheKey);
      const done = this.resultBehind(manifest);
      if (marker) void done.then(() => rm4(marker, { force: true }).catch(() => void 0));
      return;
    }
    for (let i = 1; i < this.layers.length; i++) {
      await this.tryWrite(i, `result ${manifest.cacheKey}`, async () => {
        await this.fillBlobs(i, digests);
        await this.layers[i].putResult(manifest);
      });
    }
  }
  /**
   * `writeBehind`: result `manifest`, in the first layer, goes to every slower layer in the
   * background, each after its blobs' writes there (whatever became of them: `fillBlobs` copies
   * what is missing). Resolves when every layer is done with it.
   */
  resultBehind(manifest) {
    const digests = blobsOf(manifest);
    const first = this.layers[0];
    const writes = [];
    for (let i = 1; i < this.layers.length; i++) {
      const blobs = digests.map((d) => this.blobsBehind[i].get(d));
      const write = async () => {
        if (!(await first.hasResults([manifest.cacheKey])).has(manifest.cacheKey)) return;
        await this.fillBlobs(i, digests);
        await this.layers[i].putResult(manifest);
      };
      writes.push(this.later(i, `result ${manifest.cacheKey}`, write, blobs));
    }
    return Promise.all(writes);
  }
  /** The file saying result `cacheKey` waits for the slower layers (see `pendingDir`), if any. */
  async markPending(cacheKey) {
    const dir = this.opts.pendingDir;
    if (!dir) return void 0;
    const file = join8(dir, `${process.pid}-${cacheKey.replace(/^sha256:/, "")}`);
    try {
      await mkdir4(dir, { recursive: true });
      await writeFile3(file, "");
      return file;
    } catch {
      return void 0;
    }
  }
  /**
   * The results a process killed with writes behind left for the slower layers (`pendingDir`):
   * sent to them now, from the first layer (one it no longer holds is dropped); `flush` waits.
   */
  resumePending() {
    const dir = this.opts.pendingDir;
    if (!dir || !this.opts.writeBehind || this.layers.length < 2) return;
    for (const { name } of leftByDead(dir, (n) => Number(/^(\d+)-[0-9a-f]{64}$/.exec(n)?.[1]))) {
      const cacheKey = `sha256:${name.slice(name.indexOf("-") + 1)}`;
      const resumed = (async () => {
        const manifest = await this.layers[0].getResult(cacheKey).catch(() => null);
        if (manifest) await this.resultBehind(manifest);
        await rm4(join8(dir, name), { force: true });
      })().catch(() => void 0).finally(() => this.behind.delete(resumed));
      this.behind.add(resumed);
    }
  }
  /** Flushes every layer, then writes the counters to `statsFile`. The first layer's error throws. */
  async flush() {
    while (this.behind.size > 0) await Promise.all(this.behind);
    let firstError;
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i];
      if (!layer.flush) continue;
      try {
        await layer.flush();
      } catch (err) {
        if (i === 0) firstError = err;
        else this.warn(i, "flush", err.message, false);
      }
    }
    await this.writeStats();
    if (firstError !== void 0) throw firstError;
  }
  /** Writes the counters to `statsFile`; writes are queued, one at a time. Never throws. */
  writeStats() {
    const file = this.opts.statsFile;
    if (!file) return Promise.resolve();
    this.statsWrite = this.statsWrite.then(
      () => writeJsonAtomic(file, this.stats()).catch(
        (err) => this.onWarning(`cannot write cache stats to ${file}: ${err.message}`)
      )
    );
    return this.statsWrite;
  }
  /** Hit and miss counters per layer since the store was made. */
  stats() {
    return {
      ...this.opts.slot !== void 0 ? { slot: this.opts.slot } : {},
      ...this.opts.run !== void 0 ? { run: this.opts.run } : {},
      since: this.since,
      updatedAt: (/* @__PURE__ */ new Date()).toISOString(),
      layers: this.counters.map((c) => ({
        ...c,
        results: { ...c.results },
        blobs: { ...c.blobs }
      }))
    };
  }
  /** Copies a result found in layer `from`, with its blobs, into every faster layer. */
  async copyUp(manifest, from) {
    const digests = blobsOf(manifest);
    for (let to = 0; to < from; to++) {
      const target = this.layers[to];
      try {
        const present = await target.hasBlobs(digests);
        const missing = digests.filter((d) => !present.has(d));
        await mapLimit(missing, 2, (d) => this.copyBlob(d, from, to));
        await target.putResult(manifest);
        this.counters[to].copiedIn++;
      } catch (err) {
        if (err instanceof UnreadableResultError) throw err;
        if (err instanceof CorruptBlobError && err.digest && digests.includes(err.digest)) {
          throw new UnreadableResultError(
            `names blob ${err.digest}, which is corrupt in ${this.layers[from].location}; a miss there`
          );
        }
        this.warnFailed(to, `copy of result ${manifest.cacheKey}`, err);
      }
    }
  }
  /** Copies into layer `to` each of `digests` it lacks, from the first other layer holding it. */
  async fillBlobs(to, digests) {
    if (digests.length === 0 || this.layers.length === 1) return;
    const held = await this.layers[to].hasBlobs(digests);
    let missing = digests.filter((d) => !held.has(d));
    for (let from = 0; from < this.layers.length && missing.length > 0; from++) {
      if (from === to) continue;
      const there = await this.tryRead(from, "blobs", () => this.layers[from].hasBlobs(missing));
      if (!there) continue;
      for (const d of missing) if (there.has(d)) await this.copyBlob(d, from, to);
      missing = missing.filter((d) => !there.has(d));
    }
  }
  /**
   * Streams blob `digest` from layer `from` into layer `to` (verified by `putBlob`). A read of the
   * source that fails on the way throws a `LayerReadError`, so the failure is layer `from`'s.
   */
  async copyBlob(digest, from, to) {
    const target = this.layers[to];
    if ((await target.hasBlobs([digest])).has(digest)) return;
    const source = await this.layers[from].openBlob(digest);
    if (!source) {
      throw new UnreadableResultError(
        `names blob ${digest}, which is gone from ${this.layers[from].location}; a miss there`
      );
    }
    let readError;
    source.once("error", (err) => readError = err);
    try {
      await target.putBlob(source, digest);
    } catch (err) {
      if (readError !== void 0 && err === readError && !(err instanceof CorruptBlobError)) {
        throw new LayerReadError(from, err);
      }
      if (err instanceof CorruptBlobError) {
        const origin = this.layers[from];
        throw new CorruptBlobError(
          err.digest,
          err.actual,
          `${err.message}, as read from ${origin.kind} (${origin.location})`
        );
      }
      throw err;
    } finally {
      source.destroy();
    }
  }
  async union(keys, ask, what) {
    const found = /* @__PURE__ */ new Set();
    let rest = [...new Set(keys)];
    for (let i = 0; i < this.layers.length && rest.length > 0; i++) {
      const have = await this.tryRead(i, what, () => ask(this.layers[i], rest));
      if (!have) continue;
      for (const k of have) found.add(k);
      rest = rest.filter((k) => !have.has(k));
    }
    return found;
  }
  async *listAll(prefix) {
    const seen = /* @__PURE__ */ new Set();
    for (let i = 0; i < this.layers.length; i++) {
      const list = this.layers[i].listResults;
      if (!list) continue;
      for await (const r of list.call(this.layers[i], prefix)) {
        if (seen.has(r.cacheKey)) continue;
        seen.add(r.cacheKey);
        yield r;
      }
    }
  }
  /** A read from layer `i`: an error there is a warning and a miss, except in the first layer. */
  async tryRead(i, what, read) {
    if (this.isResting(i)) return null;
    try {
      return await read();
    } catch (err) {
      if (i === 0) throw err;
      this.warn(i, `read of ${what}`, err.message);
      return null;
    }
  }
  /** A write to layer `i` > 0: an error is a warning. */
  /** `writeBehind`: blob `digest`, now in the first layer, goes to layer `i` in the background. */
  blobBehind(i, digest) {
    const queued = this.blobsBehind[i];
    if (queued.has(digest)) return;
    const layer = this.layers[i];
    const first = this.layers[0];
    const done = this.later(i, `blob ${digest}`, async () => {
      if (!first.blobPath) return this.copyBlob(digest, 0, i);
      const file = first.blobPath(digest);
      try {
        return await (adoptReadsOnly(layer) ? layer.adoptBlobFile(file, digest) : layer.putBlobFile(file));
      } catch (err) {
        if (err.code === "ENOENT" && !(await first.hasBlobs([digest])).has(digest))
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
  later(i, what, write, after = []) {
    const done = Promise.all(after).then(async () => {
      if (this.running[i] < BEHIND_PER_LAYER) this.running[i]++;
      else await new Promise((r) => this.waiting[i].push(r));
      try {
        await this.tryWrite(i, what, write);
      } finally {
        const next = this.waiting[i].shift();
        if (next) next();
        else this.running[i]--;
      }
    }).finally(() => this.behind.delete(done));
    this.behind.add(done);
    return done;
  }
  async tryWrite(i, what, write) {
    if (this.isResting(i)) return;
    try {
      await write();
    } catch (err) {
      this.warnFailed(i, what, err, "write of ");
    }
  }
  /**
   * Warns about a failed write to layer `i` (`${verb}${what}` failed), or about the read of the
   * layer it was copying from when that is what failed.
   */
  warnFailed(i, what, err, verb = "") {
    if (err instanceof LayerReadError) this.warn(err.layer, `read for ${what}`, err.message);
    else this.warn(i, `${verb}${what}`, err.message);
  }
  /** Whether layer `i` is left alone now (counted as an error, reported once). */
  isResting(i, quiet = false) {
    if (i === 0 || Date.now() >= this.resting[i]) return false;
    if (quiet) return true;
    this.warn(
      i,
      "use",
      `it did not answer the cache query in time; left alone for ${REST_MS / 1e3} s`
    );
    return true;
  }
  /** Counts an error of layer `i`; warns about the first one of each layer (or every one). */
  warn(i, what, message2, once = true) {
    this.counters[i].errors++;
    const layer = this.layers[i];
    if (once && this.warned.has(`${i}`)) return;
    this.warned.add(`${i}`);
    this.onWarning(
      `cache store ${layer.kind} (${layer.location}): ${what} failed: ${message2}` + (once ? "; further failures of this store are counted, not reported" : "")
    );
  }
};
function blobsOf(manifest) {
  return [...new Set(manifest.outputs.map((o) => o.digest))];
}
var REST_MS = 6e4;
var PEEK_CONCURRENCY = 8;
var DeadlineError = class extends Error {
};
var LayerReadError = class extends Error {
  constructor(layer, cause) {
    super(cause.message, { cause });
    this.layer = layer;
  }
  layer;
};
function beforeDeadline(work, deadline, budgetMs) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new DeadlineError(`no answer within the cache query's ${budgetMs / 1e3} s`)),
      Math.max(0, deadline - Date.now())
    );
  });
  work.catch(() => {
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
async function writeJsonAtomic(file, value) {
  await mkdir4(dirname5(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes3(4).toString("hex")}.tmp`;
  await writeFile3(tmp, `${JSON.stringify(value, null, 2)}
`);
  await rename4(tmp, file);
}

// src/store/signing.ts
init_digest();
import { createHmac, timingSafeEqual } from "node:crypto";
var SIGNATURE_PREFIX = "hmac-sha256:";
var SIGNATURE_CONTEXT = "dist-build/result-signature/v1";
var SigningConfigError = class extends Error {
  name = "SigningConfigError";
};
function canonicalJson2(value) {
  if (value === null || typeof value !== "object") {
    const text = JSON.stringify(value);
    if (text === void 0) throw new TypeError(`cannot encode ${typeof value} as JSON`);
    return text;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson2).join(",")}]`;
  const record = value;
  const keys = Object.keys(record).filter((k) => record[k] !== void 0).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson2(record[k])}`).join(",")}}`;
}
function manifestDigest(manifest) {
  const rest = { ...manifest };
  delete rest.signature;
  return sha256Digest(canonicalJson2(rest));
}
function hmac(secret, manifest) {
  return createHmac("sha256", secret).update(`${SIGNATURE_CONTEXT}
${manifest.cacheKey}
${manifestDigest(manifest)}`).digest();
}
function signManifest(manifest, secret) {
  return `${SIGNATURE_PREFIX}${hmac(secret, manifest).toString("hex")}`;
}
function checkSignature(manifest, secret) {
  const sig = manifest.signature;
  if (sig === void 0 || sig === "") return "unsigned";
  if (!sig.startsWith(SIGNATURE_PREFIX)) return "bad";
  const hex = sig.slice(SIGNATURE_PREFIX.length);
  if (!/^[0-9a-f]{64}$/.test(hex)) return "bad";
  return timingSafeEqual(Buffer.from(hex, "hex"), hmac(secret, manifest)) ? "ok" : "bad";
}
function signingSecret(sign, env2, onWarning = () => {
}) {
  if (!sign) return null;
  const secret = env2[sign.secretEnv];
  if (secret) return secret;
  if (sign.required) {
    throw new SigningConfigError(
      `cache.sign.required is set but the environment variable ${sign.secretEnv} (the signing secret) is not`
    );
  }
  onWarning(
    `cache signing is off: ${sign.secretEnv} is not set, so results are written unsigned and read unchecked`
  );
  return null;
}
var SignedStore = class {
  constructor(inner, opts) {
    this.inner = inner;
    if (opts.secret.length === 0) throw new TypeError("the signing secret is empty");
    this.kind = inner.kind;
    this.location = inner.location;
    this.secret = opts.secret;
    this.onWarning = opts.onWarning ?? (() => {
    });
    if (inner.listResults) this.listResults = (prefix) => inner.listResults(prefix);
    if (inner.flush) this.flush = () => inner.flush();
    if (inner.warm) this.warm = () => inner.warm();
    if (inner.openBlobChunks) this.openBlobChunks = (d) => inner.openBlobChunks(d);
    if (inner.makeRoom) this.makeRoom = () => inner.makeRoom();
    if (inner.blobPath) this.blobPath = (d) => inner.blobPath(d);
    if (inner.tempDir && inner.adoptBlobFile) {
      this.tempDir = () => inner.tempDir();
      this.adoptBlobFile = (file, digest) => inner.adoptBlobFile(file, digest);
      this.adoptReadsOnly = inner.adoptReadsOnly === true;
    }
  }
  inner;
  kind;
  location;
  listResults;
  flush;
  warm;
  openBlobChunks;
  tempDir;
  adoptBlobFile;
  adoptReadsOnly;
  makeRoom;
  blobPath;
  secret;
  onWarning;
  warned = /* @__PURE__ */ new Set();
  /** Results rejected since this store was made: unsigned, and with a bad signature. */
  rejected = { unsigned: 0, bad: 0 };
  hasBlobs(digests) {
    return this.inner.hasBlobs(digests);
  }
  putBlob(data, expectedDigest) {
    return this.inner.putBlob(data, expectedDigest);
  }
  putBlobFile(file) {
    return this.inner.putBlobFile(file);
  }
  openBlob(digest) {
    return this.inner.openBlob(digest);
  }
  /** May over-report: a result that is there but badly signed is still a miss in `getResult`. */
  hasResults(cacheKeys) {
    return this.inner.hasResults(cacheKeys);
  }
  async getResult(cacheKey) {
    const manifest = await this.inner.getResult(cacheKey);
    if (!manifest) return null;
    const check = checkSignature(manifest, this.secret);
    if (check === "ok") return manifest;
    if (check === "unsigned") {
      this.rejected.unsigned++;
      this.warnOnce(
        "unsigned",
        `${this.location}: result ${cacheKey} is not signed; a miss (unsigned results are not trusted while signing is on; further ones are not reported)`
      );
    } else {
      this.rejected.bad++;
      this.warnOnce(
        `bad:${cacheKey}`,
        `${this.location}: result ${cacheKey} has a bad signature (another secret, or tampered with); a miss`
      );
    }
    return null;
  }
  putResult(manifest) {
    return this.inner.putResult({ ...manifest, signature: signManifest(manifest, this.secret) });
  }
  warnOnce(id, message2) {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.onWarning(message2);
  }
};

// src/store/open.ts
import { rmSync } from "node:fs";
import { mkdtemp as mkdtemp2 } from "node:fs/promises";
import { tmpdir as tmpdir2 } from "node:os";
import { join as join12, resolve as resolve5 } from "node:path";
init_size();
init_errors();
init_local();
var STORE_BACKENDS = {
  local: createLocalStore,
  // Loaded only when configured: @actions/cache alone adds ~40 MB to every process that loads it,
  // and a worker's size is what each command it forks pays for.
  gha: async (options, ctx) => (await Promise.resolve().then(() => (init_gha(), gha_exports))).createGhaStore(options, ctx),
  registry: async (options, ctx) => (await Promise.resolve().then(() => (init_registry(), registry_exports))).createRegistryStore(options, ctx)
};
var DEFAULT_LOCAL_DIR = join12(".dist-build", "cache");
async function createLocalStore(options, ctx) {
  const { dir, maxBytes } = localStoreOptions(options);
  return LocalStore.open(resolve5(ctx.root, dir), {
    onWarning: ctx.onWarning,
    ...maxBytes !== void 0 ? { maxBytes } : {}
  });
}
function localStoreOptions(options) {
  for (const key of Object.keys(options)) {
    if (key !== "dir" && key !== "max-size") {
      throw new StoreOptionsError(`unknown option "${key}"; expected one of: dir, max-size`, key);
    }
  }
  const dir = options.dir ?? DEFAULT_LOCAL_DIR;
  if (typeof dir !== "string" || dir === "") {
    throw new StoreOptionsError(
      `dir: expected a directory name, got ${JSON.stringify(dir)}`,
      "dir"
    );
  }
  let maxBytes;
  if (options["max-size"] !== void 0) {
    try {
      maxBytes = parseSize(options["max-size"]);
    } catch (err) {
      throw new StoreOptionsError(`max-size: ${err.message}`, "max-size");
    }
  }
  return { dir, ...maxBytes !== void 0 ? { maxBytes } : {} };
}
var POSITION = /* @__PURE__ */ Symbol("position in cache.stores");
function positionOf(store) {
  return store[POSITION] ?? -1;
}
function effectiveStores(config, cacheDir) {
  const stores = (config.cache ?? defaultCache()).stores.map(
    (s, i) => Object.defineProperty({ ...s }, POSITION, { value: i })
  );
  let first = stores.find((s) => s.type === "local");
  if (!first) first = { type: "local" };
  else stores.splice(stores.indexOf(first), 1);
  stores.unshift(first);
  if (cacheDir !== void 0) first.dir = resolve5(cacheDir);
  return stores;
}
function workerCacheDir(config, cacheDir) {
  if (cacheDir !== void 0) return resolve5(cacheDir);
  const local = effectiveStores(config).find((s) => s.type === "local");
  const dir = typeof local?.dir === "string" ? local.dir : DEFAULT_LOCAL_DIR;
  return resolve5(config.root, dir);
}
function statsFileFor(cacheDir, slot) {
  return join12(cacheDir, "stats", `${slot.replace(/[^A-Za-z0-9._-]/g, "_")}.json`);
}
function usedWhen(localOnly, type) {
  return !localOnly || type === "local";
}
async function openStores(config, opts) {
  const ctx = {
    root: config.root,
    slot: opts.slot,
    onWarning: opts.onWarning,
    env: opts.env ?? process.env
  };
  const stores = effectiveStores(config, opts.cacheDir);
  const opened = [];
  const problems = [];
  for (const storeConfig of stores) {
    const index = positionOf(storeConfig);
    const { type, ...options } = storeConfig;
    if (!usedWhen(opts.localOnly, type)) continue;
    const factory = Object.hasOwn(STORE_BACKENDS, type) ? STORE_BACKENDS[type] : void 0;
    const problem = (message2, option) => {
      const where = index < 0 ? void 0 : config.cache?.locations?.[index];
      const optionAt = option !== void 0 ? where?.options[option] : void 0;
      const at = optionAt ?? where;
      problems.push({
        // As the loader names it (the path given, not the absolute one).
        file: where?.file ?? config.file,
        line: at?.line ?? 0,
        col: at?.col ?? 0,
        path: index < 0 ? "cache" : `cache.stores[${index}]${optionAt ? `.${option}` : ""}`,
        message: `${type} store: ${message2}`
      });
    };
    if (!factory) {
      problem(
        `this build of dist-build has no ${JSON.stringify(type)} backend (available: ${Object.keys(STORE_BACKENDS).join(", ")})`
      );
      continue;
    }
    let store;
    try {
      if (opts.checkOnly && type === "local") {
        localStoreOptions(options);
        continue;
      }
      store = await factory(options, ctx);
      if (opts.checkOnly) continue;
      await store.prepare?.();
    } catch (err) {
      if (err instanceof StoreOptionsError || err instanceof TypeError) {
        problem(err.message, err instanceof StoreOptionsError ? err.option : void 0);
        continue;
      }
      throw err;
    }
    opened.push({ index, config: storeConfig, store });
  }
  if (problems.length) throw new ConfigError(problems);
  return opened;
}
async function openStore(config, opts) {
  const env2 = opts.env ?? process.env;
  const secret = signingSecret(config.cache?.sign, env2, opts.onWarning);
  const opened = await openStores(config, { ...opts, env: env2 });
  const stores = opened.map((o) => o.store);
  const first = stores[0];
  const problem = first instanceof LocalStore ? await first.writeProblem() : void 0;
  if (problem) {
    const dir = await mkdtemp2(join12(tmpdir2(), "dist-build-store-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    opts.onWarning(
      `${first.location}: cannot write there (${problem}): what this worker builds is kept in ${dir} for this run only`
    );
    stores.unshift(await LocalStore.open(dir, { onWarning: opts.onWarning }));
  }
  const layers = stores.map(
    (store) => secret === null ? store : new SignedStore(store, { secret, onWarning: opts.onWarning })
  );
  return new LayeredStore(layers, {
    onWarning: opts.onWarning,
    // A job waits for the local store only; remote stores get its outputs in the background,
    // and what a worker killed meanwhile did not send, the next one on this cache dir sends.
    writeBehind: true,
    pendingDir: join12(workerCacheDir(config, opts.cacheDir), "pending"),
    slot: opts.slot,
    ...opts.run !== void 0 ? { run: opts.run } : {},
    ...opts.writeStats === false ? {} : { statsFile: statsFileFor(workerCacheDir(config, opts.cacheDir), opts.slot) }
  });
}
function defaultCache() {
  return { stores: [{ type: "local" }] };
}

// src/store/index.ts
init_errors();

// src/cluster/master.ts
import * as grpc3 from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";

// src/cluster/protocol.ts
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import protobuf from "protobufjs";

// proto/dist_build/v1/cluster.proto
var cluster_default = `// dist-build cluster protocol, version 1 ("grpc.v1" in membership records).
//
// Two services. Workers call the Master (Register, Heartbeat, Deregister, ReportResult); the master
// calls each Worker (StartJob, StopJob, JobStatus, StreamOutput, HasCache, Export), and workers
// call each other's FetchBlob to take a dependency's outputs straight from the worker holding them.
// Command-line clients call the Master's Status and Logs.
//
// Every request to a worker carries the worker UUID the master assigned (several workers may share
// one socket, seed 000). Authentication is mutual TLS with the cluster CA (plus an optional shared
// token in the \`x-dist-build-token\` metadata entry); see src/cluster/transport.ts.
syntax = "proto3";

package dist_build.v1;

// ---- Membership (seed 000) ---------------------------------------------------------------------

message Connection {
  string type = 1;   // "grpc.v1"
  string socket = 2; // "tcp://host:port" or "unix:///path.sock"
}

message CpuStats {
  repeated double loadavg = 1; // 1, 5, 15 minutes
  uint32 cpus = 2;
}

message MemStats {
  uint64 total = 1;
  uint64 free = 2;
}

message DiskStats {
  string name = 1; // "work" or "cache"
  string path = 2;
  uint64 free = 3;
  uint64 total = 4;
}

message Stats {
  CpuStats cpu = 1;            // cpu.v0
  MemStats mem = 2;            // mem.v0
  repeated DiskStats disk = 3; // disk.v0
  uint32 running = 4;          // jobs running now
  uint32 slots = 5;            // jobs it runs at once
}

message Member {
  string worker_id = 1;                // readable, unique in the cluster: <host>-<executor>-<store>[-n]
  repeated Connection connections = 2; // where the master reaches its Worker service
  Stats stats = 3;
  map<string, string> annotations = 4; // os, arch, executor, store, labels, com.example.*
}

// ---- Results and outputs -----------------------------------------------------------------------

message OutputEntry {
  string path = 1;   // declared output path, relative to the work root
  string type = 2;   // "dir" | "file" | "symlink"
  string digest = 3; // sha256:<hex> of the packed blob
  uint64 size = 4;
  uint32 files = 5;
}

message JobReport {
  string job_id = 1;
  string unit = 2;
  string invocation = 3;
  string cache_key = 4;
  // succeeded | failed | timed-out | stopped | rejected (the worker will not run it: its own
  // tree gives the unit another cache key; another worker may)
  string state = 5;
  bool has_exit_code = 6;
  int32 exit_code = 7;
  string signal = 8;
  string reason = 9;
  uint64 started_at = 10; // epoch ms
  uint64 ended_at = 11;
  uint64 duration_ms = 12;
  repeated OutputEntry outputs = 13;
  uint64 output_bytes = 14;
  // The failure is the worker's (lost outputs, store error, shutting down), not the command's:
  // the master may retry it elsewhere.
  bool worker_fault = 15;
  // Dependencies whose outputs could not be had (blob corrupt or gone everywhere): the master
  // builds them again, then this job.
  repeated string lost_deps = 16;
  // The command's own time (spawn to exit), fractional ms; 0 when it did not run. duration_ms
  // also counts the worker's work around it.
  double command_ms = 17;
  // Succeeded without running: the worker found the result in its stores after all (one the
  // master's cache query could not settle in time, such as an Actions cache shard still being
  // restored). The unit is cached, not built.
  bool from_cache = 18;
}

message RunningJob {
  string job_id = 1;
  string unit = 2;
  string cache_key = 3;
  uint64 started_at = 4;
}

// ---- Master service ----------------------------------------------------------------------------

message RegisterRequest {
  Member member = 1;
  string config_digest = 2;           // digest of the worker's config copy (informational)
  repeated RunningJob running = 3;    // jobs still running from before (master restarted)
  repeated JobReport unreported = 4;  // results finished while no master was reachable
}

message RegisterResponse {
  string worker_uuid = 1;  // never reused within this master's lifetime
  string worker_id = 2;    // the id it is known by (made unique if taken)
  uint32 lease_ttl_ms = 3;
  uint32 heartbeat_ms = 4;
  string master_id = 5;    // changes when the master restarts
}

// A message on a worker's heartbeat stream. A beat carries \`stats\` (and \`running\`); the same
// stream also carries, between beats, the answers to jobs the master started through it and the
// reports of finished jobs, so a job costs no call of its own.
message HeartbeatRequest {
  string worker_uuid = 1;
  Stats stats = 2;                 // set on beats only
  repeated RunningJob running = 3; // on beats
  repeated StartJobAck acks = 4;   // answers to HeartbeatResponse.start_jobs
  repeated JobReport reports = 5;  // finished jobs (as ReportResult); the master acknowledges them
}

message StartJobAck {
  string job_id = 1;
  bool accepted = 2;
  string reason = 3;
}

message HeartbeatResponse {
  enum Command {
    NONE = 0;
    REREGISTER = 1; // unknown worker (the master restarted or the lease expired): register again
    SHUTDOWN = 2;   // the run is over and this worker was started for it: leave and exit
  }
  Command command = 1;
  uint32 lease_ttl_ms = 2;
  // Work: jobs to start, each checked and answered (StartJobAck) exactly as a StartJob call.
  repeated StartJobRequest start_jobs = 3;
  // Job ids of reports received on the stream; a report not acknowledged is sent again.
  repeated string report_acks = 4;
}

message DeregisterRequest {
  string worker_uuid = 1;
  string reason = 2;
}

message DeregisterResponse {}

message ReportResultRequest {
  string worker_uuid = 1;
  JobReport report = 2;
}

message ReportResultResponse {
  bool accepted = 1;
  string reason = 2;
}

message StatusRequest {}

message MemberStatus {
  string worker_uuid = 1;
  Member member = 2;
  repeated RunningJob running = 3;
  uint64 registered_at = 4;
  uint64 last_heartbeat_at = 5;
  uint32 done = 6;
}

message UnitStatus {
  string unit = 1;
  string state = 2;  // waiting | ready | running | built | cached | failed | skipped | cancelled
  string worker = 3; // worker id
  uint32 attempts = 4;
}

message StatusResponse {
  string master_id = 1;
  uint64 started_at = 2;
  repeated MemberStatus members = 3;
  string config = 4;
  repeated UnitStatus units = 5;
  // While the master waits for its workers before a run: how many, and until when (epoch ms).
  uint32 waiting_for = 6;
  uint64 waiting_until = 7;
}

message LogsRequest {
  string invocation = 1; // invocation or unit id
  bool follow = 2;
  uint64 from = 3;
}

service Master {
  rpc Register(RegisterRequest) returns (RegisterResponse);
  // One long-lived stream per registered worker: a HeartbeatRequest every period, a
  // HeartbeatResponse for each. The stream closing (the worker process died, its connection
  // broke) ends the worker's membership at once; silence ends it when the lease runs out.
  rpc Heartbeat(stream HeartbeatRequest) returns (stream HeartbeatResponse);
  rpc Deregister(DeregisterRequest) returns (DeregisterResponse);
  rpc ReportResult(ReportResultRequest) returns (ReportResultResponse);
  rpc Status(StatusRequest) returns (StatusResponse);
  rpc Logs(LogsRequest) returns (stream OutputChunk);
}

// ---- Worker service (seed 003) -----------------------------------------------------------------

message Holder {
  string worker_id = 1;
  repeated Connection connections = 2;
}

message Dependency {
  string unit = 1;
  string cache_key = 2;
  repeated OutputEntry outputs = 3;
  repeated Holder holders = 4; // workers that hold the blobs, best first
}

message StartJobRequest {
  string worker_uuid = 1;
  string job_id = 2;
  string unit = 3;
  string invocation = 4;
  string definition_digest = 5; // must equal the digest of the worker's own copy of the invocation
  string cache_key = 6;
  repeated Dependency deps = 7;
  // Root-relative paths the master left out of every unit's inputs (its --out directory): the
  // worker computes cache_key again in its own tree, with the same exclusions, before running.
  repeated string exclude_inputs = 8;
  // Every invocation's declared outputs in the master's config (nobody's inputs): the worker
  // leaves out these, not its own config's, whose other invocations may differ. Empty from a
  // master that does not send them: the worker's own config's are used.
  repeated string excluded_outputs = 9;
  // The cache key of the unit's last result the master knows of (another key: its inputs
  // changed since), when there is one: a docker build uses that result's image as a cache
  // source (--cache-from) when its daemon has no image of the unit, on a worker new to it.
  string previous_cache_key = 10;
}

message StartJobResponse {
  bool accepted = 1;
  string reason = 2;
}

message StopJobRequest {
  string worker_uuid = 1;
  string job_id = 2;
  string reason = 3;
}

message StopJobResponse {
  bool found = 1;
}

message JobStatusRequest {
  string worker_uuid = 1;
  string job_id = 2;
}

message JobStatusResponse {
  bool found = 1;
  string state = 2; // queued | preparing | running | saving | succeeded | failed | timed-out | stopped
  JobReport report = 3; // set once finished
  uint64 output_bytes = 4;
}

message StreamOutputRequest {
  string worker_uuid = 1;
  string job_id = 2;
  uint64 from = 3;
  bool follow = 4;
}

message OutputChunk {
  uint64 offset = 1;
  string stream = 2; // stdout | stderr
  bytes data = 3;
}

message HasCacheRequest {
  string worker_uuid = 1;
  repeated string cache_keys = 2;
}

message HasCacheResponse {
  repeated string cache_keys = 1; // the subset this worker holds (may be approximate)
  repeated ResultSummary results = 2;
}

message ResultSummary {
  string cache_key = 1;
  repeated OutputEntry outputs = 2;
  uint64 duration_ms = 3;
  string worker = 4; // worker that built it
}

message FetchBlobRequest {
  string worker_uuid = 1;
  string digest = 2;
}

message BlobChunk {
  bytes data = 1;
  uint64 size = 2; // total size, in the first chunk
}

message ExportRequest {
  string worker_uuid = 1;
  string unit = 2;
  string cache_key = 3;
  string path = 4;   // which declared output
  string digest = 5; // its blob, when the master knows it (else looked up in the worker's result)
}

// Pushes a docker unit's image to the references its invocation is tagged with (\`docker.push\`),
// from the image archive this worker holds. The tags come from the worker's own config: a master
// cannot make it push anything else.
message PushImageRequest {
  string worker_uuid = 1;
  string unit = 2;
  string cache_key = 3;
  string path = 4;   // the image archive's output path
  string digest = 5; // its blob, when the master knows it (else looked up in the worker's result)
}

message PushedImage {
  string ref = 1;    // as tagged: registry/repository:tag
  string digest = 2; // the manifest digest the registry answered
}

message PushImageResponse {
  repeated PushedImage pushed = 1;
}

service Worker {
  rpc StartJob(StartJobRequest) returns (StartJobResponse);
  rpc StopJob(StopJobRequest) returns (StopJobResponse);
  rpc JobStatus(JobStatusRequest) returns (JobStatusResponse);
  rpc StreamOutput(StreamOutputRequest) returns (stream OutputChunk);
  rpc HasCache(HasCacheRequest) returns (HasCacheResponse);
  rpc FetchBlob(FetchBlobRequest) returns (stream BlobChunk);
  rpc Export(ExportRequest) returns (stream BlobChunk);
  rpc PushImage(PushImageRequest) returns (PushImageResponse);
}
`;

// src/cluster/protocol.ts
var PROTOCOL = "grpc.v1";
var MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
var CACHE_QUERY_TIMEOUT_MS = 3e4;
var CACHE_QUERY_REMOTE_BUDGET_MS = 2e4;
var LATE_HIT_WAIT_MS = 6e4;
var loaded;
function protocol() {
  if (loaded) return loaded;
  const root = protobuf.parse(cluster_default, { keepCase: true }).root;
  const definition = fromJSON(root.toJSON(), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    arrays: true,
    objects: true
  });
  const pkg = grpc.loadPackageDefinition(definition);
  const { Master: Master2, Worker: Worker3 } = pkg.dist_build.v1;
  loaded = {
    MasterService: Master2.service,
    WorkerService: Worker3.service,
    MasterClient: Master2,
    WorkerClient: Worker3
  };
  return loaded;
}
function call2(client, method, req, metadata, timeoutMs) {
  return new Promise((resolve7, reject) => {
    method.call(client, req, metadata, { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(err);
      else resolve7(res);
    });
  });
}

// src/cluster/transport.ts
import * as grpc2 from "@grpc/grpc-js";
import { chmodSync as chmodSync2, existsSync, lstatSync as lstatSync2, unlinkSync } from "node:fs";
import { isIP } from "node:net";
import { resolve as resolvePath } from "node:path";
import { timingSafeEqual as timingSafeEqual2, createHash as createHash5 } from "node:crypto";
import { checkServerIdentity } from "node:tls";
var SecurityError = class extends Error {
  name = "SecurityError";
};
var AddressError = class extends Error {
  name = "AddressError";
};
function parseAddress(text) {
  const s = text.trim();
  if (s.startsWith("unix://") || s.startsWith("unix:")) {
    const path = s.startsWith("unix://") ? s.slice("unix://".length) : s.slice("unix:".length);
    if (!path) throw new AddressError(`${text}: expected unix:///path/to.sock`);
    return { kind: "unix", path: resolvePath(path) };
  }
  const m = /^(?:tcp:\/\/)?(\[[^\]]+\]|[^:/[\]]*):(\d{1,5})$/.exec(s);
  if (!m) {
    throw new AddressError(
      `${JSON.stringify(text)}: expected tcp://host:port or unix:///path.sock`
    );
  }
  const port = Number(m[2]);
  if (port > 65535) throw new AddressError(`${text}: port ${port} is out of range`);
  const host = m[1].replace(/^\[|\]$/g, "") || "127.0.0.1";
  return { kind: "tcp", host, port };
}
function formatAddress(a) {
  if (a.kind === "unix") return `unix://${a.path}`;
  return `tcp://${isIP(a.host) === 6 ? `[${a.host}]` : a.host}:${a.port}`;
}
function grpcTarget(a) {
  if (a.kind === "unix") return `unix://${a.path}`;
  return `${isIP(a.host) === 6 ? `[${a.host}]` : a.host}:${a.port}`;
}
function isLoopback(a) {
  if (a.kind === "unix") return true;
  const h2 = a.host.toLowerCase();
  return h2 === "localhost" || h2 === "::1" || /^127\./.test(h2);
}
function checkSecurity(a, sec, what) {
  if (a.kind === "tcp" && !sec.tls && !sec.insecure) {
    throw new SecurityError(
      `${what} ${formatAddress(a)}: TCP needs mutual TLS: give --certs DIR (see \`dist-build certs init\`), or --insecure to allow plaintext` + (isLoopback(a) ? "" : " (not recommended off loopback)")
    );
  }
}
var COMMON_OPTIONS = {
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  // Keep connections to members alive cheaply; notice dead peers.
  "grpc.keepalive_time_ms": 15e3,
  "grpc.keepalive_timeout_ms": 5e3,
  "grpc.keepalive_permit_without_calls": 1,
  // No channelz bookkeeping (per connection and per call): nothing here reads it.
  "grpc.enable_channelz": 0
};
var CHANNEL_OPTIONS = {
  ...COMMON_OPTIONS,
  "grpc.initial_reconnect_backoff_ms": 100,
  // One connection per client object, as separate worker processes would have (grpc-js would
  // otherwise multiplex every client of a process to one target over a single connection).
  "grpc.use_local_subchannel_pool": 1,
  "grpc.max_reconnect_backoff_ms": 2e3
};
var credentialCache = /* @__PURE__ */ new WeakMap();
function channelCredentials(a, sec, serverRole) {
  checkSecurity(a, sec, "connecting to");
  if (!sec.tls) return grpc2.credentials.createInsecure();
  const ip = a.kind === "tcp" && isIP(a.host) ? a.host : void 0;
  let byKey = credentialCache.get(sec.tls);
  if (!byKey) credentialCache.set(sec.tls, byKey = /* @__PURE__ */ new Map());
  const key = `${ip ?? ""}|${serverRole ?? ""}`;
  let creds = byKey.get(key);
  if (!creds) {
    creds = grpc2.credentials.createSsl(
      Buffer.from(sec.tls.ca),
      Buffer.from(sec.tls.key),
      Buffer.from(sec.tls.cert),
      {
        checkServerIdentity: (host, cert) => {
          const err = checkServerIdentity(ip ?? host, cert);
          if (err || !serverRole) return err;
          const role = roleOf(cert);
          return role === serverRole ? void 0 : new Error(
            `the server's certificate has role ${role ?? "none"}, expected ${serverRole}`
          );
        }
      }
    );
    byKey.set(key, creds);
  }
  return creds;
}
function firstOf(value) {
  return Array.isArray(value) ? value[0] ?? null : value ?? null;
}
function roleOf(cert) {
  return firstOf(cert.subject?.OU);
}
function channelOptions(a) {
  return a.kind === "unix" || isIP(a.host) ? (
    // A unix socket has no host name: its member's certificate is checked against "localhost".
    { ...CHANNEL_OPTIONS, "grpc.ssl_target_name_override": "localhost" }
  ) : CHANNEL_OPTIONS;
}
function callMetadata(sec) {
  const md2 = new grpc2.Metadata();
  if (sec.token) md2.set("x-dist-build-token", sec.token);
  return md2;
}
function socketOf(callLike) {
  let c = callLike.call;
  for (let depth = 0; c && !c.stream && c.nextCall && depth < 8; depth++) {
    c = c.nextCall;
  }
  return c?.stream?.session?.socket;
}
var peerCache = /* @__PURE__ */ new WeakMap();
function peerRole(callLike) {
  const socket = socketOf(callLike);
  const cached = socket && peerCache.get(socket);
  if (cached) return cached;
  const ctx = callLike.getAuthContext?.();
  const cert = ctx?.sslPeerCertificate;
  if (!cert) return { role: null, name: null };
  const peer = { role: roleOf(cert), name: firstOf(cert.subject?.CN) };
  if (socket) peerCache.set(socket, peer);
  return peer;
}
function sameSecret(a, b) {
  const ha = createHash5("sha256").update(a).digest();
  const hb = createHash5("sha256").update(b).digest();
  return timingSafeEqual2(ha, hb);
}
function authorize(callLike, sec, roles, method) {
  const fail = (code, reason) => Object.assign(new Error(reason), {
    code,
    details: reason,
    metadata: new grpc2.Metadata(),
    reason
  });
  if (sec.token) {
    const got = callLike.metadata.get("x-dist-build-token")[0];
    if (typeof got !== "string" || !sameSecret(got, sec.token)) {
      return fail(
        grpc2.status.UNAUTHENTICATED,
        `${method}: ${got === void 0 ? "missing" : "wrong"} token`
      );
    }
  }
  if (sec.tls && roles.length) {
    const { role, name } = peerRole(callLike);
    if (!role || !roles.includes(role)) {
      return fail(
        grpc2.status.PERMISSION_DENIED,
        `${method}: certificate ${name ?? "?"} has role ${role ?? "none"}, expected ${roles.join(" or ")}`
      );
    }
  }
  return null;
}
function refusedCall(callLike, reason) {
  const { name } = peerRole(callLike);
  const peer = callLike.getPeer?.();
  const who = [peer && peer !== "unknown" && `from ${peer}`, name && `certificate ${name}`];
  const from = who.filter(Boolean).join(", ");
  return `refused ${reason}${from ? ` (${from})` : ""}`;
}
function connectProblem(detail, tls, who = "this worker") {
  const text = detail.replace(/\s*Resolution note:.*$/s, "").trim();
  if (/does not implement the method \/dist_build\.v1\.Master\//.test(text)) {
    return `no dist-build master there (the server has no Master service: the address of a worker's --listen?): ${text}`;
  }
  if (tls && /self[- ]signed certificate|unable to verify|unable to get local issuer|certificate signature failure/i.test(
    text
  )) {
    return `the master's certificate is not from ${who}'s CA (--certs: a master set up with another \`dist-build certs init\`?): ${text}`;
  }
  if (tls && /wrong version number|packet length too long|http request/i.test(text)) {
    return `the master does not speak TLS (started with --insecure?): give both sides --certs, or both --insecure: ${text}`;
  }
  if (tls && /certificate has expired/i.test(text)) {
    return `the master's certificate has expired: issue it again with \`dist-build certs issue\`: ${text}`;
  }
  if (tls && /altname|does not match certificate|hostname\/ip does not match/i.test(text)) {
    return `the master's certificate does not name the host ${who} dials (issue it with \`--host\`): ${text}`;
  }
  if (!tls && /Failed to connect \(/.test(text)) {
    return `the connection was closed before it was set up (a master that uses TLS? then give --certs too): ${text}`;
  }
  return text;
}
var serverCredentialCache = /* @__PURE__ */ new WeakMap();
function serverCredentials(sec) {
  if (!sec.tls) return grpc2.ServerCredentials.createInsecure();
  let creds = serverCredentialCache.get(sec.tls);
  if (!creds) {
    creds = grpc2.ServerCredentials.createSsl(
      Buffer.from(sec.tls.ca),
      [{ private_key: Buffer.from(sec.tls.key), cert_chain: Buffer.from(sec.tls.cert) }],
      true
    );
    serverCredentialCache.set(sec.tls, creds);
  }
  return creds;
}
var bindErrorsQuiet = false;
function quietBindErrors() {
  if (bindErrorsQuiet) return;
  bindErrorsQuiet = true;
  const print = (prefix) => (message2, ...rest) => {
    if (typeof message2 === "string" && message2.startsWith("No address added out of total"))
      return;
    console.error(`${prefix}${String(message2)}`, ...rest);
  };
  grpc2.setLogger({ error: print("E "), info: print("I "), debug: print("D ") });
}
async function startServer(addresses, services, sec, log) {
  const server = new grpc2.Server(COMMON_OPTIONS);
  for (const s of services) server.addService(s.definition, s.handlers);
  const bound = [];
  for (const a of addresses) {
    checkSecurity(a, sec, "listening on");
    if (a.kind === "unix" && existsSync(a.path)) {
      if (!lstatSync2(a.path).isSocket()) {
        throw new AddressError(`${formatAddress(a)}: ${a.path} exists and is not a socket`);
      }
      unlinkSync(a.path);
    }
    const creds = serverCredentials(sec);
    quietBindErrors();
    const port = await new Promise(
      (resolve7, reject) => server.bindAsync(grpcTarget(a), creds, (err, p) => err ? reject(err) : resolve7(p))
    ).catch((err) => {
      server.forceShutdown();
      const why = /errors: \[(?:listen )?(.*)\]$/s.exec(err.message)?.[1] || err.message;
      throw new AddressError(`cannot listen on ${formatAddress(a)}: ${why}`);
    });
    if (a.kind === "unix") {
      try {
        chmodSync2(a.path, 384);
      } catch (err) {
        server.forceShutdown();
        throw new AddressError(`cannot listen on ${formatAddress(a)}: ${err.message}`);
      }
      bound.push(a);
    } else bound.push({ ...a, port });
  }
  logRefusedHandshakes(server, log);
  return {
    server,
    addresses: bound,
    close: () => new Promise((resolve7) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve7();
      }, 1e3);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve7();
      });
    })
  };
}
function logRefusedHandshakes(server, log) {
  const servers = server.http2Servers;
  if (!(servers instanceof Map)) return;
  const peers = /* @__PURE__ */ new WeakMap();
  for (const http2Server of servers.keys()) {
    const s = http2Server;
    s.on?.("connection", (raw) => {
      peers.set(raw, raw.remoteAddress ? `${raw.remoteAddress}:${raw.remotePort}` : "unix socket");
    });
    s.on?.("tlsClientError", (err, socket) => {
      const raw = socket?._parent;
      const from = (raw && peers.get(raw)) ?? (socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : "unknown peer");
      const why = socket?.authorizationError;
      log(
        `refused connection from ${from}: ${tlsReason(why ? Object.assign(new Error(String(why)), { code: String(why) }) : err)}`
      );
    });
  }
}
function tlsReason(err) {
  const code = err.code ?? "";
  const msg = err.message;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|peer did not return a certificate/i.test(code + msg))
    return "no client certificate";
  if (/CERT_HAS_EXPIRED|CERTIFICATE_EXPIRED|certificate has expired/i.test(code + msg))
    return "client certificate expired";
  if (/UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_SIGNATURE_FAILURE|unable to verify|unknown ca|self.signed|certificate signature failure|UNABLE_TO_GET_ISSUER_CERT/i.test(
    code + msg
  ))
    return `client certificate not from the cluster CA (${msg})`;
  if (/socket hang up|ECONNRESET/i.test(code + msg))
    return "the client hung up during the TLS handshake (it did not accept this side's certificate: its --certs has another CA, or it dials a host the certificate does not name?)";
  if (/wrong[_ ]version[_ ]number|http[_ ]request|packet[_ ]length[_ ]too[_ ]long/i.test(code + msg))
    return "not TLS: a plaintext client (started with --insecure?); give both sides --certs, or both --insecure";
  return msg.trim() || code || "TLS handshake failed";
}
function failStream(call3, code, details) {
  call3.emit("error", { code, details, metadata: new grpc2.Metadata() });
}

// src/cluster/master.ts
var SEEN_REPORTS = 1e4;
var LOG_RELAY_GRACE_MS = 1e3;
function otherRelease(member) {
  const v = member.annotations?.version;
  if (v === VERSION2) return void 0;
  return v ? `dist-build ${v}` : "an older release of dist-build";
}
var Master = class extends EventEmitter {
  constructor(opts) {
    super();
    this.opts = opts;
    this.log = opts.log ?? ((m) => process.stderr.write(`${m}
`));
    this.heartbeatMs = opts.heartbeatMs ?? 1e3;
    this.leaseTtlMs = opts.leaseTtlMs ?? this.heartbeatMs * 3 + 500;
  }
  opts;
  id = randomUUID();
  startedAt = Date.now();
  heartbeatMs;
  leaseTtlMs;
  members = /* @__PURE__ */ new Map();
  log;
  server;
  leaseTimer;
  shutdownAll = false;
  stopping = false;
  /** `waitForWorkers` in progress: how many, and until when (for Status). */
  waiting;
  /** Registrations refused (wrong token, a certificate of another role), by reason. */
  refusedJoins = /* @__PURE__ */ new Map();
  /** `logs` calls being answered: a stopping master lets them finish (briefly). */
  relays = /* @__PURE__ */ new Set();
  /** Jobs started on a heartbeat stream, waiting for the worker's answer. */
  pendingStarts = /* @__PURE__ */ new Map();
  seenReports = /* @__PURE__ */ new Set();
  lastLeaseCheck = 0;
  /** Reports that came while no run was attached (a worker back after a restart): kept for it. */
  unclaimed = [];
  attached;
  /**
   * A run is coming (a `dist-build master` or `run` waiting for its workers): `logs --follow`
   * waits for it rather than answering that nothing has started. Cleared when a run attaches.
   */
  runExpected = false;
  /** The run in progress, for Status and Logs. */
  get run() {
    return this.attached;
  }
  set run(view) {
    this.attached = view;
    if (view) this.runExpected = false;
  }
  get addresses() {
    return this.server?.addresses ?? [];
  }
  async start() {
    this.server = await startServer(
      this.opts.listen,
      [{ definition: protocol().MasterService, handlers: this.handlers() }],
      this.opts.security,
      (m) => this.log(`master: ${m}`)
    );
    const tick = Math.max(20, Math.min(this.heartbeatMs, this.leaseTtlMs) / 2);
    this.lastLeaseCheck = Date.now();
    this.leaseTimer = setInterval(() => this.expireLeases(tick), tick);
    this.leaseTimer.unref();
  }
  async stop() {
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.stopping = true;
    this.runExpected = false;
    await this.settleLogRelays();
    for (const m of this.members.values()) {
      m.closeClient();
      m.stream?.end();
    }
    this.members.clear();
    await this.server?.close();
  }
  /**
   * A `logs --follow` of the run's last job (a quick one, done just before the run ended) still
   * has that job's output to relay from its worker: waits for the relays in progress (at most
   * LOG_RELAY_GRACE_MS). Call it before telling the workers to go, which takes the output away.
   */
  async settleLogRelays() {
    if (this.relays.size) {
      await Promise.race([
        Promise.allSettled([...this.relays]),
        new Promise((r) => setTimeout(r, LOG_RELAY_GRACE_MS).unref())
      ]);
    }
  }
  /** Live members, in registration order. */
  live() {
    return [...this.members.values()];
  }
  member(uuid) {
    return this.members.get(uuid);
  }
  /** Resolves when at least `n` workers are registered; rejects after `timeoutMs`. */
  waitForWorkers(n, timeoutMs) {
    if (this.members.size >= n) return Promise.resolve();
    this.waiting = { n, until: Date.now() + timeoutMs };
    return new Promise((resolve7, reject) => {
      const timer = setTimeout(() => {
        this.waiting = void 0;
        this.off("joined", onJoin);
        const refused = [...this.refusedJoins].map(([why, k]) => `${k}x ${why}`).join(", ");
        reject(
          new Error(
            `only ${this.members.size} of ${n} workers registered within ${Math.round(timeoutMs / 1e3)}s${refused ? ` (refused: ${refused})` : ""}`
          )
        );
      }, timeoutMs);
      timer.unref();
      const onJoin = () => {
        if (this.members.size < n) return;
        this.waiting = void 0;
        clearTimeout(timer);
        this.off("joined", onJoin);
        resolve7();
      };
      this.on("joined", onJoin);
    });
  }
  /** Every worker is told to shut down at its next heartbeat (the run that started them is over). */
  shutdownWorkers() {
    this.shutdownAll = true;
    for (const m of this.members.values()) m.shutdown = true;
  }
  metadata() {
    return callMetadata(this.opts.security);
  }
  remove(m, why) {
    if (this.members.get(m.uuid) !== m) return;
    this.members.delete(m.uuid);
    m.closeClient();
    this.log(`master: worker ${m.id} left: ${why}`);
    this.emit("left", m, why);
  }
  expireLeases(tick) {
    const now = Date.now();
    const late = now - this.lastLeaseCheck - tick;
    this.lastLeaseCheck = now;
    if (late > this.leaseTtlMs / 2) return;
    for (const m of this.members.values()) {
      if (now - m.lastHeartbeatAt > this.leaseTtlMs) {
        this.remove(m, `lease expired (no heartbeat for ${now - m.lastHeartbeatAt} ms)`);
      }
    }
  }
  uniqueId(wanted) {
    const taken = new Set([...this.members.values()].map((m) => m.id));
    if (!taken.has(wanted)) return wanted;
    for (let i = 2; ; i++) if (!taken.has(`${wanted}-${i}`)) return `${wanted}-${i}`;
  }
  handlers() {
    const sec = this.opts.security;
    const guard = (c, method, roles) => {
      const err = authorize(c, sec, roles, method);
      if (err) this.log(`master: ${refusedCall(c, err.reason)}`);
      return err;
    };
    return {
      Register: (c, cb) => {
        const err = guard(c, "Register", ["worker"]);
        if (err) {
          this.refusedJoins.set(err.reason, (this.refusedJoins.get(err.reason) ?? 0) + 1);
          return cb(err);
        }
        const req = c.request;
        const conn = req.member?.connections?.[0];
        if (!req.member?.worker_id || !conn) {
          return cb({
            code: grpc3.status.INVALID_ARGUMENT,
            details: "Register needs a member with a worker_id and at least one connection"
          });
        }
        let address;
        try {
          address = parseAddress(conn.socket);
          channelCredentials(address, sec);
        } catch (e) {
          return cb({
            code: grpc3.status.INVALID_ARGUMENT,
            details: `connection ${conn.socket}: ${e.message}`
          });
        }
        const now = Date.now();
        let client;
        const state = {
          uuid: randomUUID(),
          id: this.uniqueId(req.member.worker_id),
          member: req.member,
          running: req.running,
          registeredAt: now,
          lastHeartbeatAt: now,
          done: 0,
          get client() {
            return client ??= new (protocol()).WorkerClient(
              grpcTarget(address),
              channelCredentials(address, sec),
              channelOptions(address)
            );
          },
          closeClient: () => client?.close(),
          shutdown: this.shutdownAll
        };
        const holder = state.id !== req.member.worker_id ? [...this.members.values()].find((m) => m.id === req.member.worker_id) : void 0;
        this.members.set(state.uuid, state);
        this.log(
          `master: worker ${state.id} joined from ${conn.socket}${req.running.length ? ` with ${req.running.length} running job(s)` : ""}`
        );
        const release = otherRelease(req.member);
        if (release) {
          this.log(
            `master: warning: worker ${state.id} runs ${release}, this master ${VERSION2}: where their releases compute cache keys differently, it refuses (or builds without caching) every job; run one release on every machine`
          );
        }
        if (state.id !== req.member.worker_id) {
          this.log(
            `master: warning: worker id ${req.member.worker_id} is taken${holder ? ` by the worker at ${holder.member.connections[0]?.socket ?? "?"}` : ""}: the worker from ${conn.socket} is ${state.id}; give each worker its own --id`
          );
        }
        cb(null, {
          worker_uuid: state.uuid,
          worker_id: state.id,
          lease_ttl_ms: this.leaseTtlMs,
          heartbeat_ms: this.heartbeatMs,
          master_id: this.id
        });
        this.emit("joined", state, { running: req.running, unreported: req.unreported });
        for (const r of req.unreported) this.acceptReport(state, r);
      },
      Heartbeat: (stream) => {
        const err = guard(stream, "Heartbeat", ["worker"]);
        if (err) {
          failStream(stream, err.code, err.details);
          return;
        }
        let member;
        stream.on("data", (req) => {
          const m = this.members.get(req.worker_uuid);
          if (!m) {
            if (!this.stopping) stream.write(this.answer("REREGISTER"));
            stream.end();
            return;
          }
          if (member !== m) {
            member = m;
            m.stream = stream;
          }
          m.lastHeartbeatAt = Date.now();
          for (const a of req.acks) {
            const p = this.pendingStarts.get(a.job_id);
            if (p?.member === m) p.settle({ accepted: a.accepted, reason: a.reason });
          }
          if (req.reports.length) {
            const acks = req.reports.filter((r) => r.job_id).map((r) => r.job_id);
            stream.write({ ...this.answer("NONE"), report_acks: acks });
            for (const r of req.reports) if (r.job_id) this.acceptReport(m, r);
          }
          if (req.stats) {
            m.member.stats = req.stats;
            m.running = req.running;
            stream.write(this.answer(m.shutdown ? "SHUTDOWN" : "NONE"));
          }
        });
        const closed = (why) => {
          if (member) {
            if (member.stream === stream) member.stream = void 0;
            for (const p of [...this.pendingStarts.values()]) {
              if (p.member === member) p.settle(new Error(`${member.id}: ${why}`));
            }
            this.remove(member, why);
          }
          member = void 0;
        };
        stream.on("end", () => {
          stream.end();
          closed("its heartbeat stream ended");
        });
        stream.on("error", () => closed("its connection broke"));
        stream.on("cancelled", () => closed("its connection broke"));
      },
      Deregister: (c, cb) => {
        const err = guard(c, "Deregister", ["worker"]);
        if (err) return cb(err);
        const m = this.members.get(c.request.worker_uuid);
        if (m) this.remove(m, `deregistered (${c.request.reason || "no reason given"})`);
        cb(null, {});
      },
      ReportResult: (c, cb) => {
        const err = guard(c, "ReportResult", ["worker"]);
        if (err) return cb(err);
        const m = this.members.get(c.request.worker_uuid);
        if (m) m.lastHeartbeatAt = Date.now();
        if (!c.request.report?.job_id) {
          return cb({
            code: grpc3.status.INVALID_ARGUMENT,
            details: "ReportResult needs a report with a job_id"
          });
        }
        cb(null, { accepted: true, reason: "" });
        this.acceptReport(m, c.request.report);
      },
      Status: (c, cb) => {
        const err = guard(c, "Status", ["client", "master", "worker"]);
        if (err) return cb(err);
        cb(null, this.status());
      },
      Logs: (c) => {
        const err = guard(c, "Logs", ["client", "master"]);
        if (err) return failStream(c, err.code, err.details);
        const relay = this.relayLogs(c).finally(() => this.relays.delete(relay));
        this.relays.add(relay);
      }
    };
  }
  status() {
    const members = this.live().map((m) => ({
      worker_uuid: m.uuid,
      member: { ...m.member, worker_id: m.id },
      running: m.running,
      registered_at: m.registeredAt,
      last_heartbeat_at: m.lastHeartbeatAt,
      done: m.done
    }));
    return {
      master_id: this.id,
      started_at: this.startedAt,
      members,
      config: this.run?.config ?? "",
      units: this.run?.units() ?? [],
      waiting_for: this.waiting?.n ?? 0,
      waiting_until: this.waiting?.until ?? 0
    };
  }
  async relayLogs(c) {
    const name = c.request.invocation;
    const follow = c.request.follow;
    let gone = false;
    c.on("cancelled", () => gone = true);
    while (follow && !gone && !this.run && this.runExpected)
      await new Promise((r) => setTimeout(r, 250));
    if (gone) return;
    const run2 = this.run;
    const unitsOf = () => (run2?.units() ?? []).filter((u) => u.unit === name || u.unit.startsWith(`${name}@`));
    if (run2 && unitsOf().length === 0) {
      failStream(c, grpc3.status.NOT_FOUND, `no invocation ${name} in this run`);
      return;
    }
    const live = () => unitsOf().some((u) => u.state === "waiting" || u.state === "ready" || u.state === "running");
    const notice = (text) => c.write({ offset: 0, stream: "stderr", data: Buffer.from(`dist-build: ${text}
`) });
    let last;
    let from = c.request.from;
    for (; ; ) {
      let where = run2?.jobOf(name);
      while (follow && !gone && (!where || where.jobId === last)) {
        if (!live()) {
          if (last !== void 0) return void c.end();
          const states = unitsOf().map((u) => u.state);
          if (states.length) {
            failStream(
              c,
              grpc3.status.NOT_FOUND,
              `${name} ran no job in this run (${states.join(", ")})`
            );
            return;
          }
          break;
        }
        await new Promise((r) => setTimeout(r, 250));
        where = run2?.jobOf(name);
      }
      if (gone) return;
      const m = where && this.members.get(where.uuid);
      if (!where || !m) {
        failStream(
          c,
          grpc3.status.NOT_FOUND,
          where ? `the worker that ran ${name} has left` : run2 ? `no job of ${name} has started in this run` : "no run in progress on this master"
        );
        return;
      }
      if (last !== void 0) notice(`${name}: next attempt, on ${m.id}`);
      last = where.jobId;
      const upstream = m.client.StreamOutput(
        { worker_uuid: m.uuid, job_id: where.jobId, from, follow },
        this.metadata()
      );
      from = 0;
      const cancel = () => upstream.cancel();
      c.on("cancelled", cancel);
      try {
        for await (const chunk of upstream) {
          if (!c.write(chunk)) await new Promise((r) => c.once("drain", r));
        }
        if (!follow) return void c.end();
      } catch (err) {
        const e = err;
        if (e.code === grpc3.status.CANCELLED) return;
        if (!follow || !live()) {
          failStream(c, e.code ?? grpc3.status.UNAVAILABLE, e.details ?? e.message);
          return;
        }
        notice(`${name}: lost the output of ${m.id} (${e.details ?? e.message})`);
      } finally {
        c.off("cancelled", cancel);
      }
    }
  }
  /**
   * Starts a job on `m`: on its heartbeat stream when it has one (no call of its own), else with
   * a StartJob call. Rejects when the worker does not answer within `timeoutMs` or its stream
   * breaks first.
   */
  startJob(m, req, timeoutMs = 1e4) {
    const stream = m.stream;
    if (!stream || stream.destroyed || this.pendingStarts.has(req.job_id)) {
      return this.callWorker(
        m,
        (c) => c.StartJob,
        req,
        timeoutMs
      );
    }
    return new Promise((resolve7, reject) => {
      const timer = setTimeout(
        () => settle(new Error(`${m.id} did not answer StartJob within ${timeoutMs} ms`)),
        timeoutMs
      );
      const settle = (r) => {
        clearTimeout(timer);
        this.pendingStarts.delete(req.job_id);
        if (r instanceof Error) reject(r);
        else resolve7(r);
      };
      this.pendingStarts.set(req.job_id, { member: m, settle });
      stream.write({ ...this.answer("NONE"), start_jobs: [req] });
    });
  }
  answer(command) {
    return { command, lease_ttl_ms: this.leaseTtlMs, start_jobs: [], report_acks: [] };
  }
  /** A finished job's report, from the stream or a ReportResult call; a repeat is dropped. */
  acceptReport(m, r) {
    if (this.seenReports.has(r.job_id)) return;
    this.seenReports.add(r.job_id);
    if (this.seenReports.size > SEEN_REPORTS) {
      this.seenReports.delete(this.seenReports.values().next().value);
    }
    if (m) m.done++;
    if (!this.run) {
      this.unclaimed.push({ m, r });
      if (this.unclaimed.length > SEEN_REPORTS) this.unclaimed.shift();
    }
    this.emit("report", m, r);
  }
  /** The reports that came before a run was attached (see `unclaimed`), once. */
  takeUnclaimedReports() {
    return this.unclaimed.splice(0);
  }
  /** Unary call to a member's Worker service. */
  callWorker(m, method, req, timeoutMs = 1e4) {
    return call2(m.client, method(m.client), req, this.metadata(), timeoutMs);
  }
};

// src/cluster/worker.ts
import * as grpc4 from "@grpc/grpc-js";
import {
  closeSync as closeSync2,
  lstatSync as lstatSync4,
  mkdirSync as mkdirSync3,
  openSync as openSync3,
  readdirSync as readdirSync5,
  readFileSync as readFileSync5,
  rmSync as rmSync2,
  statSync as statSync3,
  writeSync as writeSync2
} from "node:fs";
import { mkdir as mkdir8, mkdtemp as mkdtemp3, rm as rm7 } from "node:fs/promises";
import net from "node:net";
import { randomBytes as randomBytes5 } from "node:crypto";
import os2 from "node:os";
import { dirname as dirname7, join as join16 } from "node:path";
import { Readable as Readable4 } from "node:stream";

// src/executors/command.ts
import { spawn } from "node:child_process";
import {
  constants as fsConstants2,
  createWriteStream,
  mkdirSync as mkdirSync2,
  openSync as openSync2,
  readdirSync as readdirSync3,
  readFileSync as readFileSync4,
  statSync as statSync2
} from "node:fs";
import { open as open2, unlink as unlink3 } from "node:fs/promises";
import { tmpdir as tmpdir3 } from "node:os";
import { dirname as dirname6, join as join13 } from "node:path";
import { performance } from "node:perf_hooks";
var DEFAULT_BASE_ENV = ["PATH", "HOME", "TMPDIR", "LANG"];
var DEFAULT_KILL_GRACE_MS = 1e4;
function defaultLogDir() {
  return join13(tmpdir3(), "dist-build-jobs");
}
function buildEnv(declared, opts = {}, parent = process.env) {
  const env2 = {};
  const keys = opts.inheritEnv ? Object.keys(parent) : opts.baseEnv ?? DEFAULT_BASE_ENV;
  for (const key of keys) {
    const value = parent[key];
    if (value !== void 0) env2[key] = value;
  }
  return Object.assign(env2, declared);
}
function commandJobSpec(invocation, opts) {
  if (invocation.run === void 0) {
    throw new TypeError(`invocation ${invocation.name} has no run: command`);
  }
  return {
    id: opts.id,
    invocation: invocation.name,
    command: invocation.run,
    cwd: opts.cwd,
    env: { ...invocation.env },
    timeoutSeconds: invocation.timeout
  };
}
var ID_PATTERN = /^[A-Za-z0-9._-]+$/;
function validateSpec(spec) {
  if (!ID_PATTERN.test(spec.id) || spec.id === "." || spec.id === "..") {
    throw new TypeError(`invalid job id ${JSON.stringify(spec.id)}: use [A-Za-z0-9._-]`);
  }
  if (typeof spec.command !== "string" || spec.command === "") {
    throw new TypeError(`job ${spec.id}: command must be a non-empty string`);
  }
  if (typeof spec.cwd !== "string" || spec.cwd === "") {
    throw new TypeError(`job ${spec.id}: cwd must be a non-empty string`);
  }
  if (typeof spec.timeoutSeconds !== "number" || !(spec.timeoutSeconds >= 0)) {
    throw new TypeError(`job ${spec.id}: timeoutSeconds must be a number >= 0`);
  }
}
var CommandExecutor = class {
  constructor(options = {}) {
    this.options = options;
    this.logDir = options.logDir ?? defaultLogDir();
  }
  options;
  kind = "command";
  logDir;
  jobs = /* @__PURE__ */ new Map();
  start(spec) {
    validateSpec(spec);
    if (this.jobs.has(spec.id)) {
      throw new Error(`job ${spec.id} already exists in this executor (dispose it first)`);
    }
    const job = new CommandJob(
      { ...spec, env: { ...spec.env } },
      this.options,
      this.logDir,
      () => this.jobs.delete(spec.id)
    );
    this.jobs.set(spec.id, job);
    job.begin();
    return job;
  }
  get(id) {
    return this.jobs.get(id);
  }
  /** Jobs not yet disposed, in start order. */
  list() {
    return [...this.jobs.values()];
  }
  /** Stops every job that is still running (e.g. when the worker shuts down). */
  async stopAll(reason = "executor shutting down") {
    return Promise.all(this.list().map((job) => job.stop(reason)));
  }
};
var MAX_TIMER_MS = 2 ** 31 - 1;
var READ_CHUNK2 = 64 * 1024;
var logDirs = /* @__PURE__ */ new Set();
var LOG_HIGH_WATER = 1024 * 1024;
var AFTER_KILL_WAIT_MS = 1e3;
var PIPE_CLOSE_MARGIN_MS = 2e3;
var GROUP_POLL_MIN_MS = 5;
var GROUP_POLL_MAX_MS = 100;
var CommandJob = class {
  constructor(spec, options, logDir, onDispose) {
    this.spec = spec;
    this.options = options;
    this.onDispose = onDispose;
    this.id = spec.id;
    this.logPath = join13(logDir, `${spec.id}.log`);
    this.graceMs = Math.max(0, options.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
    this.result = new Promise((resolve7) => this.resolveResult = resolve7);
  }
  spec;
  options;
  onDispose;
  id;
  logPath;
  result;
  _state = "queued";
  _final;
  resolveResult;
  startedAt = Date.now();
  t0 = performance.now();
  graceMs;
  child;
  _pid;
  exit;
  /** Why we are ending the job (set by timeout/stop, before the shell has exited). */
  cause;
  startError;
  finishing = false;
  disposed = false;
  timeoutTimer;
  killTimer;
  pipeTimer;
  killSentAt;
  /** `performance.now()` just before the spawn and at the command's exit. */
  spawnedAt;
  exitedAt;
  log;
  logError;
  received = 0;
  flushed = 0;
  paused = false;
  /** Offsets where the stream changes; segment i is `firstStream` for even i, the other for odd. */
  segStarts = [];
  firstStream = "stdout";
  lastStream;
  waiters = /* @__PURE__ */ new Set();
  listenerFailed = false;
  get state() {
    return this._state;
  }
  get outputBytes() {
    return this.received;
  }
  get finalResult() {
    return this._final;
  }
  /** PID of the shell, which is also the process group id; `undefined` if it never started. */
  get pid() {
    return this._pid;
  }
  /**
   * Called once by the executor: spawns the command and opens its log. Never throws.
   *
   * The log is created right after the spawn, while the command starts (creating a file costs
   * 0.2-0.5 ms on slow disks, which would otherwise come before every command). Nothing can be
   * read from the pipes before this returns, so no output is missed. A log that cannot be
   * created ends the command at once with SIGKILL, and the job fails: a job never runs without
   * its log.
   */
  begin() {
    const { cwd } = this.spec;
    try {
      if (!statSync2(cwd).isDirectory()) {
        this.failStart(`working directory ${cwd} is not a directory`);
        return;
      }
    } catch (err) {
      const code = err.code;
      this.failStart(
        code === "ENOENT" ? `working directory ${cwd} does not exist` : `working directory ${cwd} is not usable: ${message(err)}`
      );
      return;
    }
    const shell = this.options.shell ?? "/bin/sh";
    let child;
    this.spawnedAt = performance.now();
    try {
      child = spawn(shell, ["-c", this.spec.command], {
        cwd,
        env: buildEnv(this.spec.env, this.options, this.options.parentEnv ?? process.env),
        detached: true,
        stdio: ["ignore", "pipe", "pipe"]
      });
    } catch (err) {
      this.failStart(`cannot run ${shell}: ${message(err)}`);
      return;
    }
    this.child = child;
    this._pid = child.pid;
    this._state = "running";
    if (child.pid !== void 0) this.options.onSpawn?.(this.id, child.pid);
    const logProblem = this.openLog();
    child.on("error", (err) => {
      if (this.exit) return;
      this.failStart(`cannot run ${shell} in ${cwd}: ${message(err)}`);
    });
    child.on("exit", (code, signal) => this.onExit(code, signal));
    child.on("close", (code, signal) => void this.onClose(code, signal));
    for (const [stream, pipe] of [
      ["stdout", child.stdout],
      ["stderr", child.stderr]
    ]) {
      pipe?.on("data", (data) => this.append(stream, data));
      pipe?.on("error", () => {
      });
    }
    if (logProblem) {
      this.cause = {
        state: "failed",
        reason: `cannot start: cannot create log ${this.logPath}: ${logProblem}`
      };
      this.signalGroup("SIGKILL");
      return;
    }
    const ms = this.spec.timeoutSeconds * 1e3;
    if (ms > 0 && Number.isFinite(ms)) {
      this.timeoutTimer = setTimeout(
        () => this.terminate("timed-out", `timed out after ${this.spec.timeoutSeconds}s`),
        Math.min(ms, MAX_TIMER_MS)
      );
    }
  }
  /** Creates the log (its directory too, once per process); the problem if it cannot. */
  openLog() {
    const dir = dirname6(this.logPath);
    const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW: O_NOFOLLOW2 } = fsConstants2;
    for (let attempt = 0; ; attempt++) {
      try {
        if (!logDirs.has(dir)) {
          mkdirSync2(dir, { recursive: true, mode: 448 });
          logDirs.add(dir);
        }
        const fd = openSync2(this.logPath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW2, 384);
        this.log = createWriteStream(this.logPath, { fd, highWaterMark: LOG_HIGH_WATER });
        this.log.on("error", (err) => this.onLogError(err));
        return void 0;
      } catch (err) {
        if (err.code === "ENOENT" && attempt === 0) {
          logDirs.delete(dir);
          continue;
        }
        return message(err);
      }
    }
  }
  stop(reason) {
    this.terminate("stopped", reason ? `stopped: ${reason}` : "stopped");
    return this.result;
  }
  async dispose() {
    if (this.disposed) return;
    await this.stop("disposed");
    this.disposed = true;
    this.onDispose();
    await unlink3(this.logPath).catch((err) => {
      if (err.code !== "ENOENT") throw err;
    });
  }
  async *output(opts = {}) {
    let pos = Math.max(0, Math.floor(opts.from ?? 0));
    const follow = opts.follow ?? false;
    let fh;
    try {
      for (; ; ) {
        if (this.disposed) return;
        const end = this.flushed;
        if (pos < end) {
          if (!fh) {
            try {
              fh = await open2(this.logPath, "r");
            } catch (err) {
              if (this.disposed) return;
              throw err;
            }
          }
          const { stream, segEnd } = this.segmentAt(pos);
          const n = Math.min(READ_CHUNK2, end - pos, segEnd - pos);
          const buf = Buffer.allocUnsafe(n);
          const { bytesRead } = await fh.read(buf, 0, n, pos);
          if (bytesRead === 0) return;
          yield { offset: pos, stream, data: bytesRead < n ? buf.subarray(0, bytesRead) : buf };
          pos += bytesRead;
          continue;
        }
        if (!follow || this._final) return;
        await new Promise((resolve7) => this.waiters.add(resolve7));
      }
    } finally {
      await fh?.close();
    }
  }
  // --- output ---------------------------------------------------------------------------------
  append(stream, data) {
    if (data.length === 0) return;
    const offset = this.received;
    if (this.lastStream === void 0) {
      this.firstStream = stream;
      this.segStarts.push(offset);
    } else if (stream !== this.lastStream) {
      this.segStarts.push(offset);
    }
    this.lastStream = stream;
    this.received += data.length;
    const log = this.log;
    if (log && !this.logError) {
      const ok = log.write(data, (err) => {
        if (!err && !this.logError) this.flushed += data.length;
        this.wake();
      });
      if (!ok && !this.paused) {
        this.paused = true;
        this.child?.stdout?.pause();
        this.child?.stderr?.pause();
        log.once("drain", () => this.resumePipes());
      }
    }
    const listener = this.options.onOutput;
    if (listener) {
      try {
        listener({ offset, stream, data }, this);
      } catch (err) {
        if (!this.listenerFailed) {
          this.listenerFailed = true;
          process.emitWarning(`onOutput listener failed for job ${this.id}: ${message(err)}`);
        }
      }
    }
  }
  resumePipes() {
    if (!this.paused) return;
    this.paused = false;
    this.child?.stdout?.resume();
    this.child?.stderr?.resume();
  }
  onLogError(err) {
    this.logError ??= err;
    this.resumePipes();
    this.wake();
  }
  segmentAt(pos) {
    const starts = this.segStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = lo + hi + 1 >> 1;
      if (starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    const other = this.firstStream === "stdout" ? "stderr" : "stdout";
    return {
      stream: lo % 2 === 0 ? this.firstStream : other,
      segEnd: lo + 1 < starts.length ? starts[lo + 1] : Infinity
    };
  }
  wake() {
    if (this.waiters.size === 0) return;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const resolve7 of waiters) resolve7();
  }
  // --- process lifecycle ----------------------------------------------------------------------
  terminate(state, reason) {
    if (this._final || this.finishing) return;
    if (this._pid === void 0) return;
    if (!this.cause && !this.exit) this.cause = { state, reason };
    this.signalGroup("SIGTERM");
    this.scheduleKill();
  }
  scheduleKill() {
    if (this.killTimer || this.killSentAt !== void 0) return;
    this.killTimer = setTimeout(() => {
      this.killTimer = void 0;
      this.killSentAt = performance.now();
      this.signalGroup("SIGKILL");
    }, this.graceMs);
  }
  signalGroup(signal) {
    if (this._pid === void 0) return;
    try {
      process.kill(-this._pid, signal);
    } catch {
    }
  }
  groupAlive() {
    return this._pid !== void 0 && groupAlive(this._pid);
  }
  onExit(code, signal) {
    this.exit = { code, signal };
    this.exitedAt = performance.now();
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    if (this.groupAlive()) {
      this.signalGroup("SIGTERM");
      this.scheduleKill();
    }
    this.pipeTimer = setTimeout(() => {
      this.child?.stdout?.destroy();
      this.child?.stderr?.destroy();
    }, this.graceMs + PIPE_CLOSE_MARGIN_MS);
  }
  async onClose(code, signal) {
    if (this.finishing || this.startError !== void 0) return;
    const exit = this.exit ?? { code, signal };
    this.exit = exit;
    await this.waitGroupGone();
    if (this.finishing) return;
    let state;
    let reason;
    const how = exit.code !== null ? `exit code ${exit.code}` : `signal ${exit.signal ?? "unknown"}`;
    if (this.cause) {
      state = this.cause.state;
      reason = `${this.cause.reason} (${how}${this.killSentAt !== void 0 ? `, SIGKILL after ${this.graceMs}ms grace` : ""})`;
    } else if (exit.code === 0) {
      state = "succeeded";
      reason = "exited with code 0";
    } else if (exit.code !== null) {
      state = "failed";
      reason = `exited with code ${exit.code}`;
    } else {
      state = "failed";
      reason = `killed by ${exit.signal ?? "unknown signal"}`;
    }
    await this.finish(state, exit.code, exit.signal, reason);
  }
  /** Resolves when nothing is left in the process group (see AFTER_KILL_WAIT_MS). */
  async waitGroupGone() {
    let delay = GROUP_POLL_MIN_MS;
    while (this.groupAlive()) {
      this.scheduleKill();
      if (this.killSentAt !== void 0 && performance.now() - this.killSentAt > AFTER_KILL_WAIT_MS) {
        return;
      }
      await new Promise((resolve7) => setTimeout(resolve7, delay));
      delay = Math.min(delay * 2, GROUP_POLL_MAX_MS);
    }
  }
  failStart(reason) {
    if (this.finishing) return;
    this.startError = reason;
    if (!this.log) this.openLog();
    this.append(
      "stderr",
      Buffer.from(`dist-build: cannot start ${this.spec.invocation}: ${reason}
`)
    );
    void this.finish("failed", null, null, `cannot start: ${reason}`);
  }
  async finish(state, exitCode, signal, reason) {
    if (this.finishing) return;
    this.finishing = true;
    for (const timer of [this.timeoutTimer, this.killTimer, this.pipeTimer]) {
      if (timer) clearTimeout(timer);
    }
    const log = this.log;
    if (log && !log.destroyed) {
      await new Promise((resolve7) => {
        const done = () => {
          log.off("finish", done);
          log.off("close", done);
          resolve7();
        };
        log.once("finish", done);
        log.once("close", done);
        log.end();
      });
    }
    if (this.logError) reason += `; log incomplete: ${this.logError.message}`;
    const durationMs2 = Math.round(performance.now() - this.t0);
    const result = {
      state,
      exitCode,
      signal,
      startedAt: this.startedAt,
      endedAt: Date.now(),
      durationMs: durationMs2,
      ...this.spawnedAt !== void 0 && this.exitedAt !== void 0 ? { commandMs: this.exitedAt - this.spawnedAt } : {},
      outputBytes: this.received,
      reason
    };
    this._final = result;
    this._state = state;
    this.resolveResult(result);
    this.wake();
  }
};
function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  let entries;
  try {
    entries = readdirSync3("/proc");
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    let stat5;
    try {
      stat5 = readFileSync4(`/proc/${entry}/stat`, "latin1");
    } catch {
      continue;
    }
    const fields = stat5.slice(stat5.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") return true;
  }
  return false;
}
function message(err) {
  return err instanceof Error ? err.message : String(err);
}

// src/executors/docker.ts
import { execFile as execFile2 } from "node:child_process";
import { accessSync, constants as fsConstants3, realpathSync } from "node:fs";
import { delimiter, join as join14 } from "node:path";
var DOCKER_ENV = [
  "DOCKER_HOST",
  "DOCKER_CONTEXT",
  "DOCKER_CONFIG",
  "DOCKER_CERT_PATH",
  "DOCKER_TLS_VERIFY",
  "DOCKER_API_VERSION",
  // A daemon reached over ssh (DOCKER_HOST=ssh://...) needs the agent; a rootless one its dir.
  "SSH_AUTH_SOCK",
  "XDG_RUNTIME_DIR"
];
function shellQuote(s) {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
function dockerJobSpec(inv, opts) {
  const d = inv.docker;
  if (!d) throw new TypeError(`invocation ${inv.name} has no docker: build`);
  const docker = shellQuote(opts.docker);
  const archive = imageArchivePath(opts.unit);
  const iid = `${IMAGES_DIR}/${unitFile(opts.unit)}.iid`;
  const partial = `${archive}.partial`;
  const build = ["build", "--progress=plain", "-f", d.file];
  if (d.target) build.push("--target", d.target);
  if (opts.platform) build.push("--platform", opts.platform);
  if (d.network) build.push("--network", d.network);
  for (const [k, v] of Object.entries(d.buildArgs).sort(([a], [b]) => a < b ? -1 : 1))
    build.push("--build-arg", `${k}=${v}`);
  for (const t of d.tags) build.push("-t", t);
  build.push("--build-arg", "BUILDKIT_INLINE_CACHE=1");
  const ids = (opts.cacheFrom ?? []).filter((c) => /^sha256:[0-9a-f]{64}$/.test(c));
  const nameOf = (c) => ids.includes(c) ? `dist-build-cache-from:${c.slice(7)}` : c;
  for (const c of opts.cacheFrom ?? []) build.push("--cache-from", nameOf(c));
  const untag = ids.map((c) => `[ "$built" = ${c} ] || ${docker} rmi ${nameOf(c)};`);
  const naming = ids.length ? [
    `trap ${shellQuote(`{ ${untag.join(" ")} } >/dev/null 2>&1 || true`)} EXIT`,
    ...ids.map((c) => `${docker} tag ${c} ${nameOf(c)}`)
  ] : [];
  build.push("--iidfile", iid, d.context);
  const lines = [
    "set -e",
    `mkdir -p ${shellQuote(IMAGES_DIR)}`,
    `rm -f ${shellQuote(iid)} ${shellQuote(partial)}`,
    ...opts.load.map((a) => `${docker} load -i ${shellQuote(a)}`),
    ...naming,
    `${docker} ${build.map(shellQuote).join(" ")}`,
    ...naming.length ? [`built="$(cat ${shellQuote(iid)})"`] : [],
    // By its tags, so that loading the archive tags the image again; by id when it has none.
    d.tags.length ? `${docker} save -o ${shellQuote(partial)} ${d.tags.map(shellQuote).join(" ")}` : `${docker} save -o ${shellQuote(partial)} "$(cat ${shellQuote(iid)})"`,
    `mv -f ${shellQuote(partial)} ${shellQuote(archive)}`,
    `rm -f ${shellQuote(iid)}`
  ];
  const env2 = {};
  const parent = opts.parentEnv ?? process.env;
  for (const k of DOCKER_ENV) if (parent[k] !== void 0) env2[k] = parent[k];
  return {
    id: opts.id,
    invocation: inv.name,
    command: lines.join("\n"),
    cwd: opts.cwd,
    env: { ...env2, ...inv.env, DOCKER_BUILDKIT: "1" },
    timeoutSeconds: inv.timeout
  };
}
function run(file, args, env2, timeoutMs, signal) {
  return new Promise((resolve7) => {
    const opts = { env: env2, timeout: timeoutMs, maxBuffer: 1 << 20, ...signal ? { signal } : {} };
    execFile2(file, args, opts, (err, stdout, stderr) => {
      const e = err;
      resolve7({
        ok: !e,
        stdout: String(stdout),
        stderr: String(stderr),
        ...e ? {
          error: signal?.aborted ? "stopped" : e.killed ? `no answer in ${timeoutMs / 1e3}s` : e.code === "ENOENT" || e.code === "EACCES" ? `cannot run it (${e.code})` : (String(stderr).trim().split("\n")[0] ?? "") || e.message
        } : {}
      });
    });
  });
}
function onPath(env2) {
  const seen = /* @__PURE__ */ new Set();
  const out = [];
  for (const dir of (env2.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const file = join14(dir, "docker");
    try {
      accessSync(file, fsConstants3.X_OK);
      const real = realpathSync(file);
      if (seen.has(real)) continue;
      seen.add(real);
      out.push(file);
    } catch {
    }
  }
  return out;
}
async function findDocker(opts = {}) {
  const env2 = opts.env ?? process.env;
  const timeout = opts.timeoutMs ?? 15e3;
  const candidates = opts.docker ? [opts.docker] : onPath(env2);
  const problems = [];
  if (candidates.length === 0) problems.push("no docker command on PATH");
  for (const path of candidates) {
    const v = await run(path, ["version", "--format", "{{json .}}"], env2, timeout);
    let info = {};
    try {
      info = JSON.parse(v.stdout.trim().split("\n")[0] || "{}");
    } catch {
    }
    const client = info.Client?.Version;
    if (!client) {
      problems.push(`${path}: ${v.error ?? "not a Docker CLI (no client version)"}`);
      continue;
    }
    const server = info.Server;
    if (!server?.Version) {
      problems.push(`${path}: cannot reach a Docker daemon (${v.error ?? "no server version"})`);
      continue;
    }
    if (Number(client.split(".")[0]) >= 23) {
      const bx = await run(path, ["buildx", "version"], env2, timeout);
      if (!bx.ok) {
        problems.push(
          `${path}: client ${client} builds with BuildKit only through the buildx plugin, which it does not have`
        );
        continue;
      }
    }
    return {
      docker: {
        path,
        client,
        server: server.Version,
        platform: `${server.Os ?? "linux"}/${server.Arch ?? ""}`
      },
      problems
    };
  }
  return { problems };
}
async function pushImage(docker, archive, tags, opts) {
  const env2 = { ...opts.env ?? process.env, DOCKER_BUILDKIT: "1" };
  await loadImage(docker, archive, env2, opts.timeoutMs, opts.signal);
  const pushed = [];
  for (const ref of tags) {
    const out = await step(docker, ["push", ref], env2, opts.timeoutMs, opts.signal).catch(
      (err) => {
        if (pushed.length)
          err.message += ` (pushed before it: ${pushed.map((p) => `${p.ref} ${p.digest}`).join(", ")})`;
        throw err;
      }
    );
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1] ?? "";
    pushed.push({ ref, digest });
  }
  return pushed;
}
function imagesToLoad(deps, platform2) {
  const platformOf = (unit) => unit.slice(unit.indexOf("@") + 1).toLowerCase();
  const byInvocation = /* @__PURE__ */ new Map();
  for (const d of deps) {
    const name = d.unit.includes("@") ? d.unit.slice(0, d.unit.indexOf("@")) : d.unit;
    byInvocation.set(name, [...byInvocation.get(name) ?? [], d]);
  }
  const out = [];
  for (const units of byInvocation.values()) {
    const own = units.filter((d) => d.unit.includes("@") && platformOf(d.unit) === platform2);
    for (const d of own.length ? own : units) out.push(...d.paths.filter(isImageArchive));
  }
  return out;
}
async function hasImage(docker, ref, env2) {
  return (await run(docker.path, ["image", "inspect", "--format", "{{.Id}}", ref], env2, 3e4)).ok;
}
async function loadImage(docker, archive, env2, timeoutMs, signal) {
  const out = await step(docker, ["load", "-i", archive], env2, timeoutMs, signal);
  return [...out.matchAll(/^Loaded image(?: ID)?: (\S+)$/gm)].map((m) => m[1]);
}
async function step(docker, args, env2, timeoutMs, signal) {
  const r = await run(docker.path, args, env2, timeoutMs, signal);
  if (!r.ok) {
    const lines = `${r.stdout}
${r.stderr}`.split("\n").filter((l) => l.trim());
    throw new Error(`docker ${args[0]} ${args.at(-1)}: ${lines.slice(-3).join(" / ") || r.error}`);
  }
  return r.stdout;
}

// src/cluster/worker.ts
init_types();
init_types();

// src/cluster/definition.ts
import crypto3 from "node:crypto";
var str = (v) => v === void 0 ? null : String(v);
var pairs = (r) => Object.entries(r).map(([k, v]) => [k, v]);
function definitionDigest(inv) {
  const doc = {
    format: "dist-build/definition/v1",
    name: inv.name,
    run: inv.run ?? null,
    docker: inv.docker ? {
      context: inv.docker.context,
      file: inv.docker.file,
      target: inv.docker.target ?? null,
      platforms: inv.docker.platforms,
      tags: inv.docker.tags,
      buildArgs: pairs(inv.docker.buildArgs),
      // Only when set, so that the digests of definitions without it stay as they were.
      ...inv.docker.network ? { network: inv.docker.network } : {},
      ...inv.docker.push ? { push: "true" } : {}
    } : null,
    inputs: inv.inputs,
    outputs: inv.outputs,
    needs: inv.needs,
    env: pairs(inv.env),
    platform: inv.platform ?? null,
    timeout: str(inv.timeout)
  };
  return "sha256:" + crypto3.createHash("sha256").update(canonicalJson(doc)).digest("hex");
}
function configDigest(config) {
  const h2 = crypto3.createHash("sha256");
  for (const inv of config.invocations) h2.update(`${inv.name}\0${definitionDigest(inv)}
`);
  return "sha256:" + h2.digest("hex");
}

// src/cluster/worker.ts
init_fsutil();

// src/cluster/stats.ts
import { statfsSync } from "node:fs";
import os from "node:os";
function collectStats(dirs, running, slots) {
  const disk = [];
  for (const d of dirs) {
    try {
      const s = statfsSync(d.path);
      disk.push({
        name: d.name,
        path: d.path,
        free: s.bavail * s.bsize,
        total: s.blocks * s.bsize
      });
    } catch {
    }
  }
  return {
    cpu: { loadavg: os.loadavg(), cpus: os.availableParallelism?.() ?? os.cpus().length },
    mem: { total: os.totalmem(), free: os.freemem() },
    disk,
    running,
    slots
  };
}

// src/cluster/workspace.ts
init_fsutil();
import crypto4 from "node:crypto";
import { existsSync as existsSync2, lstatSync as lstatSync3, readdirSync as readdirSync4 } from "node:fs";
import { mkdir as mkdir7, readFile as readFile7, rm as rm6, writeFile as writeFile4, rename as rename6 } from "node:fs/promises";
import { join as join15 } from "node:path";

// src/cluster/local.ts
init_fsutil();

// src/cluster/workspace.ts
var hashPath = (p) => crypto4.createHash("sha256").update(p).digest("hex").slice(0, 32);
var OutputOutsideTreeError = class extends Error {
  name = "OutputOutsideTreeError";
};
var Workspace = class {
  constructor(root) {
    this.root = root;
    this.stateDir = join15(root, ".dist-build", "outputs");
    this.lockDir = join15(root, ".dist-build", "locks");
  }
  root;
  stateDir;
  lockDir;
  /**
   * Digest of the packed output that `path` holds now, if known and the path is as it was marked:
   * a file changed, added or removed there since (edited by hand, written by another command)
   * makes it unknown, so the output is restored again rather than used as that blob.
   */
  async held(path) {
    if (!existsSync2(join15(this.root, path))) return null;
    let marked;
    try {
      marked = await readFile7(join15(this.stateDir, hashPath(path)), "utf8");
    } catch {
      return null;
    }
    const [digest, print] = marked.trim().split(" ");
    if (!digest || !print) return null;
    return fingerprint(join15(this.root, path)) === print ? digest : null;
  }
  async mark(path, digest) {
    await mkdir7(this.stateDir, { recursive: true });
    const file = join15(this.stateDir, hashPath(path));
    const tmp = `${file}.${process.pid}.${crypto4.randomBytes(4).toString("hex")}`;
    const print = fingerprint(join15(this.root, path));
    await writeFile4(tmp, print ? `${digest} ${print}
` : "\n");
    await rename6(tmp, file);
  }
  async unmark(path) {
    await rm6(join15(this.stateDir, hashPath(path)), { force: true });
  }
  /**
   * Removes a declared output (before the invocation that produces it runs). Refused when its
   * parent directory resolves outside the tree (a symlink on the way): that would remove files
   * elsewhere, as restoring an output (`place` in pack.ts) refuses to write there.
   */
  async clear(path) {
    const real = await parentOutside(this.root, join15(this.root, path));
    if (real !== void 0) {
      throw new OutputOutsideTreeError(
        `declared output ${path}: its parent directory resolves outside the work tree (to ${real}, through a symlink); not removed`
      );
    }
    await this.unmark(path);
    await removeTree(join15(this.root, path));
  }
  /** Runs `fn` holding the lock of output `path` (exclusive across processes on this tree). */
  async withLock(path, fn) {
    await mkdir7(this.lockDir, { recursive: true });
    const lock = join15(this.lockDir, hashPath(path));
    let delay = 5;
    for (; ; ) {
      try {
        await mkdir7(lock);
        await writeFile4(join15(lock, "pid"), String(process.pid));
        break;
      } catch (err) {
        if (err.code !== "EEXIST") throw err;
        if (await stale(lock)) {
          await rm6(lock, { recursive: true, force: true });
          continue;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 200);
      }
    }
    try {
      return await fn();
    } finally {
      await rm6(lock, { recursive: true, force: true });
    }
  }
};
function fingerprint(abs) {
  const hash = crypto4.createHash("sha256");
  const walk = (p, rel2) => {
    const st = lstatSync3(p, { bigint: true });
    hash.update(`${rel2}\0${st.mode}\0${st.size}\0${st.ino}\0${st.mtimeNs}\0${st.ctimeNs}\0`);
    if (!st.isDirectory()) return;
    for (const name of readdirSync4(p).sort()) walk(join15(p, name), `${rel2}/${name}`);
  };
  try {
    walk(abs, ".");
  } catch {
    return null;
  }
  return hash.digest("hex").slice(0, 32);
}
async function stale(lock) {
  let pid;
  try {
    pid = Number(await readFile7(join15(lock, "pid"), "utf8"));
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return true;
  return !processAlive(pid);
}

// src/cluster/worker.ts
var RPC_TIMEOUT_MS = 1e4;
var REPORT_ACK_MS = 5e3;
var KEEP_FINISHED = 512;
var JOB_LOG_PREFIX = "dist-build-jobs-";
var MAX_SOCKET_PATH = 100;
var PULL_GRACE_MS = 1e3;
var STATS_DELAY_MS = 2e3;
var TMP_SOCKET_PREFIX = "dist-build-worker-";
var PGID_WIDTH = 40;
var agentInstances = 0;
var WorkerAgent = class {
  constructor(opts) {
    this.opts = opts;
    this.log = opts.log ?? ((m) => process.stderr.write(`${m}
`));
    this.security = opts.security;
    this.slots = Math.max(1, opts.slots ?? 1);
    this.config = opts.config;
    this.configStamp = fileStamp(opts.config.file);
    this.useConfig(opts.config);
    this.workspace = new Workspace(opts.config.root);
    if (!opts.logDir) {
      this.ownLogDir = join16(
        os2.tmpdir(),
        `${JOB_LOG_PREFIX}${process.pid}-${randomBytes5(4).toString("hex")}`
      );
    }
    this.executor = new CommandExecutor({
      logDir: opts.logDir ?? this.ownLogDir,
      // As this worker started: not what a gha store call has in process.env for a while.
      parentEnv: this.executorEnv,
      ...opts.killGraceMs !== void 0 ? { killGraceMs: opts.killGraceMs } : {},
      // Recorded the moment the command exists (see recordJob).
      onSpawn: (jobId, pid) => {
        const f = this.recordJob(pid);
        if (f) this.spawnedPgids.set(jobId, f);
      }
    });
    this.registered = new Promise((resolve7) => this.registeredOnce = resolve7);
  }
  opts;
  executor;
  /** The environment as this worker started (commands and the Docker CLI get theirs from it). */
  executorEnv = { ...process.env };
  /** The Docker CLI docker builds use (`probeDocker`); undefined when there is none. */
  docker;
  /** Why there is no Docker, when the config has docker invocations. */
  dockerProblem;
  log;
  security;
  /** This worker's config: `opts.config`, or the file read again since (see `reloadConfig`). */
  config;
  /** The config file's inode, size and mtime when it was read (see `reloadConfig`). */
  configStamp;
  invocations;
  workspace;
  jobs = /* @__PURE__ */ new Map();
  finishedOrder = [];
  unreported = [];
  peers = /* @__PURE__ */ new Map();
  server;
  master;
  uuid = "";
  workerId = "";
  heartbeatTimer;
  heartbeats;
  /** Result manifests being written (`stop` waits for them). */
  resultWrites = /* @__PURE__ */ new Set();
  /** Results being copied into the local store (`pullResult`). */
  pulls = /* @__PURE__ */ new Set();
  /** A pending write of the store's counters (see `statsSoon`). */
  statsTimer;
  /** Reports sent on the heartbeat stream, by job id, waiting for the master's ack. */
  reportAcks = /* @__PURE__ */ new Map();
  shutdownAsked = false;
  /** Tells this agent's files from those of other agents in the same process. */
  instance = agentInstances++;
  /** Process-group files (see `recordJob`), and those not in use. */
  pgidFiles = [];
  freePgidFiles = [];
  heartbeatMs = 1e3;
  stopping = false;
  listening;
  /** The unix socket `defaultListen` chose, removed by `stop`. */
  ownSocket;
  registering;
  registeredOnce;
  registered;
  slots;
  /** Process-group files recorded at spawn, by job id, until the job takes its own. */
  spawnedPgids = /* @__PURE__ */ new Map();
  /** The job log directory this worker made (none with `logDir`). */
  ownLogDir;
  /** Units of this worker's config, by id. */
  units;
  /**
   * Cache keys the last cache query could not settle in time (a slow store, an Actions cache
   * shard still being restored): a job for one looks in the stores again first (`lateHit`).
   */
  unsettled = /* @__PURE__ */ new Set();
  /**
   * A late hit's lookup that outlasted its wait and has not ended: the stores are stuck (an
   * Actions cache service that does not answer), and later late hits do not wait for them again.
   */
  stuckLookup;
  /** Refusals logged lately, by unit and reason (see `startJob`'s `refuse`). */
  refusals = /* @__PURE__ */ new Map();
  /** The last key check (see `checkKey`): they run one after the other. */
  keyChecks = Promise.resolve();
  get id() {
    return this.workerId;
  }
  /** Addresses the Worker service listens on (after `start`). */
  get addresses() {
    return this.server?.addresses ?? [];
  }
  /** `listen()`, then `join()`. */
  async start() {
    void this.opts.store.warm?.();
    await this.listen();
    this.join();
  }
  /**
   * Gets ready to join: ends what an earlier agent on this cache dir left running, and starts the
   * Worker service (its addresses go into the membership record).
   */
  listen() {
    this.listening ??= (async () => {
      this.reapOrphans();
      const docker = this.probeDocker();
      await reapTmpSockets();
      reapJobLogs();
      let listen = this.opts.listen;
      if (!listen) {
        const own = this.defaultListen();
        if (own.kind === "unix") {
          mkdirSync3(dirname7(own.path), { recursive: true });
          this.ownSocket = own.path;
        }
        listen = [own];
      }
      this.server = await startServer(
        listen,
        [{ definition: protocol().WorkerService, handlers: this.handlers() }],
        this.security,
        (m) => this.log(`worker: ${m}`)
      );
      await docker;
    })();
    return this.listening;
  }
  /**
   * Finds the Docker CLI this worker builds docker invocations with, when its config has any (its
   * `executor` annotation says `docker` then). Without one, those invocations go to other workers.
   */
  async probeDocker() {
    if (!this.opts.docker && !this.config.invocations.some((i) => i.docker)) return;
    const probe = await findDocker({
      ...this.opts.docker ? { docker: this.opts.docker } : {},
      env: this.executorEnv
    });
    this.docker = probe.docker;
    if (probe.docker) {
      const d = probe.docker;
      this.log(
        `worker: docker builds with ${d.path} (client ${d.client}, daemon ${d.server} ${d.platform})`
      );
    } else {
      this.dockerProblem = probe.problems.join("; ");
      this.log(
        `worker: warning: no usable Docker (${this.dockerProblem}): docker invocations go to other workers`
      );
    }
  }
  /**
   * Where the Worker service listens without `listen`: like the master is reached. A free TCP
   * port on loopback, or, when the master is joined over a unix socket (which needs no TLS), a
   * socket of this worker's own: `<cache dir>/running/<pid>.<n>.sock` (removed by `stop`; one a
   * killed worker left is removed by the next worker on the cache dir, with its other records),
   * or in the temp dir when that path is too long for a socket (one a killed worker left there
   * is removed by the next worker to start, whatever its cache dir).
   */
  defaultListen() {
    if (this.opts.join.kind !== "unix") return { kind: "tcp", host: "127.0.0.1", port: 0 };
    const name = `${process.pid}.${this.instance}.sock`;
    const path = join16(this.opts.cacheDir, "running", name);
    return {
      kind: "unix",
      path: path.length <= MAX_SOCKET_PATH ? path : join16(os2.tmpdir(), `${TMP_SOCKET_PREFIX}${name}`)
    };
  }
  /**
   * Registers with the master (after `listen()`), retrying until it answers; `registered` resolves
   * on the first success. Heartbeats follow, and a new registration whenever the master forgot us.
   */
  join() {
    if (!this.server) throw new Error("WorkerAgent.join() before listen()");
    if (this.master) return;
    this.master = new (protocol()).MasterClient(
      grpcTarget(this.opts.join),
      channelCredentials(this.opts.join, this.security, "master"),
      channelOptions(this.opts.join)
    );
    void this.register();
  }
  /**
   * Ends every running command's process group with SIGKILL now, without `--kill-grace`: for a
   * worker about to exit at once (a second Ctrl-C), whose commands would otherwise go on writing
   * into the tree with no worker left to stop them.
   */
  killJobsNow() {
    for (const job of this.executor.list()) {
      const pgid = job.pid;
      if (pgid === void 0 || pgid <= 1) continue;
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
      }
    }
  }
  /** Leaves the cluster: stops running jobs (they are reported as the worker's fault), deregisters. */
  async stop(reason = "worker stopping") {
    if (this.stopping) return;
    this.stopping = true;
    for (const job of this.jobs.values()) {
      if (job.phase !== "done") job.stopped = reason;
    }
    if (this.statsTimer) clearTimeout(this.statsTimer);
    await this.executor.stopAll(reason);
    await Promise.allSettled([...this.resultWrites]);
    await Promise.race([
      Promise.allSettled([...this.pulls]),
      new Promise((r) => setTimeout(r, PULL_GRACE_MS).unref())
    ]);
    await this.opts.store.flush?.().catch((err) => {
      this.log(`warning: flushing the cache store failed: ${err.message}`);
    });
    if (this.master && this.uuid) {
      await call2(
        this.master,
        this.master.Deregister,
        { worker_uuid: this.uuid, reason },
        callMetadata(this.security),
        2e3
      ).catch(() => void 0);
    }
    this.closeHeartbeats();
    this.master?.close();
    for (const c of this.peers.values()) c.close();
    this.closePgidFiles();
    await this.server?.close();
    if (this.ownSocket) rmSync2(this.ownSocket, { force: true });
    if (this.ownLogDir) rmSync2(this.ownLogDir, { recursive: true, force: true });
  }
  // --- membership -------------------------------------------------------------------------------
  member() {
    const store = this.opts.store.kind;
    const host = os2.hostname().split(".")[0] || "host";
    const annotations = {
      os: process.platform === "win32" ? "windows" : process.platform,
      arch: process.arch === "x64" ? "amd64" : process.arch,
      executor: this.docker ? "command,docker" : "command",
      // The daemon's version, or why docker builds cannot run here (shown when one is not placed).
      ...this.docker ? { docker: this.docker.server } : this.dockerProblem ? { docker: `none: ${this.dockerProblem}` } : {},
      store,
      host: os2.hostname(),
      // Which release it runs: a pool mixing releases is named by the master.
      version: VERSION2,
      ...this.opts.labels?.length ? { labels: this.opts.labels.join(",") } : {},
      ...this.opts.annotations
    };
    return {
      worker_id: this.opts.id ?? `${host}-command-${store}`,
      connections: this.addresses.map((a) => ({
        type: PROTOCOL,
        socket: formatAddress(
          a.kind === "tcp" && (a.host === "0.0.0.0" || a.host === "::") ? { ...a, host: this.opts.advertise ?? os2.hostname() } : a
        )
      })),
      stats: this.stats(),
      annotations
    };
  }
  stats() {
    return collectStats(
      [
        { name: "work", path: this.config.root },
        { name: "cache", path: this.opts.cacheDir }
      ],
      this.runningCount(),
      this.slots
    );
  }
  runningCount() {
    let n = 0;
    for (const j of this.jobs.values()) if (j.phase !== "done") n++;
    return n;
  }
  running() {
    return [...this.jobs.values()].filter((j) => j.phase !== "done").map((j) => ({ job_id: j.id, unit: j.unit, cache_key: j.cacheKey, started_at: j.startedAt }));
  }
  register() {
    this.registering ??= (async () => {
      let delay = 50;
      let failures = 0;
      while (!this.stopping) {
        try {
          const unreported = this.unreported.splice(0);
          const member = this.member();
          const res = await call2(
            this.master,
            this.master.Register,
            {
              member,
              config_digest: configDigest(this.config),
              running: this.running(),
              unreported
            },
            callMetadata(this.security),
            RPC_TIMEOUT_MS
          ).catch((err) => {
            this.unreported.unshift(...unreported);
            throw err;
          });
          const answeredAt = Date.now();
          const first = !this.uuid;
          this.uuid = res.worker_uuid;
          this.workerId = res.worker_id;
          this.heartbeatMs = Math.max(50, res.heartbeat_ms || 1e3);
          this.log(
            `worker ${this.workerId}: ${first ? "registered" : "re-registered"} with ${formatAddress(this.opts.join)} (master ${res.master_id.slice(0, 8)}, lease ${res.lease_ttl_ms} ms)`
          );
          if (res.worker_id !== member.worker_id) {
            this.log(
              `worker ${this.workerId}: warning: another worker of this master has the id ${member.worker_id}: give each worker its own --id`
            );
          }
          this.registeredOnce?.();
          this.openHeartbeats(res.lease_ttl_ms, answeredAt);
          return;
        } catch (err) {
          const e = err;
          if (e.code === grpc4.status.UNAUTHENTICATED || e.code === grpc4.status.PERMISSION_DENIED) {
            this.log(`worker: the master refused this worker: ${e.details ?? e.message}`);
            if (this.opts.onRefused) {
              this.opts.onRefused(e.details ?? e.message);
              return;
            }
          } else if (++failures === 1 || failures % 20 === 0) {
            this.log(
              `worker: cannot reach the master at ${formatAddress(this.opts.join)} (${connectProblem(e.details || e.message, this.security.tls !== void 0)}); retrying`
            );
          }
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 2e3);
        }
      }
    })().finally(() => this.registering = void 0);
    return this.registering;
  }
  /**
   * The heartbeat stream of the current registration: a beat every `heartbeatMs`, an answer for
   * each. A broken stream, an unanswered beat for longer than the lease, or REREGISTER: register
   * again (the jobs keep running meanwhile).
   */
  openHeartbeats(leaseTtlMs, registeredAt = Date.now()) {
    this.closeHeartbeats();
    const stream = this.master.Heartbeat(callMetadata(this.security));
    this.heartbeats = stream;
    let answeredAt = registeredAt;
    let beatAt = registeredAt;
    let stall;
    const limit = Math.max(leaseTtlMs, this.heartbeatMs * 3);
    let over = false;
    const again = (why) => {
      if (over || this.heartbeats !== stream) return;
      over = true;
      this.closeHeartbeats();
      if (this.stopping) return;
      const now = Date.now();
      const stalledMs = now - beatAt > limit ? now - beatAt : stall && now - stall.at < limit ? stall.ms : 0;
      const reason = stalledMs > 0 ? `this worker did not run for ${Math.round(stalledMs / 1e3)} s (stopped or starved), longer than its lease (${why})` : why;
      this.log(`worker ${this.workerId}: ${reason}; registering again`);
      setImmediate(() => void this.register());
    };
    stream.on("data", (res) => {
      answeredAt = Date.now();
      if (res.start_jobs.length) {
        const acks = res.start_jobs.map((req) => ({ job_id: req.job_id, ...this.startJob(req) }));
        stream.write(this.streamMessage({ acks }));
      }
      for (const id of res.report_acks) this.reportAcks.get(id)?.(true);
      if (res.command === "REREGISTER") again("the master does not know this worker");
      else if (res.command === "SHUTDOWN" && !this.shutdownAsked) {
        this.shutdownAsked = true;
        this.log(`worker ${this.workerId}: the master says the run is over; shutting down`);
        this.opts.onShutdown?.();
      }
    });
    stream.on("error", () => again("lost the master"));
    stream.on("end", () => again("the master closed the heartbeat stream"));
    const beat = () => {
      if (this.stopping || over) return;
      const now = Date.now();
      if (now - beatAt > limit) stall = { ms: now - beatAt, at: now };
      if (now - answeredAt > limit) {
        again("the master stopped answering heartbeats");
        return;
      }
      beatAt = now;
      this.reapOrphans();
      stream.write(this.streamMessage({ stats: this.stats(), running: this.running() }));
    };
    beat();
    this.heartbeatTimer = setInterval(beat, this.heartbeatMs);
  }
  /** A message on the heartbeat stream: a beat (with `stats`), acks or reports. */
  streamMessage(parts) {
    return { worker_uuid: this.uuid, stats: null, running: [], acks: [], reports: [], ...parts };
  }
  closeHeartbeats() {
    for (const settle of [...this.reportAcks.values()]) settle(false);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = void 0;
    const s = this.heartbeats;
    this.heartbeats = void 0;
    if (s) {
      s.removeAllListeners("data");
      s.on("error", () => void 0);
      s.cancel();
    }
  }
  // --- orphans ----------------------------------------------------------------------------------
  /**
   * Each running command's process group is recorded in a file under `<cache dir>/running/`,
   * named `<worker pid>.<agent>.<n>`. A worker killed with SIGKILL cannot stop its commands; the
   * other workers sharing this cache dir (and this one when it starts again) end the groups whose
   * worker is gone, so a command never keeps writing into a tree where its invocation is being
   * run again. The group leader's start time is recorded with the pgid: a group whose leader's
   * pid has since been taken by another process is over and never signalled (a pgid is not
   * reused while its group has a member).
   * The files are kept open and reused, one per job running at once, and written in place (a
   * file created and removed per job cost 0.2-0.5 ms on this kind of disk, on every job's path).
   */
  recordJob(pgid) {
    if (pgid === void 0) return void 0;
    try {
      let f = this.freePgidFiles.pop();
      if (!f) {
        const dir = join16(this.opts.cacheDir, "running");
        if (this.pgidFiles.length === 0) mkdirSync3(dir, { recursive: true });
        const path = join16(dir, `${process.pid}.${this.instance}.${this.pgidFiles.length}`);
        f = { path, fd: openSync3(path, "w", 384) };
        this.pgidFiles.push(f);
      }
      const started = processStartTime(pgid) ?? "";
      writeSync2(f.fd, `${pgid} ${started}`.padEnd(PGID_WIDTH), 0);
      return f;
    } catch {
      return void 0;
    }
  }
  /** The job of `f` is over: its file is blanked and free for the next one. */
  forgetJob(f) {
    try {
      writeSync2(f.fd, " ".repeat(PGID_WIDTH), 0);
      this.freePgidFiles.push(f);
    } catch {
    }
  }
  closePgidFiles() {
    for (const f of this.pgidFiles.splice(0)) {
      try {
        closeSync2(f.fd);
      } catch {
      }
      rmSync2(f.path, { force: true });
    }
    this.freePgidFiles.length = 0;
  }
  reapOrphans() {
    const dir = join16(this.opts.cacheDir, "running");
    for (const { name, owner } of leftByDead(dir, pgidFileOwner)) {
      const pgid = endGroupOf(join16(dir, name));
      if (pgid !== void 0) {
        this.log(
          `worker ${this.workerId}: ended process group ${pgid} left by dead worker ${owner}`
        );
      }
    }
  }
  // --- jobs -------------------------------------------------------------------------------------
  handlers() {
    const guard = (callLike, method, masterOnly = true) => {
      const err = authorize(
        callLike,
        this.security,
        masterOnly ? ["master"] : ["master", "worker"],
        method
      );
      if (err) this.log(`worker: ${refusedCall(callLike, err.reason)}`);
      return err;
    };
    return {
      StartJob: (c, cb) => {
        const err = guard(c, "StartJob");
        if (err) return cb(err);
        cb(null, this.startJob(c.request));
      },
      StopJob: (c, cb) => {
        const err = guard(c, "StopJob");
        if (err) return cb(err);
        const job = this.jobs.get(c.request.job_id);
        if (!job) return cb(null, { found: false });
        job.stopped = c.request.reason || "stopped by the master";
        void job.command?.stop(job.stopped);
        cb(null, { found: true });
      },
      JobStatus: (c, cb) => {
        const err = guard(c, "JobStatus");
        if (err) return cb(err);
        const job = this.jobs.get(c.request.job_id);
        if (!job) return cb(null, { found: false, state: "", output_bytes: 0, report: null });
        cb(null, {
          found: true,
          state: job.report ? job.report.state : job.phase,
          report: job.report ?? null,
          output_bytes: job.command?.outputBytes ?? 0
        });
      },
      StreamOutput: (c) => {
        const err = guard(c, "StreamOutput");
        if (err) return failStream(c, err.code, err.details);
        void this.streamOutput(c);
      },
      HasCache: (c, cb) => {
        const err = guard(c, "HasCache");
        if (err) return cb(err);
        this.hasCache(c.request.cache_keys).then(
          (res) => cb(null, res),
          (e) => cb({ code: grpc4.status.INTERNAL, details: e.message })
        );
      },
      FetchBlob: (c) => {
        const err = guard(c, "FetchBlob", false);
        if (err) return failStream(c, err.code, err.details);
        void this.sendBlob(c, c.request.digest);
      },
      Export: (c) => {
        const err = guard(c, "Export");
        if (err) return failStream(c, err.code, err.details);
        void this.exportOutput(c);
      },
      PushImage: (c, cb) => {
        const err = guard(c, "PushImage");
        if (err) return cb(err);
        const cancelled = new AbortController();
        c.on("cancelled", () => cancelled.abort());
        this.pushImage(c.request, cancelled.signal).then(
          (res) => cb(null, res),
          (e) => cb({
            code: typeof e.code === "number" ? e.code : grpc4.status.INTERNAL,
            details: e.message
          })
        );
      }
    };
  }
  /**
   * Pushes a docker unit's image to its tags (see `PushImageRequest`): from the work tree's copy
   * of the archive when it holds that blob, else from one restored into a temp dir.
   */
  async pushImage(req, signal) {
    const refuse = (code, message2) => Object.assign(new Error(message2), { code });
    const unit = this.units.get(req.unit);
    const inv = unit ? this.invocations.get(unit.invocation)?.inv : void 0;
    if (req.worker_uuid !== this.uuid)
      throw refuse(grpc4.status.FAILED_PRECONDITION, `addressed to worker ${req.worker_uuid}`);
    if (!inv?.docker?.push)
      throw refuse(
        grpc4.status.FAILED_PRECONDITION,
        `${req.unit} pushes no image in this worker's config (${this.config.file})`
      );
    if (!this.docker)
      throw refuse(
        grpc4.status.FAILED_PRECONDITION,
        `this worker has no usable Docker (${this.dockerProblem ?? "not looked for"})`
      );
    if (req.path !== imageArchivePath(req.unit))
      throw refuse(grpc4.status.INVALID_ARGUMENT, `${req.path} is not the image of ${req.unit}`);
    let blob = req.digest;
    if (!blob) {
      const m = await this.opts.store.getResult(req.cache_key).catch(() => null);
      blob = m?.outputs.find((o) => o.path === req.path)?.digest ?? "";
    }
    if (!blob) throw refuse(grpc4.status.NOT_FOUND, `this worker holds no image of ${req.unit}`);
    const root = this.config.root;
    const push = (archive) => pushImage(this.docker, archive, inv.docker.tags, {
      env: this.executorEnv,
      timeoutMs: inv.timeout * 1e3,
      signal
    });
    const pushed = await this.workspace.withLock(req.path, async () => {
      if (await this.workspace.held(req.path) === blob) return push(join16(root, req.path));
      const entry = { path: req.path, type: "file", digest: blob, size: 0, files: 1 };
      return this.withRestored(entry, "push-", push);
    });
    for (const p of pushed) this.log(`worker ${this.workerId}: pushed ${p.ref} (${p.digest})`);
    return { pushed };
  }
  startJob(req) {
    const refuse = (reason) => {
      const kind = `${req.unit}\0${reason.replace(/^busy: .*/, "busy")}`;
      const last = this.refusals.get(kind);
      const now = Date.now();
      if (last && now - last.at < REFUSAL_LOG_MS) last.more++;
      else {
        const more = last?.more ? ` (refused ${last.more} more time(s) since)` : "";
        this.log(
          `worker ${this.workerId}: refused job ${req.job_id} (${req.unit}): ${reason}${more}`
        );
        this.refusals.set(kind, { at: now, more: 0 });
        if (this.refusals.size > 1e3) this.refusals.delete(this.refusals.keys().next().value);
      }
      return { accepted: false, reason };
    };
    if (this.stopping) return refuse("the worker is stopping");
    if (req.worker_uuid !== this.uuid)
      return refuse(
        `addressed to worker ${req.worker_uuid}, this is ${this.uuid || "unregistered"}`
      );
    let known = this.invocations.get(req.invocation);
    if (known?.digest !== req.definition_digest && this.reloadConfig())
      known = this.invocations.get(req.invocation);
    if (!known)
      return refuse(
        `invocation "${req.invocation}" is not in this worker's config (${this.config.file})`
      );
    if (known.digest !== req.definition_digest)
      return refuse(
        `invocation "${req.invocation}" differs from this worker's config (definition ${known.digest.slice(0, 19)} in ${this.config.file}, master sent ${req.definition_digest.slice(0, 19)}): the master's config is another version`
      );
    if (known.inv.docker && !this.docker)
      return refuse(
        `invocation "${req.invocation}" is a docker build and this worker has no usable Docker (${this.dockerProblem ?? "not looked for"})`
      );
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(req.job_id)) return refuse("invalid job id");
    const existing = this.jobs.get(req.job_id);
    if (existing) {
      if (existing.unit === req.unit && existing.cacheKey === req.cache_key)
        return { accepted: true, reason: "already running" };
      return refuse(`job id ${req.job_id} is in use`);
    }
    if (this.runningCount() >= this.slots)
      return refuse(`busy: ${this.runningCount()} of ${this.slots} slots in use`);
    const job = {
      id: req.job_id,
      unit: req.unit,
      invocation: known.inv,
      cacheKey: req.cache_key,
      deps: req.deps,
      excludeInputs: req.exclude_inputs ?? [],
      excludedOutputs: req.excluded_outputs ?? [],
      ...req.previous_cache_key ? { previousKey: req.previous_cache_key } : {},
      phase: "preparing",
      startedAt: Date.now()
    };
    this.jobs.set(job.id, job);
    void this.runJob(job);
    return { accepted: true, reason: "" };
  }
  async runJob(job) {
    const base = {
      job_id: job.id,
      unit: job.unit,
      invocation: job.invocation.name,
      cache_key: job.cacheKey,
      started_at: job.startedAt,
      outputs: [],
      output_bytes: 0,
      has_exit_code: false,
      exit_code: 0,
      signal: "",
      worker_fault: false,
      lost_deps: [],
      command_ms: 0
    };
    let report;
    let result;
    let keyProblem;
    let ended;
    try {
      const late = await this.lateHit(job);
      if (late) {
        report = {
          ...base,
          state: "succeeded",
          reason: "found in the cache after the cache query",
          ended_at: Date.now(),
          duration_ms: Date.now() - job.startedAt,
          outputs: late.outputs,
          from_cache: true
        };
        this.finishJob(job, report);
        await this.report(report);
        return;
      }
      const mode = this.opts.keyCheck ?? "warn";
      if (mode !== "off") {
        try {
          await this.checkKey(job);
        } catch (err) {
          if (!(err instanceof KeyMismatchError) || mode === "refuse") throw err;
          keyProblem = err.message;
          this.log(`worker ${this.workerId}: warning: ${job.unit}: ${keyProblem}`);
        }
      }
      await this.prepare(job);
      if (job.stopped) throw new StoppedError(job.stopped);
      job.phase = "running";
      const cacheFrom = job.invocation.docker ? await this.dockerCacheSource(job) : [];
      if (job.stopped) throw new StoppedError(job.stopped);
      const spec = job.invocation.docker ? dockerJobSpec(job.invocation, {
        cacheFrom,
        id: job.id,
        cwd: this.config.root,
        unit: job.unit,
        ...this.units.get(job.unit)?.platform ? { platform: this.units.get(job.unit).platform } : {},
        docker: this.docker.path,
        // The images of the docker builds it needs (restored by `prepare`), for its FROM.
        load: imagesToLoad(
          job.deps.map((d) => ({ unit: d.unit, paths: d.outputs.map((o) => o.path) })),
          (this.units.get(job.unit)?.platform ?? this.docker.platform).toLowerCase()
        ),
        parentEnv: this.executorEnv
      }) : commandJobSpec(job.invocation, { id: job.id, cwd: this.config.root });
      Object.assign(spec.env, {
        DIST_BUILD_WORKER: this.workerId,
        DIST_BUILD_UNIT: job.unit,
        DIST_BUILD_CACHE_KEY: job.cacheKey
      });
      const command = this.executor.start(spec);
      job.command = command;
      const pidFile = this.spawnedPgids.get(spec.id);
      this.spawnedPgids.delete(spec.id);
      const r = await command.result;
      if (pidFile) this.forgetJob(pidFile);
      if (job.stopped && r.state === "stopped") throw new StoppedError(job.stopped);
      ended = {
        has_exit_code: r.exitCode !== null,
        exit_code: r.exitCode ?? 0,
        signal: r.signal ?? "",
        command_ms: r.commandMs ?? 0
      };
      report = {
        ...base,
        ...ended,
        state: r.state,
        reason: r.reason,
        ended_at: r.endedAt,
        duration_ms: r.durationMs,
        output_bytes: r.outputBytes
      };
      if (r.state === "succeeded") {
        job.phase = "saving";
        let outputs;
        let notStored;
        try {
          outputs = await saveOutputs(this.opts.store, this.config.root, this.outputsOf(job));
        } catch (err) {
          if (!isNoSpace(err)) throw err;
          notStored = `no room in the cache for its outputs (${err.message})`;
          this.log(`worker ${this.workerId}: warning: ${job.unit}: ${notStored}`);
          outputs = await digestOutputs(this.config.root, this.outputsOf(job));
        }
        await Promise.all(outputs.map((o) => this.workspace.mark(o.path, o.digest)));
        const manifest = {
          format: RESULT_FORMAT,
          cacheKey: job.cacheKey,
          unit: job.unit,
          invocation: job.invocation.name,
          exitCode: 0,
          durationMs: r.durationMs,
          worker: this.workerId,
          createdAt: (/* @__PURE__ */ new Date()).toISOString(),
          outputs
        };
        if (keyProblem || notStored) report.reason = `not cached: ${keyProblem ?? notStored}`;
        else result = manifest;
        report.outputs = outputs;
      }
    } catch (err) {
      const stopped = err instanceof StoppedError;
      const rejected = err instanceof KeyMismatchError;
      const badOutput = err.name === "MissingOutputError" || err instanceof OutputOutsideTreeError || job.phase === "saving" && err instanceof UnsafeArchiveError;
      report = {
        ...base,
        // A command that exited 0 without its declared outputs: its exit code, not "no exit code".
        ...ended,
        state: stopped ? "stopped" : rejected ? "rejected" : "failed",
        reason: stopped ? `stopped: ${err.message}` : rejected ? err.message : `${job.phase === "preparing" ? "cannot prepare" : job.phase === "saving" ? "cannot save outputs" : "failed"}: ${err.message}`,
        ended_at: Date.now(),
        duration_ms: Date.now() - job.startedAt,
        output_bytes: job.command?.outputBytes ?? 0,
        // A command that did not produce its declared outputs, or produced ones that cannot be
        // packed, is the command's fault; a lost dependency is the cache's (the master rebuilds
        // it); anything else that broke around the command (restoring inputs, the store,
        // stopping) is ours.
        worker_fault: !badOutput && !(err instanceof LostDependencyError),
        lost_deps: err instanceof LostDependencyError ? [err.unit] : []
      };
      if (!stopped)
        this.log(`worker ${this.workerId}: job ${job.id} (${job.unit}): ${report.reason}`);
    }
    this.finishJob(job, report);
    const reported = this.report(report);
    if (result) {
      const manifest = result;
      const written = new Promise((r) => setImmediate(r)).then(() => this.opts.store.putResult(manifest)).catch((err) => {
        this.log(`warning: cannot store the result of ${job.unit}: ${err.message}`);
      }).finally(() => {
        this.resultWrites.delete(written);
        this.statsSoon();
      });
      this.resultWrites.add(written);
      await written;
    }
    await reported;
  }
  useConfig(config) {
    this.config = config;
    this.invocations = new Map(
      config.invocations.map((inv) => [inv.name, { inv, digest: definitionDigest(inv) }])
    );
    this.units = new Map(expandUnits(config).map((u) => [u.id, u]));
  }
  /**
   * Reads the config file again when it changed since it was read (a long-lived pool worker
   * whose checkout was updated); whether it did. Its invocations and units are what later jobs
   * are checked against; the rest (stores, the work tree) stays as the worker started. A file
   * that does not load now leaves the config as it was (a warning).
   */
  reloadConfig() {
    const file = this.config.file;
    const stamp = fileStamp(file);
    if (stamp === this.configStamp) return false;
    this.configStamp = stamp;
    try {
      this.useConfig(parseConfig(decodeConfig(readFileSync5(file), file), file));
      this.log(`worker ${this.workerId}: ${file} changed: read it again`);
      return true;
    } catch (err) {
      const why = err instanceof ConfigError ? err.issues.map(formatIssue).join("; ") : `${file}: ${err.message}`;
      this.log(
        `worker ${this.workerId}: warning: ${file} changed and cannot be read now (${why}): keeping the config it had`
      );
      return false;
    }
  }
  finishJob(job, report) {
    job.report = report;
    job.phase = "done";
    this.finishedOrder.push(job.id);
    void this.pruneFinished();
  }
  /**
   * A job whose key the last cache query could not settle in time (see `unsettled`): its result
   * looked up in the stores again, waiting up to `lateHitWaitMs` for them (a result found in a
   * slower store is copied into the local one, blobs first). The result, or undefined: build it.
   */
  async lateHit(job) {
    if (!this.unsettled.delete(job.cacheKey)) return void 0;
    if (this.stuckLookup) return void 0;
    const wait = this.opts.lateHitWaitMs ?? LATE_HIT_WAIT_MS;
    let timer;
    let waitedInVain = false;
    const lookup = this.opts.store.getResult(job.cacheKey).catch((err) => {
      this.log(`warning: ${job.unit}: cache lookup failed: ${err.message}`);
      return null;
    });
    const manifest = await Promise.race([
      lookup,
      new Promise(
        (done) => timer = setTimeout(() => {
          waitedInVain = true;
          done(null);
        }, wait)
      )
    ]).finally(() => clearTimeout(timer));
    if (waitedInVain) {
      const stuck = lookup.finally(() => {
        if (this.stuckLookup === stuck) this.stuckLookup = void 0;
      });
      this.stuckLookup = stuck;
    }
    if (!manifest) return void 0;
    if (!holdsDeclaredOutputs(manifest.outputs, job.invocation.outputs)) return void 0;
    this.log(`worker ${this.workerId}: ${job.unit}: found in the cache after the cache query`);
    return manifest;
  }
  /**
   * Computes the job's cache key in this worker's own tree (its input files, the master's keys
   * of its dependencies) and throws a `KeyMismatchError` when it is not the key the master sent:
   * a checkout at another commit, or files changed since the master computed the keys. Run
   * anyway, the command would build from other files than the key says, and the result would be
   * stored under that key for every later run to take. Checks run one at a time (they share the
   * file index in the work tree, `.dist-build/index`, which makes them cheap when nothing changed).
   */
  checkKey(job) {
    const check = this.keyChecks.then(async () => {
      const config = this.config;
      const unit = this.units.get(job.unit);
      if (!unit) throw new KeyMismatchError(`unit "${job.unit}" is not in this worker's config`);
      const keys = await computeCacheKeys(config, [unit], {
        // Its own cache directory too (`--cache-dir` in its tree), which the master cannot know.
        exclude: [...job.excludeInputs, ...outExclusion(config.root, this.opts.cacheDir)],
        ...job.excludedOutputs.length ? { outputs: job.excludedOutputs } : {},
        needKeys: new Map(job.deps.map((d) => [d.unit, d.cache_key]))
      });
      const mine = keys.get(unit.id).cacheKey;
      if (mine === job.cacheKey) return;
      throw new KeyMismatchError(
        `the inputs of ${job.unit} in this worker's tree (${config.root}) give cache key ${mine.slice(0, 19)}, the master's is ${job.cacheKey.slice(0, 19)}: this checkout differs from the one the master computed the keys in (another commit, files changed since the run started, or files commands wrote into these inputs without declaring them as outputs, such as __pycache__ or other by-products); \`dist-build keys ${job.unit} --json > /tmp/keys.json\` in the master's tree, then \`dist-build keys ${job.unit} --diff /tmp/keys.json\` in this one, names the files`
      );
    });
    this.keyChecks = check.catch(() => {
    });
    return check;
  }
  /**
   * What a docker build takes cached layers from (`--cache-from`): the unit's image when this
   * daemon has one under its tags (built here before: its own layer cache has the layers, and the
   * image names them), else the image of the unit's previous result
   * (the master's `previous_cache_key`), loaded from the store into the daemon: a worker new to
   * the unit (another took it before, or it is new to the pool) builds with that result's layers
   * instead of from scratch. Best effort: nothing, with a warning, when that image cannot be had.
   */
  async dockerCacheSource(job) {
    const docker = this.docker;
    const env2 = this.executorEnv;
    for (const tag of job.invocation.docker.tags)
      if (await hasImage(docker, tag, env2)) return [tag];
    if (!job.previousKey) return [];
    try {
      const m = await this.opts.store.getResult(job.previousKey);
      const image = m?.outputs.find((o) => isImageArchive(o.path));
      if (!m || !image) return [];
      const refs = await this.withRestored(
        image,
        "cache-from-",
        (archive) => loadImage(docker, archive, env2, job.invocation.timeout * 1e3)
      );
      this.log(
        `worker ${this.workerId}: ${job.unit}: cached layers from its previous image (built by ${m.worker}, ${job.previousKey.slice(0, 19)})`
      );
      return refs;
    } catch (err) {
      this.log(
        `worker ${this.workerId}: warning: ${job.unit}: no cached layers from its previous image: ${err.message}`
      );
      return [];
    }
  }
  /**
   * Restores one output from the store into a temp dir of its own (under `.dist-build/tmp`),
   * calls `fn` with its path there, and removes the dir.
   */
  async withRestored(entry, prefix, fn) {
    const tmp = join16(this.config.root, ".dist-build", "tmp");
    await mkdir8(tmp, { recursive: true });
    const scratch2 = await mkdtemp3(join16(tmp, prefix));
    try {
      await restoreOutputs(blobOpenerFor(this.opts.store), scratch2, [entry], {
        stagingDir: scratch2
      });
      return await fn(join16(scratch2, entry.path));
    } finally {
      await rm7(scratch2, { recursive: true, force: true });
    }
  }
  /** The paths a job saves: its declared outputs, and a docker build's image archive. */
  outputsOf(job) {
    return unitOutputs(job.invocation, job.unit);
  }
  /** Brings every dependency output into the work tree; clears this job's own outputs. */
  async prepare(job) {
    const root = this.config.root;
    for (const dep of job.deps) {
      for (const out of dep.outputs) {
        if (await this.workspace.held(out.path) === out.digest) continue;
        await this.workspace.withLock(out.path, async () => {
          if (await this.workspace.held(out.path) === out.digest) return;
          try {
            await this.ensureBlob(out.digest, dep.holders);
            await restoreOutputs(blobOpenerFor(this.opts.store), root, [out]);
          } catch (err) {
            await drain(await this.opts.store.openBlob(out.digest).catch(() => null));
            throw new LostDependencyError(dep.unit, err.message);
          }
          await this.workspace.mark(out.path, out.digest);
        });
      }
      this.pullResult(dep.cache_key);
    }
    for (const path of this.outputsOf(job)) {
      await this.workspace.withLock(path, () => this.workspace.clear(path));
    }
  }
  /** Makes sure the local store holds `digest`, fetching it from a holder if needed. */
  async ensureBlob(digest, holders) {
    const store = this.opts.store;
    if (store.pullBlob ? await store.pullBlob(digest) : (await store.hasBlobs([digest])).has(digest))
      return;
    const errors = [];
    for (const h2 of holders) {
      if (h2.worker_id === this.workerId) continue;
      for (const conn of h2.connections) {
        try {
          const client = this.peer(conn.socket);
          const stream = client.FetchBlob({ worker_uuid: "", digest }, callMetadata(this.security));
          await this.opts.store.putBlob(chunksOf(stream), digest);
          return;
        } catch (err) {
          errors.push(`${h2.worker_id} (${conn.socket}): ${err.message}`);
        }
      }
    }
    throw new Error(
      `blob ${digest.slice(0, 19)} is not in the local store${errors.length ? ` and no holder could send it: ${errors.join("; ")}` : " and no other worker holds it"}`
    );
  }
  peer(socket) {
    let c = this.peers.get(socket);
    if (!c) {
      const a = parseAddress(socket);
      const p = protocol();
      c = new p.WorkerClient(
        grpcTarget(a),
        channelCredentials(a, this.security),
        channelOptions(a)
      );
      this.peers.set(socket, c);
    }
    return c;
  }
  /**
   * Sends a finished job's report: on the heartbeat stream when it is up (acknowledged by the
   * master), else, or when no ack comes, with ReportResult calls; failing those, with the next
   * registration. The master drops repeats.
   */
  async report(report) {
    if (await this.reportOnStream(report)) return;
    for (let attempt = 0; attempt < 3 && !this.stopping; attempt++) {
      try {
        await this.registering;
        await call2(
          this.master,
          this.master.ReportResult,
          { worker_uuid: this.uuid, report },
          callMetadata(this.security),
          RPC_TIMEOUT_MS
        );
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
      }
    }
    this.unreported.push(report);
  }
  reportOnStream(report) {
    const stream = this.heartbeats;
    if (!stream || this.registering || this.reportAcks.has(report.job_id)) {
      return Promise.resolve(false);
    }
    return new Promise((resolve7) => {
      const timer = setTimeout(() => settle(false), REPORT_ACK_MS);
      const settle = (acked) => {
        clearTimeout(timer);
        this.reportAcks.delete(report.job_id);
        resolve7(acked);
      };
      this.reportAcks.set(report.job_id, settle);
      stream.write(this.streamMessage({ reports: [report] }));
    });
  }
  async pruneFinished() {
    while (this.finishedOrder.length > KEEP_FINISHED) {
      const id = this.finishedOrder.shift();
      const job = this.jobs.get(id);
      this.jobs.delete(id);
      await job?.command?.dispose();
    }
  }
  async streamOutput(c) {
    const job = this.jobs.get(c.request.job_id);
    if (!job) {
      failStream(c, grpc4.status.NOT_FOUND, `no job ${c.request.job_id}`);
      return;
    }
    let cancelled = false;
    c.on("cancelled", () => cancelled = true);
    try {
      while (!job.command && job.phase !== "done" && c.request.follow && !cancelled) {
        await new Promise((r) => setTimeout(r, 20));
      }
      if (job.command) {
        for await (const chunk of job.command.output({
          from: c.request.from,
          follow: c.request.follow
        })) {
          if (cancelled) break;
          if (!c.write({ offset: chunk.offset, stream: chunk.stream, data: chunk.data })) {
            await new Promise((r) => c.once("drain", r));
          }
        }
      }
      c.end();
    } catch (err) {
      failStream(c, grpc4.status.INTERNAL, err.message);
    }
  }
  /**
   * The master's cache query. Nothing is copied between layers here (every worker answers it for
   * every unit: copying would fetch every cached result's blobs from a remote store once per
   * worker); blobs come into the local store when they are used (`ensureBlob`, `sendBlob`).
   */
  async hasCache(keys) {
    const store = this.opts.store;
    let found;
    if (store.peekResults) {
      const unsettled = /* @__PURE__ */ new Set();
      found = await store.peekResults(keys, {
        slowLayersMs: this.opts.cacheQueryBudgetMs ?? CACHE_QUERY_REMOTE_BUDGET_MS,
        unsettled
      });
      for (const key of keys) {
        if (unsettled.has(key)) this.unsettled.add(key);
        else this.unsettled.delete(key);
      }
    } else {
      found = /* @__PURE__ */ new Map();
      for (const key of await store.hasResults(keys)) {
        const m = await store.getResult(key);
        if (m) found.set(key, m);
      }
    }
    const results = [];
    for (const key of keys) {
      const m = found.get(key);
      if (m)
        results.push({
          cache_key: key,
          outputs: m.outputs,
          duration_ms: m.durationMs,
          worker: m.worker
        });
    }
    this.statsSoon();
    return { cache_keys: results.map((r) => r.cache_key), results };
  }
  /**
   * Copies a result used from a remote store into the local one, in the background: nothing waits
   * on a remote store for it but `stop`, and that only briefly (see `PULL_GRACE_MS`).
   */
  pullResult(cacheKey) {
    const store = this.opts.store;
    if (!store.pullResult) return;
    const pull = store.pullResult(cacheKey).finally(() => this.pulls.delete(pull));
    this.pulls.add(pull);
  }
  /**
   * Writes the store's counters a little later (once for a burst of lookups and results), so
   * `dist-build cache stats` sees a long-lived worker's lookups before it stops.
   */
  statsSoon() {
    if (this.statsTimer || this.stopping || !this.opts.store.writeStats) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = void 0;
      void this.opts.store.writeStats?.();
    }, STATS_DELAY_MS);
    this.statsTimer.unref();
  }
  async sendBlob(c, digest) {
    try {
      await this.opts.store.pullBlob?.(digest);
      const stream = await this.opts.store.openBlob(digest);
      if (!stream) {
        failStream(c, grpc4.status.NOT_FOUND, `no blob ${digest}`);
        return;
      }
      let cancelled = false;
      c.on("cancelled", () => cancelled = true);
      for await (const data of stream) {
        if (cancelled) continue;
        if (!c.write({ data, size: 0 })) await new Promise((r) => c.once("drain", r));
      }
      if (!cancelled) c.end();
    } catch (err) {
      failStream(
        c,
        err instanceof CorruptBlobError ? grpc4.status.DATA_LOSS : grpc4.status.INTERNAL,
        err.message
      );
    }
  }
  async exportOutput(c) {
    const { unit, cache_key, path, digest } = c.request;
    let blob = digest;
    if (!blob) {
      const m = await this.opts.store.getResult(cache_key).catch(() => null);
      blob = m?.outputs.find((o) => o.path === path)?.digest ?? "";
    }
    if (!blob) {
      failStream(
        c,
        grpc4.status.NOT_FOUND,
        `this worker holds no output ${path} of ${unit} (${cache_key.slice(0, 19)})`
      );
      return;
    }
    await this.sendBlob(c, blob);
    this.pullResult(cache_key);
  }
};
var StoppedError = class extends Error {
};
async function drain(stream) {
  if (!stream) return;
  try {
    for await (const _ of stream) void _;
  } catch {
  }
}
var REFUSAL_LOG_MS = 3e4;
var KeyMismatchError = class extends Error {
};
var LostDependencyError = class extends Error {
  constructor(unit, why) {
    super(`the outputs of ${unit} cannot be had: ${why}`);
    this.unit = unit;
  }
  unit;
};
function chunksOf(stream) {
  let failed;
  stream.on("error", (err) => failed ??= err);
  return Readable4.from(
    (async function* () {
      for await (const chunk of stream) {
        if (chunk.data.length) yield chunk.data;
      }
      if (failed !== void 0) throw failed;
    })()
  );
}
async function reapTmpSockets() {
  const dir = os2.tmpdir();
  const ownerOf = (name) => {
    if (!name.startsWith(TMP_SOCKET_PREFIX)) return void 0;
    const m = /^([0-9]+)\.[0-9]+\.sock$/.exec(name.slice(TMP_SOCKET_PREFIX.length));
    return m ? Number(m[1]) : void 0;
  };
  for (const { name } of leftByDead(dir, ownerOf)) {
    const path = join16(dir, name);
    try {
      if (!lstatSync4(path).isSocket() || await answers(path)) continue;
      rmSync2(path, { force: true });
    } catch {
    }
  }
}
function pgidFileOwner(name) {
  return Number(name.slice(0, name.indexOf(".")));
}
function endGroupOf(file) {
  let ended;
  try {
    const [pgidText = "", started] = readFileSync5(file, "utf8").trim().split(/\s+/);
    const pgid = Number(pgidText);
    const now = started ? processStartTime(pgid) : void 0;
    if (Number.isInteger(pgid) && pgid > 1 && (now ?? started) === started) {
      process.kill(-pgid, "SIGKILL");
      ended = pgid;
    }
  } catch {
  }
  try {
    rmSync2(file, { force: true });
  } catch {
  }
  return ended;
}
function reapJobLogs() {
  const dir = os2.tmpdir();
  const ownerOf = (name) => name.startsWith(JOB_LOG_PREFIX) ? Number(name.slice(JOB_LOG_PREFIX.length).split("-")[0]) : void 0;
  const uid = process.getuid?.();
  for (const { name } of leftByDead(dir, ownerOf)) {
    const path = join16(dir, name);
    try {
      const st = lstatSync4(path);
      if (!st.isDirectory() || uid !== void 0 && st.uid !== uid) continue;
      rmSync2(path, { recursive: true, force: true });
    } catch {
    }
  }
}
function answers(path) {
  return new Promise((resolve7) => {
    const socket = net.connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve7(true);
    });
    socket.once("error", () => resolve7(false));
  });
}
function fileStamp(file) {
  try {
    const st = statSync3(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return "";
  }
}

// src/cluster/scheduler.ts
import * as grpc5 from "@grpc/grpc-js";
import { randomBytes as randomBytes6 } from "node:crypto";
import { mkdir as mkdir9, mkdtemp as mkdtemp4, rename as rename7, rm as rm8 } from "node:fs/promises";
import { dirname as dirname8, join as join17, resolve as resolve6 } from "node:path";
import { performance as performance2 } from "node:perf_hooks";
init_fsutil();
init_types();

// src/report/types.ts
var REPORT_FORMAT = "dist-build/report/v1";

// src/cluster/scheduler.ts
var FINAL = /* @__PURE__ */ new Set([
  "built",
  "cached",
  "failed",
  "skipped",
  "cancelled"
]);
var SchedulerError = class extends Error {
  name = "SchedulerError";
};
var REPLAN_GAP_MS = 100;
function insertByPriority(list, u) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = lo + hi >> 1;
    if (list[mid].priority >= u.priority) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, u);
}
var Run = class {
  constructor(master, opts) {
    this.master = master;
    this.opts = opts;
    this.config = opts.configPath;
    this.excludedOutputs = declaredOutputs(opts.config);
    const invs = new Map(opts.config.invocations.map((i) => [i.name, i]));
    const units = expandUnits(opts.config).filter((u) => !opts.only || opts.only.has(u.id));
    const items = units.map((u) => ({
      id: u.id,
      duration: expectedDuration(opts.config, u, opts.history),
      needs: u.needs
    }));
    const graph = needsGraph(items);
    const tails = tailLengths(items, graph);
    this.units = units.map((u, i) => {
      const inv = invs.get(u.invocation);
      const cacheKey = opts.keys.get(u.id);
      if (!cacheKey) throw new SchedulerError(`no cache key for unit ${u.id}`);
      return {
        unit: u,
        inv,
        digest: definitionDigest(inv),
        cacheKey,
        duration: items[i].duration,
        priority: tails[i],
        needs: [],
        dependents: [],
        state: "waiting",
        attempts: 0,
        rebuilds: 0,
        excluded: /* @__PURE__ */ new Set(),
        outputs: [],
        holders: /* @__PURE__ */ new Set()
      };
    });
    this.byId = new Map(this.units.map((u) => [u.unit.id, u]));
    for (const u of this.units) {
      if (this.isExternal(u)) continue;
      for (const n of new Set(u.unit.needs)) {
        const dep = this.byId.get(n);
        u.needs.push(dep);
        dep.dependents.push(u);
      }
    }
    for (const u of this.units) if (this.ready(u)) this.addReady(u);
    this.done = new Promise((resolve7) => this.finished = resolve7);
  }
  master;
  opts;
  config;
  units;
  /** Workers that left during the run, and why (for the report). */
  departed = /* @__PURE__ */ new Map();
  byId;
  runId = randomBytes6(4).toString("hex");
  inflight = /* @__PURE__ */ new Map();
  /** Waiting units whose needs are all built or cached. */
  readyUnits = /* @__PURE__ */ new Set();
  /**
   * `readyUnits` by priority, highest first, and the same per owner: sorted once, kept in order
   * as units become ready, rebuilt when owners change or most entries are spent (sorting on
   * every pump made a run of N units cost N sorts). Units that left `readyUnits` stay in the
   * lists until then and are skipped.
   */
  queues;
  /** Units in a final state (the run is done when all are). */
  finalUnits = 0;
  /** Members that refused or failed a StartJob: skipped until they are heard from again. */
  cooling = /* @__PURE__ */ new Map();
  events = [];
  startedAt = Date.now();
  /** Unit id -> worker id. No prototype: a unit named "constructor" is not assigned already. */
  assignments = /* @__PURE__ */ Object.create(null);
  finished;
  /** Ends `awaitExternal`'s wait before its next poll. */
  wakeExternal;
  done;
  cancelled = false;
  /** Why the run was cancelled (see `cancel`). */
  cancelReason = "";
  /** The push in flight (`pushAll`): cancelling the run cancels it. */
  pushing;
  fatal;
  noWorkerTimer;
  pumping = false;
  dispatches = 0;
  /** No dispatch before the cache check and the first placement: events only record state. */
  dispatching = false;
  pumpAgain = false;
  /** When `replan` last ran, and the timer of a replan held back (see `onJoined`). */
  lastReplanAt = 0;
  replanTimer;
  listeners = [];
  /** Every invocation's outputs (sent with each job, for the worker's key check). */
  excludedOutputs;
  /** Built by another run (see `RunOptions.external`): never placed or dispatched here. */
  isExternal(u) {
    return this.opts.external?.has(u.unit.id) ?? false;
  }
  /**
   * Asks the workers' stores for the external units still waiting until all are there (cached)
   * or `externalWaitMs` is up (those fail); resolves then.
   */
  async awaitExternal() {
    const waiting = () => this.units.filter((u) => this.isExternal(u) && u.state === "waiting");
    if (!waiting().length) return;
    const waitMs = this.opts.externalWaitMs ?? 36e5;
    const deadline = Date.now() + waitMs;
    const pollMs = Math.min(this.opts.externalPollMs ?? 5e3, Math.max(200, waitMs / 4));
    const names = waiting().map((u) => u.unit.id);
    this.note(`waiting for ${names.join(", ")} from the other runners' shares`);
    this.opts.onEvent?.({ type: "waiting-external", units: names, waitMs });
    while (waiting().length && !this.cancelled && !this.fatal) {
      if (Date.now() >= deadline) {
        for (const u of waiting())
          this.fail(
            u,
            `not in the cache within ${+(waitMs / 1e3).toFixed(3)}s: another runner's share of the plan builds it (did its job fail, or does it use other cache stores?)`
          );
        break;
      }
      await new Promise((r) => {
        this.wakeExternal = r;
        setTimeout(r, pollMs).unref();
      });
      if (this.cancelled || this.fatal) break;
      try {
        await this.checkCache(this.master.live());
      } catch (err) {
        this.note(`cache query for the other shares' units failed: ${err.message}`);
      }
      this.pump();
      this.checkDone();
    }
    this.checkDone();
  }
  // --- RunView (status, logs) -------------------------------------------------------------------
  unitStatus() {
    return this.units.map((u) => ({
      unit: u.unit.id,
      // Another share's unit is not ready here: it waits for that share to put it in the cache.
      state: u.state === "waiting" && this.ready(u) && !this.isExternal(u) ? "ready" : u.state,
      worker: u.job?.workerId ?? u.workerId ?? this.memberId(u.owner) ?? "",
      attempts: u.attempts
    }));
  }
  jobOf(name) {
    const u = this.byId.get(name) ?? this.units.find((x) => x.inv.name === name);
    return u?.job ? { uuid: u.job.uuid, jobId: u.job.id } : void 0;
  }
  // --- the run ----------------------------------------------------------------------------------
  async execute() {
    const m = this.master;
    const view = {
      config: this.config,
      units: () => this.unitStatus(),
      jobOf: (n) => this.jobOf(n)
    };
    m.run = view;
    this.listen(
      "joined",
      (member, info) => this.onJoined(member, info.running)
    );
    this.listen("left", (member, why) => this.onLeft(member, why));
    this.listen(
      "report",
      (member, report) => this.onReport(member, report)
    );
    try {
      for (const { m: member, r } of m.takeUnclaimedReports()) this.onReport(member, r);
      await this.checkCache(m.live());
      for (const member of m.live()) this.adopt(member, member.running);
      this.dispatching = true;
      this.replan(this.opts.previous);
      this.pump();
      this.checkDone();
      const external = this.awaitExternal();
      await this.done;
      await external;
      if (this.fatal) throw this.fatal;
      let { exports, lost } = await this.exportAll();
      if (lost.length && !this.cancelled) {
        this.done = new Promise((resolve7) => this.finished = resolve7);
        for (const { unit, why, rebuild } of lost) {
          if (rebuild && this.rebuild(unit, `cannot export it: ${why}`)) continue;
          unit.exitCode = void 0;
          this.fail(unit, `cannot export: ${why}`);
        }
        this.replan();
        this.pump();
        this.checkDone();
        await this.done;
        if (this.fatal) throw this.fatal;
        ({ exports, lost } = await this.exportAll(exports));
      }
      if (lost.length && this.cancelled) {
        for (const { unit, why } of lost) {
          this.finish(unit, "cancelled", `${this.cancelReason}; not exported: ${why}`);
          await this.removeEarlierExport(unit);
        }
        lost = [];
      }
      if (lost.length) {
        throw new SchedulerError(`cannot export ${lost[0].unit.unit.id}: ${lost[0].why}`);
      }
      return this.report(exports, await this.pushAll());
    } finally {
      for (const [ev, fn] of this.listeners) m.off(ev, fn);
      if (this.noWorkerTimer) clearTimeout(this.noWorkerTimer);
      if (this.replanTimer) clearTimeout(this.replanTimer);
      if (m.run === view) m.run = void 0;
    }
  }
  /** Cancels the run: waiting units are cancelled, running jobs stopped. */
  cancel(reason = "cancelled") {
    if (this.cancelled) return;
    this.cancelled = true;
    this.cancelReason = reason;
    this.note(`run cancelled: ${reason}`);
    this.pushing?.cancel();
    for (const u of this.units) {
      if (u.state === "waiting") this.finish(u, "cancelled", reason);
      else if (u.state === "running" && u.job) {
        const member = this.master.member(u.job.uuid);
        if (member) {
          void this.master.callWorker(member, (c) => c.StopJob, {
            worker_uuid: member.uuid,
            job_id: u.job.id,
            reason
          }).catch(() => void 0);
        }
        this.finish(u, "cancelled", reason);
      }
    }
    this.checkDone();
  }
  /**
   * Where each unit went (unit id -> worker id), for the next run's `previous`: the worker that
   * built it, runs it, or was to run it, or for a cached unit the holder it was taken from.
   */
  plan() {
    const out = {};
    for (const u of this.units) {
      const w = u.builtBy ?? u.job?.workerId ?? this.assignments[u.unit.id] ?? (u.state === "cached" ? u.workerId : void 0);
      if (w) out[u.unit.id] = w;
    }
    return out;
  }
  /**
   * Per built unit: milliseconds from sending StartJob to receiving its result, and the command's
   * own duration as the worker measured it. The difference is the coordination overhead.
   */
  timings() {
    return this.units.filter((u) => u.state === "built" && u.sentAt !== void 0 && u.reportedAt !== void 0).map((u) => ({
      unit: u.unit.id,
      roundTripMs: u.reportedAt - u.sentAt,
      commandMs: u.commandMs ?? u.durationMs ?? 0
    }));
  }
  listen(ev, fn) {
    this.master.on(ev, fn);
    this.listeners.push([ev, fn]);
  }
  note(message2) {
    this.events.push({ at: Date.now(), message: message2 });
  }
  /** A note the user is shown too. */
  warn(message2) {
    this.note(`warning: ${message2}`);
    this.opts.onEvent?.({ type: "warning", message: message2 });
  }
  memberId(uuid) {
    return uuid ? this.master.member(uuid)?.id : void 0;
  }
  async checkCache(members) {
    const pending = this.units.filter((u) => u.state === "waiting");
    if (!pending.length || !members.length) return;
    const keys = [...new Set(pending.map((u) => u.cacheKey))];
    const answers2 = await Promise.all(
      members.map(async (member) => {
        const found = [];
        for (let i = 0; i < keys.length; i += 2e3) {
          const res = await this.master.callWorker(
            member,
            (c) => c.HasCache,
            { worker_uuid: member.uuid, cache_keys: keys.slice(i, i + 2e3) },
            CACHE_QUERY_TIMEOUT_MS
          ).catch((err) => {
            this.warn(`${unreachable(member, err)}; what it holds is built again`);
            return void 0;
          });
          if (res) found.push(...res.results);
        }
        return { member, found };
      })
    );
    const byKey = /* @__PURE__ */ new Map();
    for (const { member, found } of answers2) {
      for (const r of found) {
        const e = byKey.get(r.cache_key) ?? {
          outputs: r.outputs,
          holders: [],
          by: r.worker
        };
        e.holders.push(member);
        byKey.set(r.cache_key, e);
      }
    }
    for (const u of pending) {
      const hit = byKey.get(u.cacheKey);
      if (!hit) continue;
      if (!holdsDeclaredOutputs(hit.outputs, unitOutputs(u.inv, u.unit.id))) {
        this.warn(
          `the cached result of ${u.unit.id} on ${hit.by} holds other outputs than declared: built again`
        );
        continue;
      }
      u.outputs = hit.outputs;
      for (const h2 of hit.holders) u.holders.add(h2.uuid);
      const previous = this.opts.previous?.[u.unit.id];
      u.workerId = (hit.holders.find((h2) => h2.id === previous) ?? hit.holders[0]).id;
      this.finish(u, "cached");
      this.opts.onEvent?.({ type: "cached", unit: u.unit.id, worker: u.workerId });
    }
  }
  /** Jobs a (re-)registering worker still runs become this run's jobs when their keys match. */
  adopt(member, running) {
    for (const r of running) {
      const u = this.byId.get(r.unit);
      if (!u || u.cacheKey !== r.cache_key) {
        const why = u ? `a job of an earlier run with another cache key (its definition or inputs changed)` : `a job of an earlier run, not in this run's config`;
        this.warn(`stopping ${r.unit} on ${member.id}: ${why}`);
        void this.master.callWorker(member, (c) => c.StopJob, {
          worker_uuid: member.uuid,
          job_id: r.job_id,
          reason: `not part of the master's run (${why})`
        }).catch(() => void 0);
        continue;
      }
      if (u.state !== "waiting") continue;
      this.setState(u, "running");
      u.attempts = Math.max(1, u.attempts);
      u.job = { id: r.job_id, uuid: member.uuid, workerId: member.id };
      u.startedAt = r.started_at || Date.now();
      this.occupy(member.uuid);
      this.note(`adopted ${u.unit.id}, still running on ${member.id}`);
    }
  }
  workerInfos() {
    return this.master.live().map((m) => this.info(m));
  }
  /** Places every unit that has not started on the live members. */
  replan(previous) {
    if (!this.dispatching) return;
    this.lastReplanAt = Date.now();
    const members = this.master.live();
    const waiting = this.units.filter((u) => u.state === "waiting" && !this.isExternal(u));
    if (!waiting.length) return;
    if (!members.length) {
      for (const u of waiting) u.owner = void 0;
      this.queues = void 0;
      this.armNoWorkerTimer();
      return;
    }
    if (this.noWorkerTimer) {
      clearTimeout(this.noWorkerTimer);
      this.noWorkerTimer = void 0;
    }
    const ids = new Set(waiting.map((u) => u.unit.id));
    const items = waiting.map((u) => ({
      id: u.unit.id,
      affinityKey: u.unit.affinityKey,
      duration: u.duration,
      needs: u.unit.needs.filter((n) => ids.has(n)),
      labels: u.unit.labels,
      ...u.unit.platform ? { platform: u.unit.platform } : {},
      ...u.unit.executor ? { executor: u.unit.executor } : {}
    }));
    const prev = { ...previous, ...this.assignments };
    for (const u of waiting)
      if (prev[u.unit.id] && u.excluded.has(prev[u.unit.id])) delete prev[u.unit.id];
    let result;
    try {
      result = place({
        items,
        workers: this.workerInfos(),
        balance: this.opts.config.placement.balance,
        previous: prev
      });
    } catch (err) {
      this.fatal = err;
      this.cancel(err.message);
      return;
    }
    const byId = new Map(members.map((m) => [m.id, m]));
    for (const u of waiting) {
      const wid = result.assignments[u.unit.id];
      let owner = byId.get(wid);
      if (owner && u.excluded.has(owner.id)) {
        owner = members.find((m) => !u.excluded.has(m.id) && eligible(u.unit, this.info(m))) ?? owner;
      }
      u.owner = owner?.uuid;
      if (owner) this.assignments[u.unit.id] = owner.id;
    }
    this.queues = void 0;
  }
  /** Said with a worker's key problems: that it runs another release than this master. */
  otherRelease(m) {
    const release = m && otherRelease(m.member);
    return release ? ` (${m.id} runs ${release}, the master ${VERSION2})` : "";
  }
  info(m) {
    return { id: m.id, annotations: m.member.annotations };
  }
  armNoWorkerTimer() {
    if (this.noWorkerTimer) return;
    const ms = this.opts.noWorkerTimeoutMs ?? 6e4;
    this.noWorkerTimer = setTimeout(() => {
      this.noWorkerTimer = void 0;
      if (this.master.live().length) return;
      this.cancel(`no worker available for ${Math.round(ms / 1e3)}s`);
    }, ms);
  }
  ready(u) {
    return u.needs.every((n) => n.state === "built" || n.state === "cached");
  }
  freeSlots(m) {
    const slots = Math.max(1, m.member.stats?.slots ?? 1);
    return slots - (this.inflight.get(m.uuid) ?? 0);
  }
  /** Starts every ready unit that has a free worker. */
  pump() {
    if (!this.dispatching) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.pumpOnce();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }
  pumpOnce() {
    if (this.cancelled || !this.readyUnits.size) return;
    const now = Date.now();
    const available = this.master.live().filter((m) => (this.cooling.get(m.uuid) ?? 0) <= now && this.freeSlots(m) > 0);
    if (!available.length) return;
    const { all: ready, byOwner } = this.readyQueues();
    const isReady = (u) => u.state === "waiting" && this.readyUnits.has(u);
    const shuns = (u, m) => u.excluded.has(m.id) && this.anotherTaker(u);
    for (const m of available) {
      let free = this.freeSlots(m);
      const own = byOwner.get(m.uuid);
      if (!own) continue;
      for (let i = 0; i < own.length && free > 0; i++) {
        const u = own[i];
        if (!isReady(u) || shuns(u, m)) continue;
        free--;
        this.dispatch(u, m);
      }
      let spent = 0;
      while (spent < own.length && !isReady(own[spent])) spent++;
      if (spent > 0) own.splice(0, spent);
    }
    for (const m of available) {
      let free = this.freeSlots(m);
      if (free <= 0) continue;
      for (const u of ready) {
        if (free <= 0) break;
        if (!isReady(u) || shuns(u, m)) continue;
        const owner = u.owner ? this.master.member(u.owner) : void 0;
        if (owner && this.freeSlots(owner) > 0 && (this.cooling.get(owner.uuid) ?? 0) <= now)
          continue;
        if (!eligible(u.unit, this.info(m))) continue;
        free--;
        this.dispatch(u, m);
      }
    }
  }
  /** The priority queues of ready units (see `queues`), rebuilt when stale or mostly spent. */
  readyQueues() {
    if (this.queues && this.queues.all.length <= 2 * this.readyUnits.size + 64) return this.queues;
    const q = {
      all: [...this.readyUnits].sort((a, b) => b.priority - a.priority),
      byOwner: /* @__PURE__ */ new Map()
    };
    for (const u of q.all) this.ownerQueue(q, u)?.push(u);
    return this.queues = q;
  }
  /** The queue of `u`'s owner in `q` (made on first use); none when it has no live owner. */
  ownerQueue(q, u) {
    if (!u.owner || !this.master.member(u.owner)) return void 0;
    let list = q.byOwner.get(u.owner);
    if (!list) q.byOwner.set(u.owner, list = []);
    return list;
  }
  /** Unique per dispatch (a unit may be dispatched again after a refusal or a rebuild). */
  jobId(u) {
    return `${u.unit.id.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 80)}.${this.runId}.${++this.dispatches}`;
  }
  depsOf(u) {
    return u.needs.map((d) => ({
      unit: d.unit.id,
      cache_key: d.cacheKey,
      outputs: d.outputs,
      holders: [...d.holders].map((uuid) => this.master.member(uuid)).filter((m) => m !== void 0).map((m) => ({ worker_id: m.id, connections: m.member.connections }))
    }));
  }
  dispatch(u, m) {
    u.attempts++;
    this.setState(u, "running");
    const job = { id: this.jobId(u), uuid: m.uuid, workerId: m.id };
    u.job = job;
    u.startedAt = Date.now();
    this.occupy(m.uuid);
    u.sentAt = performance2.now();
    this.opts.onEvent?.({ type: "started", unit: u.unit.id, worker: m.id, attempt: u.attempts });
    this.master.startJob(m, {
      worker_uuid: m.uuid,
      job_id: job.id,
      unit: u.unit.id,
      invocation: u.inv.name,
      definition_digest: u.digest,
      cache_key: u.cacheKey,
      deps: this.depsOf(u),
      exclude_inputs: this.opts.excludeInputs ?? [],
      excluded_outputs: this.excludedOutputs,
      ...this.previousKey(u)
    }).then(
      (res) => {
        if (u.job !== job || u.state !== "running") return;
        if (res.accepted) {
          if (this.opts.onOutput) this.follow(u, m, job.id);
          return;
        }
        const mismatch = /differs from this worker's config|not in this worker's config/.test(
          res.reason
        );
        if (mismatch) {
          u.excluded.add(m.id);
          this.warn(`worker ${m.id} refused ${u.unit.id}: ${res.reason}`);
        }
        if (/docker build/.test(res.reason) || mismatch && !this.anotherTaker(u)) {
          this.release(u);
          this.fail(
            u,
            `worker ${m.id} refused it: ${res.reason}${mismatch ? "; no other worker has its definition" : ""}`
          );
          this.pump();
          this.checkDone();
          return;
        }
        if (mismatch) {
          this.unstart(u);
          this.replan();
          this.pump();
          return;
        }
        this.undo(u, m, `refused by ${m.id}: ${res.reason}`);
      },
      (err) => {
        if (u.job !== job || u.state !== "running") return;
        this.undo(u, m, `StartJob on ${m.id} failed: ${err.details ?? err.message}`);
      }
    );
  }
  /** The unit's last result's key (see `StartJobRequest.previous_cache_key`), for docker builds. */
  previousKey(u) {
    const key = u.inv.docker ? this.opts.history?.keys?.[u.unit.id] : void 0;
    return key && key !== u.cacheKey ? { previous_cache_key: key } : {};
  }
  /** A StartJob that did not take: the unit waits again; the member cools off briefly. */
  undo(u, m, why) {
    this.unstart(u);
    this.note(why);
    this.cooling.set(m.uuid, Date.now() + 200);
    setTimeout(() => this.pump(), 210).unref();
    this.pump();
  }
  /** A dispatch that did not take: its slot is free, the attempt not counted, the unit waits. */
  unstart(u) {
    this.release(u);
    u.attempts--;
    this.setState(u, "waiting");
    u.job = void 0;
  }
  /** Whether a live worker that has not failed or refused `u` (nor is `except`) may take it. */
  anotherTaker(u, except) {
    return this.master.live().some((m) => m.id !== except && !u.excluded.has(m.id) && eligible(u.unit, this.info(m)));
  }
  occupy(uuid) {
    this.inflight.set(uuid, (this.inflight.get(uuid) ?? 0) + 1);
  }
  release(u) {
    if (!u.job) return;
    const n = (this.inflight.get(u.job.uuid) ?? 1) - 1;
    if (n > 0) this.inflight.set(u.job.uuid, n);
    else this.inflight.delete(u.job.uuid);
  }
  follow(u, m, jobId) {
    const stream = m.client.StreamOutput(
      { worker_uuid: m.uuid, job_id: jobId, from: 0, follow: true },
      this.master.metadata()
    );
    const attempt = u.attempts;
    stream.on("data", (chunk) => this.opts.onOutput?.(u.unit.id, chunk, attempt));
    let over = false;
    const ended = () => {
      if (over) return;
      over = true;
      this.opts.onOutputEnd?.(u.unit.id, attempt);
    };
    stream.on("end", ended);
    stream.on("error", ended);
  }
  onJoined(member, running) {
    this.opts.onEvent?.({ type: "worker-joined", worker: member.id });
    this.note(`worker ${member.id} joined`);
    this.adopt(member, running);
    void this.master.callWorker(
      member,
      (c) => c.HasCache,
      { worker_uuid: member.uuid, cache_keys: [] },
      CACHE_QUERY_TIMEOUT_MS
    ).catch((err) => this.warn(unreachable(member, err)));
    const wait = this.lastReplanAt + REPLAN_GAP_MS - Date.now();
    if (wait <= 0 && !this.replanTimer) this.replan();
    else
      this.replanTimer ??= setTimeout(() => {
        this.replanTimer = void 0;
        this.replan();
        this.pump();
      }, wait);
    this.pump();
  }
  onLeft(member, why) {
    this.opts.onWorkerLost?.(member.id, why);
    this.departed.set(member.id, { annotations: member.member.annotations, why });
    this.cooling.delete(member.uuid);
    this.inflight.delete(member.uuid);
    this.opts.onEvent?.({ type: "worker-lost", worker: member.id, reason: why });
    this.note(`worker ${member.id} left: ${why}`);
    for (const u of this.units) {
      u.holders.delete(member.uuid);
      if (u.state === "running" && u.job?.uuid === member.uuid) {
        u.job = void 0;
        this.retryOrFail(u, member.id, `its worker ${member.id} left (${why})`);
      }
    }
    this.failStranded();
    this.replan();
    this.pump();
    this.checkDone();
  }
  /**
   * Fails the waiting units that only workers now gone could take: every live worker failed or
   * refused them (with none live, the no-worker timer decides).
   */
  failStranded() {
    if (!this.master.live().length) return;
    for (const u of this.units) {
      if (u.state !== "waiting" || u.excluded.size === 0 || this.anotherTaker(u)) continue;
      this.fail(u, `no worker left that can take it (${[...u.excluded].join(", ")} could not)`);
    }
  }
  retryOrFail(u, workerId, why) {
    u.excluded.add(workerId);
    if (u.attempts >= 2) {
      this.fail(u, `${why}; it already ran twice`);
      return;
    }
    if (this.master.live().some((m) => m.id === workerId) && !this.anotherTaker(u)) {
      this.fail(u, `${why}; no other worker can take it`);
      return;
    }
    this.setState(u, "waiting");
    this.note(`retrying ${u.unit.id} elsewhere: ${why}`);
    this.opts.onEvent?.({ type: "retry", unit: u.unit.id, worker: workerId, reason: why });
  }
  onReport(member, r) {
    const u = this.byId.get(r.unit);
    if (!u || u.cacheKey !== r.cache_key) return;
    const current = u.job?.id === r.job_id;
    if (!current) {
      const ownFailure = r.state === "failed" && !r.worker_fault && r.has_exit_code;
      if (r.state !== "succeeded" && !ownFailure || u.state !== "waiting") return;
      if (ownFailure) {
        u.attempts = Math.max(1, u.attempts);
        this.setState(u, "running");
      }
    }
    if (current) this.release(u);
    u.reportedAt = performance2.now();
    const workerId = member?.id ?? u.job?.workerId ?? "?";
    if (member) this.cooling.delete(member.uuid);
    u.startedAt = r.started_at || u.startedAt;
    u.endedAt = r.ended_at || Date.now();
    u.durationMs = r.duration_ms;
    u.commandMs = r.command_ms || void 0;
    u.exitCode = r.has_exit_code ? r.exit_code : null;
    if (r.lost_deps?.length && !this.cancelled && u.state === "running") {
      u.job = void 0;
      u.attempts = Math.max(0, u.attempts - 1);
      const deps = r.lost_deps.map((id) => this.byId.get(id)).filter((d) => d !== void 0);
      if (deps.length && deps.every((d) => this.rebuild(d, `${u.unit.id} could not get its outputs: ${r.reason}`))) {
        this.setState(u, "waiting");
        this.opts.onEvent?.({ type: "retry", unit: u.unit.id, worker: workerId, reason: r.reason });
        this.replan();
      } else {
        this.fail(u, r.reason);
      }
    } else if (r.state === "rejected" && current && !this.cancelled) {
      u.job = void 0;
      u.attempts = Math.max(0, u.attempts - 1);
      u.excluded.add(workerId);
      this.warn(`worker ${workerId} refused ${u.unit.id}: ${r.reason}${this.otherRelease(member)}`);
      if (this.anotherTaker(u)) {
        this.setState(u, "waiting");
        this.replan();
      } else {
        this.fail(u, `worker ${workerId} refused it: ${r.reason}; no other worker can take it`);
      }
    } else if (r.state === "succeeded" && r.from_cache) {
      u.outputs = r.outputs;
      if (member) u.holders.add(member.uuid);
      u.workerId = workerId;
      this.finish(u, "cached");
      this.opts.onEvent?.({ type: "cached", unit: u.unit.id, worker: workerId });
    } else if (r.state === "succeeded") {
      if (r.reason.startsWith("not cached: "))
        this.warn(
          `worker ${workerId} built ${u.unit.id}, ${r.reason}${/ give cache key /.test(r.reason) ? this.otherRelease(member) : ""}`
        );
      u.outputs = r.outputs;
      if (member) u.holders.add(member.uuid);
      u.builtBy = workerId;
      u.workerId = workerId;
      u.attempts = Math.max(1, u.attempts);
      this.finish(u, "built");
      this.opts.onEvent?.({
        type: "built",
        unit: u.unit.id,
        worker: workerId,
        durationMs: r.duration_ms
      });
    } else if (r.worker_fault && !this.cancelled) {
      u.job = void 0;
      this.retryOrFail(u, workerId, `${workerId}: ${r.reason}`);
      this.replan();
    } else if (u.state === "running") {
      u.workerId = workerId;
      const job = u.job;
      void this.failWithTail(u, r, job ? this.master.member(job.uuid) : void 0);
      return;
    }
    this.pump();
    this.checkDone();
  }
  async failWithTail(u, r, m) {
    let tail;
    const bytes = this.opts.tailBytes ?? 4096;
    if (m && u.job && r.output_bytes > 0) {
      const parts = [];
      try {
        const stream = m.client.StreamOutput(
          {
            worker_uuid: m.uuid,
            job_id: u.job.id,
            from: Math.max(0, r.output_bytes - bytes),
            follow: false
          },
          this.master.metadata(),
          { deadline: Date.now() + 5e3 }
        );
        for await (const c of stream) parts.push(c.data);
        tail = Buffer.concat(parts).toString("utf8");
      } catch {
      }
    }
    if (u.state !== "running") return;
    this.fail(u, r.reason, tail);
    this.pump();
    this.checkDone();
  }
  fail(u, reason, tail) {
    this.finish(u, "failed", reason);
    this.opts.onEvent?.({
      type: "failed",
      unit: u.unit.id,
      worker: u.workerId ?? u.job?.workerId ?? null,
      reason,
      ...tail !== void 0 ? { tail } : {}
    });
    const skip = (d, because) => {
      if (d.state !== "waiting") return;
      const why = `needs ${because.unit.id}, which ${because.state === "failed" ? "failed" : "was skipped"}`;
      this.finish(d, "skipped", why);
      this.opts.onEvent?.({ type: "skipped", unit: d.unit.id, reason: why });
      for (const e of d.dependents) skip(e, d);
    };
    for (const d of u.dependents) skip(d, u);
    for (const e of this.units) {
      if (!this.isExternal(e) || e.state !== "waiting") continue;
      if (e.dependents.some((d) => d.state === "waiting")) continue;
      const why = `not waited for: ${e.dependents.map((d) => d.unit.id).join(", ")}, which need${e.dependents.length === 1 ? "s" : ""} it, did not run`;
      this.finish(e, "skipped", why);
      this.opts.onEvent?.({ type: "skipped", unit: e.unit.id, reason: why });
    }
    if (this.opts.failFast) this.cancel(`--fail-fast: ${u.unit.id} failed`);
  }
  finish(u, state, reason) {
    this.setState(u, state);
    if (reason !== void 0) u.reason = reason;
  }
  /**
   * A built or cached unit whose outputs were lost goes back to waiting, once; true when it will
   * be (or already is being) built again (never another share's, `RunOptions.external`).
   */
  rebuild(d, why) {
    if (this.isExternal(d)) return false;
    if (d.state === "waiting" || d.state === "running") return true;
    if (d.state !== "built" && d.state !== "cached" || d.rebuilds >= 1) return false;
    d.rebuilds++;
    d.outputs = [];
    d.holders.clear();
    d.builtBy = void 0;
    this.note(`building ${d.unit.id} again: ${why}`);
    this.opts.onEvent?.({ type: "retry", unit: d.unit.id, worker: d.workerId ?? "-", reason: why });
    this.setState(d, "waiting");
    return true;
  }
  /** Every state change goes through here, keeping the set of ready units current. */
  setState(u, state) {
    const was = u.state;
    u.state = state;
    this.finalUnits += Number(FINAL.has(state)) - Number(FINAL.has(was));
    if ((was === "built" || was === "cached") && state !== was) {
      for (const d of u.dependents) this.readyUnits.delete(d);
    }
    if (state === "waiting") {
      if (this.ready(u)) this.addReady(u);
      return;
    }
    this.readyUnits.delete(u);
    if (state === "built" || state === "cached") {
      for (const d of u.dependents) if (d.state === "waiting" && this.ready(d)) this.addReady(d);
    }
  }
  addReady(u) {
    if (this.readyUnits.has(u) || this.isExternal(u)) return;
    this.readyUnits.add(u);
    const q = this.queues;
    if (!q) return;
    insertByPriority(q.all, u);
    const own = this.ownerQueue(q, u);
    if (own) insertByPriority(own, u);
  }
  checkDone() {
    if (this.finalUnits !== this.units.length) return;
    this.finished();
    this.wakeExternal?.();
  }
  // --- export -----------------------------------------------------------------------------------
  /** Exports every final artifact not exported yet; `lost` are those no holder could send. */
  async exportAll(already = []) {
    const dir = this.opts.exportTo;
    if (!dir) return { exports: [], lost: [] };
    await mkdir9(dir, { recursive: true });
    const exporter = (n) => Number(/^\.dist-build-export-(\d+)-/.exec(n)?.[1]);
    for (const { name } of leftByDead(dir, exporter)) await removeTree(join17(dir, name));
    const staging = await mkdtemp4(join17(dir, `.dist-build-export-${process.pid}-`));
    try {
      return await this.exportInto(dir, staging, already);
    } finally {
      await rm8(staging, { recursive: true, force: true });
    }
  }
  /**
   * An invocation this run does not export (failed, skipped, cancelled): an earlier run's copy in
   * the export directory would pass for this run's artifact next to a report that says it failed.
   * (With `--out .` they are the work tree's own outputs, left as they are.) None can be there
   * when a file is in the place of one of its parent directories (ENOTDIR).
   */
  async removeEarlierExport(u) {
    const dir = this.opts.exportTo;
    if (!dir || resolve6(dir) === resolve6(this.opts.config.root)) return;
    for (const p of unitOutputs(u.inv, u.unit.id))
      await rm8(join17(dir, isImageArchive(p) ? exportedImagePath(p) : p), {
        recursive: true,
        force: true
      }).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
  }
  /** The live workers that hold a unit's outputs, the one that built it first; each once. */
  holdersOf(u) {
    return [
      .../* @__PURE__ */ new Set([
        ...this.master.live().filter((m) => m.id === u.builtBy),
        ...[...u.holders].map((h2) => this.master.member(h2)).filter((m) => !!m)
      ])
    ];
  }
  async exportInto(dir, staging, already) {
    const out = [...already];
    const lost = [];
    const done0 = new Set(already.map((e) => e.unit));
    for (const u of this.units) {
      if (!u.inv.export) continue;
      if (u.state !== "built" && u.state !== "cached") {
        await this.removeEarlierExport(u);
        continue;
      }
      if (done0.has(u.unit.id)) continue;
      const candidates = this.holdersOf(u);
      let lastError;
      let done;
      let rebuild = candidates.length === 0;
      for (const m of candidates) {
        try {
          const outputs = [];
          for (const o of u.outputs) {
            const stream = m.client.Export(
              {
                worker_uuid: m.uuid,
                unit: u.unit.id,
                cache_key: u.cacheKey,
                path: o.path,
                digest: o.digest
              },
              this.master.metadata()
            );
            const bytes = chunksOf(stream);
            let dest = join17(dir, o.path);
            if (isImageArchive(o.path)) {
              const scratch2 = await mkdtemp4(join17(staging, "image-"));
              await restoreOutputs(async () => bytes, scratch2, [o], { stagingDir: staging });
              dest = join17(dir, exportedImagePath(o.path));
              await mkdir9(dirname8(dest), { recursive: true });
              await rename7(join17(scratch2, o.path), dest);
            } else await restoreOutputs(async () => bytes, dir, [o], { stagingDir: staging });
            outputs.push({ path: o.path, dest, digest: o.digest, size: o.size, files: o.files });
            this.opts.onEvent?.({
              type: "exported",
              unit: u.unit.id,
              worker: m.id,
              path: o.path,
              dest
            });
          }
          done = { unit: u.unit.id, invocation: u.inv.name, worker: m.id, outputs };
          break;
        } catch (err) {
          const e = err;
          lastError = e.code === grpc5.status.UNAVAILABLE ? new Error(unreachable(m, e)) : e;
          this.note(`export of ${u.unit.id} from ${m.id} failed: ${lastError.message}`);
          if (err.syscall !== void 0) {
            rebuild = false;
            break;
          }
          if (this.anotherTaker(u, m.id)) {
            u.excluded.add(m.id);
            rebuild = true;
          } else if (e.code !== grpc5.status.UNAVAILABLE) rebuild = true;
        }
      }
      if (!done) {
        lost.push({
          unit: u,
          why: lastError ? lastError.message : "no live worker holds it",
          rebuild
        });
        continue;
      }
      out.push(done);
    }
    return { exports: out, lost };
  }
  /**
   * Pushes the image of every `docker.push` unit built or found cached, from a worker that holds
   * it (its builder first): every run, so that its tags name this run's images. A push that no
   * holder can make fails its unit (`cannot push: ...`).
   */
  async pushAll() {
    const done = [];
    for (const u of this.units) {
      if (!u.inv.docker?.push) continue;
      if (u.state !== "built" && u.state !== "cached") continue;
      if (this.cancelled) {
        this.finish(u, "cancelled", `${this.cancelReason}; not pushed`);
        continue;
      }
      const image = u.outputs.find((o) => isImageArchive(o.path));
      const candidates = this.holdersOf(u);
      let why = image ? "no live worker holds it" : "its result holds no image";
      let pushed;
      for (const m of image ? candidates : []) {
        try {
          const res = await new Promise((resolve7, reject) => {
            this.pushing = m.client.PushImage(
              {
                worker_uuid: m.uuid,
                unit: u.unit.id,
                cache_key: u.cacheKey,
                path: image.path,
                digest: image.digest
              },
              this.master.metadata(),
              { deadline: Date.now() + u.inv.timeout * 1e3 },
              (err, r) => err ? reject(err) : resolve7(r)
            );
          }).finally(() => this.pushing = void 0);
          pushed = { unit: u.unit.id, invocation: u.inv.name, worker: m.id, images: res.pushed };
          for (const p of res.pushed)
            this.opts.onEvent?.({ type: "pushed", unit: u.unit.id, worker: m.id, ...p });
          break;
        } catch (err) {
          const e = err;
          why = e.code === grpc5.status.UNAVAILABLE ? unreachable(m, e) : e.details ?? e.message;
          this.note(`push of ${u.unit.id} from ${m.id} failed: ${why}`);
          if (this.cancelled) break;
        }
      }
      if (pushed) done.push(pushed);
      else if (this.cancelled) this.finish(u, "cancelled", `${this.cancelReason}; not pushed`);
      else {
        u.exitCode = void 0;
        this.fail(u, `cannot push: ${why}`);
      }
    }
    return done;
  }
  // --- report -----------------------------------------------------------------------------------
  report(exports, pushes = []) {
    const endedAt = Date.now();
    const workers = /* @__PURE__ */ new Map();
    const row = (id, annotations = {}) => {
      const w = { id, annotations, built: 0, cached: 0, busyMs: 0 };
      workers.set(id, w);
      return w;
    };
    for (const m of this.master.live()) row(m.id, m.member.annotations);
    for (const [id, d] of this.departed) if (!workers.has(id)) row(id, d.annotations).left = d.why;
    const invocations = this.units.map((u) => {
      const worker = u.workerId ?? u.job?.workerId ?? null;
      if (worker) {
        const w = workers.get(worker) ?? row(worker);
        if (u.state === "built") w.built++;
        else if (u.state === "cached") w.cached++;
        if (u.state === "built" || u.state === "failed") w.busyMs += u.durationMs ?? 0;
      }
      const timed = u.state === "built" || u.state === "failed";
      return {
        unit: u.unit.id,
        invocation: u.inv.name,
        worker,
        status: u.state === "waiting" || u.state === "running" ? "cancelled" : u.state,
        cacheKey: u.cacheKey,
        ...timed && u.startedAt ? { startedAt: u.startedAt } : {},
        ...timed && u.endedAt ? { endedAt: u.endedAt } : {},
        ...timed && u.durationMs !== void 0 ? { durationMs: u.durationMs } : {},
        ...u.exitCode !== void 0 ? { exitCode: u.exitCode } : {},
        ...u.reason ? { reason: u.reason } : {},
        attempts: u.attempts,
        outputs: u.outputs.map((o) => ({ path: o.path, digest: o.digest, size: o.size }))
      };
    });
    const failed = invocations.some((i) => i.status === "failed" || i.status === "skipped");
    return {
      format: REPORT_FORMAT,
      config: this.config,
      startedAt: this.startedAt,
      endedAt,
      durationMs: endedAt - this.startedAt,
      status: this.cancelled && !failed ? "cancelled" : failed || this.cancelled ? "failed" : "succeeded",
      workers: [...workers.values()],
      invocations,
      exports,
      ...pushes.length ? { pushes } : {},
      events: this.events
    };
  }
};
function unreachable(m, err) {
  const where = m.member.connections.map((c) => c.socket).join(", ");
  const why = (err.details || err.message).replace(/\s*Resolution note:.*$/s, "");
  return `the master cannot reach worker ${m.id}'s service at ${where} (${why})${err.code === grpc5.status.UNAVAILABLE ? ": check its --listen / --advertise address and that its certificate names that host" : ""}`;
}

// src/cluster/certs.ts
import { createPrivateKey, randomBytes as randomBytes7, X509Certificate } from "node:crypto";
import { mkdir as mkdir10, open as open3, readdir as readdir3, rename as rename8, stat as stat4, unlink as unlink4 } from "node:fs/promises";
import { isIP as isIP2 } from "node:net";
import { join as join18 } from "node:path";
var CertError = class extends Error {
  name = "CertError";
};
var CERT_ROLES = ["master", "worker", "client"];
var DEFAULT_CERT_DIR = ".dist-build/certs";
var DEFAULT_CA_NAME = "dist-build CA";
var DEFAULT_CA_DAYS = 365;
var DEFAULT_CERT_DAYS = 90;
var CERT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
var CA_CERT_FILE = "ca.pem";
var DEFAULT_HOSTS = ["localhost", "127.0.0.1", "::1"];
var CLOCK_SKEW_MS = 6e4;
var DAY_MS3 = 864e5;
var MAX_DAYS = 36500;
function checkCertName(name) {
  if (!CERT_NAME_RE.test(name))
    throw new CertError(
      `invalid certificate name "${name}": use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`
    );
  if (/^ca$/i.test(name) || /-key$/i.test(name))
    throw new CertError(
      `invalid certificate name "${name}": "ca" and names ending in "-key" are reserved for key files`
    );
}
function checkDays(days, what) {
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS)
    throw new CertError(
      `${what}: expected a whole number of days from 1 to ${MAX_DAYS}, got ${days}`
    );
}
function checkDate(d) {
  const iso = d.toISOString();
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 9999) throw new CertError(`date out of range: ${iso}`);
}
function canonicalIPv6(ip) {
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}
function altNames(hosts) {
  const out = [];
  const seen = /* @__PURE__ */ new Set();
  for (const raw of [...DEFAULT_HOSTS, ...hosts]) {
    let h2 = raw.trim();
    if (h2.startsWith("[") && h2.endsWith("]")) h2 = h2.slice(1, -1);
    const family = isIP2(h2);
    let entry;
    if (family === 4) {
      entry = { type: "ip", value: h2.split(".").map(Number).join(".") };
    } else if (family === 6) {
      if (h2.includes("%")) throw new CertError(`host "${raw}": IPv6 zone ids cannot be certified`);
      entry = { type: "ip", value: canonicalIPv6(h2) };
    } else {
      const dns = h2.toLowerCase().replace(/\.$/, "");
      const label = "[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?";
      if (dns.length > 253 || !new RegExp(`^(\\*\\.)?${label}(\\.${label})*$`).test(dns))
        throw new CertError(
          `host "${raw}": expected a DNS name (e.g. build-1.internal) or an IP address`
        );
      entry = { type: "dns", value: dns };
    }
    const k = `${entry.type}:${entry.value}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(entry);
    }
  }
  return out;
}
function pemBody(pem, what) {
  if (!/-----BEGIN CERTIFICATE-----/.test(pem))
    throw new CertError(`${what}: not a PEM certificate (no "BEGIN CERTIFICATE" line)`);
  return pem;
}
function parseCert(pem, what) {
  try {
    return new X509Certificate(pemBody(pem, what));
  } catch (err) {
    if (err instanceof CertError) throw err;
    throw new CertError(`${what}: cannot parse the certificate: ${err.message}`);
  }
}
function parseKey(pem, what) {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: *4, *ENCRYPTED/m.test(pem))
    throw new CertError(
      `${what}: the private key is protected by a passphrase, which dist-build cannot ask for: keep it unencrypted and private (mode 0600), e.g. \`openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.plain\``
    );
  let key;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new CertError(`${what}: cannot parse the private key: ${err.message}`);
  }
  return key;
}
function checkKeyMatches(cert, key, what) {
  let matches2;
  try {
    matches2 = cert.checkPrivateKey(key);
  } catch {
    matches2 = false;
  }
  if (!matches2) throw new CertError(`${what}: the private key does not belong to the certificate`);
}
var MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec";
function certDate(text) {
  const m = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d+)? (\d{4}) GMT$/.exec(text);
  const month = m ? MONTHS.indexOf(m[1]) / 3 : -1;
  if (!m || !Number.isInteger(month) || month < 0) return new Date(text);
  const d = /* @__PURE__ */ new Date(0);
  d.setUTCFullYear(Number(m[6]), month, Number(m[2]));
  d.setUTCHours(Number(m[3]), Number(m[4]), Number(m[5]), 0);
  return d;
}
var notBeforeOf = (cert) => certDate(cert.validFrom);
var notAfterOf = (cert) => certDate(cert.validTo);
function checkCA(ca) {
  const cert = parseCert(ca.cert, "CA certificate");
  if (!cert.ca) throw new CertError("CA certificate: not a CA (BasicConstraints CA:true missing)");
  const key = parseKey(ca.key, "CA private key");
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType !== "ec" || details?.namedCurve !== "prime256v1")
    throw new CertError("CA private key: expected an ECDSA P-256 key");
  checkKeyMatches(cert, key, "CA");
  return { key, notAfter: notAfterOf(cert) };
}
async function createCA(opts = {}) {
  const plan = caPlan(opts);
  return (await (await import("./x509-gen.js")).newCA(plan)).pair;
}
function caPlan(opts) {
  const name = opts.name ?? DEFAULT_CA_NAME;
  const days = opts.days ?? DEFAULT_CA_DAYS;
  checkSubjectName(name, "CA name");
  checkDays(days, "CA validity");
  const now = Date.now();
  const notBefore = new Date(now - CLOCK_SKEW_MS);
  const notAfter = new Date(now + days * DAY_MS3);
  checkDate(notBefore);
  checkDate(notAfter);
  return { name, notBefore, notAfter };
}
function checkSubjectName(name, what) {
  if (!name.trim() || name.length > 64 || [...name].some((c) => c < " " || c === "\x7F"))
    throw new CertError(`${what}: expected 1-64 printable characters, got ${JSON.stringify(name)}`);
}
function leafPlan(caNotAfter, opts) {
  const { name, role } = opts;
  checkSubjectName(name, "certificate name");
  if (!CERT_ROLES.includes(role))
    throw new CertError(`invalid role "${role}": expected one of ${CERT_ROLES.join(", ")}`);
  const days = opts.days ?? DEFAULT_CERT_DAYS;
  checkDays(days, "certificate validity");
  const sans = altNames(opts.hosts ?? []);
  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - CLOCK_SKEW_MS);
  let notAfter = opts.notAfter;
  if (!notAfter) {
    if (caNotAfter.getTime() <= now)
      throw new CertError(
        `the CA expired on ${caNotAfter.toISOString()}: create a new one with \`dist-build certs init --force\``
      );
    const wanted = (opts.notBefore ? notBefore.getTime() : now) + days * DAY_MS3;
    notAfter = new Date(Math.min(wanted, caNotAfter.getTime()));
  }
  if (notAfter.getTime() <= notBefore.getTime())
    throw new CertError(
      `certificate "${name}": notAfter (${notAfter.toISOString()}) is not after notBefore (${notBefore.toISOString()})`
    );
  checkDate(notBefore);
  checkDate(notAfter);
  return { name, role, altNames: sans, notBefore, notAfter };
}
async function issueCert(ca, opts) {
  const { key, notAfter } = checkCA(ca);
  const plan = leafPlan(notAfter, opts);
  const gen = await import("./x509-gen.js");
  return gen.issueLeaf(await gen.signingCA(ca.cert, key), plan);
}
async function readPem(file, hint, privateKey = false) {
  let fh;
  try {
    fh = await open3(file, "r");
  } catch (err) {
    if (err.code === "ENOENT")
      throw new CertError(`${file} not found: ${hint}`);
    throw new CertError(`cannot read ${file}: ${err.message}`);
  }
  try {
    const mode = privateKey ? (await fh.stat()).mode & 511 : 0;
    if (process.platform !== "win32" && mode & 7)
      throw new CertError(
        `${file} is a private key open to every user of this machine (mode 0${mode.toString(8)}): make it private with \`chmod 600 ${shellWord(file)}\``
      );
    return await fh.readFile("utf8");
  } catch (err) {
    if (err instanceof CertError) throw err;
    throw new CertError(`cannot read ${file}: ${err.message}`);
  } finally {
    await fh.close();
  }
}
var shellWord = (path) => /^[\w./-]+$/.test(path) ? path : JSON.stringify(path);
function dirFlag(dir) {
  return dir === DEFAULT_CERT_DIR ? "" : ` --dir ${shellWord(dir)}`;
}
function initHint(dir) {
  return `create the cluster CA with \`dist-build certs init${dirFlag(dir)}\``;
}
async function issuedBy(certPemText, caPemText) {
  const cert = parseCert(certPemText, "certificate");
  const ca = parseCert(caPemText, "CA certificate");
  if (!cert.checkIssued(ca)) return false;
  try {
    return cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}
async function loadTls(dir, name) {
  checkCertName(name);
  const issueCmd = `\`dist-build certs issue --name ${name}${dirFlag(dir)}\``;
  const issueHint = `issue it with ${issueCmd}`;
  const ca = await readPem(join18(dir, CA_CERT_FILE), initHint(dir));
  const certFile = join18(dir, `${name}.pem`);
  const keyFile = join18(dir, `${name}-key.pem`);
  const cert = await readPem(certFile, issueHint);
  const key = await readPem(keyFile, issueHint, true);
  const parsed = parseCert(cert, certFile);
  checkKeyMatches(parsed, parseKey(key, keyFile), `${certFile} / ${keyFile}`);
  if (!await issuedBy(cert, ca))
    throw new CertError(
      `${certFile} was not issued by the CA in ${join18(dir, CA_CERT_FILE)}: ${issueHint}`
    );
  const now = Date.now();
  const notAfter = notAfterOf(parsed);
  const notBefore = notBeforeOf(parsed);
  if (notAfter.getTime() <= now)
    throw new CertError(
      `${certFile} expired on ${notAfter.toISOString()}: issue a new one with ${issueCmd}`
    );
  if (notBefore.getTime() > now)
    throw new CertError(
      `${certFile} is not valid before ${notBefore.toISOString()} (check this machine's clock)`
    );
  return { ca, cert, key };
}
async function ephemeralTls(names) {
  const unique = new Set(names);
  if (unique.size !== names.length) throw new CertError("ephemeralTls: duplicate names");
  const caSpec = caPlan({ name: "dist-build ephemeral CA", days: 7 });
  const leaves = names.map(
    (name) => leafPlan(caSpec.notAfter, {
      name,
      role: name === "master" || name === "client" ? name : "worker",
      days: 7
    })
  );
  const { ca, leaves: pairs2 } = await (await import("./x509-gen.js")).newCluster(caSpec, leaves);
  const tls = {};
  names.forEach((name, i) => tls[name] = { ca: ca.cert, ...pairs2[i] });
  return { ca, tls };
}

// src/report/index.ts
import { mkdir as mkdir11, writeFile as writeFile5 } from "node:fs/promises";
import { join as join19 } from "node:path";

// src/cli/table.ts
function table(rows, right = []) {
  const widths = [];
  for (const r of rows) r.forEach((c, i) => widths[i] = Math.max(widths[i] ?? 0, c.length));
  return rows.map(
    (r) => r.map(
      (c, i) => i === r.length - 1 && !right[i] ? c : right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])
    ).join("  ").trimEnd()
  ).join("\n");
}
function count(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

// src/report/render.ts
init_size();
var STATUSES = ["built", "cached", "failed", "skipped", "cancelled"];
function countByStatus(report) {
  const counts = { built: 0, cached: 0, failed: 0, skipped: 0, cancelled: 0 };
  for (const i of report.invocations) counts[i.status]++;
  return counts;
}
var fmtMs = (ms) => formatDuration(Math.max(0, ms) / 1e3);
var rel = (report, at) => `+${fmtMs(at - report.startedAt)}`;
function totalsLine(report) {
  const c = countByStatus(report);
  const extra = ["skipped", "cancelled"].filter((s) => c[s] > 0).map((s) => `, ${c[s]} ${s}`).join("");
  const left = report.workers.filter((w) => w.left !== void 0).length;
  return `${count(report.invocations.length, "invocation")}: ${c.built} built, ${c.cached} cached, ${c.failed} failed${extra} in ${fmtMs(report.durationMs)} on ${count(report.workers.length, "worker")}` + (left ? ` (${left} left during the run)` : "");
}
function interval(i) {
  if (i.status !== "built" && i.status !== "failed") return null;
  if (i.startedAt === void 0) return null;
  const end = i.endedAt ?? (i.durationMs !== void 0 ? i.startedAt + i.durationMs : void 0);
  if (end === void 0) return null;
  return { start: i.startedAt, end: Math.max(end, i.startedAt) };
}
function durationMs(i) {
  if (i.durationMs !== void 0) return i.durationMs;
  const t = interval(i);
  return t ? t.end - t.start : void 0;
}
function resultText(i) {
  const details = [];
  if (i.status === "failed" && i.exitCode !== void 0)
    details.push(
      i.exitCode !== null ? `exit ${i.exitCode}` : i.reason?.startsWith("timed out") ? "timed out" : "no exit code"
    );
  if (i.attempts > 1) details.push(`attempt ${i.attempts}`);
  return details.length ? `${i.status} (${details.join(", ")})` : i.status;
}
function shortDigest(digest) {
  const m = /^([a-z0-9]+:)?([0-9a-f]+)$/i.exec(digest);
  return m ? `${m[1] ?? ""}${m[2].slice(0, 12)}` : digest;
}
function workerLabel(w) {
  return w.left !== void 0 ? `${w.id} (left: ${w.left})` : w.id;
}
function laneIds(report) {
  const ids = report.workers.map((w) => w.id);
  const seen = new Set(ids);
  const extra = /* @__PURE__ */ new Set();
  for (const i of report.invocations) {
    const w = i.worker ?? NO_WORKER;
    if (!seen.has(w) && interval(i)) extra.add(w);
  }
  return [...ids, ...[...extra].sort()];
}
var NO_WORKER = "(no worker)";
function barsByLane(report) {
  const lanes = new Map(laneIds(report).map((id) => [id, []]));
  for (const inv of report.invocations) {
    const t = interval(inv);
    if (!t) continue;
    lanes.get(inv.worker ?? NO_WORKER).push({
      inv,
      start: t.start - report.startedAt,
      end: t.end - report.startedAt
    });
  }
  for (const bars of lanes.values()) bars.sort((a, b) => a.start - b.start || a.end - b.end);
  return lanes;
}
var ANSI = {
  built: "\x1B[32m",
  cached: "\x1B[2m",
  failed: "\x1B[31m",
  skipped: "\x1B[33m",
  cancelled: "\x1B[33m"
};
var RESET = "\x1B[0m";
function summaryTable(report, opts = {}) {
  const withNote = report.invocations.some((i) => i.reason);
  const header = ["INVOCATION", "WORKER", "RESULT", "DURATION", ...withNote ? ["NOTE"] : []];
  const rows = [
    header,
    ...report.invocations.map((i) => {
      const d = durationMs(i);
      return [
        i.unit,
        i.worker ?? "-",
        resultText(i),
        d === void 0 ? "-" : fmtMs(d),
        ...withNote ? [oneLine(i.reason ?? "")] : []
      ];
    })
  ];
  let lines = table(rows, [false, false, false, true, false]).split("\n");
  if (opts.color) {
    const at = Math.max(...rows.map((r) => r[0].length)) + 2 + Math.max(...rows.map((r) => r[1].length)) + 2;
    lines = lines.map((line, n) => {
      if (n === 0) return `\x1B[1m${line}${RESET}`;
      const cell = rows[n][2];
      if (line.slice(at, at + cell.length) !== cell) return line;
      const code = ANSI[report.invocations[n - 1].status];
      return line.slice(0, at) + code + cell + RESET + line.slice(at + cell.length);
    });
  }
  const out = [lines.join("\n")];
  const exportRows = [];
  for (const e of report.exports) {
    if (e.outputs.length === 0) exportRows.push(["export", e.unit, e.worker, "(no outputs)"]);
    for (const o of e.outputs)
      exportRows.push([
        "export",
        e.unit,
        e.worker,
        `${o.path} -> ${shownPath(o.dest)}`,
        count(o.files, "entry", "entries"),
        formatSize(o.size),
        shortDigest(o.digest)
      ]);
  }
  for (const p of report.pushes ?? [])
    for (const i of p.images)
      exportRows.push([
        "push",
        p.unit,
        p.worker,
        i.ref,
        "",
        "",
        i.digest ? shortDigest(i.digest) : ""
      ]);
  if (exportRows.length) out.push(table(exportRows, [false, false, false, false, true, true]));
  out.push(totalsLine(report));
  return out.join("\n\n") + "\n";
}
var oneLine = (s) => s.replace(/\s*[\r\n]+\s*/g, " ").trim();
function md(s) {
  return oneLine(s).replace(/[\\`*_[\]<>|&~]/g, (c) => `\\${c}`);
}
function mdCode(s) {
  return s && !/[`|\r\n]/.test(s) ? `\`${s}\`` : md(s);
}
function mermaidText(s) {
  const t = oneLine(s).replace(/:/g, "\u2236").replace(/;/g, ",").replace(/#/g, "\uFF03").replace(/`/g, "'");
  return /^(section|title|dateFormat|axisFormat|tickInterval|excludes|includes|todayMarker|weekday|weekend|click|accTitle|accDescr|inclusiveEndDates|topAxis|displayMode)\b/i.test(
    t
  ) ? `\u25B8 ${t}` : t || "-";
}
function mermaidAxis(report, spanMs) {
  if (spanMs < 1e4) return { format: "%S.%L", base: 0 };
  if (spanMs < 6e4) return { format: "%Ss", base: 0 };
  return { format: spanMs < 36e5 ? "%H:%M:%S" : "%H:%M", base: report.startedAt };
}
var MERMAID_MAX_TEXT = 5e4;
var REPORT_HTML = "dist-build-report.html";
function mdTable(header, rows, right = []) {
  const sep6 = header.map((_, i) => right[i] ? "---:" : "---");
  return [header, sep6, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}
function renderMarkdown(report) {
  const out = [];
  out.push(`# dist-build run ${report.status}`);
  out.push(
    `Config ${mdCode(report.config)}, started ${new Date(report.startedAt).toISOString()}, took ${fmtMs(report.durationMs)}.`
  );
  out.push(`**${md(totalsLine(report))}**`);
  out.push("## Invocations");
  if (report.invocations.length === 0) out.push("No invocations.");
  else
    out.push(
      mdTable(
        ["Invocation", "Worker", "Result", "Duration", "Cache key", "Note"],
        report.invocations.map((i) => {
          const d = durationMs(i);
          const result = md(resultText(i));
          return [
            md(i.unit),
            i.worker === null ? "-" : md(i.worker),
            i.status === "failed" ? `**${result}**` : result,
            d === void 0 ? "-" : fmtMs(d),
            mdCode(shortDigest(i.cacheKey)),
            md(i.reason ?? "")
          ];
        }),
        [false, false, false, true]
      )
    );
  if (report.workers.length) {
    out.push("## Workers");
    out.push(
      mdTable(
        ["Worker", "Annotations", "Built", "Cached", "Busy"],
        report.workers.map((w) => [
          md(workerLabel(w)),
          md(
            Object.entries(w.annotations).map(([k, v]) => `${k}=${v}`).join(", ")
          ),
          String(w.built),
          String(w.cached),
          fmtMs(w.busyMs)
        ]),
        [false, false, true, true, true]
      )
    );
  }
  if (report.exports.length) {
    out.push("## Exports");
    out.push(
      mdTable(
        ["Invocation", "Worker", "Path", "Destination", "Entries", "Size", "Digest"],
        report.exports.flatMap(
          (e) => e.outputs.map((o) => [
            md(e.unit),
            md(e.worker),
            mdCode(o.path),
            mdCode(o.dest),
            String(o.files),
            formatSize(o.size),
            mdCode(o.digest)
          ])
        ),
        [false, false, false, false, true, true]
      )
    );
  }
  if (report.pushes?.length) {
    out.push("## Images pushed");
    out.push(
      mdTable(
        ["Invocation", "Worker", "Reference", "Digest"],
        report.pushes.flatMap(
          (p) => p.images.map((i) => [md(p.unit), md(p.worker), mdCode(i.ref), mdCode(i.digest)])
        ),
        [false, false, false, false]
      )
    );
  }
  out.push("## Timeline");
  const lanes = barsByLane(report);
  const drawn = [...lanes.values()].reduce((n, b) => n + b.length, 0);
  if (drawn === 0) out.push("Nothing was built.");
  else {
    const span = Math.max(report.durationMs, ...[...lanes.values()].flat().map((b) => b.end));
    const axis = mermaidAxis(report, span);
    const g = [
      "```mermaid",
      "gantt",
      `    title ${mermaidText(`${report.config} (${report.status}, ${fmtMs(report.durationMs)})`)}`,
      "    dateFormat x",
      `    axisFormat ${axis.format}`,
      "    todayMarker off"
    ];
    let n = 0;
    for (const [worker, bars] of lanes) {
      if (!bars.length) continue;
      g.push(`    section ${mermaidText(worker)}`);
      for (const b of bars) {
        const tags = [];
        const notes = [];
        if (b.inv.status === "failed") {
          tags.push("crit");
          notes.push("failed");
        }
        if (b.inv.attempts > 1) {
          tags.push("active");
          notes.push(`attempt ${b.inv.attempts}`);
        }
        const label = notes.length ? `${b.inv.unit} (${notes.join(", ")})` : b.inv.unit;
        const end = Math.max(b.end, b.start + 1);
        const times = [axis.base + b.start, axis.base + end];
        g.push(`    ${mermaidText(label)} :${[...tags, `t${n++}`, ...times].join(", ")}`);
      }
    }
    const diagram = g.slice(1).join("\n");
    g.push("```");
    if (diagram.length <= MERMAID_MAX_TEXT) out.push(g.join("\n"));
    else
      out.push(
        `The timeline has ${count(drawn, "bar")}, more than a mermaid chart draws (${MERMAID_MAX_TEXT.toLocaleString("en")} characters of text): see the HTML report, ${REPORT_HTML}.`
      );
  }
  const notDrawn = report.invocations.filter((i) => !interval(i));
  if (notDrawn.length) {
    const byWorker = /* @__PURE__ */ new Map();
    for (const i of notDrawn) {
      const key = i.worker ?? NO_WORKER;
      byWorker.set(key, [...byWorker.get(key) ?? [], `${md(i.unit)} (${i.status})`]);
    }
    out.push(
      "Not drawn (cached, skipped, cancelled or without timing):\n\n" + [...byWorker].map(([w, names]) => `- ${md(w)}: ${names.join(", ")}`).join("\n")
    );
  }
  if (report.events?.length) {
    out.push("## Events");
    out.push(
      [...report.events].sort((a, b) => a.at - b.at).map((e) => `- ${rel(report, e.at)}: ${md(e.message)}`).join("\n")
    );
  }
  return out.join("\n\n") + "\n";
}
function escapeHtml(s) {
  return s.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]
  );
}
var h = escapeHtml;
function tickStep(span) {
  const steps = [
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1e3,
    2e3,
    5e3,
    1e4,
    15e3,
    3e4,
    6e4,
    12e4,
    3e5,
    6e5,
    9e5,
    18e5,
    36e5,
    72e5,
    144e5,
    216e5,
    432e5
  ];
  return steps.find((s) => span / s <= 10) ?? 864e5;
}
function tickLabel(t, step2) {
  if (step2 < 1e3) return `${Number((t / 1e3).toFixed(3))}s`;
  if (t < 12e4 || step2 < 6e4) return `${t / 1e3}s`;
  const m = Math.floor(t / 6e4);
  const s = Math.round(t % 6e4 / 1e3);
  if (m < 60) return s ? `${m}m${String(s).padStart(2, "0")}s` : `${m}m`;
  const rm9 = m % 60;
  return `${Math.floor(m / 60)}h${rm9 ? String(rm9).padStart(2, "0") + "m" : ""}`;
}
function fit(text, px) {
  const max = Math.floor(px / 6.4);
  if (text.length <= max) return text;
  return max >= 4 ? `${text.slice(0, max - 1)}\u2026` : "";
}
var num = (v) => String(Math.round(v * 10) / 10);
function ganttSvg(report) {
  const lanes = barsByLane(report);
  const all = [...lanes.values()].flat();
  const span = Math.max(1, report.durationMs, ...all.map((b) => b.end));
  const W = 1100;
  const LEFT = 170;
  const RIGHT = 24;
  const TOP = 10;
  const ROW = 22;
  const BAR = 16;
  const PAD = 6;
  const AXIS = 28;
  const plotW = W - LEFT - RIGHT;
  const x = (t) => LEFT + Math.min(Math.max(t, 0), span) / span * plotW;
  const cached = /* @__PURE__ */ new Map();
  for (const i of report.invocations)
    if (i.status === "cached")
      cached.set(i.worker ?? NO_WORKER, (cached.get(i.worker ?? NO_WORKER) ?? 0) + 1);
  const parts = [];
  const barParts = [];
  let y = TOP;
  let laneNo = 0;
  for (const [worker, bars] of lanes) {
    const rowEnds = [];
    const placed = bars.map((b) => {
      let r = rowEnds.findIndex((end) => end <= b.start);
      if (r < 0) r = rowEnds.push(0) - 1;
      rowEnds[r] = Math.max(b.end, b.start + 1);
      return { b, r };
    });
    const laneH = Math.max(2, rowEnds.length) * ROW + 2 * PAD;
    const built = bars.filter((b) => b.inv.status === "built").length;
    const failed = bars.length - built;
    const sub = [
      `${built} built`,
      `${cached.get(worker) ?? 0} cached`,
      ...failed ? [`${failed} failed`] : []
    ].join(" \xB7 ");
    parts.push(
      `<rect class="lane-bg${laneNo++ % 2 ? " odd" : ""}" x="0" y="${y}" width="${W}" height="${laneH}"/>`,
      `<text class="lane-name" x="10" y="${y + PAD + 13}"><title>${h(worker)}</title>${h(fit(worker, LEFT - 20) || "\u2026")}</text>`,
      `<text class="lane-sub" x="10" y="${y + PAD + 29}">${h(sub)}</text>`
    );
    for (const { b, r } of placed) {
      const bx = x(b.start);
      const bw = Math.max(2, x(b.end) - bx);
      const by = y + PAD + r * ROW + (ROW - BAR) / 2;
      const i = b.inv;
      const cls = `bar ${i.status}${i.attempts > 1 ? " retried" : ""}`;
      const tip = [
        `${i.unit} \u2014 ${resultText(i)} on ${worker}`,
        `${rel(report, report.startedAt + b.start)} \u2192 ${rel(report, report.startedAt + b.end)} (${fmtMs(durationMs(i) ?? b.end - b.start)})`,
        ...i.invocation !== i.unit ? [`invocation ${i.invocation}`] : [],
        `cache key ${i.cacheKey}`,
        ...i.reason ? [i.reason] : []
      ].join("\n");
      const label = fit(i.unit, bw - 8);
      barParts.push(
        `<g class="${cls}"><title>${h(tip)}</title><rect x="${num(bx)}" y="${num(by)}" width="${num(bw)}" height="${BAR}" rx="3"/>` + (label ? `<text x="${num(bx + 4)}" y="${num(by + 12)}">${h(label)}</text>` : "") + `</g>`
      );
    }
    y += laneH;
  }
  if (lanes.size === 0) {
    parts.push(`<text class="empty" x="${LEFT}" y="${y + 24}">No workers.</text>`);
    y += 40;
  }
  const plotBottom = y;
  const step2 = tickStep(span);
  const axis = [`<g class="axis">`];
  axis.push(`<line x1="${LEFT}" y1="${plotBottom}" x2="${LEFT + plotW}" y2="${plotBottom}"/>`);
  for (let t = 0; t <= span + 1e-9; t += step2) {
    const tx = num(x(t));
    axis.push(
      `<line class="grid" x1="${tx}" y1="${TOP}" x2="${tx}" y2="${plotBottom}"/>`,
      `<line x1="${tx}" y1="${plotBottom}" x2="${tx}" y2="${plotBottom + 5}"/>`,
      `<text x="${tx}" y="${plotBottom + 18}" text-anchor="middle">${h(tickLabel(t, step2))}</text>`
    );
  }
  axis.push(`</g>`);
  const events = (report.events ?? []).map((e) => {
    const ex = num(x(e.at - report.startedAt));
    return `<g class="event"><title>${h(`${rel(report, e.at)}: ${e.message}`)}</title><line x1="${ex}" y1="${TOP}" x2="${ex}" y2="${plotBottom}"/><path d="M${ex} ${TOP} l-4 -6 h8 z"/></g>`;
  });
  const H = plotBottom + AXIS;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="gantt" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="Timeline of the run, one lane per worker">
` + [...parts, ...axis, ...barParts, ...events].join("\n") + "\n</svg>";
}
var CSS = `
:root { --built: #2da44e; --cached: #8c959f; --failed: #cf222e; --skipped: #bf8700; --cancelled: #6e7781;
  --fg: #1f2328; --muted: #656d76; --border: #d0d7de; --bg: #fff; --lane: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1140px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; display: flex; align-items: center; gap: 10px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--border); }
.meta { color: var(--muted); margin: 0 0 16px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.pill { display: inline-block; border-radius: 999px; padding: 1px 10px; font-size: 13px; font-weight: 600; color: #fff; background: var(--cancelled); }
.pill.succeeded { background: var(--built); } .pill.failed { background: var(--failed); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; padding: 0; list-style: none; }
.cards li { border: 1px solid var(--border); border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.cards strong { display: block; font-size: 22px; }
.cards span { color: var(--muted); font-size: 12px; }
.cards .failed strong { color: var(--failed); } .cards .built strong { color: var(--built); }
.totals { font-weight: 600; }
.chart { overflow-x: auto; border: 1px solid var(--border); border-radius: 6px; }
svg.gantt { display: block; max-width: 100%; height: auto; font-family: inherit; }
.lane-bg { fill: var(--bg); } .lane-bg.odd { fill: var(--lane); }
.lane-name { font-size: 13px; font-weight: 600; fill: var(--fg); }
.lane-sub { font-size: 11px; fill: var(--muted); }
.bar rect { stroke: rgba(0,0,0,.25); stroke-width: 1; }
.bar.built rect { fill: var(--built); } .bar.failed rect { fill: var(--failed); }
.bar.retried rect { stroke: var(--skipped); stroke-width: 2; stroke-dasharray: 4 2; }
.bar text { font-size: 11px; fill: #fff; pointer-events: none; }
.axis line { stroke: var(--muted); } .axis line.grid { stroke: var(--border); stroke-dasharray: 2 3; }
.axis text { font-size: 11px; fill: var(--muted); }
.event line { stroke: #8250df; stroke-width: 1.5; stroke-dasharray: 5 3; } .event path { fill: #8250df; }
.legend { display: flex; gap: 16px; flex-wrap: wrap; color: var(--muted); font-size: 12px; margin: 8px 0 0; padding: 0; list-style: none; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 5px; vertical-align: -2px; }
.legend .built { background: var(--built); } .legend .failed { background: var(--failed); }
.legend .retried { border: 2px dashed var(--skipped); } .legend .event { width: 2px; background: #8250df; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--border); vertical-align: top; }
th { background: var(--lane); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
.status { display: inline-block; border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.status.built { background: var(--built); } .status.cached { background: var(--cached); }
.status.failed { background: var(--failed); } .status.skipped { background: var(--skipped); }
.status.cancelled { background: var(--cancelled); }
.muted { color: var(--muted); }
ul.events { padding-left: 20px; } ul.events code { color: var(--muted); }
`;
function htmlTable(header, rows, numeric = []) {
  const cls = (i) => numeric[i] ? ' class="num"' : "";
  return `<table>
<thead><tr>${header.map((c, i) => `<th${cls(i)}>${h(c)}</th>`).join("")}</tr></thead>
<tbody>
` + rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${c}</td>`).join("")}</tr>`).join("\n") + `
</tbody>
</table>`;
}
function renderHtml(report) {
  const c = countByStatus(report);
  const body = [];
  body.push(
    `<h1>dist-build run <span class="pill ${h(report.status)}">${h(report.status)}</span></h1>`,
    `<p class="meta">Config <code>${h(report.config)}</code> \xB7 started ${h(new Date(report.startedAt).toISOString())} \xB7 took ${h(fmtMs(report.durationMs))}</p>`,
    `<ul class="cards">` + STATUSES.map((s) => `<li class="${s}"><strong>${c[s]}</strong><span>${s}</span></li>`).join(
      ""
    ) + `<li><strong>${h(fmtMs(report.durationMs))}</strong><span>duration</span></li><li><strong>${report.workers.length}</strong><span>workers</span></li></ul>`,
    `<p class="totals">${h(totalsLine(report))}</p>`
  );
  body.push(
    `<h2>Timeline</h2>`,
    `<div class="chart">
${ganttSvg(report)}
</div>`,
    `<ul class="legend"><li><i class="built"></i>built</li><li><i class="failed"></i>failed</li><li><i class="retried"></i>re-run after a lost worker</li><li><i class="event"></i>event</li><li>cached, skipped and cancelled invocations are not drawn</li></ul>`
  );
  body.push(`<h2>Invocations</h2>`);
  body.push(
    report.invocations.length === 0 ? `<p class="muted">No invocations.</p>` : htmlTable(
      ["Invocation", "Worker", "Result", "Duration", "Started", "Cache key", "Note"],
      report.invocations.map((i) => {
        const d = durationMs(i);
        const t = interval(i);
        const details = resultText(i).slice(i.status.length).trim();
        return [
          h(i.unit) + (i.invocation !== i.unit ? ` <span class="muted">(${h(i.invocation)})</span>` : ""),
          i.worker === null ? '<span class="muted">-</span>' : h(i.worker),
          `<span class="status ${i.status}">${i.status}</span>` + (details ? ` <span class="muted">${h(details)}</span>` : ""),
          d === void 0 ? "-" : h(fmtMs(d)),
          t ? h(rel(report, t.start)) : "-",
          `<code title="${h(i.cacheKey)}">${h(shortDigest(i.cacheKey))}</code>`,
          h(i.reason ?? "")
        ];
      }),
      [false, false, false, true, true]
    )
  );
  if (report.workers.length) {
    body.push(`<h2>Workers</h2>`);
    body.push(
      htmlTable(
        ["Worker", "Annotations", "Built", "Cached", "Busy", "Utilisation"],
        report.workers.map((w) => [
          h(workerLabel(w)),
          Object.entries(w.annotations).map(([k, v]) => `<code>${h(k)}=${h(v)}</code>`).join(" "),
          String(w.built),
          String(w.cached),
          h(fmtMs(w.busyMs)),
          report.durationMs > 0 ? `${Math.round(100 * w.busyMs / report.durationMs)}%` : "-"
        ]),
        [false, false, true, true, true, true]
      )
    );
  }
  if (report.exports.length) {
    body.push(`<h2>Exports</h2>`);
    body.push(
      htmlTable(
        ["Invocation", "Worker", "Path", "Destination", "Entries", "Size", "Digest"],
        report.exports.flatMap(
          (e) => e.outputs.map((o) => [
            h(e.unit),
            h(e.worker),
            `<code>${h(o.path)}</code>`,
            `<code>${h(o.dest)}</code>`,
            String(o.files),
            h(formatSize(o.size)),
            `<code>${h(o.digest)}</code>`
          ])
        ),
        [false, false, false, false, true, true]
      )
    );
  }
  if (report.pushes?.length) {
    body.push(`<h2>Images pushed</h2>`);
    body.push(
      htmlTable(
        ["Invocation", "Worker", "Reference", "Digest"],
        report.pushes.flatMap(
          (p) => p.images.map((i) => [
            h(p.unit),
            h(p.worker),
            `<code>${h(i.ref)}</code>`,
            `<code>${h(i.digest)}</code>`
          ])
        ),
        [false, false, false, false]
      )
    );
  }
  if (report.events?.length) {
    body.push(`<h2>Events</h2>`);
    body.push(
      `<ul class="events">
` + [...report.events].sort((a, b) => a.at - b.at).map((e) => `<li><code>${h(rel(report, e.at))}</code> ${h(e.message)}</li>`).join("\n") + `
</ul>`
    );
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dist-build run ${h(report.status)}: ${h(report.config)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body.join("\n")}
</main>
</body>
</html>
`;
}
function shownPath(path) {
  return pathBelow(process.cwd(), path) ?? path;
}

// src/report/index.ts
var REPORT_FILES = {
  json: "dist-build-report.json",
  markdown: "dist-build-report.md",
  html: "dist-build-report.html"
};
async function writeReport(dir, report) {
  await mkdir11(dir, { recursive: true });
  const paths = {
    json: join19(dir, REPORT_FILES.json),
    markdown: join19(dir, REPORT_FILES.markdown),
    html: join19(dir, REPORT_FILES.html)
  };
  await Promise.all([
    writeFile5(paths.json, JSON.stringify(report, null, 2) + "\n"),
    writeFile5(paths.markdown, renderMarkdown(report)),
    writeFile5(paths.html, renderHtml(report))
  ]);
  return paths;
}
export {
  ConfigError,
  CorruptBlobError,
  DEFAULT_MAX_ENTRY_BYTES,
  DIGEST_PATTERN,
  LayeredStore,
  LocalStore,
  Master,
  MissingOutputError,
  NoEligibleWorkerError,
  PlanInputError,
  RESULT_FORMAT,
  Run,
  STORE_BACKENDS,
  SignedStore,
  SigningConfigError,
  StoreOptionsError,
  UnsafeArchiveError,
  VERSION2 as VERSION,
  WorkerAgent,
  assertDigest,
  blobOpenerFor,
  checkSignature,
  computeCacheKeys,
  configSchema,
  createCA,
  digestOutputs,
  digestStream,
  effectiveStores,
  ephemeralTls,
  expandUnits,
  expectedDuration,
  formatAddress,
  formatDuration,
  formatIssue,
  isDigest,
  isVerifiedFor,
  issueCert,
  loadConfig,
  loadTls,
  manifestProblems,
  numberedWorkers,
  openStore,
  openStores,
  outputPathProblem,
  outputsPresent,
  parseAddress,
  parseConfig,
  parseDuration,
  place,
  planBuild,
  readHistory,
  readMembers,
  readPrevious,
  renderHtml,
  renderMarkdown,
  restoreOutputs,
  saveOutputs,
  sha256Digest,
  signManifest,
  summaryTable,
  verifiedStream,
  workerCount,
  writeReport
};
