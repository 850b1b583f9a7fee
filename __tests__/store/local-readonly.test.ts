// `cache prune` and `cache verify` on a local store whose files cannot be removed (a cache dir on
// a read-only mount). As root, modes do not stop a removal, so the file system's answer is made
// here: removals under `readOnly` fail with EROFS, as on a read-only mount.
import { jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const real = await import('node:fs/promises');
let readOnly: string | undefined;
const refuse = (path: unknown, syscall: string): void => {
  if (readOnly === undefined || !String(path).startsWith(readOnly)) return;
  throw Object.assign(new Error(`EROFS: read-only file system, ${syscall} '${String(path)}'`), {
    code: 'EROFS',
    syscall,
    path: String(path),
  });
};
const unlink = async (path: string) => {
  refuse(path, 'unlink');
  return real.unlink(path);
};
const rm = async (path: string, opts?: Parameters<typeof real.rm>[1]) => {
  refuse(path, 'rm');
  return real.rm(path, opts);
};
jest.unstable_mockModule('node:fs/promises', () => ({
  ...real,
  default: { ...real.default, unlink, rm },
  unlink,
  rm,
}));
const { readFile, writeFile } = real;
const { LocalStore } = await import('../../src/store/local.js');
const { RESULT_FORMAT } = await import('../../src/store/types.js');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-store-ro-'));
  readOnly = undefined;
});
afterEach(async () => {
  readOnly = undefined;
  await real.rm(dir, { recursive: true, force: true });
});

const sha = (data: string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function storeWithResult() {
  const store = await LocalStore.open(join(dir, 'cache'), { onWarning: () => {} });
  const blob = await store.putBlob(
    (async function* () {
      yield Buffer.from('the outputs');
    })(),
  );
  await store.putResult({
    format: RESULT_FORMAT,
    cacheKey: sha('k1'),
    unit: 'lib',
    invocation: 'lib',
    exitCode: 0,
    durationMs: 1,
    worker: 'worker-1',
    createdAt: '2024-01-01T00:00:00.000Z',
    outputs: [{ path: 'out', type: 'dir', digest: blob.digest, size: 11, files: 1 }],
  });
  return { store, digest: blob.digest };
}

test('prune on a store whose blobs cannot be removed fails instead of reporting them removed', async () => {
  const { store, digest } = await storeWithResult();
  readOnly = join(dir, 'cache');
  await expect(store.prune(0)).rejects.toThrow(/^EROFS: read-only file system, unlink /);
  readOnly = undefined;
  expect(await store.hasBlobs([digest])).toEqual(new Set([digest]));
  expect(await store.hasResults([sha('k1')])).toEqual(new Set([sha('k1')]));
  // Writable again: pruned as before.
  expect(await store.prune(0)).toEqual({
    removedBlobs: 1,
    removedResults: 1,
    freedBytes: 11,
    bytes: 0,
  });
});

test('verify on a store whose corrupt blob cannot be removed fails naming it, not "removed"', async () => {
  const { store, digest } = await storeWithResult();
  const path = store.blobPath(digest);
  await writeFile(path, `${await readFile(path, 'utf8')}, changed`);
  readOnly = join(dir, 'cache');
  await expect(store.verify()).rejects.toThrow(
    `cannot remove corrupt blob ${digest}: EROFS: read-only file system, unlink '${path}'`,
  );
  readOnly = undefined;
  expect(await store.hasResults([sha('k1')])).toEqual(new Set([sha('k1')]));
  const r = await store.verify();
  expect(r).toMatchObject({ checked: 1, corrupt: [digest], removedResults: 1 });
});
