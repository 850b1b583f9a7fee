import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LayeredStore } from '../../src/store/layered.js';
import type { LayeredStats } from '../../src/store/layered.js';
import { LocalStore } from '../../src/store/local.js';
import { saveOutputs } from '../../src/store/pack.js';
import { RESULT_FORMAT } from '../../src/store/types.js';
import type { BlobInfo, ResultManifest, Store } from '../../src/store/types.js';

let dir: string;
let warnings: string[];
let fast: LocalStore;
let slow: LocalStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-layered-'));
  warnings = [];
  fast = await LocalStore.open(join(dir, 'fast'));
  slow = await LocalStore.open(join(dir, 'slow'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (data: string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function* bytes(text: string): AsyncGenerator<Buffer> {
  yield Buffer.from(text);
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts).toString();
}

function manifest(cacheKey: string, digests: string[]): ResultManifest {
  return {
    format: RESULT_FORMAT,
    cacheKey,
    unit: 'lib',
    invocation: 'lib',
    exitCode: 0,
    durationMs: 5,
    worker: 'worker-1',
    createdAt: '2024-01-01T00:00:00.000Z',
    outputs: digests.map((digest, i) => ({
      path: `out/${i}`,
      type: 'file',
      digest,
      size: 1,
      files: 1,
    })),
  };
}

/** A store whose every write (and, with `reads`, every read) fails: a cache that is down. */
class BrokenStore implements Store {
  readonly kind = 'broken';
  readonly location = 'nowhere';
  constructor(private readonly reads = false) {}
  private fail(): never {
    throw new Error('service unavailable');
  }
  async hasBlobs(): Promise<Set<string>> {
    return this.reads ? this.fail() : new Set();
  }
  async hasResults(): Promise<Set<string>> {
    return this.reads ? this.fail() : new Set();
  }
  async putBlob(): Promise<BlobInfo> {
    return this.fail();
  }
  async putBlobFile(_file: string): Promise<BlobInfo> {
    return this.fail();
  }
  async openBlob(): Promise<Readable | null> {
    return this.reads ? this.fail() : null;
  }
  async getResult(): Promise<ResultManifest | null> {
    return this.reads ? this.fail() : null;
  }
  async putResult(): Promise<void> {
    this.fail();
  }
}

describe('LayeredStore', () => {
  it('reads fall through the layers in order and copy a slow hit into the faster layers', async () => {
    const a = await slow.putBlob(bytes('output a'));
    const key = sha('key');
    await slow.putResult(manifest(key, [a.digest]));
    const store = new LayeredStore([fast, slow], { onWarning: (m) => warnings.push(m) });

    expect(await store.hasResults([key, sha('none')])).toEqual(new Set([key]));
    expect(await fast.getResult(key)).toBeNull();
    expect(await store.getResult(key)).toEqual(manifest(key, [a.digest]));
    // Copied up: result and blob are now in the fast layer.
    expect(await fast.getResult(key)).toEqual(manifest(key, [a.digest]));
    expect(await readAll((await fast.openBlob(a.digest))!)).toBe('output a');
    // The next read is a hit in the fast layer.
    expect(await store.getResult(key)).not.toBeNull();
    expect(await store.getResult(sha('none'))).toBeNull();
    const s = store.stats();
    expect(s.layers.map((l) => l.results)).toEqual([
      { hits: 1, misses: 2 },
      { hits: 1, misses: 1 },
    ]);
    expect(s.layers[0]!.copiedIn).toBe(1);
    expect(warnings).toEqual([]);
  });

  it('openBlob and hasBlobs see every layer', async () => {
    const a = await slow.putBlob(bytes('only slow'));
    const b = await fast.putBlob(bytes('only fast'));
    const store = new LayeredStore([fast, slow]);
    expect(await store.hasBlobs([a.digest, b.digest, sha('x')])).toEqual(
      new Set([a.digest, b.digest]),
    );
    expect(await readAll((await store.openBlob(a.digest))!)).toBe('only slow');
    expect(await readAll((await store.openBlob(b.digest))!)).toBe('only fast');
    expect(await store.openBlob(sha('x'))).toBeNull();
    expect(store.stats().layers.map((l) => l.blobs)).toEqual([
      { hits: 1, misses: 2 },
      { hits: 1, misses: 1 },
    ]);
  });

  it('writes go to every layer', async () => {
    const store = new LayeredStore([fast, slow]);
    const a = await store.putBlob(bytes('written'));
    const file = join(dir, 'file.bin');
    await writeFile(file, 'from a file');
    const f = await store.putBlobFile(file);
    await store.putResult(manifest(sha('k'), [a.digest, f.digest]));
    for (const layer of [fast, slow]) {
      expect(await layer.hasBlobs([a.digest, f.digest])).toEqual(new Set([a.digest, f.digest]));
      expect(await layer.getResult(sha('k'))).not.toBeNull();
    }
  });

  it('a result reaches every layer with its blobs, also those only one layer held', async () => {
    // saveOutputs uploads only the blobs no layer has: one held by the fast layer alone (an
    // earlier run's output) or by the slow one alone (another worker's) is not written again.
    const onlyFast = await fast.putBlob(bytes('fast only'));
    const onlySlow = await slow.putBlob(bytes('slow only'));
    const store = new LayeredStore([fast, slow], { onWarning: (m) => warnings.push(m) });
    await store.putResult(manifest(sha('k'), [onlyFast.digest, onlySlow.digest]));
    expect(warnings).toEqual([]);
    for (const layer of [fast, slow]) {
      expect((await layer.hasBlobs([onlyFast.digest, onlySlow.digest])).size).toBe(2);
      expect(await layer.getResult(sha('k'))).not.toBeNull();
    }
    // A blob no layer holds is still refused by the first layer.
    await expect(store.putResult(manifest(sha('m'), [sha('nowhere')]))).rejects.toThrow();
  });

  it('saveOutputs writes an output to every layer that lacks it, from the packed file', async () => {
    const root = join(dir, 'tree');
    await mkdir(join(root, 'out'), { recursive: true });
    await writeFile(join(root, 'out', 'a.txt'), 'alpha');
    await writeFile(join(root, 'out', 'b.txt'), 'beta');
    // Each output was saved before through one layer only: a.txt in the slow one (another
    // worker), b.txt in the fast one (an earlier run here).
    const [a] = await saveOutputs(slow, root, ['out/a.txt']);
    const [b] = await saveOutputs(fast, root, ['out/b.txt']);
    const reads: string[] = [];
    const counting = (s: LocalStore): Store =>
      Object.assign(Object.create(s) as Store, {
        openBlob: (d: string) => (reads.push(d), s.openBlob(d)),
      });
    const store = new LayeredStore([counting(fast), counting(slow)], {
      onWarning: (m) => warnings.push(m),
    });
    const entries = await saveOutputs(store, root, ['out/a.txt', 'out/b.txt']);
    expect(entries.map((e) => e.digest)).toEqual([a!.digest, b!.digest]);
    for (const layer of [fast, slow]) {
      expect((await layer.hasBlobs([a!.digest, b!.digest])).size).toBe(2);
    }
    expect(reads).toEqual([]); // nothing copied between layers: written from the packed file
    expect(await store.storedEverywhere([a!.digest, b!.digest, sha('none')])).toEqual(
      new Set([a!.digest, b!.digest]),
    );
    expect(warnings).toEqual([]);
  });

  it('a failing slower layer is a warning, not an error; a failing first layer is an error', async () => {
    const store = new LayeredStore([fast, new BrokenStore(true)], {
      onWarning: (m) => warnings.push(m),
    });
    const a = await store.putBlob(bytes('still stored'));
    await store.putResult(manifest(sha('k'), [a.digest]));
    expect(await fast.getResult(sha('k'))).not.toBeNull();
    // Reads from the broken layer are misses too.
    expect(await store.getResult(sha('other'))).toBeNull();
    expect(await store.hasBlobs([sha('other')])).toEqual(new Set());
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/broken \(nowhere\).*service unavailable/);
    expect(store.stats().layers[1]!.errors).toBeGreaterThanOrEqual(3);

    const firstBroken = new LayeredStore([new BrokenStore(), fast]);
    await expect(firstBroken.putBlob(bytes('x'))).rejects.toThrow(/service unavailable/);
  });

  it('a result whose blob is corrupt in the slow layer is a miss there, not copied', async () => {
    const a = await slow.putBlob(bytes('good'));
    await slow.putResult(manifest(sha('k'), [a.digest]));
    await writeFile(slow.blobPath(a.digest), 'evil');
    const store = new LayeredStore([fast, slow], { onWarning: (m) => warnings.push(m) });
    expect(await store.getResult(sha('k'))).toBeNull();
    expect(await fast.hasBlobs([a.digest])).toEqual(new Set());
    expect(await fast.getResult(sha('k'))).toBeNull();
    expect(warnings.join('\n')).toMatch(/corrupt/);
  });

  it('peekResults answers each key from the first layer holding it and its blobs, copying nothing', async () => {
    const a = await slow.putBlob(bytes('output a'));
    const b = await fast.putBlob(bytes('output b'));
    const [inSlow, inFast, none] = [sha('in slow'), sha('in fast'), sha('none')];
    await slow.putResult(manifest(inSlow, [a.digest]));
    await fast.putResult(manifest(inFast, [b.digest]));
    const store = new LayeredStore([fast, slow], { onWarning: (m) => warnings.push(m) });

    const found = await store.peekResults([inSlow, inFast, none]);
    expect(found).toEqual(
      new Map([
        [inFast, manifest(inFast, [b.digest])],
        [inSlow, manifest(inSlow, [a.digest])],
      ]),
    );
    // Nothing copied into the fast layer.
    expect(await fast.getResult(inSlow)).toBeNull();
    expect(await fast.hasBlobs([a.digest])).toEqual(new Set());
    // A hit where a key was found, a miss in each layer before (and everywhere for `none`).
    expect(store.stats().layers.map((l) => l.results)).toEqual([
      { hits: 1, misses: 2 },
      { hits: 1, misses: 1 },
    ]);
    // A result whose layer lacks one of its blobs is a miss there.
    await rm(slow.blobPath(a.digest));
    expect(await store.peekResults([inSlow])).toEqual(new Map());
    expect(warnings).toEqual([]);
  });

  it('peekResults with a budget for the slow layers answers with the hits found when one hangs', async () => {
    const b = await fast.putBlob(bytes('output b'));
    const inFast = sha('in fast');
    await fast.putResult(manifest(inFast, [b.digest]));
    const never = () => new Promise<never>(() => {}); // accepts, never answers
    const hung = Object.assign(Object.create(slow) as Store, {
      kind: 'registry',
      hasResults: never,
      hasBlobs: never,
      putResult: never,
    });
    const store = new LayeredStore([fast, hung], { onWarning: (m) => warnings.push(m) });
    const found = await store.peekResults([inFast, sha('elsewhere')], { slowLayersMs: 100 });
    expect([...found.keys()]).toEqual([inFast]);
    expect(warnings).toEqual([
      expect.stringMatching(
        /cache store registry .*read of results failed: no answer within the cache query's 0.1 s; left alone for 60 s/,
      ),
    ]);
    // Then it is left alone: a write does not wait for it.
    await store.putResult(manifest(sha('new'), [b.digest]));
    expect(await fast.getResult(sha('new'))).not.toBeNull();
  });

  it('a slow layer that answers is cut off at the deadline but not left alone', async () => {
    const b = await slow.putBlob(bytes('output b'));
    const keys = Array.from({ length: 200 }, (_, i) => sha(`k${i}`));
    for (const k of keys) await slow.putResult(manifest(k, [b.digest]));
    const later = <T>(v: Promise<T>) => new Promise<T>((r) => setTimeout(() => r(v), 30));
    const sluggish = Object.assign(Object.create(slow) as Store, {
      kind: 'registry',
      hasResults: (k: readonly string[]) => later(slow.hasResults(k)),
      getResult: (k: string) => later(slow.getResult(k)),
      hasBlobs: (d: readonly string[]) => later(slow.hasBlobs(d)),
    });
    const store = new LayeredStore([fast, sluggish], { onWarning: (m) => warnings.push(m) });
    // 200 keys take 25 rounds of 60 ms; no single request comes near half of 600 ms.
    const found = await store.peekResults(keys, { slowLayersMs: 600 });
    expect(found.size).toBeLessThan(keys.length);
    expect(warnings.join('\n')).not.toMatch(/left alone/);
    // Still used: a write reaches it.
    await store.putResult(manifest(sha('new'), [b.digest]));
    expect(await slow.getResult(sha('new'))).not.toBeNull();
  });

  it('peekResults names the keys a slow layer could not settle, and a layer warming up is not left alone', async () => {
    const b = await slow.putBlob(bytes('output b'));
    const [there, none, inFast] = [sha('there'), sha('none'), sha('in fast')];
    await slow.putResult(manifest(there, [b.digest]));
    const f = await fast.putBlob(bytes('output f'));
    await fast.putResult(manifest(inFast, [f.digest]));
    let warmed!: () => void;
    const ready = new Promise<void>((r) => (warmed = r));
    const after =
      <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
      async (...a: A) => {
        await ready;
        return fn(...a);
      };
    const warming = Object.assign(Object.create(slow) as Store, {
      kind: 'gha',
      warm: () => ready,
      hasResults: after((k: readonly string[]) => slow.hasResults(k)),
      getResult: after((k: string) => slow.getResult(k)),
      hasBlobs: after((d: readonly string[]) => slow.hasBlobs(d)),
      putResult: after((m: ResultManifest) => slow.putResult(m)),
    });
    const store = new LayeredStore([fast, warming], { onWarning: (m) => warnings.push(m) });
    void store.warm();
    const unsettled = new Set<string>();
    const found = await store.peekResults([there, none, inFast], { slowLayersMs: 100, unsettled });
    expect([...found.keys()]).toEqual([inFast]);
    expect(unsettled).toEqual(new Set([there, none]));
    // Not left alone: once warm, it answers and takes writes.
    warmed();
    expect(await store.getResult(there)).toEqual(manifest(there, [b.digest]));
    await store.putResult(manifest(sha('new'), [b.digest]));
    expect(await slow.getResult(sha('new'))).not.toBeNull();
    expect(warnings).toEqual([]);
    // Settled now: nothing left unsettled.
    const again = new Set<string>();
    await store.peekResults([there, none], { slowLayersMs: 100, unsettled: again });
    expect(again).toEqual(new Set());
  });

  it('pullBlob brings a blob from the first layer that has it into the first layer, verified', async () => {
    const a = await slow.putBlob(bytes('pulled'));
    const store = new LayeredStore([fast, slow], { onWarning: (m) => warnings.push(m) });
    expect(await store.pullBlob(a.digest)).toBe(true);
    expect(await readAll((await fast.openBlob(a.digest))!)).toBe('pulled');
    expect(await store.pullBlob(a.digest)).toBe(true); // already there
    expect(await store.pullBlob(sha('nowhere'))).toBe(false);
    // Corrupt in the slow layer: not copied, a warning, and the first layer does not hold it.
    const c = await slow.putBlob(bytes('good'));
    await writeFile(slow.blobPath(c.digest), 'evil');
    expect(await store.pullBlob(c.digest)).toBe(false);
    expect(await fast.hasBlobs([c.digest])).toEqual(new Set());
    expect(warnings.join('\n')).toMatch(/corrupt.*, as read from local \(.*slow\)/);
  });

  it("a copy cut short by the layer it reads from is that layer's failure, not the target's", async () => {
    const a = await slow.putBlob(bytes('x'.repeat(10_000)));
    // The slower layer's download breaks off (a registry whose connection is lost).
    const cut: Store = Object.assign(Object.create(slow) as LocalStore, {
      kind: 'remote',
      location: 'far away',
      openBlob: async () =>
        Readable.from(
          (async function* () {
            yield Buffer.from('x'.repeat(100));
            throw new Error('the connection was lost after 100 bytes');
          })(),
        ),
    });
    const store = new LayeredStore([fast, cut], { onWarning: (m) => warnings.push(m) });
    expect(await store.pullBlob(a.digest)).toBe(false);
    expect(warnings).toEqual([
      expect.stringMatching(
        /^cache store remote \(far away\): read for copy of blob sha256:\w+ failed: the connection was lost after 100 bytes;/,
      ),
    ]);
    expect((await store.stats()).layers.map((l) => l.errors)).toEqual([0, 1]);
  });

  it('flush flushes every layer and writes the counters', async () => {
    let flushed = 0;
    const flushing: Store = Object.assign(Object.create(fast) as LocalStore, {
      flush: async () => void flushed++,
    });
    const statsFile = join(dir, 'stats', 'worker-1.json');
    const store = new LayeredStore([fast, flushing], { statsFile, slot: 'worker-1' });
    expect(await store.getResult(sha('none'))).toBeNull();
    await store.flush();
    expect(flushed).toBe(1);
    const written = JSON.parse(await readFile(statsFile, 'utf8')) as LayeredStats;
    expect(written.slot).toBe('worker-1');
    expect(written.layers[0]!.results).toEqual({ hits: 0, misses: 1 });
  });

  it('lists results of every layer that can, once each', async () => {
    const a = await fast.putBlob(bytes('a'));
    await slow.putBlob(bytes('a'));
    await fast.putResult(manifest(sha('one'), [a.digest]));
    await slow.putResult(manifest(sha('one'), [a.digest]));
    await slow.putResult(manifest(sha('two'), [a.digest]));
    const store = new LayeredStore([fast, slow, new BrokenStore()]);
    const keys: string[] = [];
    for await (const r of store.listResults!()) keys.push(r.cacheKey);
    expect(keys.sort()).toEqual([sha('one'), sha('two')].sort());
    expect(store.kind).toBe('local+broken');
  });
});

test('a single-pass save goes to every layer: packed once, uploaded from the file, renamed into the first', async () => {
  const { saveOutputs } = await import('../../src/store/pack.js');
  const { mkdir, readdir } = await import('node:fs/promises');
  const store = new LayeredStore([fast, slow], { onWarning: (m) => warnings.push(m) });
  expect(typeof store.tempDir).toBe('function');
  const root = join(dir, 'tree');
  await mkdir(join(root, 'out'), { recursive: true });
  await writeFile(join(root, 'out/a.txt'), 'a\n');
  const [entry] = await saveOutputs(store, root, ['out']);
  expect((await fast.hasBlobs([entry!.digest])).has(entry!.digest)).toBe(true);
  expect((await slow.hasBlobs([entry!.digest])).has(entry!.digest)).toBe(true);
  expect(await readdir(await store.tempDir!())).toEqual([]);
  expect(warnings).toEqual([]);
});

test('a slower layer whose adopting only reads the file gets it with its digest, not hashed again', async () => {
  const { saveOutputs } = await import('../../src/store/pack.js');
  const { SignedStore } = await import('../../src/store/signing.js');
  const { mkdir } = await import('node:fs/promises');
  /** Keeps what it is handed in another local store, recording how it was handed over. */
  class Uploader extends BrokenStore {
    readonly adoptReadsOnly = true;
    readonly calls: string[] = [];
    constructor(private readonly target: LocalStore) {
      super();
    }
    async tempDir(): Promise<string> {
      return dir;
    }
    override async putBlobFile(file: string): Promise<BlobInfo> {
      this.calls.push('putBlobFile');
      return this.target.putBlobFile(file);
    }
    async adoptBlobFile(file: string, digest: string): Promise<BlobInfo> {
      this.calls.push('adoptBlobFile');
      const text = await readFile(file, 'utf8'); // still there, and left there
      expect(sha(text)).toBe(digest);
      return this.target.putBlob(bytes(text), digest);
    }
  }
  const root = join(dir, 'tree');
  await mkdir(join(root, 'out'), { recursive: true });
  await writeFile(join(root, 'out/a.txt'), 'a\n');
  const direct = new Uploader(slow);
  const signed = new Uploader(await LocalStore.open(join(dir, 'signed')));
  const store = new LayeredStore([fast, direct, new SignedStore(signed, { secret: 's' })], {
    onWarning: (m) => warnings.push(m),
  });
  const [entry] = await saveOutputs(store, root, ['out']);
  expect(direct.calls).toEqual(['adoptBlobFile']);
  expect(signed.calls).toEqual(['adoptBlobFile']);
  expect((await fast.hasBlobs([entry!.digest])).has(entry!.digest)).toBe(true);
  expect((await slow.hasBlobs([entry!.digest])).has(entry!.digest)).toBe(true);
  expect(warnings).toEqual([]);
});

test('writeBehind: a save returns once the first layer has it; the slower layer gets blobs, then the result, by flush', async () => {
  const { saveOutputs } = await import('../../src/store/pack.js');
  const { mkdir } = await import('node:fs/promises');
  /** Holds every write until released, recording the order writes reach it; at most 4 at once. */
  class Gated implements Store {
    readonly kind = 'gated';
    readonly location = 'behind a gate';
    readonly adoptReadsOnly = true;
    readonly order: string[] = [];
    inFlight = 0;
    most = 0;
    private gate: Promise<void>;
    release!: () => void;
    constructor(private readonly target: LocalStore) {
      this.gate = new Promise((r) => (this.release = r));
    }
    async hasBlobs(d: readonly string[]): Promise<Set<string>> {
      await this.gate;
      return this.target.hasBlobs(d);
    }
    hasResults(k: readonly string[]): Promise<Set<string>> {
      return this.target.hasResults(k);
    }
    openBlob(d: string) {
      return this.target.openBlob(d);
    }
    getResult(k: string) {
      return this.target.getResult(k);
    }
    putBlob(): Promise<BlobInfo> {
      throw new Error('not used');
    }
    putBlobFile(): Promise<BlobInfo> {
      throw new Error('not used');
    }
    private async held<T>(what: string, write: () => Promise<T>): Promise<T> {
      this.most = Math.max(this.most, ++this.inFlight);
      await this.gate;
      this.inFlight--;
      this.order.push(what);
      return write();
    }
    async adoptBlobFile(file: string, digest: string): Promise<BlobInfo> {
      return this.held('blob', () =>
        this.target.putBlobFile(file).then(() => ({ digest, size: 0 })),
      );
    }
    async putResult(m: ResultManifest): Promise<void> {
      return this.held('result', () => this.target.putResult(m));
    }
  }
  const root = join(dir, 'tree');
  for (let i = 0; i < 6; i++) {
    await mkdir(join(root, `out${i}`), { recursive: true });
    await writeFile(join(root, `out${i}/f.txt`), `file ${i}\n`);
  }
  const gated = new Gated(slow);
  const store = new LayeredStore([fast, gated], {
    onWarning: (m) => warnings.push(m),
    writeBehind: true,
  });
  const paths = Array.from({ length: 6 }, (_, i) => `out${i}`);
  // Returns while every write to the slower layer is still held.
  const entries = await saveOutputs(store, root, paths);
  const m = manifest(sha('behind'), []);
  m.outputs = entries;
  await store.putResult(m);
  expect(await fast.getResult(sha('behind'))).not.toBeNull();
  expect(gated.order).toEqual([]);
  expect(await slow.hasResults([sha('behind')])).toEqual(new Set());
  // What the first layer holds is asked of the first layer only (the slower one would hold the
  // save up, as a gha shard still restoring does).
  const again = await saveOutputs(store, root, paths);
  expect(again).toEqual(entries);
  let flushed = false;
  const flushing = store.flush().then(() => (flushed = true));
  await new Promise((r) => setTimeout(r, 50));
  expect(flushed).toBe(false); // flush waits for the writes behind
  gated.release();
  await flushing;
  // Blobs first (4 at a time), then the result naming them, which the slower layer accepted.
  expect(gated.order).toEqual([...paths.map(() => 'blob'), 'result']);
  expect(gated.most).toBe(4);
  expect(await slow.getResult(sha('behind'))).not.toBeNull();
  expect(warnings).toEqual([]);
});

test('writeBehind: a blob evicted from the first layer before its upload is skipped, with its result, and warns nothing', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let refuse = false;
  /** A slower store (one that adopts by reading, as the registry) whose writes wait for a gate. */
  const gated: Store & { adoptReadsOnly: boolean } = {
    kind: 'registry',
    location: 'example.test/cache',
    adoptReadsOnly: true,
    hasBlobs: (d) => slow.hasBlobs(d),
    hasResults: (k) => slow.hasResults(k),
    openBlob: (d) => slow.openBlob(d),
    getResult: (k) => slow.getResult(k),
    putBlob: (s, d) => slow.putBlob(s, d),
    putBlobFile: (f) => slow.putBlobFile(f),
    adoptBlobFile: async (file: string, digest: string): Promise<BlobInfo> => {
      await gate;
      if (refuse) throw new Error('denied: requested access to the resource is denied');
      return { ...(await slow.putBlobFile(file)), digest };
    },
    putResult: async (m) => {
      await gate;
      return slow.putResult(m);
    },
  };
  const store = new LayeredStore([fast, gated], {
    onWarning: (m) => warnings.push(m),
    writeBehind: true,
  });
  const root = join(dir, 'tree');
  await mkdir(join(root, 'out'), { recursive: true });
  const save = async (text: string) => {
    await writeFile(join(root, 'out/f.txt'), text);
    const m = manifest(sha(text), []);
    m.outputs = await saveOutputs(store, root, ['out']);
    await store.putResult(m);
    return m;
  };
  const evicted = await save('evicted');
  // The local store makes room (a full disk, a prune) while the uploads wait.
  expect((await fast.prune(0, { graceMs: 0 })).removedBlobs).toBe(1);
  release();
  await store.flush();
  expect(await slow.hasResults([evicted.cacheKey])).toEqual(new Set());
  expect(warnings).toEqual([]);
  // The layer's one warning is still there for a real failure of it.
  refuse = true;
  await save('refused');
  await store.flush();
  expect(warnings).toEqual([
    expect.stringMatching(
      /^cache store registry \(example\.test\/cache\): write of blob sha256:[0-9a-f]{64} failed: denied: requested access/,
    ),
  ]);
});

