// Deterministic file tree for bench/keys.ts: a monorepo-like layout of mostly small files plus a
// few large blobs, content from a seeded PRNG (xorshift32), so every run hashes the same bytes.
import fs from 'node:fs';
import path from 'node:path';

export interface TreeOptions {
  files: number;
  /** Approximate total size in bytes. */
  bytes: number;
  seed: number;
}

function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Writes the tree below `dir`; returns the file count and exact total size. */
export function generateTree(dir: string, opts: TreeOptions): { files: number; bytes: number } {
  const rnd = xorshift32(opts.seed);
  // A 16 MiB pool of pseudo-random bytes; each file is a slice of it, made unique by its header.
  const pool = Buffer.alloc(16 << 20);
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE(rnd(), i);

  const large = Math.max(1, Math.round(opts.files / 200)); // ~0.5% of files hold ~half the bytes
  const small = opts.files - large;
  const smallAvg = (opts.bytes * 0.5) / small;
  const largeAvg = (opts.bytes * 0.5) / large;
  let total = 0;
  const made = new Set<string>();
  for (let i = 0; i < opts.files; i++) {
    const isLarge =
      i % Math.floor(opts.files / large) === 0 && i / Math.floor(opts.files / large) < large;
    const avg = isLarge ? largeAvg : smallAvg;
    // sizes uniform in [0.1, 1.9] x average
    const size = Math.max(16, Math.floor(avg * (0.1 + 1.8 * (rnd() / 2 ** 32))));
    const pkg = `packages/pkg${String(i % 25).padStart(2, '0')}`;
    const sub = `src/mod${(i >> 5) % 16}/part${(i >> 9) % 4}`;
    const name = isLarge ? `asset-${i}.bin` : `file-${i}.ts`;
    const rel = `${pkg}/${sub}/${name}`;
    const file = path.join(dir, rel);
    const parent = path.dirname(file);
    if (!made.has(parent)) {
      fs.mkdirSync(parent, { recursive: true });
      made.add(parent);
    }
    const header = Buffer.from(`// ${rel} #${i}\n`);
    const off = rnd() % Math.max(1, pool.length - size);
    const body = size <= pool.length ? pool.subarray(off, off + size) : Buffer.alloc(size, i);
    const content = Buffer.concat([header, body]).subarray(0, size);
    fs.writeFileSync(file, content);
    total += content.length;
  }
  return { files: opts.files, bytes: total };
}
