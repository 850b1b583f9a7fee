import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readdir, readFile, rm, stat, utimes, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LocalStore } from '../../src/store/local.js';
import { CorruptBlobError, RESULT_FORMAT } from '../../src/store/types.js';
import { verifiedStream } from '../../src/store/digest.js';
import type { ResultManifest } from '../../src/store/types.js';

let dir: string;
let warnings: string[];
let store: LocalStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-store-'));
  warnings = [];
  store = await LocalStore.open(join(dir, 'cache'), { onWarning: (m) => warnings.push(m) });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sha(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

/** `data` as several chunks, from a fresh async iterable each call. */
async function* chunked(data: Buffer, size = 1000): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

const tmpFiles = () => readdir(join(dir, 'cache', 'tmp'));

function manifest(cacheKey: string, digests: string[]): ResultManifest {
  return {
    format: RESULT_FORMAT,
    cacheKey,
    unit: 'lib',
    invocation: 'lib',
    exitCode: 0,
    durationMs: 1234,
    worker: 'worker-1',
    createdAt: '2024-01-01T00:00:00.000Z',
    outputs: digests.map((digest, i) => ({
      path: `out/${i}`,
      type: 'dir',
      digest,
      size: 10,
      files: 1,
    })),
  };
}

describe('LocalStore blobs', () => {
  it('stores, finds and reads back a blob at its content address', async () => {
    const data = Buffer.from('hello, blob\n');
    const info = await store.putBlob(Readable.from([data]));
    expect(info).toEqual({ digest: sha(data), size: data.length });
    const hex = info.digest.slice(7);
    expect(await readFile(join(dir, 'cache', 'blobs', 'sha256', hex.slice(0, 2), hex))).toEqual(
      data,
    );
    const other = sha('other');
    expect(await store.hasBlobs([info.digest, other])).toEqual(new Set([info.digest]));
    expect(await readAll((await store.openBlob(info.digest))!)).toEqual(data);
    expect(await store.openBlob(other)).toBeNull();
    expect(await tmpFiles()).toEqual([]);
    expect(await store.stats()).toMatchObject({ blobs: 1, bytes: data.length, results: 0 });
  });

  it('accepts any async iterable of buffers, and empty blobs', async () => {
    const data = Buffer.alloc(100_000, 7);
    expect((await store.putBlob(chunked(data))).digest).toBe(sha(data));
    const empty = await store.putBlob(chunked(Buffer.alloc(0)));
    expect(empty).toEqual({ digest: sha(''), size: 0 });
    expect(await readAll((await store.openBlob(empty.digest))!)).toEqual(Buffer.alloc(0));
  });

  it('keeps one copy of the same content and does not rewrite it', async () => {
    const data = Buffer.from('same bytes');
    const first = await store.putBlob(chunked(data, 3));
    const path = store.blobPath(first.digest);
    const old = new Date('2001-01-01T00:00:00Z');
    await utimes(path, old, old);
    const before = await stat(path);
    const second = await store.putBlob(chunked(data, 4));
    expect(second).toEqual(first);
    const after = await stat(path);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(await store.stats()).toMatchObject({ blobs: 1, bytes: data.length, results: 0 });
    expect(await tmpFiles()).toEqual([]);
  });

  it('is safe when several writers put the same blob at once', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 251;
    // Two store objects on one directory stand in for two worker processes.
    const other = new LocalStore(join(dir, 'cache'));
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? other : store).putBlob(chunked(data, 64 * 1024 + i)),
      ),
    );
    for (const r of results) expect(r).toEqual({ digest: sha(data), size: data.length });
    expect(await store.stats()).toMatchObject({ blobs: 1, bytes: data.length, results: 0 });
    expect((await readAll((await store.openBlob(sha(data)))!)).equals(data)).toBe(true);
    expect(await tmpFiles()).toEqual([]);
  });

  it('stores nothing when the data does not match the expected digest', async () => {
    const wrong = sha('something else');
    await expect(store.putBlob(chunked(Buffer.from('data')), wrong)).rejects.toThrow(
      CorruptBlobError,
    );
    expect(await store.stats()).toMatchObject({ blobs: 0, bytes: 0, results: 0 });
    expect(await tmpFiles()).toEqual([]);
    const ok = await store.putBlob(chunked(Buffer.from('data')), sha('data'));
    expect(ok.digest).toBe(sha('data'));
  });

  it('takes a stream verified for the digest (a copy from another store) without hashing it twice, and still stores nothing when it fails', async () => {
    const big = Buffer.alloc(6 * 1024 * 1024 + 5, 'x'); // big enough for the hashing thread
    const good = await store.putBlob(
      verifiedStream(Readable.from(chunked(big, 65536)), sha(big)),
      sha(big),
    );
    expect(good).toEqual({ digest: sha(big), size: big.length });
    expect((await readAll((await store.openBlob(sha(big)))!)).equals(big)).toBe(true);

    const bad = Buffer.from(big);
    bad[12345] ^= 1;
    const claimed = sha(Buffer.concat([big, Buffer.from('!')]));
    await expect(
      store.putBlob(verifiedStream(Readable.from(chunked(bad, 65536)), claimed), claimed),
    ).rejects.toThrow(CorruptBlobError);
    expect((await store.hasBlobs([claimed])).size).toBe(0);
    expect(await tmpFiles()).toEqual([]);
  });
  it('stores a file, leaving the file alone', async () => {
    const file = join(dir, 'input.bin');
    await writeFile(file, 'file contents');
    const info = await store.putBlobFile(file);
    expect(info).toEqual({ digest: sha('file contents'), size: 13 });
    expect(await readFile(file, 'utf8')).toBe('file contents');
    expect(await store.putBlobFile(file)).toEqual(info);
    expect(await store.stats()).toMatchObject({ blobs: 1, bytes: 13, results: 0 });
  });

  it('turns a corrupt blob into a stream error, deletes it and warns once', async () => {
    const data = Buffer.from('precious build output');
    const { digest } = await store.putBlob(chunked(data));
    const path = store.blobPath(digest);
    const bytes = await readFile(path);
    bytes[3] ^= 0xff;
    await writeFile(path, bytes);

    const stream = (await store.openBlob(digest))!;
    const err = await readAll(stream).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CorruptBlobError);
    expect((err as CorruptBlobError).digest).toBe(digest);
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await store.hasBlobs([digest])).toEqual(new Set());
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(digest);
    expect(await store.openBlob(digest)).toBeNull();

    // Put back good bytes, corrupt again: still only one warning for that digest.
    await store.putBlob(chunked(data));
    await writeFile(path, bytes);
    await expect(readAll((await store.openBlob(digest))!)).rejects.toThrow(CorruptBlobError);
    expect(warnings).toHaveLength(1);
  });

  it('openBlobChunks reads a blob in slot-sized chunks, verified: a corrupt one is an error after its last chunk, deleted, warned once', async () => {
    // Three slots and a bit: hashed on the hashing thread, chunks reused as they are consumed.
    const data = Buffer.alloc(3 * 1024 * 1024 + 777);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 251;
    const { digest } = await store.putBlob(chunked(data, 65536));
    const copies: Buffer[] = [];
    for await (const chunk of (await store.openBlobChunks(digest))!)
      copies.push(Buffer.from(chunk));
    expect(copies.map((c) => c.length)).toEqual([1048576, 1048576, 1048576, 777]);
    expect(Buffer.concat(copies).equals(data)).toBe(true);
    expect(await store.openBlobChunks(sha('absent'))).toBeNull();

    const path = store.blobPath(digest);
    const bytes = await readFile(path);
    bytes[2 * 1024 * 1024 + 5] ^= 0xff;
    await writeFile(path, bytes);
    const seen: number[] = [];
    const read = async () => {
      for await (const chunk of (await store.openBlobChunks(digest))!) seen.push(chunk.length);
    };
    await expect(read()).rejects.toThrow(CorruptBlobError);
    expect(seen).toHaveLength(4); // known to be corrupt only at the end
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(warnings).toEqual([expect.stringContaining(`removed corrupt blob ${digest}`)]);
  });

  it('openBlobChunks closes the file when it is not read, read only in part, or read twice', async () => {
    const { digest } = await store.putBlob(chunked(Buffer.alloc(2 * 1024 * 1024 + 1, 7)));
    const fds = async () => (await readdir('/proc/self/fd')).length;
    const before = await fds();
    const unread = (await store.openBlobChunks(digest))!;
    expect(await fds()).toBe(before + 1);
    unread.destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect(await fds()).toBe(before);
    const partly = (await store.openBlobChunks(digest))!;
    for await (const chunk of partly) {
      expect(chunk.length).toBe(1024 * 1024);
      break;
    }
    expect(await fds()).toBe(before);
    expect(() => (partly as AsyncIterable<Buffer>)[Symbol.asyncIterator]()).toThrow(/read once/);
  });

  it('rejects malformed digests', async () => {
    await expect(store.openBlob('sha256:xyz')).rejects.toThrow(TypeError);
    await expect(store.hasBlobs(['md5:abc'])).rejects.toThrow(TypeError);
    await expect(store.putBlob(chunked(Buffer.from('x')), 'nope')).rejects.toThrow(TypeError);
  });

  it('open() removes stale temporary files and keeps fresh ones', async () => {
    const tmp = join(dir, 'cache', 'tmp');
    await writeFile(join(tmp, 'stale'), 'x');
    await writeFile(join(tmp, 'fresh'), 'x');
    const old = new Date(Date.now() - 3 * 24 * 3600 * 1000);
    await utimes(join(tmp, 'stale'), old, old);
    await LocalStore.open(join(dir, 'cache'));
    expect(await readdir(tmp)).toEqual(['fresh']);
  });

  it("open() removes a dead writer's temp file after a few minutes, a live one's after a day", async () => {
    const tmp = join(dir, 'cache', 'tmp');
    // A process that has exited: its pid is free (reuse within the test is unlikely).
    const dead = spawnSync('true').pid!;
    const names = [`${dead}-aaaa.tar`, `${dead}-bbbb.tar`, `${process.pid}-cccc.tar`];
    for (const n of names) await writeFile(join(tmp, n), 'x');
    const minutes = new Date(Date.now() - 10 * 60 * 1000);
    await utimes(join(tmp, names[0]!), minutes, minutes);
    await utimes(join(tmp, names[2]!), minutes, minutes);
    await LocalStore.open(join(dir, 'cache'));
    expect((await readdir(tmp)).sort()).toEqual([names[1], names[2]].sort());
  });

  it('works on a directory that does not exist yet', async () => {
    const lazy = new LocalStore(join(dir, 'later', 'cache'));
    expect(await lazy.hasBlobs([sha('x')])).toEqual(new Set());
    expect(await lazy.openBlob(sha('x'))).toBeNull();
    expect(await lazy.getResult(sha('x'))).toBeNull();
    expect(await lazy.stats()).toMatchObject({ blobs: 0, bytes: 0, results: 0 });
    expect((await lazy.putBlob(chunked(Buffer.from('x')))).digest).toBe(sha('x'));
  });
});

