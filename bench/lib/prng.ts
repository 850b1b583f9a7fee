/**
 * Seeded PRNG for benchmark data only (placement itself never uses randomness): mulberry32, a
 * small 32-bit generator with a fixed sequence per seed on every machine.
 */
export type Rng = () => number;

/** Returns a generator of uniform floats in [0, 1) for `seed`. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform float in [lo, hi). */
export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** Log-uniform float in [lo, hi). */
export function logUniform(rng: Rng, lo: number, hi: number): number {
  return Math.exp(uniform(rng, Math.log(lo), Math.log(hi)));
}
