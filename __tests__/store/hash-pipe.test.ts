import { createHash, randomBytes } from 'node:crypto';
import { HashPipe, SLOT, SLOTS_PER_PIPE } from '../../src/store/hash-pipe.js';

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

  it('keeps several pipes apart when they interleave', async () => {
    const a = randomBytes(7 * SLOT + 11);
    const b = randomBytes(5 * SLOT + 3);
    const [da, db] = await Promise.all([viaSlots(new HashPipe(), a), viaSlots(new HashPipe(), b)]);
    expect([da, db]).toEqual([sha(a), sha(b)]);
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
