import {
  fmix32,
  hashString,
  mix,
  mixKey,
  mixScore,
  mixWorker,
  murmur3,
} from '../../src/plan/hash.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('hashString (MurmurHash3 x86_32, seed 0, UTF-8)', () => {
  it('matches the published test vectors', () => {
    expect(hashString('')).toBe(0);
    expect(hashString('a')).toBe(0x3c2569b2);
    expect(hashString('abc')).toBe(0xb3dd93fa);
    expect(hashString('test')).toBe(0xba6bd213);
    expect(hashString('Hello, world!')).toBe(0xc0363e43);
    expect(hashString('The quick brown fox jumps over the lazy dog')).toBe(0x2e4ff723);
  });

  it('hashes the UTF-8 bytes of non-ASCII and long strings', () => {
    for (const s of [
      'é',
      'api-image@linux/arm64',
      'naïve/日本語/🙂',
      'x'.repeat(1000) + '🙂'.repeat(300),
    ]) {
      expect(hashString(s)).toBe(murmur3(utf8(s)));
    }
    expect(hashString('é')).toBe(murmur3(Uint8Array.of(0xc3, 0xa9)));
    expect(hashString('é')).not.toBe(hashString('e'));
  });

  it('is unsigned 32-bit and stable (pinned values: changing them re-places everything)', () => {
    expect(hashString('svc-1/build')).toBe(hashString('svc-1/build'));
    for (const s of ['worker-1', 'worker-2', 'api-image@linux/arm64']) {
      const h = hashString(s);
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
    expect(murmur3(utf8('worker-1'))).toBe(hashString('worker-1'));
  });
});

describe('mix', () => {
  it('is MurmurHash3 of the two little-endian words, and equals its split form', () => {
    const pairs = [
      [0, 0],
      [0xdeadbeef, 0x12345678],
      [hashString('svc-1/build'), hashString('worker-7')],
      [0xffffffff, 1],
    ];
    for (const [a, b] of pairs) {
      const bytes = new Uint8Array(8);
      const view = new DataView(bytes.buffer);
      view.setUint32(0, a, true);
      view.setUint32(4, b, true);
      expect(mix(a, b)).toBe(murmur3(bytes));
      expect(mixScore(mixKey(a), mixWorker(b))).toBe(mix(a, b));
    }
  });

  it('is not symmetric and avalanches', () => {
    expect(mix(1, 2)).not.toBe(mix(2, 1));
    expect(mix(1, 2)).not.toBe(mix(1, 3));
    expect(fmix32(0)).toBe(0);
    expect(fmix32(1)).not.toBe(1);
  });

  it('spreads rendezvous top choices evenly over workers', () => {
    const workers = Array.from({ length: 10 }, (_, j) => mixWorker(hashString(`worker-${j + 1}`)));
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 10000; i++) {
      const key = mixKey(hashString(`svc-${i}/build`));
      let best = 0;
      for (let j = 1; j < 10; j++)
        if (mixScore(key, workers[j]) > mixScore(key, workers[best])) best = j;
      counts[best]++;
    }
    for (const c of counts) {
      expect(c).toBeGreaterThan(880);
      expect(c).toBeLessThan(1120);
    }
  });
});
