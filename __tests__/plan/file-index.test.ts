import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FileIndexOptions } from '../../src/plan/file-index.js';
import { FileIndex, INDEX_FILE } from '../../src/plan/file-index.js';
import { cleanupTempDirs, tempDir, writeTree } from './helpers.js';

afterAll(cleanupTempDirs);

const sha = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex');
/** A clock 10 s ahead, so files written just now are old enough to be stored in the index. */
const later = () => Date.now() + 10_000;

interface Session {
  index: FileIndex;
  hashed: string[];
}

const sessions: FileIndex[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close();
});

async function open(root: string, opts: FileIndexOptions = {}): Promise<Session> {
  const hashed: string[] = [];
  const index = await FileIndex.open(root, {
    now: later,
    ...opts,
    onHash: (p) => hashed.push(p),
  });
  sessions.push(index);
  return { index, hashed };
}

/** Waits (without asserting on time) until the file system clock has visibly moved on. */
function waitForNextTimestampTick(dir: string): void {
  const probe = path.join(dir, '.probe');
  fs.writeFileSync(probe, '0');
  const first = fs.statSync(probe, { bigint: true }).ctimeNs;
  for (let i = 0; i < 1e7; i++) {
    fs.writeFileSync(probe, String(i));
    if (fs.statSync(probe, { bigint: true }).ctimeNs !== first) break;
  }
  fs.rmSync(probe);
}

