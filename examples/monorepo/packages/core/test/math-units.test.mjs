// Tests of @mono/core/math and the generated @mono/core/units, against out/core.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clamp, gcd, isqrt, lcm, lerp, mulMod, powMod } from '../../../out/core/math.mjs';
import { Rng } from '../../../out/core/random.mjs';
import { DIMENSIONS, UNITS, convert, unit, unitsOf } from '../../../out/core/units.mjs';

describe('math', () => {
  it('computes gcd and lcm', () => {
    assert.equal(gcd(0, 0), 0);
    assert.equal(gcd(12, 18), 6);
    assert.equal(gcd(-12, 18), 6);
    assert.equal(lcm(4, 6), 12);
    assert.equal(lcm(0, 5), 0);
    const rng = new Rng(17);
    for (let i = 0; i < 20_000; i++) {
      const a = rng.int(1, 1_000_000);
      const b = rng.int(1, 1_000_000);
      const g = gcd(a, b);
      assert.ok(a % g === 0 && b % g === 0);
      assert.equal(gcd(a / g, b / g), 1);
      assert.equal(g * lcm(a, b), a * b);
    }
  });

  it('multiplies and exponentiates modulo m like BigInt does', () => {
    const rng = new Rng(23);
    for (let i = 0; i < 20_000; i++) {
      const m = rng.int(2, 2 ** 30) * rng.int(1, 2 ** 22) + 1;
      const a = rng.int(0, 2 ** 30) % m;
      const b = (rng.int(0, 2 ** 30) * 1024) % m;
      const e = rng.int(0, 2 ** 31);
      assert.equal(mulMod(a, b, m), Number((BigInt(a) * BigInt(b)) % BigInt(m)));
      let ref = 1n;
      let base = BigInt(a);
      let k = BigInt(e);
      const M = BigInt(m);
      while (k > 0n) {
        if (k & 1n) ref = (ref * base) % M;
        base = (base * base) % M;
        k >>= 1n;
      }
      if (powMod(a, e, m) !== Number(ref)) assert.fail(`powMod(${a}, ${e}, ${m})`);
    }
    assert.equal(powMod(5, 0, 1), 0);
  });

  it('takes exact integer square roots', () => {
    for (const n of [0, 1, 2, 3, 4, 15, 16, 17, 2 ** 52, 2 ** 53 - 1]) {
      const r = isqrt(n);
      assert.ok(r * r <= n && (r + 1) * (r + 1) > n, `isqrt(${n}) = ${r}`);
    }
    assert.throws(() => isqrt(-1), RangeError);
  });

  it('clamps and interpolates', () => {
    assert.equal(clamp(5, 0, 3), 3);
    assert.equal(clamp(-1, 0, 3), 0);
    assert.equal(lerp(10, 20, 0.25), 12.5);
  });
});

describe('units (generated from schema/units.json)', () => {
  it('knows every dimension and unique symbols', () => {
    assert.deepEqual(DIMENSIONS, ['length', 'mass', 'time', 'temperature', 'speed', 'data']);
    assert.equal(new Set(UNITS.map((u) => u.symbol)).size, UNITS.length);
    assert.equal(unit('km').name, 'kilometre');
    assert.throws(() => unit('parsec'), /unknown unit/);
  });

  it('converts known values', () => {
    const close = (a, b) =>
      assert.ok(Math.abs(a - b) < 1e-9 * Math.max(1, Math.abs(b)), `${a} != ${b}`);
    close(convert(1, 'mi', 'km'), 1.609344);
    close(convert(100, 'C', 'F'), 212);
    close(convert(-40, 'F', 'C'), -40);
    close(convert(0, 'K', 'C'), -273.15);
    close(convert(1, 'GiB', 'MB'), 1073.741824);
    close(convert(36, 'km/h', 'm/s'), 10);
    close(convert(1, 'lb', 'oz'), 16);
    close(convert(1, 'd', 'min'), 1440);
  });

  it('round-trips every pair of units of the same dimension', () => {
    for (const d of DIMENSIONS) {
      for (const a of unitsOf(d)) {
        for (const b of unitsOf(d)) {
          for (const v of [-1000, -1, 0, 0.5, 3, 12345.678]) {
            const back = convert(convert(v, a.symbol, b.symbol), b.symbol, a.symbol);
            assert.ok(
              Math.abs(back - v) < 1e-9 * Math.max(1, Math.abs(v)),
              `${v} ${a.symbol} -> ${b.symbol}`,
            );
          }
        }
      }
    }
  });

  it('refuses to mix dimensions', () => {
    assert.throws(() => convert(1, 'kg', 'm'), /cannot convert mass/);
  });
});