describe('LocalStore results', () => {
  it('round-trips a manifest', async () => {
    const a = await store.putBlob(chunked(Buffer.from('a')));
    const b = await store.putBlob(chunked(Buffer.from('b')));
    const key = sha('key');
    const m = manifest(key, [a.digest, b.digest]);
    expect(await store.hasResults([key])).toEqual(new Set());
    expect(await store.getResult(key)).toBeNull();
    await store.putResult(m);
    expect(await store.getResult(key)).toEqual(m);
    expect(await store.hasResults([key, sha('other')])).toEqual(new Set([key]));
    const hex = key.slice(7);
    expect(
      JSON.parse(
        await readFile(
          join(dir, 'cache', 'results', 'sha256', hex.slice(0, 2), `${hex}.json`),
          'utf8',
        ),
      ),
    ).toEqual(m);
    // A newer result replaces the old one.
    await store.putResult({ ...m, worker: 'worker-2' });
    expect((await store.getResult(key))?.worker).toBe('worker-2');
    expect((await store.stats()).results).toBe(1);
    expect(warnings).toEqual([]);
    expect(await tmpFiles()).toEqual([]);
  });

  it('leaves no temp file behind when a result cannot be put in place', async () => {
    const a = await store.putBlob(chunked(Buffer.from('a')));
    const key = sha('blocked');
    const hex = key.slice(7);
    // A file where the result's shard directory goes: the rename fails.
    await mkdir(join(dir, 'cache', 'results', 'sha256'), { recursive: true });
    await writeFile(join(dir, 'cache', 'results', 'sha256', hex.slice(0, 2)), 'in the way');
    await expect(store.putResult(manifest(key, [a.digest]))).rejects.toThrow();
    expect(await tmpFiles()).toEqual([]);
  });

  it('a directory where a result or a blob goes is a miss (warned), and a put replaces it', async () => {
    const a = await store.putBlob(chunked(Buffer.from('a')));
    const key = sha('dir in the way');
    await mkdir(join(store.resultPath(key), 'x'), { recursive: true });
    expect(await store.getResult(key)).toBeNull();
    expect(warnings.join('\n')).toMatch(/cannot be read/);
    await mkdir(join(store.resultPath(key), 'x'), { recursive: true });
    await store.putResult(manifest(key, [a.digest]));
    expect(await store.getResult(key)).toMatchObject({ cacheKey: key });

    const data = Buffer.from('blob bytes');
    const digest = sha(data);
    await mkdir(join(store.blobPath(digest), 'x'), { recursive: true });
    expect(await store.openBlob(digest)).toBeNull();
    expect(warnings.join('\n')).toMatch(/removed blob .*: not a file/);
    await mkdir(join(store.blobPath(digest), 'x'), { recursive: true });
    await store.putBlob(chunked(data));
    expect(await readAll((await store.openBlob(digest))!)).toEqual(data);
  });

  it('a truncated copy under the right name is replaced by the next put of the same bytes', async () => {
    const data = Buffer.from('the whole content of a blob');
    const { digest } = await store.putBlob(chunked(data));
    await writeFile(store.blobPath(digest), data.subarray(0, 5));
    await store.putBlob(chunked(data));
    expect(await readAll((await store.openBlob(digest))!)).toEqual(data);
  });

  it('treats a manifest that does not parse or validate as a miss, warning once', async () => {
    const key = sha('key');
    const path = store.resultPath(key);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, '{"format": "dist-build/result/v1", "cacheKey": ');
    expect(await store.getResult(key)).toBeNull();
    expect(await store.getResult(key)).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(key);

    const key2 = sha('key2');
    await mkdir(join(store.resultPath(key2), '..'), { recursive: true });
    await writeFile(
      store.resultPath(key2),
      JSON.stringify({ ...manifest(key2, []), exitCode: 'x' }),
    );
    expect(await store.getResult(key2)).toBeNull();
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toContain('exitCode');

    // Stored under the wrong key.
    const key3 = sha('key3');
    await mkdir(join(store.resultPath(key3), '..'), { recursive: true });
    await writeFile(store.resultPath(key3), JSON.stringify(manifest(key2, [])));
    expect(await store.getResult(key3)).toBeNull();
    expect(warnings).toHaveLength(3);
  });

  it('treats a manifest whose blobs are gone as a miss', async () => {
    const a = await store.putBlob(chunked(Buffer.from('a')));
    const key = sha('key');
    await store.putResult(manifest(key, [a.digest]));
    await rm(store.blobPath(a.digest));
    expect(await store.getResult(key)).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(a.digest);
  });

  it('refuses to store an invalid manifest or one naming missing blobs', async () => {
    const key = sha('key');
    await expect(store.putResult(manifest(key, [sha('not stored')]))).rejects.toThrow(/not stored/);
    const bad = { ...manifest(key, []), format: 'v0' } as unknown as ResultManifest;
    await expect(store.putResult(bad)).rejects.toThrow(/format/);
    const badPath = manifest(key, [(await store.putBlob(chunked(Buffer.from('a')))).digest]);
    badPath.outputs[0]!.path = '../escape';
    await expect(store.putResult(badPath)).rejects.toThrow(/path/);
    expect(await store.hasResults([key])).toEqual(new Set());
  });

  it('is safe when several writers put the same result at once', async () => {
    const a = await store.putBlob(chunked(Buffer.from('a')));
    const key = sha('key');
    const other = new LocalStore(join(dir, 'cache'));
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? other : store).putResult({ ...manifest(key, [a.digest]), worker: `w${i}` }),
      ),
    );
    expect((await store.getResult(key))?.worker).toMatch(/^w[0-7]$/);
    expect(await tmpFiles()).toEqual([]);
  });
});

