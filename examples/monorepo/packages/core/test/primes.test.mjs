// Tests of @mono/core/primes, run against the compiled module in out/core.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { factorize, isPrime, nextPrime, primePi, sieve } from '../../../out/core/primes.mjs';
import { Rng } from '../../../out/core/random.mjs';

/** Reference implementation: trial division by every integer up to sqrt(n). */
function naiveIsPrime(n) {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

describe('sieve', () => {
  it('handles the smallest limits', () => {
    assert.deepEqual(sieve(-5), []);
    assert.deepEqual(sieve(1), []);
    assert.deepEqual(sieve(2), [2]);
    assert.deepEqual(sieve(3), [2, 3]);
    assert.deepEqual(sieve(30), [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
  });

  it('agrees with trial division up to 200,000', () => {
    const expected = [];
    for (let n = 0; n <= 200_000; n++) if (naiveIsPrime(n)) expected.push(n);
    assert.deepEqual(sieve(200_000), expected);
  });

  it('counts primes like the known values of pi(x)', () => {
    const known = { 10: 4, 100: 25, 1000: 168, 10_000: 1229, 100_000: 9592, 1_000_000: 78_498 };
    for (const [x, count] of Object.entries(known))
      assert.equal(primePi(Number(x)), count, `pi(${x})`);
    assert.equal(primePi(10_000_000), 664_579);
  });
});

describe('isPrime', () => {
  it('agrees with the sieve for every n below 5,000,000', () => {
    const limit = 5_000_000;
    const flags = new Uint8Array(limit);
    for (const p of sieve(limit - 1)) flags[p] = 1;
    for (let n = 0; n < limit; n++) {
      if (isPrime(n) !== (flags[n] === 1)) assert.fail(`isPrime(${n}) is wrong`);
    }
  });

  it('rejects non-integers, negatives and unsafe integers', () => {
    for (const n of [-7, 0, 1, 2.5, NaN, Infinity, 2 ** 53 + 1])
      assert.equal(isPrime(n), false, String(n));
  });

  it('is exact for large primes and strong pseudoprimes', () => {
    const primes = [2_147_483_647, 4_294_967_291, 1_000_000_000_039, 9_007_199_254_740_881];
    for (const p of primes) assert.equal(isPrime(p), true, String(p));
    // Carmichael numbers and strong pseudoprimes to several small bases.
    const composites = [561, 1105, 2047, 3_215_031_751, 2_152_302_898_747, 3_474_749_660_383];
    for (const c of composites) assert.equal(isPrime(c), false, String(c));
    assert.equal(isPrime(4_294_967_291 * 2_097_143), false, 'product of two large primes');
  });

  it('finds the next prime', () => {
    assert.equal(nextPrime(-10), 2);
    assert.equal(nextPrime(2), 3);
    assert.equal(nextPrime(89), 97);
    assert.equal(nextPrime(2 ** 32), 4_294_967_311);
  });
});

describe('factorize', () => {
  it('factors small numbers', () => {
    assert.deepEqual(factorize(1), []);
    assert.deepEqual(factorize(2), [2]);
    assert.deepEqual(factorize(360), [2, 2, 2, 3, 3, 5]);
    assert.deepEqual(factorize(2 ** 32 - 1), [3, 5, 17, 257, 65_537]);
    assert.deepEqual(factorize(9_007_199_254_740_881), [9_007_199_254_740_881]);
  });

  it('returns ascending primes whose product is n, for 60,000 random n < 10^10', () => {
    const rng = new Rng(2024);
    for (let k = 0; k < 60_000; k++) {
      const n = rng.int(1, 100_000) * rng.int(1, 100_000) + rng.int(0, 2);
      const factors = factorize(n);
      let product = 1;
      for (let i = 0; i < factors.length; i++) {
        if (i > 0 && factors[i] < factors[i - 1]) assert.fail(`not ascending for ${n}`);
        if (!isPrime(factors[i])) assert.fail(`${factors[i]} is not prime (n = ${n})`);
        product *= factors[i];
      }
      assert.equal(product, n);
    }
  });

  it('rejects invalid input', () => {
    assert.throws(() => factorize(0), RangeError);
    assert.throws(() => factorize(1.5), RangeError);
  });
});
