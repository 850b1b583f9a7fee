/**
 * Fixed, deterministic, fast non-cryptographic hashing for placement.
 *
 * Everything here is plain 32-bit integer arithmetic (`Math.imul`, shifts, xor) over the UTF-8
 * bytes of strings: the same input gives the same number in every process, on every machine and
 * in every JavaScript engine. There is no `Math.random` and no per-process seed.
 *
 * - `hashString(s)` is MurmurHash3 x86_32 (seed 0) of the UTF-8 bytes of `s`, an unsigned 32-bit
 *   value (standard test vectors: `""` -> 0, `"test"` -> 0xba6bd213).
 * - `mix(a, b)` is MurmurHash3 x86_32 (seed 0) of the 8-byte message made of the two 32-bit words
 *   `a` and `b` (little-endian). Placement uses it as the rendezvous (HRW) score of a key hash `a`
 *   on a worker hash `b`. It is split into `mixKey(a)`, `mixWorker(b)` and `mixScore(k, w)` so that
 *   hot loops can precompute the per-key and per-worker halves:
 *   `mix(a, b) === mixScore(mixKey(a), mixWorker(b))`.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3 finalizer: full avalanche of a 32-bit value; returns an unsigned 32-bit value. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Scrambles one 32-bit block (MurmurHash3's k1 step). */
function scramble(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

/** Folds one scrambled block into the running state (MurmurHash3's h1 step). */
function round(h: number, scrambled: number): number {
  h ^= scrambled;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3 x86_32 of `bytes[0..len)`; unsigned 32-bit result. */
export function murmur3(bytes: Uint8Array, len: number = bytes.length, seed = 0): number {
  let h = seed | 0;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    const k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    h = round(h, scramble(k));
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = bytes[blocks];
    if (tail > 1) k |= bytes[blocks + 1] << 8;
    if (tail > 2) k |= bytes[blocks + 2] << 16;
    h ^= scramble(k);
  }
  return fmix32(h ^ len);
}

const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

/** MurmurHash3 x86_32 (seed 0) of the UTF-8 bytes of `s`; unsigned 32-bit result. */
export function hashString(s: string): number {
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  if (scratch.length < s.length * 3) scratch = new Uint8Array(s.length * 3);
  const { written } = encoder.encodeInto(s, scratch);
  return murmur3(scratch, written);
}

/** Per-key half of `mix`: the state after the first block `a`. */
export function mixKey(a: number): number {
  return round(0, scramble(a));
}

/** Per-worker half of `mix`: the scrambled second block `b`. */
export function mixWorker(b: number): number {
  return scramble(b);
}

/** Completes `mix` from `mixKey(a)` and `mixWorker(b)`; unsigned 32-bit result. */
export function mixScore(key: number, worker: number): number {
  return fmix32(round(key, worker) ^ 8);
}

/**
 * Rendezvous score of key hash `a` on worker hash `b`: MurmurHash3 x86_32 of the two words.
 * Unsigned 32-bit; equal inputs always give equal scores, on every machine.
 */
export function mix(a: number, b: number): number {
  return mixScore(mixKey(a), mixWorker(b));
}