test('writeBehind: what a killed worker left for the slower layer goes there when the next store on its directory warms up', async () => {
  const { saveOutputs } = await import('../../src/store/pack.js');
  const { mkdir, readdir, rename } = await import('node:fs/promises');
  const { spawnSync } = await import('node:child_process');
  const root = join(dir, 'tree');
  await mkdir(join(root, 'out'), { recursive: true });
  await writeFile(join(root, 'out/a.txt'), 'a\n');
  const pendingDir = join(dir, 'fast', 'pending');
  /** A slower layer that never answers a write: the worker is killed before it is done. */
  const hung: Store = Object.assign(Object.create(slow) as Store, {
    adoptReadsOnly: false,
    putBlobFile: () => new Promise<BlobInfo>(() => undefined),
    putResult: () => new Promise<void>(() => undefined),
  });
  const killed = new LayeredStore([fast, hung], { writeBehind: true, pendingDir });
  const entries = await saveOutputs(killed, root, ['out']);
  const m = manifest(sha('pending'), []);
  m.outputs = entries;
  await killed.putResult(m);
  const [marker] = await readdir(pendingDir);
  expect(marker).toBe(`${process.pid}-${sha('pending').slice(7)}`);
  // As if its process had died with it: a pid that is gone.
  const dead = spawnSync('true').pid;
  await rename(join(pendingDir, marker!), join(pendingDir, `${dead}-${sha('pending').slice(7)}`));
  expect(await slow.hasResults([sha('pending')])).toEqual(new Set());

  const next = new LayeredStore([fast, slow], {
    writeBehind: true,
    pendingDir,
    onWarning: (w) => warnings.push(w),
  });
  await next.warm();
  await next.flush();
  expect(await slow.getResult(sha('pending'))).toEqual(m);
  expect(await readdir(pendingDir)).toEqual([]);
  expect(warnings).toEqual([]);
});