describe('FileIndex', () => {
  let root: string;
  beforeEach(() => {
    root = tempDir();
    writeTree(root, {
      'a.txt': 'alpha',
      'dir/b.txt': 'bravo',
      'empty.txt': '',
      'bin/run.sh': '#!/bin/sh\necho hi\n',
    });
    fs.chmodSync(path.join(root, 'bin/run.sh'), 0o755);
    fs.symlinkSync('dir/b.txt', path.join(root, 'link'));
  });

  it('returns sha256 of contents, link targets for symlinks, sizes and the exec bit', async () => {
    const { index } = await open(root);
    expect(await index.digest('a.txt')).toBe(sha('alpha'));
    const all = await index.getMany(['dir/b.txt', 'empty.txt', 'bin/run.sh', 'link']);
    expect(all).toEqual([
      { path: 'dir/b.txt', kind: 'file', digest: sha('bravo'), size: 5, executable: false },
      { path: 'empty.txt', kind: 'file', digest: sha(''), size: 0, executable: false },
      {
        path: 'bin/run.sh',
        kind: 'file',
        digest: sha('#!/bin/sh\necho hi\n'),
        size: 18,
        executable: true,
      },
      { path: 'link', kind: 'symlink', digest: sha('dir/b.txt'), size: 9, executable: false },
    ]);
  });

  it('stores the index under <root>/.dist-build/index and does not rehash on a warm run', async () => {
    const files = ['a.txt', 'dir/b.txt', 'empty.txt', 'bin/run.sh', 'link'];
    const cold = await open(root);
    const first = await cold.index.getMany(files);
    expect(cold.hashed).toEqual(files);
    expect(await cold.index.save()).toBe(true);
    expect(fs.existsSync(path.join(root, '.dist-build/index', INDEX_FILE))).toBe(true);
    // atomic write: no temp file left behind
    expect(fs.readdirSync(path.join(root, '.dist-build/index'))).toEqual([INDEX_FILE]);

    const warm = await open(root);
    expect(warm.index.stats.loaded).toBe(true);
    expect(await warm.index.getMany(files)).toEqual(first);
    expect(warm.hashed).toEqual([]);
    expect(warm.index.stats.hits).toBe(files.length);
  });

  it('rehashes a file whose content changed with the same size (mtime or ctime differ)', async () => {
    const f = path.join(root, 'a.txt');
    fs.utimesSync(f, 1_600_000_000, 1_600_000_000);
    const cold = await open(root);
    expect(await cold.index.digest('a.txt')).toBe(sha('alpha'));
    await cold.index.save();

    // same size, different mtime
    fs.writeFileSync(f, 'ALPHA');
    const warm1 = await open(root);
    expect(await warm1.index.digest('a.txt')).toBe(sha('ALPHA'));
    expect(warm1.hashed).toEqual(['a.txt']);
    await warm1.index.save();

    // same size AND same mtime (restored): only ctime tells, once the clock has ticked
    fs.utimesSync(f, 1_600_000_000, 1_600_000_000);
    const warm2 = await open(root);
    await warm2.index.digest('a.txt');
    await warm2.index.save();
    waitForNextTimestampTick(root);
    fs.writeFileSync(f, 'alpha');
    fs.utimesSync(f, 1_600_000_000, 1_600_000_000);
    const warm3 = await open(root);
    expect(await warm3.index.digest('a.txt')).toBe(sha('alpha'));
    expect(warm3.hashed).toEqual(['a.txt']);
  });

  it('rehashes after chmod and after the file is replaced (new inode)', async () => {
    const cold = await open(root);
    await cold.index.getMany(['a.txt', 'dir/b.txt']);
    await cold.index.save();
    fs.chmodSync(path.join(root, 'a.txt'), 0o755);
    fs.writeFileSync(path.join(root, 'dir/b.tmp'), 'bravo');
    fs.renameSync(path.join(root, 'dir/b.tmp'), path.join(root, 'dir/b.txt'));
    const warm = await open(root);
    const [a, b] = await warm.index.getMany(['a.txt', 'dir/b.txt']);
    expect(a!.executable).toBe(true);
    expect(b!.digest).toBe(sha('bravo'));
    expect(warm.hashed.sort()).toEqual(['a.txt', 'dir/b.txt']);
  });

  it('does not store racy entries: files modified just before hashing are hashed again', async () => {
    const cold = await open(root, { now: Date.now, racyMs: 60_000 });
    await cold.index.getMany(['a.txt', 'dir/b.txt']);
    await cold.index.save();
    const again = await open(root, { now: Date.now, racyMs: 60_000 });
    await again.index.getMany(['a.txt', 'dir/b.txt']);
    expect(again.hashed).toEqual(['a.txt', 'dir/b.txt']);
  });

  it('treats a corrupt, truncated or foreign index as cold, without throwing', async () => {
    const file = path.join(root, '.dist-build/index', INDEX_FILE);
    const bad = [
      'not json at all {{{',
      '{"format":"dist-build/file-index/v1","entries":[["a.txt",5,',
      '{"format":"something-else","entries":[]}',
      'null',
      '{"format":"dist-build/file-index/v1","entries":[["a.txt","x"],42,null]}',
    ];
    for (const content of bad) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
      const s = await open(root);
      expect(await s.index.digest('a.txt')).toBe(sha('alpha'));
      expect(s.hashed).toEqual(['a.txt']);
      expect(await s.index.save()).toBe(true);
    }
    // and the rewritten index is good again
    const warm = await open(root);
    await warm.index.digest('a.txt');
    expect(warm.hashed).toEqual([]);
  });

  it('an index that is a directory (unreadable) or an unwritable cache dir is not an error', async () => {
    const cacheDir = path.join(root, 'cache');
    fs.mkdirSync(path.join(cacheDir, INDEX_FILE), { recursive: true });
    const s = await open(root, { cacheDir });
    expect(await s.index.digest('a.txt')).toBe(sha('alpha'));
    expect(await s.index.save()).toBe(false);
    expect(fs.readdirSync(cacheDir)).toEqual([INDEX_FILE]); // no temp file left behind
  });

  it('fresh: true ignores the stored index', async () => {
    const cold = await open(root);
    await cold.index.digest('a.txt');
    await cold.index.save();
    const fresh = await open(root, { fresh: true });
    await fresh.index.digest('a.txt');
    expect(fresh.hashed).toEqual(['a.txt']);
  });

  it('hashes on worker threads with the same results as on the calling thread', async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 300; i++) many[`many/f${i}.txt`] = `file ${i} `.repeat(i);
    writeTree(root, many);
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7); // larger than the 1 MiB read buffer
    fs.writeFileSync(path.join(root, 'many/big.bin'), big);
    const paths = [...Object.keys(many), 'many/big.bin', 'link', 'bin/run.sh'];
    const local = await open(root, { threads: 0, fresh: true });
    const pooled = await open(root, { threads: 2, poolMinFiles: 1, fresh: true });
    const a = await local.index.getMany(paths);
    const b = await pooled.index.getMany(paths);
    expect(b).toEqual(a);
    expect(a.find((d) => d.path === 'many/big.bin')!.digest).toBe(sha(big));
    expect(pooled.hashed.length).toBe(paths.length);
  });

  it('throws a clear error for a missing file, on both paths', async () => {
    const local = await open(root, { threads: 0 });
    await expect(local.index.getMany(['a.txt', 'gone.txt'])).rejects.toThrow(
      'input file "gone.txt" does not exist',
    );
    const pooled = await open(root, { threads: 1, poolMinFiles: 1 });
    await expect(pooled.index.getMany(['gone.txt'])).rejects.toThrow(/gone\.txt/);
  });
});
