/**
 * SHA-256 of a byte stream, computed on a helper thread when the stream is big enough to be worth
 * it, so hashing (about 0.8 s per GiB on one core) runs beside the file I/O of packing and
 * restoring instead of after it.
 *
 * A `HashPipe` hands out slot buffers of `SLOT` bytes (backed by `SharedArrayBuffer`s, so the
 * helper thread reads them without a copy); the caller fills one, `submit`s it (optionally with a
 * promise the slot must also wait for, such as its write to disk) and takes the next. A pipe has
 * at most `SLOTS_PER_PIPE` slots out at once, which bounds its memory to 4 MiB.
 *
 * Small streams never touch the thread: the first `SLOTS_PER_PIPE - 1` submitted slots are held
 * back; a stream that ends within them is hashed inline by `digest()`, and the hashing threads
 * (started on first use, up to two and one fewer than the cores, shared by every pipe of the
 * process, never keeping the process alive when idle) only see streams longer than that. Either
 * way the digest is the same.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Bytes per slot. A multiple of 512, so tar records never straddle two slots. */
export const SLOT = 1024 * 1024;
/** Slots one pipe may have out (being filled, hashed or written) at once. */
export const SLOTS_PER_PIPE = 4;
/** Free slots kept for reuse across pipes. */
const POOL_MAX = 16;

