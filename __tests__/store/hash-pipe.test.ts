import { createHash, randomBytes } from 'node:crypto';
import { HashPipe, maxHashThreads, SLOT, SLOTS_PER_PIPE } from '../../src/store/hash-pipe.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Feeds `data` through acquire/submit in slot-sized pieces. */
async function viaSlots(pipe: HashPipe, data: Buffer): Promise<string> {
  for (let off = 0; off < data.length; off += SLOT) {
    const buf = await pipe.acquire();
    const n = data.copy(buf, 0, off, Math.min(data.length, off + SLOT));
    pipe.submit(buf, n);
  }
  return pipe.digest();
}

describe('HashPipe', () => {
  const sizes = [0, 1, SLOT - 1, SLOT, 2 * SLOT + 5, 3 * SLOT, 9 * SLOT + 123];

  it.each(sizes)('hashes %i bytes like createHash, inline or on the thread', async (size) => {
    const data = randomBytes(size);
    expect(await viaSlots(new HashPipe(), data)).toBe(sha(data));
    const pipe = new HashPipe();
    // uneven chunks through update()
    for (let off = 0; off < data.length; off += 700_001) {
      await pipe.update(data.subarray(off, off + 700_001));
    }
    expect(await pipe.digest()).toBe(sha(data));
    expect(pipe.size).toBe(size);
  });

  it('gathers small chunks into slots', async () => {
    const data = randomBytes(5 * SLOT + 999);
    const pipe = new HashPipe();
    for (let off = 0; off < data.length; off += 16_384) {
      const wait = pipe.update(data.subarray(off, off + 16_384));
      if (wait) await wait;
    }
    expect(await pipe.digest()).toBe(sha(data));
  });

  it.each(['1', '2'])(
    'keeps several pipes apart when they interleave (%s hashing threads)',
    async (threads) => {
      const saved = process.env.DIST_BUILD_HASH_THREADS;
      process.env.DIST_BUILD_HASH_THREADS = threads;
      try {
        const a = randomBytes(7 * SLOT + 11);
        const b = randomBytes(5 * SLOT + 3);
        const c = randomBytes(4 * SLOT);
        const [da, db, dc] = await Promise.all([
          viaSlots(new HashPipe(), a),
          viaSlots(new HashPipe(), b),
          viaSlots(new HashPipe(), c),
        ]);
        expect([da, db, dc]).toEqual([sha(a), sha(b), sha(c)]);
      } finally {
        if (saved === undefined) delete process.env.DIST_BUILD_HASH_THREADS;
        else process.env.DIST_BUILD_HASH_THREADS = saved;
      }
    },
  );

  it('starts one hashing thread per core beyond the first, at most two, unless told', () => {
    expect([1, 2, 3, 4, 64].map((cores) => maxHashThreads({}, cores))).toEqual([1, 1, 2, 2, 2]);
    expect(maxHashThreads({ DIST_BUILD_HASH_THREADS: '4' }, 2)).toBe(4);
    expect(maxHashThreads({ DIST_BUILD_HASH_THREADS: '' }, 4)).toBe(2);
    for (const bad of ['0', '9', '1.5', 'two']) {
      expect(() => maxHashThreads({ DIST_BUILD_HASH_THREADS: bad }, 4)).toThrow(
        `DIST_BUILD_HASH_THREADS: expected a whole number from 1 to 8, got "${bad}"`,
      );
    }
  });

  it('reuses a slot only once its hold has settled', async () => {
    const pipe = new HashPipe();
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    for (let i = 0; i < SLOTS_PER_PIPE; i++) {
      const buf = await pipe.acquire();
      buf.fill(1);
      pipe.submit(buf, SLOT, hold);
    }
    let got = false;
    const next = pipe.acquire().then((b) => {
      got = true;
      return b;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toBe(false);
    release();
    const buf = await next;
    buf.fill(1);
    pipe.submit(buf, SLOT);
    expect(await pipe.digest()).toBe(sha(Buffer.alloc((SLOTS_PER_PIPE + 1) * SLOT, 1)));
  });

  it('refuses to be used after dispose', async () => {
    const pipe = new HashPipe();
    await pipe.update(randomBytes(5 * SLOT));
    pipe.dispose();
    await expect(pipe.acquire()).rejects.toThrow(/disposed/);
  });

  it('rejects buffers it did not hand out', () => {
    expect(() => new HashPipe().submit(Buffer.alloc(10), 10)).toThrow(/not a buffer acquired/);
  });
});
