import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FileIndexOptions } from '../../src/plan/file-index.js';
import { FileIndex, INDEX_FILE, readDirListing } from '../../src/plan/file-index.js';
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

async function openIndex(root: string, opts: FileIndexOptions = {}): Promise<Session> {
  const hashed: string[] = [];
  const index = await FileIndex.open(root, {
    now: later,
    ...opts,
    onHash: (p) => hashed.push(p),
  });
  sessions.push(index);
  return { index, hashed };
}

const open = openIndex;

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

/** Sets the mtime of `dirs` (below `root`) to an old time: any later change in them shows. */
function backdateDirs(root: string, dirs: string[]): void {
  for (const d of dirs) fs.utimesSync(path.join(root, d), 1_500_000_000, 1_500_000_000);
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

  it('treats a damaged binary index or the old JSON format as cold, without throwing', async () => {
    const cold = await open(root);
    await cold.index.getMany(['a.txt', 'dir/b.txt']);
    cold.index.listDir('dir');
    await cold.index.save();
    const file = path.join(root, '.dist-build/index', INDEX_FILE);
    const good = fs.readFileSync(file);
    const versionBumped = Buffer.from(good);
    versionBumped.writeUInt32LE(versionBumped.readUInt32LE(4) + 1, 4);
    const textDamaged = Buffer.from(good);
    textDamaged[textDamaged.length - 3] = 0xff; // invalid UTF-8 in the directory text
    const nameChanged = Buffer.from(good); // still valid UTF-8: only the checksum tells
    nameChanged[nameChanged.length - 3] ^= 0x01;
    const bad: Buffer[] = [
      good.subarray(0, good.length - 1), // truncated
      good.subarray(0, 20), // shorter than the header
      Buffer.concat([good, Buffer.from([0])]), // trailing garbage
      versionBumped,
      textDamaged,
      nameChanged,
      crypto.randomBytes(good.length),
      Buffer.alloc(0),
      Buffer.from(
        '{"format":"dist-build/file-index/v1","entries":[["a.txt",5,"1","1","1",33188,"' +
          sha('alpha') +
          '",20000]]}',
      ),
    ];
    for (const content of bad) {
      fs.writeFileSync(file, content);
      const s = await open(root);
      expect(s.index.stats.loaded).toBe(false);
      await s.index.verify();
      expect(await s.index.getMany(['a.txt', 'dir/b.txt'])).toEqual(
        await (await open(root, { fresh: true })).index.getMany(['a.txt', 'dir/b.txt']),
      );
      expect(s.hashed).toEqual(['a.txt', 'dir/b.txt']);
      expect(s.index.listDir('dir')).toEqual(readDirListing(path.join(root, 'dir')));
      expect(s.index.stats.dirReads).toBe(1);
    }
    fs.writeFileSync(file, good);
    const warm = await open(root);
    expect(warm.index.stats.loaded).toBe(true);
    await warm.index.getMany(['a.txt', 'dir/b.txt']);
    expect(warm.hashed).toEqual([]);
  });

  it('removes an index of the old JSON format when it writes the new one', async () => {
    const legacy = path.join(root, '.dist-build/index/file-digests.json');
    fs.mkdirSync(path.dirname(legacy), { recursive: true });
    fs.writeFileSync(legacy, '{"format":"dist-build/file-index/v1","entries":[]}');
    const s = await open(root);
    await s.index.digest('a.txt');
    expect(await s.index.save()).toBe(true);
    expect(fs.readdirSync(path.dirname(legacy))).toEqual([INDEX_FILE]);
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

describe('FileIndex directory listings', () => {
  let root: string;
  beforeEach(() => {
    root = tempDir();
    writeTree(root, {
      'a.txt': 'a',
      'a-b': 'ab',
      'a/x.txt': 'x',
      'dir/b.txt': 'b',
      'dir/sub/c.txt': 'c',
    });
    fs.symlinkSync('a.txt', path.join(root, 'link'));
    try {
      execFileSync('mkfifo', [path.join(root, 'fifo')]); // not a file: left out of listings
    } catch {
      // no mkfifo here
    }
    backdateDirs(root, ['.', 'a', 'dir', 'dir/sub']);
  });

  it('lists names sorted so that a depth-first walk is in path order, with types', () => {
    const listing = readDirListing(root);
    // "a-b" < "a.txt" < "a/..." in path order: a directory sorts as "name/"; the fifo is left out
    expect(listing).toEqual({ names: ['a-b', 'a.txt', 'a', 'dir', 'link'], types: 'ffddl' });
  });

  it('answers an unchanged directory from the index, with or without verify()', async () => {
    // (an index inside the root would change the root directory when first written)
    const cacheDir = path.join(tempDir(), 'index');
    const open = (opts: FileIndexOptions = {}) => openIndex(root, { cacheDir, ...opts });
    const cold = await open();
    const first = cold.index.listDir('dir');
    expect(cold.index.listDir('')).toEqual(readDirListing(root));
    expect(cold.index.stats.dirReads).toBe(2);
    await cold.index.save();

    const warm = await open();
    expect(warm.index.listDir('dir')).toEqual(first);
    expect(warm.index.listDir('')).toEqual(readDirListing(root));
    expect(warm.index.stats).toMatchObject({ dirReads: 0, dirHits: 2 });

    const verified = await open();
    await verified.index.verify();
    expect(verified.index.listDir('dir')).toEqual(first);
    expect(verified.index.stats).toMatchObject({ dirReads: 0, dirHits: 1 });
    // a directory never listed before is read
    expect(verified.index.listDir('dir/sub')).toEqual({ names: ['c.txt'], types: 'f' });
    expect(verified.index.stats.dirReads).toBe(1);
  });

  for (const [what, change, want] of [
    [
      'a file is added',
      () => fs.writeFileSync(path.join(root, 'dir/new.txt'), 'n'),
      ['b.txt', 'new.txt', 'sub'],
    ],
    ['a file is deleted', () => fs.rmSync(path.join(root, 'dir/b.txt')), ['sub']],
    [
      'a file is renamed',
      () => fs.renameSync(path.join(root, 'dir/b.txt'), path.join(root, 'dir/b2.txt')),
      ['b2.txt', 'sub'],
    ],
    [
      'a file is replaced by a directory',
      () => {
        fs.rmSync(path.join(root, 'dir/b.txt'));
        fs.mkdirSync(path.join(root, 'dir/b.txt'));
      },
      ['b.txt', 'sub'],
    ],
  ] as [string, () => void, string[]][]) {
    it(`re-reads a directory when ${what}`, async () => {
      for (const verify of [false, true]) {
        backdateDirs(root, ['dir']);
        const cold = await open(root);
        cold.index.listDir('dir');
        await cold.index.save();
        change();
        const warm = await open(root);
        if (verify) await warm.index.verify();
        const listing = warm.index.listDir('dir');
        expect(listing.names).toEqual(want);
        expect(listing).toEqual(readDirListing(path.join(root, 'dir')));
        expect(warm.index.stats.dirReads).toBe(1);
        await warm.index.save();
        // put things back for the second round
        fs.rmSync(path.join(root, 'dir'), { recursive: true });
        writeTree(root, { 'dir/b.txt': 'b', 'dir/sub/c.txt': 'c' });
      }
    });
  }

  it('does not store the listing of a directory changed just before it was read', async () => {
    fs.writeFileSync(path.join(root, 'dir/new.txt'), 'n'); // dir's mtime is now
    const cold = await open(root, { now: Date.now, racyMs: 60_000 });
    cold.index.listDir('dir');
    await cold.index.save();
    const again = await open(root, { now: Date.now, racyMs: 60_000 });
    again.index.listDir('dir');
    expect(again.index.stats).toMatchObject({ dirReads: 1, dirHits: 0 });
  });

  it('throws like readdir for a missing directory or a file', () => {
    return open(root).then(({ index }) => {
      expect(() => index.listDir('nope')).toThrow(/ENOENT/);
      expect(() => index.listDir('a.txt')).toThrow(/ENOTDIR/);
    });
  });
});

describe('FileIndex.getMany on many files (lstat shared with the thread pool)', () => {
  it('notices changed, replaced and deleted files among unchanged ones', async () => {
    const root = tempDir();
    const files: Record<string, string> = {};
    for (let i = 0; i < 700; i++) files[`d${i % 7}/f${i}.txt`] = `file ${i}`;
    writeTree(root, files);
    const paths = Object.keys(files).sort();
    const cold = await open(root, { threads: 0 });
    const first = await cold.index.getMany(paths);
    await cold.index.save();

    waitForNextTimestampTick(root);
    fs.writeFileSync(path.join(root, 'd1/f1.txt'), 'FILE 1'); // same size
    fs.chmodSync(path.join(root, 'd2/f2.txt'), 0o755);
    fs.writeFileSync(path.join(root, 'd3/tmp'), 'replaced');
    fs.renameSync(path.join(root, 'd3/tmp'), path.join(root, 'd3/f3.txt'));
    fs.rmSync(path.join(root, 'd4/f4.txt'));

    const warm = await open(root, { threads: 0 });
    await warm.index.verify(); // directories only: no difference for getMany
    const rest = paths.filter((p) => p !== 'd4/f4.txt');
    const got = await warm.index.getMany(rest);
    expect(warm.hashed.sort()).toEqual(['d1/f1.txt', 'd2/f2.txt', 'd3/f3.txt']);
    expect(warm.index.stats.hits).toBe(rest.length - 3);
    const byPath = new Map(got.map((d) => [d.path, d]));
    expect(byPath.get('d1/f1.txt')!.digest).toBe(sha('FILE 1'));
    expect(byPath.get('d2/f2.txt')!.executable).toBe(true);
    expect(byPath.get('d3/f3.txt')!.digest).toBe(sha('replaced'));
    expect(byPath.get('d5/f5.txt')).toEqual(first.find((d) => d.path === 'd5/f5.txt'));
    await expect(warm.index.getMany(['d4/f4.txt'])).rejects.toThrow(/does not exist/);

    // unsorted requests (no merge with the stored order) give the same answers
    const again = await open(root, { threads: 0 });
    await again.index.verify();
    const shuffled = [...rest].reverse();
    expect(await again.index.getMany(shuffled)).toEqual(shuffled.map((p) => byPath.get(p)));
  });
});
