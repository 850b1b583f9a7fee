import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Workspace } from '../../src/cluster/workspace.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'dist-build-ws-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

test('remembers which blob an output path holds, only while the path exists', async () => {
  const ws = new Workspace(root);
  expect(await ws.held('out/a')).toBeNull();
  mkdirSync(join(root, 'out/a'), { recursive: true });
  await ws.mark('out/a', 'sha256:' + 'a'.repeat(64));
  expect(await ws.held('out/a')).toBe('sha256:' + 'a'.repeat(64));
  await ws.clear('out/a');
  expect(existsSync(join(root, 'out/a'))).toBe(false);
  expect(await ws.held('out/a')).toBeNull();
});

test('an output changed in the tree since it was marked is no longer held as that blob', async () => {
  // A dependency's output edited by hand (or written by another command) between runs: used as
  // the blob, a dependent was built from it and its result cached under a key that says otherwise.
  const ws = new Workspace(root);
  const digest = 'sha256:' + 'a'.repeat(64);
  mkdirSync(join(root, 'out/a/sub'), { recursive: true });
  writeFileSync(join(root, 'out/a/sub/f'), 'A');
  writeFileSync(join(root, 'out/a/g'), 'X');
  await ws.mark('out/a', digest);
  expect(await ws.held('out/a')).toBe(digest);
  writeFileSync(join(root, 'out/a/sub/f'), 'B'); // same size
  expect(await ws.held('out/a')).toBeNull();

  await ws.mark('out/a', digest);
  rmSync(join(root, 'out/a/g'));
  expect(await ws.held('out/a')).toBeNull();

  await ws.mark('out/a', digest);
  writeFileSync(join(root, 'out/a/sub/new'), '');
  expect(await ws.held('out/a')).toBeNull();

  // A file output too.
  writeFileSync(join(root, 'out/file'), 'one');
  await ws.mark('out/file', digest);
  expect(await ws.held('out/file')).toBe(digest);
  writeFileSync(join(root, 'out/file'), 'two');
  expect(await ws.held('out/file')).toBeNull();
});

test('clears an output whose parent directory is a file (left by an earlier config): nothing is there', async () => {
  // It failed the job as the worker's fault (ENOTDIR), which ran it again elsewhere, and again.
  const ws = new Workspace(root);
  writeFileSync(join(root, 'gen'), 'an earlier output');
  await ws.clear('gen/a');
  expect(existsSync(join(root, 'gen'))).toBe(true);
});

test('does not clear an output whose parent is a symlink out of the tree', async () => {
  const outside = mkdtempSync(join(tmpdir(), 'dist-build-ws-outside-'));
  try {
    mkdirSync(join(outside, 'out'));
    writeFileSync(join(outside, 'out/keep.txt'), 'precious');
    symlinkSync(outside, join(root, 'linkdir'));
    const ws = new Workspace(root);
    await expect(ws.clear('linkdir/out')).rejects.toThrow(
      /declared output linkdir\/out: its parent directory resolves outside the work tree/,
    );
    expect(existsSync(join(outside, 'out/keep.txt'))).toBe(true);
    // one that stays inside is cleared as before
    mkdirSync(join(root, 'real/out'), { recursive: true });
    symlinkSync('real', join(root, 'inside'));
    await ws.clear('inside/out');
    expect(existsSync(join(root, 'real/out'))).toBe(false);
  } finally {
    rmSync(outside, { recursive: true, force: true });
  }
});

test('locks are exclusive per path and taken over from a dead holder', async () => {
  const ws = new Workspace(root);
  const order: string[] = [];
  let release!: () => void;
  const first = ws.withLock('out/x', async () => {
    order.push('first in');
    await new Promise<void>((r) => (release = r));
    order.push('first out');
  });
  await new Promise((r) => setTimeout(r, 20));
  const second = ws.withLock('out/x', async () => {
    order.push('second');
  });
  // A different path is not blocked.
  await ws.withLock('out/y', async () => {
    order.push('other path');
  });
  release();
  await Promise.all([first, second]);
  expect(order).toEqual(['first in', 'other path', 'first out', 'second']);

  // A lock left by a process that no longer exists.
  const locks = join(root, '.dist-build/locks');
  const stale = (await import('node:fs')).readdirSync(locks);
  expect(stale).toEqual([]);
  mkdirSync(join(locks, 'x'), { recursive: true });
  await ws.withLock('out/z', async () => undefined);
  const dead = 2 ** 22 + 12345; // above pid_max on most systems
  const lockOfZ = (await import('node:fs')).readdirSync(locks);
  void lockOfZ;
  const zDir = join(
    locks,
    (await import('node:crypto')).createHash('sha256').update('out/z').digest('hex').slice(0, 32),
  );
  mkdirSync(zDir);
  writeFileSync(join(zDir, 'pid'), String(dead));
  let ran = false;
  await ws.withLock('out/z', async () => {
    ran = true;
  });
  expect(ran).toBe(true);
});
