import { createRequire as __dbCreateRequire } from 'node:module'; const require = __dbCreateRequire(import.meta.url);

// src/store/types.ts
var RESULT_FORMAT = "dist-build/result/v1";
var DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
var CorruptBlobError = class extends Error {
  digest;
  /** What the bytes did hash to, when known. */
  actual;
  constructor(digest, actual, message) {
    super(message ?? `blob ${digest} is corrupt${actual ? ` (its bytes hash to ${actual})` : ""}`);
    this.name = "CorruptBlobError";
    this.digest = digest;
    this.actual = actual;
  }
};
var UnsafeArchiveError = class extends Error {
  /** The entry's name as it appears in the archive (root-relative). */
  entry;
  constructor(entry, reason) {
    super(`unsafe archive entry ${JSON.stringify(entry)}: ${reason}`);
    this.name = "UnsafeArchiveError";
    this.entry = entry;
  }
};
var MissingOutputError = class extends Error {
  path;
  constructor(path) {
    super(`declared output ${path} was not produced`);
    this.name = "MissingOutputError";
    this.path = path;
  }
};
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

// src/store/digest.ts
import { createHash as createHash2 } from "node:crypto";
import { readSync } from "node:fs";
import { Readable } from "node:stream";

// src/store/hash-pipe.ts
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
var SLOT = 1024 * 1024;
var SLOTS_PER_PIPE = 4;
var POOL_MAX = 16;
var THREAD_SOURCE = `
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
var pool = [];
var slotKeys = 0;
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
var HashThread = class {
  worker;
  pipes = /* @__PURE__ */ new Map();
  nextId = 1;
  /** Replies still to come. */
  due = 0;
  dead;
  constructor() {
    this.worker = new Worker(THREAD_SOURCE, { eval: true, name: "dist-build sha256" });
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
var threads = [];
function maxHashThreads(env = process.env, cores = availableParallelism()) {
  const given = env.DIST_BUILD_HASH_THREADS;
  if (given === void 0 || given === "") return Math.max(1, Math.min(2, cores - 1));
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
var HashPipe = class {
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
      await new Promise((resolve) => this.waiters.push(resolve));
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
    const hex = await new Promise((resolve, reject) => {
      this.digestWaiter = { resolve, reject };
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

// src/store/digest.ts
var VERIFIED = /* @__PURE__ */ Symbol.for("dist-build.store.verified-digest");
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
    let size = 0;
    for await (const buf of hashedChunks(data, pipe)) size += buf.length;
    return { digest: await pipe.digest(), size };
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
var VerifiedFileChunks = class {
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
var YIELD_MS = 20;

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

// src/config/size.ts
var UNITS = {
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
var SIZE_PATTERN = "^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$";
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

// src/store/errors.ts
var StoreOptionsError = class extends Error {
  /**
   * @param option the option the problem is about, when it is one: `openStores` then points at
   *   that option's line in the config.
   */
  constructor(message, option) {
    super(message);
    this.option = option;
  }
  option;
  name = "StoreOptionsError";
};
function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}

export {
  SLOT,
  HashPipe,
  RESULT_FORMAT,
  CorruptBlobError,
  UnsafeArchiveError,
  MissingOutputError,
  isDigest,
  assertDigest,
  outputPathProblem,
  holdsDeclaredOutputs,
  manifestProblems,
  sha256Digest,
  hashedChunks,
  digestStream,
  verifiedStream,
  isVerifiedFor,
  VerifiedFileChunks,
  mapLimit,
  SIZE_PATTERN,
  parseSize,
  formatSize,
  StoreOptionsError,
  errorText
};
