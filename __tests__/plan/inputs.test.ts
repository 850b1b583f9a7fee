import fs from 'node:fs';
import path from 'node:path';
import { FileIndex } from '../../src/plan/file-index.js';
import { DirCache, expandInputs, sortByteOrder } from '../../src/plan/inputs.js';
import { cleanupTempDirs, tempDir, writeTree } from './helpers.js';

afterAll(cleanupTempDirs);

let root: string;

beforeAll(() => {
  root = tempDir();
  writeTree(root, {
    'package-lock.json': '{}',
    'README.md': 'r',
    'packages/lib/src/a.ts': 'a',
    'packages/lib/src/a.test.ts': 't',
    'packages/lib/src/deep/b.ts': 'b',
    'packages/lib/.eslintrc': 'e',
    'packages/lib/node_modules/dep/index.js': 'd',
    'packages/app/src/main.ts': 'm',
    'packages/app/fixtures/big.bin': 'f',
    'node_modules/x/index.js': 'x',
    '.git/HEAD': 'ref',
    '.dist-build/index/file-digests.json': '{}',
    'src/one.ts': '1',
    'src/two.ts': '2',
    'src/three.js': '3',
    'src/sub/four.ts': '4',
    empty: null,
  });
  fs.symlinkSync('../packages/lib/src', path.join(root, 'src/link-to-dir'));
  fs.symlinkSync('one.ts', path.join(root, 'src/link.ts'));
});

const expand = (...patterns: string[]) => expandInputs(root, patterns);

describe('expandInputs', () => {
  it('expands a ** glob below its static prefix', () => {
    expect(expand('packages/lib/**').files).toEqual([
      'packages/lib/.eslintrc',
      'packages/lib/src/a.test.ts',
      'packages/lib/src/a.ts',
      'packages/lib/src/deep/b.ts',
    ]);
  });

  it('takes a literal file and a literal directory (= everything below it)', () => {
    expect(expand('package-lock.json').files).toEqual(['package-lock.json']);
    expect(expand('packages/app').files).toEqual([
      'packages/app/fixtures/big.bin',
      'packages/app/src/main.ts',
    ]);
    expect(expand('./packages/app/').files).toEqual(expand('packages/app').files);
  });

  it('matches * within one segment; a directory matched by a glob brings everything below', () => {
    expect(expand('src/*.ts').files).toEqual(['src/link.ts', 'src/one.ts', 'src/two.ts']);
    expect(expand('packages/*').files).toEqual([
      'packages/app/fixtures/big.bin',
      'packages/app/src/main.ts',
      'packages/lib/.eslintrc',
      'packages/lib/src/a.test.ts',
      'packages/lib/src/a.ts',
      'packages/lib/src/deep/b.ts',
    ]);
  });

  it('applies negations to all positive patterns, whatever their order', () => {
    const want = ['packages/lib/src/a.ts', 'packages/lib/src/deep/b.ts'];
    expect(expand('packages/lib/src/**', '!**/*.test.ts').files).toEqual(want);
    expect(expand('!**/*.test.ts', 'packages/lib/src/**').files).toEqual(want);
    // a negated directory excludes everything below it
    expect(expand('packages/app', '!packages/app/fixtures').files).toEqual([
      'packages/app/src/main.ts',
    ]);
  });

  it('skips .git and node_modules unless named, and .dist-build always', () => {
    const all = expand('**').files;
    expect(all.some((f) => f.includes('node_modules'))).toBe(false);
    expect(all.some((f) => f.startsWith('.git/'))).toBe(false);
    expect(all.some((f) => f.startsWith('.dist-build/'))).toBe(false);
    expect(all).toContain('README.md');
    expect(expand('.').files).toEqual(all);
    expect(expand('node_modules/**').files).toEqual(['node_modules/x/index.js']);
    expect(expand('packages/lib/node_modules').files).toEqual([
      'packages/lib/node_modules/dep/index.js',
    ]);
    expect(expand('.git/HEAD').files).toEqual(['.git/HEAD']);
    expect(expand('.dist-build/**').files).toEqual([]);
  });

  it('does not follow symlinks: a link is an input of its own', () => {
    expect(expand('src/**').files).toEqual([
      'src/link-to-dir',
      'src/link.ts',
      'src/one.ts',
      'src/sub/four.ts',
      'src/three.js',
      'src/two.ts',
    ]);
    expect(expand('src/link-to-dir').files).toEqual(['src/link-to-dir']);
    expect(expand('src/link-to-dir/**').files).toEqual(['src/link-to-dir']);
    expect(expand('src/link-to-dir/a.ts').files).toEqual([]);
  });

  it('reports patterns that match nothing instead of failing', () => {
    const r = expand('src/*.ts', 'nope/**', 'missing.txt', 'empty', '!also-nothing/**');
    expect(r.files).toEqual(['src/link.ts', 'src/one.ts', 'src/two.ts']);
    expect(r.unmatched).toEqual(['nope/**', 'missing.txt', 'empty']);
  });

  it('supports braces, character classes and escapes', () => {
    expect(expand('src/{one,two}.ts').files).toEqual(['src/one.ts', 'src/two.ts']);
    expect(expand('src/t[wh]*').files).toEqual(['src/three.js', 'src/two.ts']);
    const odd = tempDir();
    writeTree(odd, { 'a*b.txt': 'x', 'acb.txt': 'y' });
    expect(expandInputs(odd, ['a\\*b.txt']).files).toEqual(['a*b.txt']);
  });

  it('rejects absolute patterns and patterns leaving the root', () => {
    expect(() => expand('/etc/passwd')).toThrow(/relative/);
    expect(() => expand('../x/**')).toThrow(/inside the root/);
    expect(() => expand('a/../../x')).toThrow(/inside the root/);
  });

  it('returns a sorted, duplicate-free list and can share a directory cache', () => {
    const cache = new DirCache();
    const r = expandInputs(root, ['src/one.ts', 'src/*.ts', 'src/**'], { dirCache: cache });
    expect(r.files).toEqual([...new Set(r.files)]);
    expect(r.files).toEqual(sortByteOrder(r.files));
    expect(expandInputs(root, ['src/**'], { dirCache: cache }).files).toEqual(
      expand('src/**').files,
    );
  });
});

