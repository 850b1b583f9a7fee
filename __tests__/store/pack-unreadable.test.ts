// An output holding a file or directory the worker may not read (a command that left it without
// read permission): it cannot be packed on any worker, so it is the command's failure (an
// UnsafeArchiveError, as for a FIFO), not the worker's (which ran the command again elsewhere).
// As root, modes do not stop a read, so the file system's answer is made here: opening or listing
// a path named `unreadable` fails with EACCES.
import { jest } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const realFs = await import('node:fs');
const realFsp = await import('node:fs/promises');
const denied = (path: unknown, syscall: string): Error | undefined =>
  /(^|\/)unreadable$/.test(String(path))
    ? Object.assign(new Error(`EACCES: permission denied, ${syscall} '${String(path)}'`), {
        code: 'EACCES',
        syscall,
        path: String(path),
      })
    : undefined;
const openSync = ((path: string, ...rest: unknown[]) => {
  const err = denied(path, 'open');
  if (err) throw err;
  return (realFs.openSync as (...a: unknown[]) => number)(path, ...rest);
}) as typeof realFs.openSync;
const readdir = (async (path: string, ...rest: unknown[]) => {
  const err = denied(path, 'scandir');
  if (err) throw err;
  return (realFsp.readdir as (...a: unknown[]) => Promise<unknown>)(path, ...rest);
}) as typeof realFsp.readdir;
jest.unstable_mockModule('node:fs', () => ({
  ...realFs,
  default: { ...realFs.default, openSync },
  openSync,
}));
jest.unstable_mockModule('node:fs/promises', () => ({
  ...realFsp,
  default: { ...realFsp.default, readdir },
  readdir,
}));
const { mkdir, rm, writeFile } = realFsp;
const { LocalStore } = await import('../../src/store/local.js');
const { saveOutputs } = await import('../../src/store/pack.js');
const { UnsafeArchiveError } = await import('../../src/store/types.js');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-pack-unreadable-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

test.each([
  ['a file', 'out/unreadable'],
  ['a directory', 'out/sub/unreadable/'],
])(
  'an output holding %s that cannot be read is an UnsafeArchiveError naming it',
  async (_, name) => {
    const root = join(dir, 'w');
    await mkdir(join(root, 'out/sub'), { recursive: true });
    await writeFile(join(root, 'out/ok.txt'), 'ok');
    if (name.endsWith('/')) await mkdir(join(root, name), { recursive: true });
    else await writeFile(join(root, name), 'secret');
    const store = await LocalStore.open(join(dir, 'cache'));
    const err = await saveOutputs(store, root, ['out']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    const entry = name.replace(/\/$/, '');
    expect((err as Error).message).toBe(
      `unsafe archive entry "${entry}": cannot be read (EACCES: permission denied, ${name.endsWith('/') ? 'scandir' : 'open'} '${join(root, entry)}')`,
    );
    expect(await store.stats()).toMatchObject({ blobs: 0 });
  },
);
