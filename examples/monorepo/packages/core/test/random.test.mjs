// Tests of @mono/core/random, run against the compiled module in out/core.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng, splitmix32 } from '../../../out/core/random.mjs';

describe('Rng', () => {
  it('produces the same sequence for the same seed, and different ones for different seeds', () => {
    const a = new Rng(12345);
    const b = new Rng(12345);
    const c = new Rng(12346);
    const seqA = Array.from({ length: 1000 }, () => a.nextU32());
    assert.deepEqual(
      seqA,
      Array.from({ length: 1000 }, () => b.nextU32()),
    );
    assert.notDeepEqual(
      seqA.slice(0, 10),
      Array.from({ length: 10 }, () => c.nextU32()),
    );
  });

  it('keeps its known output (the data sets depend on it)', () => {
    const rng = new Rng(42);
    assert.deepEqual(
      Array.from({ length: 4 }, () => rng.nextU32()),
      [905145426, 338708962, 3366803598, 2613811986],
    );
    assert.equal(splitmix32(0), 2462723854);
  });

  it('draws uniform floats in [0, 1) that pass a chi-square test', () => {
    const rng = new Rng(1);
    const bins = new Array(100).fill(0);
    const n = 2_000_000;
    for (let i = 0; i < n; i++) {
      const x = rng.next();
      assert.ok(x >= 0 && x < 1);
      bins[Math.floor(x * 100)]++;
    }
    const expected = n / 100;
    const chi2 = bins.reduce((s, o) => s + (o - expected) ** 2 / expected, 0);
    // 99 degrees of freedom: the 99.9th percentile is about 148.
    assert.ok(chi2 < 148, `chi-square ${chi2.toFixed(1)} too large`);
  });

  it('draws unbiased integers in a range', () => {
    const rng = new Rng(3);
    const counts = [0, 0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 700_000; i++) counts[rng.int(0, 7)]++;
    for (const c of counts) assert.ok(Math.abs(c - 100_000) < 1500, `count ${c}`);
    assert.throws(() => rng.int(5, 5), RangeError);
    for (let i = 0; i < 1000; i++) {
      const x = rng.int(-3, 4);
      assert.ok(Number.isInteger(x) && x >= -3 && x < 4);
    }
  });

  it('draws normal values with the requested mean and deviation', () => {
    const rng = new Rng(11);
    const n = 1_000_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.normal(10, 3);
      s += x;
      s2 += x * x;
    }
    const m = s / n;
    const sd = Math.sqrt(s2 / n - m * m);
    assert.ok(Math.abs(m - 10) < 0.02, `mean ${m}`);
    assert.ok(Math.abs(sd - 3) < 0.02, `sd ${sd}`);
  });

  it('shuffles into a permutation and picks members', () => {
    const rng = new Rng(8);
    const items = Array.from({ length: 100 }, (_, i) => i);
    const shuffled = rng.shuffle([...items]);
    assert.notDeepEqual(shuffled, items);
    assert.deepEqual(
      [...shuffled].sort((a, b) => a - b),
      items,
    );
    for (let i = 0; i < 100; i++) assert.ok(items.includes(rng.pick(items)));
  });
});