describe('expandInputs with directory listings from a FileIndex', () => {
  const patterns = [
    ['**'],
    ['.'],
    ['packages/lib/**'],
    ['packages/*'],
    ['src/*.ts'],
    ['src/**', '!src/sub'],
    ['packages/lib/src/**', '!**/*.test.ts'],
    ['node_modules/**'],
    ['packages/lib/node_modules'],
    ['src/link-to-dir/**'],
    ['src/one.ts', 'src/*.ts', 'src/**'],
    ['nope/**', 'missing.txt', 'empty'],
  ];

  it('gives the same results as reading the directories, cold and warm', async () => {
    const cacheDir = path.join(tempDir(), 'index');
    for (const round of ['cold', 'warm']) {
      const index = await FileIndex.open(root, { cacheDir, now: () => Date.now() + 10_000 });
      const cache = new DirCache(index);
      for (const p of patterns) {
        expect({ round, p, r: expandInputs(root, p, { dirCache: cache }) }).toEqual({
          round,
          p,
          r: expandInputs(root, p),
        });
      }
      if (round === 'warm') expect(index.stats.dirReads).toBe(0);
      await index.save();
      await index.close();
    }
  });

  it('uses the store only for its own root', async () => {
    const other = tempDir();
    writeTree(other, { 'x/y.txt': 'y' });
    const index = await FileIndex.open(other, { cacheDir: path.join(tempDir(), 'index') });
    expect(expandInputs(root, ['src/**'], { dirCache: new DirCache(index) }).files).toEqual(
      expand('src/**').files,
    );
    expect(index.stats.dirReads).toBe(0);
    await index.close();
  });

  it('returns paths in byte order when names share prefixes with "-", "." and "/"', () => {
    const odd = tempDir();
    writeTree(odd, { 'a/b': '1', 'a.txt': '2', 'a-b/c': '3', 'a b': '4', ab: '5', 'a/.x': '6' });
    const want = ['a b', 'a-b/c', 'a.txt', 'a/.x', 'a/b', 'ab'];
    expect(expandInputs(odd, ['**']).files).toEqual(want);
    expect(sortByteOrder(want)).toEqual(want);
  });
});

describe('sortByteOrder', () => {
  it('orders by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FF5E (EF BD 9E) sorts before U+1F600 (F0 9F 98 80) in UTF-8, after it in UTF-16.
    expect(sortByteOrder(['b', '😀', '～', 'B', 'a'])).toEqual(['B', 'a', 'b', '～', '😀']);
  });
});