describe('LocalStore size cap, LRU eviction, verify and listing', () => {
  const KB = 1024;
  /** `n` bytes unique to `seed`. */
  const bytesOf = (seed: string, n: number): Buffer => {
    const out = Buffer.alloc(n);
    const fill = createHash('sha256').update(seed).digest();
    for (let i = 0; i < n; i++) out[i] = fill[i % fill.length]!;
    return out;
  };
  /** Sets the last use of a blob to `secondsAgo` in the past. */
  const age = async (s: LocalStore, digest: string, secondsAgo: number): Promise<void> => {
    const t = new Date(Date.now() - secondsAgo * 1000);
    await utimes(s.blobPath(digest), t, t);
  };

  it('evicts least recently used blobs, and results naming them, when a put goes over the cap', async () => {
    const capped = await LocalStore.open(join(dir, 'capped'), { maxBytes: 10 * KB });
    const blobs: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      blobs.push((await capped.putBlob(chunked(bytesOf(name, 3 * KB)))).digest);
    }
    await capped.putResult(manifest(sha('key-a'), [blobs[0]!]));
    await capped.putResult(manifest(sha('key-b'), [blobs[1]!]));
    // a was used 400 s ago, b 300 s, c 200 s: all beyond the grace period.
    for (const [i, d] of blobs.entries()) await age(capped, d, 400 - i * 100);
    expect(await capped.hasBlobs(blobs)).toEqual(new Set(blobs));

    // 12 KiB > 10 KiB: evicted down to 90% of the cap, least recently used first.
    const d = await capped.putBlob(chunked(bytesOf('d', 3 * KB)));
    expect(await capped.hasBlobs([...blobs, d.digest])).toEqual(
      new Set([blobs[1], blobs[2], d.digest]),
    );
    expect(await capped.hasResults([sha('key-a'), sha('key-b')])).toEqual(new Set([sha('key-b')]));
    expect((await capped.stats()).bytes).toBe(9 * KB);

    const e = await capped.putBlob(chunked(bytesOf('e', 3 * KB)));
    expect(await capped.hasBlobs([...blobs, d.digest, e.digest])).toEqual(
      new Set([blobs[2], d.digest, e.digest]),
    );
    expect(await capped.hasResults([sha('key-b')])).toEqual(new Set());
  });

  it('never evicts blobs used within the grace period', async () => {
    const capped = await LocalStore.open(join(dir, 'grace'), { maxBytes: 4 * KB });
    const a = await capped.putBlob(chunked(bytesOf('a', 3 * KB)));
    const b = await capped.putBlob(chunked(bytesOf('b', 3 * KB)));
    expect(await capped.hasBlobs([a.digest, b.digest])).toEqual(new Set([a.digest, b.digest]));
  });

  it('respects LRU order: a read makes an old blob recent again', async () => {
    const capped = await LocalStore.open(join(dir, 'lru'), { maxBytes: 10 * KB });
    const digests: string[] = [];
    for (const name of ['old', 'middle', 'new']) {
      digests.push((await capped.putBlob(chunked(bytesOf(name, 3 * KB)))).digest);
    }
    const [oldest, middle, newest] = digests as [string, string, string];
    await age(capped, oldest, 300);
    await age(capped, middle, 200);
    await age(capped, newest, 100);
    // Reading the oldest blob (through its result) marks it used now.
    await capped.putResult(manifest(sha('uses-oldest'), [oldest]));
    await age(capped, oldest, 300);
    expect(await capped.getResult(sha('uses-oldest'))).not.toBeNull();
    expect((await stat(capped.blobPath(oldest))).mtimeMs).toBeGreaterThan(
      (await stat(capped.blobPath(newest))).mtimeMs,
    );
    // Over the cap: the middle one is now the least recently used and goes first.
    const fourth = await capped.putBlob(chunked(bytesOf('fourth', 3 * KB)));
    const left = await capped.hasBlobs([...digests, fourth.digest]);
    expect(left.has(middle)).toBe(false);
    expect(left.has(oldest)).toBe(true);
    expect(left.has(fourth.digest)).toBe(true);
  });

  it('openBlob marks a blob as used', async () => {
    const { digest } = await store.putBlob(chunked(Buffer.from('touched')));
    await age(store, digest, 1000);
    const before = (await stat(store.blobPath(digest))).mtimeMs;
    await readAll((await store.openBlob(digest))!);
    expect((await stat(store.blobPath(digest))).mtimeMs).toBeGreaterThan(before);
  });

  it('prune(maxBytes) evicts on demand, oldest first, and reports what it removed', async () => {
    const digests: string[] = [];
    for (const [i, name] of ['p1', 'p2', 'p3'].entries()) {
      const info = await store.putBlob(chunked(bytesOf(name, 2 * KB)));
      await age(store, info.digest, 300 - i * 100);
      digests.push(info.digest);
    }
    await store.putResult(manifest(sha('k1'), [digests[0]!]));
    await age(store, digests[0]!, 300);
    const r = await store.prune(4 * KB);
    expect(r).toEqual({ removedBlobs: 1, removedResults: 1, freedBytes: 2 * KB, bytes: 4 * KB });
    expect(await store.hasBlobs(digests)).toEqual(new Set(digests.slice(1)));
    expect(await store.hasResults([sha('k1')])).toEqual(new Set());
    expect((await store.prune(4 * KB)).removedBlobs).toBe(0);
  });

  it('makeRoom() (a full disk) evicts the least recently used half of the blob bytes, never what is in use', async () => {
    const digests: string[] = [];
    for (const [i, name] of ['r1', 'r2', 'r3', 'r4'].entries()) {
      const info = await store.putBlob(chunked(bytesOf(name, 2 * KB)));
      digests.push(info.digest);
      if (i < 3) await age(store, info.digest, 400 - i * 100);
    }
    await store.putResult(manifest(sha('k-r1'), [digests[0]!]));
    await age(store, digests[0]!, 400);
    // 8 KiB -> at most 4 KiB: r1 and r2 go (the oldest), with the result naming r1.
    const together = await Promise.all([store.makeRoom(), store.makeRoom()]);
    expect(together).toEqual([4 * KB, 4 * KB]); // one eviction for both callers
    expect(await store.hasBlobs(digests)).toEqual(new Set(digests.slice(2)));
    expect(await store.hasResults([sha('k-r1')])).toEqual(new Set());
    expect(warnings).toEqual([
      `${store.location}: the disk is full: evicted the 2 least recently used blob(s) (4.00 KiB) to make room`,
    ]);
    // r3 is old, r4 was just used: r3 goes; then only r4 is left, within the grace period.
    expect(await store.makeRoom()).toBe(2 * KB);
    expect(await store.makeRoom()).toBe(0);
    expect(warnings.at(-1)).toMatch(
      /the disk is full, and nothing in this store can be evicted \(2.00 KiB, all of it used in the last 60 s\)/,
    );
    expect(await store.hasBlobs(digests)).toEqual(new Set([digests[3]]));
  });

  it('results without outputs are evicted with the blobs used less recently than they were', async () => {
    const a = await store.putBlob(chunked(bytesOf('ra', 2 * KB)));
    const b = await store.putBlob(chunked(bytesOf('rb', 2 * KB)));
    await age(store, a.digest, 300);
    await age(store, b.digest, 100);
    const setAge = async (key: string, secondsAgo: number) => {
      const t = new Date(Date.now() - secondsAgo * 1000);
      await utimes(store.resultPath(key), t, t);
    };
    for (const [key, secondsAgo] of [
      ['none-old', 400],
      ['none-recent', 200],
      ['none-new', 10],
    ] as const) {
      await store.putResult(manifest(sha(key), []));
      await setAge(sha(key), secondsAgo);
    }
    // a (300 s) goes: of the results without outputs, the one last used before it goes too.
    const r = await store.prune(2 * KB);
    expect(r).toMatchObject({ removedBlobs: 1, removedResults: 1 });
    expect(await store.hasResults(['none-old', 'none-recent', 'none-new'].map(sha))).toEqual(
      new Set([sha('none-recent'), sha('none-new')]),
    );
  });

  it('verify() rehashes every blob, drops corrupt ones and the results naming them', async () => {
    const good = await store.putBlob(chunked(Buffer.from('good bytes')));
    const bad = await store.putBlob(chunked(Buffer.from('bad bytes')));
    await store.putResult(manifest(sha('good'), [good.digest]));
    await store.putResult(manifest(sha('bad'), [bad.digest, good.digest]));
    await writeFile(store.blobPath(bad.digest), 'flipped bytes');
    const r = await store.verify();
    expect(r).toEqual({ checked: 2, corrupt: [bad.digest], removedResults: 1, badResults: [] });
    expect(await store.hasBlobs([good.digest, bad.digest])).toEqual(new Set([good.digest]));
    expect(await store.hasResults([sha('good'), sha('bad')])).toEqual(new Set([sha('good')]));
    expect(warnings.join('\n')).toContain(bad.digest);
    expect(await store.verify()).toEqual({
      checked: 1,
      corrupt: [],
      removedResults: 0,
      badResults: [],
    });
  });

  it("verify() drops a directory in a blob's place and result files that do not parse or validate", async () => {
    const good = await store.putBlob(chunked(Buffer.from('good bytes')));
    const gone = await store.putBlob(chunked(Buffer.from('replaced by a directory')));
    await store.putResult(manifest(sha('good'), [good.digest]));
    await store.putResult(manifest(sha('dir'), [gone.digest]));
    await store.putResult(manifest(sha('truncated'), [good.digest]));
    await store.putResult(manifest(sha('edited'), [good.digest]));
    await store.putResult(manifest(sha('other'), [good.digest]));
    await rm(store.blobPath(gone.digest));
    await mkdir(join(store.blobPath(gone.digest), 'x'), { recursive: true });
    const truncated = await readFile(store.resultPath(sha('truncated')), 'utf8');
    await writeFile(store.resultPath(sha('truncated')), truncated.slice(0, 50));
    await writeFile(store.resultPath(sha('edited')), '{"format": "something else"}\n');
    await writeFile(
      store.resultPath(sha('other')),
      JSON.stringify(manifest(sha('good'), [good.digest])),
    );
    // They used to pass as clean: the directory was not a blob to check, a manifest that did
    // not parse was skipped, and every later run met them as misses (with a warning) again.
    const r = await store.verify();
    expect(r).toEqual({
      checked: 2,
      corrupt: [gone.digest],
      removedResults: 1,
      badResults: [sha('edited'), sha('other'), sha('truncated')].sort(),
    });
    expect(
      await store.hasResults([sha('good'), sha('dir'), sha('truncated'), sha('edited')]),
    ).toEqual(new Set([sha('good')]));
    expect(await store.hasBlobs([gone.digest])).toEqual(new Set());
    expect(await store.verify()).toEqual({
      checked: 1,
      corrupt: [],
      removedResults: 0,
      badResults: [],
    });
  });

  it('listResults(prefix) lists valid results in key order with their sizes', async () => {
    const a = await store.putBlob(chunked(Buffer.from('a')));
    const keys = ['one', 'two', 'three'].map((k) => sha(k)).sort();
    for (const k of keys) await store.putResult(manifest(k, [a.digest, a.digest]));
    const all = [];
    for await (const r of store.listResults()) all.push(r);
    expect(all.map((r) => r.cacheKey)).toEqual(keys);
    expect(all[0]).toEqual({
      cacheKey: keys[0],
      unit: 'lib',
      size: 20,
      createdAt: '2024-01-01T00:00:00.000Z',
    });
    const some = [];
    for await (const r of store.listResults(keys[1]!.slice(0, 12))) some.push(r.cacheKey);
    expect(some).toEqual([keys[1]]);
    const bare = [];
    for await (const r of store.listResults(keys[2]!.slice(7, 10))) bare.push(r.cacheKey);
    expect(bare).toContain(keys[2]);
    const none = [];
    for await (const r of store.listResults('zz')) none.push(r);
    expect(none).toEqual([]);
  });

  it('is safe to share: a blob evicted under a reader that opened it still reads; later it is a miss', async () => {
    const data = Buffer.alloc(600 * 1024, 3);
    const { digest } = await store.putBlob(chunked(data, 64 * 1024));
    await store.putResult(manifest(sha('k'), [digest]));
    const other = await LocalStore.open(join(dir, 'cache'), { maxBytes: 1024 * 1024 });
    const reading = (await store.openBlob(digest))!;
    expect((await other.prune(1)).removedBlobs).toBe(1);
    expect((await readAll(reading)).equals(data)).toBe(true);
    expect(await store.openBlob(digest)).toBeNull();
    expect(await store.getResult(sha('k'))).toBeNull();
  });

  it('reports the last use in stats()', async () => {
    expect((await store.stats()).lastUsed).toBeUndefined();
    await store.putBlob(chunked(Buffer.from('x')));
    expect(Date.parse((await store.stats()).lastUsed!)).not.toBeNaN();
  });
});
