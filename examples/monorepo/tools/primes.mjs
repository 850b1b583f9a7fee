#!/usr/bin/env node
// Prime number statistics up to a limit, by a segmented sieve of Eratosthenes.
//
//   node tools/primes.mjs --limit 1000000000 --out out/primes
//
// Writes <out>/primes.json: pi(x) at powers of ten and at 100 evenly spaced points, twin
// primes, the distribution of gaps, the maximal gaps (record gaps), the race between primes
// 1 and 3 mod 4 (Chebyshev's bias), last digits, and the sum of all primes; plus
// <out>/first-10000.txt, the first 10,000 primes.
import { join } from 'node:path';
import { cleanDir, fail, parseArgs, writeFile } from './lib/fsutil.mjs';

const args = parseArgs(process.argv.slice(2), { limit: '1000000000', segment: '262144' });
const limit = Number(args.limit);
const SEGMENT = Number(args.segment); // odd numbers per segment (bytes of the sieve buffer)
if (!Number.isSafeInteger(limit) || limit < 100) fail('--limit must be an integer >= 100');
if (!args.out) fail('usage: primes.mjs --limit <n> --out <dir>');

// Base primes up to sqrt(limit), by a plain sieve.
const root = Math.floor(Math.sqrt(limit));
const small = new Uint8Array(root + 1);
const basePrimes = [];
for (let p = 2; p <= root; p++) {
  if (small[p]) continue;
  basePrimes.push(p);
  for (let m = p * p; m <= root; m += p) small[m] = 1;
}
const oddBase = basePrimes.slice(1);

// Statistics gathered while walking the primes in order.
let count = 1; // the prime 2
let prev = 2;
let twins = 0;
let sumLow = 2; // running sum split into a BigInt and a small part to stay exact
let sumHigh = 0n;
const gaps = new Map([[1, 1]]);
const maximalGaps = [{ gap: 1, after: 2 }];
let maxGap = 1;
const lastDigit = { 1: 0, 2: 1, 3: 0, 5: 0, 7: 0, 9: 0 };
let mod4 = [0, 0]; // primes = 1 (mod 4), = 3 (mod 4)
let leader = 0;
let leadChanges = 0;
let firstLeadChange = null;
const first = [2];
const powers = [];
let nextPower = 10;
const steps = 100;
const points = [];
let nextPoint = limit / steps;

const sieve = new Uint8Array(SEGMENT);
const next = new Float64Array(oddBase.length); // next odd multiple index per base prime
for (let k = 0; k < oddBase.length; k++) {
  const p = oddBase[k];
  next[k] = (p * p - 1) / 2; // index of p*p among odd numbers (index i stands for 2i + 1)
}
const lastIndex = Math.floor((limit - 1) / 2);

for (let lo = 1; lo <= lastIndex; lo += SEGMENT) {
  const hi = Math.min(lo + SEGMENT - 1, lastIndex);
  const len = hi - lo + 1;
  sieve.fill(0, 0, len);
  for (let k = 0; k < oddBase.length; k++) {
    const p = oddBase[k];
    let j = next[k];
    if (j > hi) continue;
    for (j -= lo; j < len; j += p) sieve[j] = 1;
    next[k] = j + lo;
  }
  let segSum = 0;
  for (let j = 0; j < len; j++) {
    if (sieve[j] !== 0) continue;
    const n = 2 * (j + lo) + 1;
    while (n > nextPower) {
      powers.push({ x: nextPower, pi: count });
      nextPower *= 10;
    }
    while (n > nextPoint && points.length < steps) {
      points.push({ x: Math.round(nextPoint), pi: count });
      nextPoint = (limit / steps) * (points.length + 1);
    }
    const gap = n - prev;
    gaps.set(gap, (gaps.get(gap) ?? 0) + 1);
    if (gap === 2) twins++;
    if (gap > maxGap) {
      maxGap = gap;
      maximalGaps.push({ gap, after: prev });
    }
    lastDigit[n % 10]++;
    const m = (n & 3) === 1 ? 0 : 1;
    mod4[m]++;
    const lead = Math.sign(mod4[1] - mod4[0]);
    if (lead !== 0 && lead !== leader) {
      if (leader !== 0) {
        leadChanges++;
        firstLeadChange ??= n;
      }
      leader = lead;
    }
    segSum += n;
    if (first.length < 10000) first.push(n);
    count++;
    prev = n;
  }
  sumHigh += BigInt(segSum);
}
while (powers.length === 0 || powers.at(-1).x * 10 <= limit) {
  powers.push({ x: nextPower, pi: count });
  nextPower *= 10;
}
while (points.length < steps) points.push({ x: Math.round(nextPoint), pi: count });
mod4 = { 1: mod4[0], 3: mod4[1] };

const result = {
  limit,
  count,
  largest: prev,
  sum: (sumHigh + BigInt(sumLow)).toString(),
  twinPrimePairs: twins,
  piAtPowersOfTen: powers.filter((p) => p.x <= limit),
  piCurve: points,
  gapCounts: Object.fromEntries(
    [...gaps.entries()].sort((a, b) => a[0] - b[0]).map(([g, c]) => [String(g), c]),
  ),
  maximalGaps,
  lastDigits: lastDigit,
  chebyshevRace: { mod4, leadChanges, firstLeadChange },
};

cleanDir(args.out);
writeFile(join(args.out, 'primes.json'), `${JSON.stringify(result, null, 2)}\n`);
writeFile(join(args.out, 'first-10000.txt'), `${first.join('\n')}\n`);
console.log(
  `${count} primes up to ${limit} (largest ${prev}), ${twins} twin pairs, largest gap ${maxGap}`,
);
