// Tests of @mono/core/stats, run against the compiled module in out/core.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../../out/core/random.mjs';
import {
  histogram,
  mean,
  pearson,
  quantile,
  quantiles,
  stddev,
  sum,
  summarize,
  variance,
} from '../../../out/core/stats.mjs';

const close = (actual, expected, tolerance = 1e-9) =>
  assert.ok(
    Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)),
    `${actual} != ${expected}`,
  );

describe('sums and moments', () => {
  it('sums exactly where naive summation loses digits', () => {
    assert.equal(sum([1e16, 1, -1e16]), 1);
    assert.equal(sum(new Array(10).fill(0.1)), 1); // naive: 0.9999999999999999
    assert.equal(sum(new Float64Array([1, 2, 3])), 6);
  });

  it('computes mean, variance and standard deviation', () => {
    const xs = [2, 4, 4, 4, 5, 5, 7, 9];
    assert.equal(mean(xs), 5);
    assert.equal(variance(xs, true), 4);
    assert.equal(stddev(xs, true), 2);
    close(variance(xs), 32 / 7);
    assert.ok(Number.isNaN(mean([])));
    assert.ok(Number.isNaN(variance([1])));
  });

  it('is numerically stable for large offsets (Welford)', () => {
    const xs = [1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16];
    close(variance(xs), 30);
  });
});

describe('quantiles', () => {
  it('interpolates between order statistics', () => {
    assert.equal(quantile([3, 1, 2], 0.5), 2);
    assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
    assert.deepEqual(quantiles([10, 20, 30, 40, 50], [0, 0.25, 1]), [10, 20, 50]);
    assert.throws(() => quantile([1], 1.5), RangeError);
  });

  it('matches a sort-based reference on 300 random arrays', () => {
    const rng = new Rng(7);
    for (let k = 0; k < 300; k++) {
      const xs = Array.from({ length: rng.int(1, 3000) }, () => rng.normal(0, 100));
      const sorted = [...xs].sort((a, b) => a - b);
      for (const q of [0, 0.1, 0.5, 0.9, 0.99, 1]) {
        const pos = q * (sorted.length - 1);
        const lo = Math.floor(pos);
        const hi = Math.min(lo + 1, sorted.length - 1);
        close(quantile(xs, q), sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo));
      }
    }
  });
});

describe('pearson', () => {
  it('is 1 for a linear relation and -1 for an inverse one', () => {
    const xs = [1, 2, 3, 4, 5];
    close(
      pearson(
        xs,
        xs.map((x) => 3 * x + 1),
      ),
      1,
    );
    close(
      pearson(
        xs,
        xs.map((x) => -x),
      ),
      -1,
    );
    assert.throws(() => pearson([1, 2], [1]), RangeError);
  });

  it('is near 0 for independent samples and symmetric', () => {
    const rng = new Rng(99);
    const xs = Array.from({ length: 200_000 }, () => rng.normal());
    const ys = Array.from({ length: 200_000 }, () => rng.normal());
    assert.ok(Math.abs(pearson(xs, ys)) < 0.01);
    assert.equal(pearson(xs, ys), pearson(ys, xs));
  });
});

describe('histogram and summarize', () => {
  it('puts every value in a bin', () => {
    const h = histogram([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5);
    assert.deepEqual(h.counts, [2, 2, 2, 2, 3]);
    assert.equal(h.lo, 0);
    assert.equal(h.hi, 10);
    const rng = new Rng(5);
    const xs = Array.from({ length: 50_000 }, () => rng.next());
    assert.equal(sum(histogram(xs, 17).counts), xs.length);
  });

  it('summarizes a sample', () => {
    const s = summarize([5, 1, 4, 2, 3]);
    assert.deepEqual(
      { count: s.count, mean: s.mean, min: s.min, max: s.max, p50: s.p50 },
      { count: 5, mean: 3, min: 1, max: 5, p50: 3 },
    );
    close(s.p05, 1.2);
    close(s.p95, 4.8);
  });
});