// Plain CommonJS run with `eval: true`, so the bundles need no separate worker file.
const THREAD_SOURCE = `
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

interface Slot {
  sab: SharedArrayBuffer;
  buf: Buffer;
  /** Names the slot to the thread, which keeps the memory it was sent once (sending a
   * SharedArrayBuffer costs far more than a number). */
  key: number;
  /** The threads that have been sent this slot's memory (slots go to either thread when two
   * pipes run at once). */
  sentTo: Set<HashThread>;
}

/** Free slots; the thread knows them all, so slots are reused rather than dropped. */
const pool: Slot[] = [];
let slotKeys = 0;

function takeSlot(): Slot {
  const s = pool.pop();
  if (s) return s;
  const sab = new SharedArrayBuffer(SLOT);
  return { sab, buf: Buffer.from(sab), key: slotKeys++, sentTo: new Set() };
}

function giveSlot(s: Slot): void {
  if (pool.length < POOL_MAX) pool.push(s);
  else for (const t of s.sentTo) t.forget(s.key);
}

interface ThreadReply {
  id: number;
  slot?: number;
  hex?: string;
}

/** A hashing thread; it keeps the process alive only while a reply is due. */
class HashThread {
  private readonly worker: Worker;
  private readonly pipes = new Map<number, HashPipe>();
  private nextId = 1;
  /** Replies still to come. */
  private due = 0;
  private dead: Error | undefined;

  constructor() {
    this.worker = new Worker(THREAD_SOURCE, { eval: true, name: 'dist-build sha256' });
    this.worker.unref();
    this.worker.on('message', (m: ThreadReply) => {
      this.replied();
      this.pipes.get(m.id)?.onReply(m);
    });
    const die = (err: Error) => {
      this.dead ??= err;
      const i = threads.indexOf(this);
      if (i >= 0) threads.splice(i, 1);
      for (const p of [...this.pipes.values()]) p.onThreadDeath(err);
      this.pipes.clear();
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`the hashing thread exited (code ${code})`)));
  }

  /** Pipes using this thread. */
  get load(): number {
    return this.pipes.size;
  }

  attach(pipe: HashPipe): number {
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    this.pipes.set(id, pipe);
    return id;
  }

  detach(id: number, drop: boolean): void {
    if (!this.pipes.delete(id)) return;
    if (drop) this.worker.postMessage({ op: 'drop', id });
  }

  /** The thread may let go of a slot's memory. */
  forget(key: number): void {
    this.worker.postMessage({ op: 'forget', key });
  }

  /** Sends a request that gets a reply; the thread is referenced while any reply is due. */
  post(msg: {
    op: 'update' | 'digest';
    id: number;
    slot?: number;
    key?: number;
    sab?: SharedArrayBuffer;
    length?: number;
  }): void {
    if (this.due++ === 0) this.worker.ref();
    this.worker.postMessage(msg);
  }

  private replied(): void {
    if (--this.due === 0) this.worker.unref();
  }
}

/** Hashing threads: one per pipe hashing at once, up to `maxHashThreads()` (the hash of one
 * stream is sequential, so two outputs packed side by side use two cores). One core is left to
 * the main thread's file and network I/O: on 2 cores a second hashing thread only competed for
 * them (an A/B run: saves and registry fetches of 1 GiB as fast or faster with one thread) and
 * cost ~10 MB of memory (a thread is a V8 isolate). */
const threads: HashThread[] = [];

/**
 * How many hashing threads a process may start: `DIST_BUILD_HASH_THREADS` (1-8) when set, else
 * one per core beyond the first, at most two.
 */
export function maxHashThreads(
  env: NodeJS.ProcessEnv = process.env,
  cores: number = availableParallelism(),
): number {
  const given = env.DIST_BUILD_HASH_THREADS;
  if (given === undefined || given === '') return Math.max(1, Math.min(2, cores - 1));
  const n = Number(given);
  if (!Number.isInteger(n) || n < 1 || n > 8) {
    throw new RangeError(
      `DIST_BUILD_HASH_THREADS: expected a whole number from 1 to 8, got "${given}"`,
    );
  }
  return n;
}

function pickThread(): HashThread {
  const idle = threads.find((t) => t.load === 0);
  if (idle) return idle;
  if (threads.length < maxHashThreads()) {
    const t = new HashThread();
    threads.push(t);
    return t;
  }
  return threads.reduce((a, b) => (b.load < a.load ? b : a));
}

interface Out {
  slot: Slot;
  /** Bytes submitted; -1 while being filled. */
  length: number;
  hashed: boolean;
  held: boolean;
}

/**
 * An incremental SHA-256 (see the module comment). Use: `acquire()` a buffer, fill it, `submit`
 * it, repeat; then `digest()`. `dispose()` releases everything early (after an error).
 */
export class HashPipe {
  private readonly out = new Map<number, Out>();
  private nextSlot = 0;
  /** Submitted slots not yet hashed, in order, while the pipe is still deciding (inline mode). */
  private readonly pending: number[] = [];
  private id: number | undefined;
  private thread: HashThread | undefined;
  /** The slot `update` is gathering into. */
  private filling: { buf: Buffer; used: number } | undefined;
  private readonly waiters: (() => void)[] = [];
  private digestWaiter: { resolve: (hex: string) => void; reject: (e: Error) => void } | undefined;
  private error: Error | undefined;
  private finished = false;
  private bytes = 0;

  /** Total bytes submitted. */
  get size(): number {
    return this.bytes;
  }

  /** A free slot buffer of `SLOT` bytes; waits while `SLOTS_PER_PIPE` are out. */
  async acquire(): Promise<Buffer> {
    for (;;) {
      if (this.error) throw this.error;
      if (this.out.size < SLOTS_PER_PIPE) break;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const slot = takeSlot();
    this.out.set(this.nextSlot++, { slot, length: -1, hashed: false, held: false });
    return slot.buf;
  }

  /**
   * Hashes `buf[0, length)` (a buffer from `acquire`, submitted in the order acquired). The slot
   * is reused once hashed and `hold` has settled; a rejected `hold` is not this pipe's business.
   */
  submit(buf: Buffer, length: number, hold?: Promise<unknown>): void {
    const n = this.slotOf(buf);
    const o = this.out.get(n)!;
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
    if (this.id !== undefined) {
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
  update(data: Uint8Array): Promise<void> | undefined {
    let offset = 0;
    while (offset < data.length) {
      const fill = this.filling;
      if (!fill)
        return this.acquire().then((buf) => {
          this.filling = { buf, used: 0 };
          return this.update(data.subarray(offset));
        });
      const n = Math.min(SLOT - fill.used, data.length - offset);
      // Buffer#fill with a same-length source is one native memcpy; TypedArray#set into
      // shared memory is V8's relaxed memmove, byte by byte from unaligned network chunks (7x
      // slower, measured).
      fill.buf.fill(data.subarray(offset, offset + n), fill.used, fill.used + n);
      fill.used += n;
      offset += n;
      if (fill.used === SLOT) {
        this.filling = undefined;
        this.submit(fill.buf, SLOT);
      }
    }
    return undefined;
  }

  /** `sha256:<hex>` of everything submitted. The pipe is done afterwards. */
  async digest(): Promise<string> {
    if (this.error) throw this.error;
    if (this.filling) {
      const { buf, used } = this.filling;
      this.filling = undefined;
      this.submit(buf, used);
    }
    this.finished = true;
    if (this.id === undefined) {
      const hash = createHash('sha256');
      for (const n of this.pending.splice(0)) {
        const o = this.out.get(n)!;
        hash.update(o.slot.buf.subarray(0, o.length));
        o.hashed = true;
        this.maybeFree(n);
      }
      return `sha256:${hash.digest('hex')}`;
    }
    const hex = await new Promise<string>((resolve, reject) => {
      this.digestWaiter = { resolve, reject };
      this.thread!.post({ op: 'digest', id: this.id! });
    });
    return `sha256:${hex}`;
  }

  /** Stops using the thread and the slots (slots still held by a write are freed when it ends). */
  dispose(): void {
    if (this.id !== undefined) this.thread?.detach(this.id, !this.finished);
    this.error ??= new Error('hash pipe disposed');
    this.filling = undefined;
    for (const [n, o] of this.out) {
      o.hashed = true;
      this.maybeFree(n);
    }
    this.wake();
  }

  /** @internal */
  onReply(m: ThreadReply): void {
    if (m.hex !== undefined) {
      const w = this.digestWaiter;
      this.digestWaiter = undefined;
      if (this.id !== undefined) this.thread?.detach(this.id, false);
      this.id = undefined;
      w?.resolve(m.hex);
      return;
    }
    const o = this.out.get(m.slot!);
    if (!o) return;
    o.hashed = true;
    this.maybeFree(m.slot!);
  }

  /** @internal */
  onThreadDeath(err: Error): void {
    this.error ??= err;
    this.digestWaiter?.reject(err);
    this.digestWaiter = undefined;
    this.wake();
  }

  private slotOf(buf: Buffer): number {
    for (const [n, o] of this.out) if (o.slot.buf === buf && o.length < 0) return n;
    throw new Error('submit: not a buffer acquired from this pipe, or submitted twice');
  }

  private goThreaded(): void {
    this.thread = pickThread();
    this.id = this.thread.attach(this);
    for (const n of this.pending.splice(0)) this.send(n, this.out.get(n)!);
  }

  private send(n: number, o: Out): void {
    const t = this.thread!;
    const { key, sab } = o.slot;
    const fresh = !o.slot.sentTo.has(t);
    o.slot.sentTo.add(t);
    t.post({
      op: 'update',
      id: this.id!,
      slot: n,
      key,
      sab: fresh ? sab : undefined,
      length: o.length,
    });
  }

  private maybeFree(n: number): void {
    const o = this.out.get(n);
    if (!o || !o.hashed || o.held) return;
    this.out.delete(n);
    giveSlot(o.slot);
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
