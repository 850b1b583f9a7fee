import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { LocalStore } from '../../src/store/local.js';
import {
  blobOpenerFor,
  digestOutputs,
  outputsPresent,
  restoreOutputs,
  saveOutputs,
} from '../../src/store/pack.js';
import { CorruptBlobError, MissingOutputError, UnsafeArchiveError } from '../../src/store/types.js';
import type { BlobOpener, OutputEntry, Store } from '../../src/store/types.js';

let dir: string;
let store: LocalStore;
let warnings: string[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-pack-'));
  warnings = [];
  store = await LocalStore.open(join(dir, 'cache'), { onWarning: (m) => warnings.push(m) });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sha(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function put(root: string, rel: string, content: string, mode = 0o644): Promise<void> {
  const path = join(root, rel);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
  await chmod(path, mode);
}

const LONG = `${'deeply-nested-directory-name/'.repeat(4)}${'x'.repeat(90)}.txt`;

/** The same tree, written in a different order, with different mtimes and umask-like modes. */
async function makeTree(root: string, variant: 0 | 1): Promise<void> {
  const steps: (() => Promise<unknown>)[] = [
    () => put(root, 'out/core/api.json', '{"api": 1}\n', variant ? 0o600 : 0o644),
    () => put(root, 'out/core/bin/run.sh', '#!/bin/sh\necho hi\n', variant ? 0o700 : 0o755),
    () => put(root, 'out/z.txt', 'zzz', 0o664),
    () => put(root, 'out/ünïcödé.txt', 'unicode', 0o644),
    () => put(root, 'out/a-b', 'sorts before the out/a/ directory', 0o644),
    () => put(root, 'out/a/c', 'in a', 0o644),
    () => put(root, `out/${LONG}`, 'long name', 0o644),
    () => mkdir(join(root, 'out/empty'), { recursive: true }),
    async () => {
      await mkdir(join(root, 'out'), { recursive: true });
      await symlink('core/api.json', join(root, 'out/link'));
    },
    () => put(root, 'single.txt', 'a single file output', variant ? 0o640 : 0o644),
  ];
  for (const step of variant ? [...steps].reverse() : steps) await step();
  const t = variant ? new Date('2020-02-02T00:00:00Z') : new Date('2011-01-01T00:00:00Z');
  for (const p of ['out/core/api.json', 'out/z.txt', 'out/core', 'out', 'single.txt']) {
    await utimes(join(root, p), t, t);
  }
}

/** A tar built by hand, as a buffer. */
async function craftTar(
  entries: { header: Parameters<ReturnType<typeof tar.pack>['entry']>[0]; body?: string }[],
): Promise<Buffer> {
  const pack = tar.pack();
  // Read while adding: the pack stops calling back once its buffer is full.
  const collected = (async () => {
    const parts: Buffer[] = [];
    for await (const chunk of pack as AsyncIterable<unknown>) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (e.body !== undefined) pack.entry(e.header, e.body, cb);
      else pack.entry(e.header, cb);
    });
  }
  pack.finalize();
  return collected;
}

/** An opener serving fixed buffers (no verification of its own). */
function bufferOpener(blobs: Buffer[]): BlobOpener {
  const byDigest = new Map(blobs.map((b) => [sha(b), b]));
  return async (digest) => {
    const b = byDigest.get(digest);
    return b ? Readable.from([b]) : null;
  };
}

function entryFor(blob: Buffer, path = 'out'): OutputEntry {
  return { path, type: 'dir', digest: sha(blob), size: blob.length, files: 1 };
}

async function listRecursive(root: string): Promise<string[]> {
  try {
    return (await readdir(root, { recursive: true })).sort();
  } catch {
    return [];
  }
}

describe('saveOutputs', () => {
  it('gives the same digests for the same tree anywhere', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await makeTree(a, 0);
    await makeTree(b, 1);
    const ea = await saveOutputs(store, a, ['out', 'single.txt', 'out/link']);
    const other = await LocalStore.open(join(dir, 'cache2'));
    const eb = await saveOutputs(other, b, ['out/', './single.txt', 'out/link']);
    expect(eb).toEqual(ea);
    expect(ea.map((e) => [e.path, e.type])).toEqual([
      ['out', 'dir'],
      ['single.txt', 'file'],
      ['out/link', 'symlink'],
    ]);
    expect(ea[0]!.files).toBe(17);
    expect(ea[1]!.files).toBe(1);
    expect(await store.stats()).toMatchObject({ blobs: 3 });
  });

  it('digestOutputs describes the outputs as saveOutputs does, storing nothing', async () => {
    const a = join(dir, 'a');
    await makeTree(a, 0);
    const described = await digestOutputs(a, ['out', 'single.txt', 'out/link']);
    expect(await store.stats()).toMatchObject({ blobs: 0 });
    expect(described).toEqual(await saveOutputs(store, a, ['out', 'single.txt', 'out/link']));
  });

  it('writes sorted, root-relative, normalized tar entries', async () => {
    const root = join(dir, 'w');
    await makeTree(root, 1);
    const [entry] = await saveOutputs(store, root, ['out']);
    const extract = tar.extract();
    const seen: { name: string; type: string; mode: number; mtime: number; uid: number }[] = [];
    extract.on('entry', (header, stream, next) => {
      seen.push({
        name: header.name,
        type: header.type,
        mode: header.mode,
        mtime: header.mtime.getTime(),
        uid: header.uid + header.gid,
      });
      stream.on('end', () => next());
      stream.resume();
    });
    const done = new Promise<void>((resolve) => extract.on('finish', () => resolve()));
    (await store.openBlob(entry!.digest))!.pipe(extract as unknown as NodeJS.WritableStream);
    await done;
    const names = seen.map((s) => s.name);
    expect(names).toEqual(
      [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
    );
    expect(names.slice(0, 7)).toEqual([
      'out/',
      'out/a-b',
      'out/a/',
      'out/a/c',
      'out/core/',
      'out/core/api.json',
      'out/core/bin/',
    ]);
    expect(names).toContain(`out/${LONG}`);
    expect(names).toContain('out/ünïcödé.txt');
    expect(seen.every((s) => s.mtime === 0 && s.uid === 0)).toBe(true);
    const byName = new Map(seen.map((s) => [s.name, s]));
    expect(byName.get('out/core/bin/run.sh')?.mode).toBe(0o755);
    expect(byName.get('out/core/api.json')?.mode).toBe(0o644);
    expect(byName.get('out/empty/')?.type).toBe('directory');
    expect(byName.get('out/link')?.type).toBe('symlink');
  });

  it('uploads only blobs the store does not have', async () => {
    const root = join(dir, 'w');
    await makeTree(root, 0);
    let puts = 0;
    const counting: Store = Object.assign(Object.create(store) as LocalStore, {
      putBlob: (...args: Parameters<Store['putBlob']>) => {
        puts++;
        return store.putBlob(...args);
      },
      putBlobFile: (file: string) => {
        puts++;
        return store.putBlobFile(file);
      },
      adoptBlobFile: (file: string, digest: string) => {
        puts++;
        return store.adoptBlobFile(file, digest);
      },
    });
    const first = await saveOutputs(counting, root, ['out', 'single.txt']);
    expect(puts).toBe(2);
    expect(await saveOutputs(counting, root, ['out', 'single.txt'])).toEqual(first);
    expect(puts).toBe(2);
    await writeFile(join(root, 'single.txt'), 'changed');
    const third = await saveOutputs(counting, root, ['out', 'single.txt']);
    expect(puts).toBe(3);
    expect(third[0]).toEqual(first[0]);
    expect(third[1]!.digest).not.toBe(first[1]!.digest);
  });

  it('packs into temporary files that it always removes, with or without the store offering a temp dir', async () => {
    const root = join(dir, 'w');
    await makeTree(root, 0);
    const first = await saveOutputs(store, root, ['out', 'single.txt']);
    expect(await readdir(join(dir, 'cache', 'tmp'))).toEqual([]);
    expect(await saveOutputs(store, root, ['out', 'single.txt'])).toEqual(first);
    expect(await readdir(join(dir, 'cache', 'tmp'))).toEqual([]);
    // A store without tempDir/adoptBlobFile (a wrapper): packed under the work root, then putBlobFile.
    const other = await LocalStore.open(join(dir, 'other'));
    let files = 0;
    const plain: Store = Object.assign(Object.create(other) as LocalStore, {
      tempDir: undefined,
      adoptBlobFile: undefined,
      putBlobFile: (file: string) => {
        files++;
        return other.putBlobFile(file);
      },
    });
    expect(await saveOutputs(plain, root, ['out', 'single.txt'])).toEqual(first);
    expect(files).toBe(2);
    expect(await readdir(join(root, '.dist-build', 'tmp'))).toEqual([]);
    expect(await other.hasBlobs(first.map((e) => e.digest))).toEqual(
      new Set(first.map((e) => e.digest)),
    );
  });

  it('removes its temporary files when an output is missing', async () => {
    const root = join(dir, 'w');
    await makeTree(root, 0);
    await expect(saveOutputs(store, root, ['out', 'nope'])).rejects.toThrow(MissingOutputError);
    expect(await readdir(join(dir, 'cache', 'tmp'))).toEqual([]);
  });

  it('reports an output that was not produced', async () => {
    const root = join(dir, 'w');
    await mkdir(join(root, 'out'), { recursive: true });
    const err = await saveOutputs(store, root, ['out', 'out/x']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingOutputError);
    expect((err as MissingOutputError).path).toBe('out/x');
    expect((err as Error).message).toBe('declared output out/x was not produced');
  });

  it('refuses sockets inside an output', async () => {
    const root = join(dir, 'w');
    await put(root, 'out/ok.txt', 'ok');
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(join(root, 'out', 'sock'), resolve));
    try {
      const err = await saveOutputs(store, root, ['out']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsafeArchiveError);
      expect((err as UnsafeArchiveError).entry).toBe('out/sock');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await store.stats()).toMatchObject({ blobs: 0 });
  });

  it('refuses symlinks that could not be restored', async () => {
    const root = join(dir, 'w');
    await put(root, 'out/ok.txt', 'ok');
    await symlink('../../etc', join(root, 'out', 'up'));
    const err = await saveOutputs(store, root, ['out']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    expect((err as UnsafeArchiveError).entry).toBe('out/up');
    await rm(join(root, 'out', 'up'));
    await symlink('/etc/passwd', join(root, 'out', 'abs'));
    await expect(saveOutputs(store, root, ['out'])).rejects.toThrow(/absolute/);
  });

  it('refuses declared output paths outside the root', async () => {
    await expect(saveOutputs(store, dir, ['../x'])).rejects.toThrow(TypeError);
    await expect(saveOutputs(store, dir, ['/etc'])).rejects.toThrow(TypeError);
    await expect(saveOutputs(store, dir, ['.'])).rejects.toThrow(TypeError);
  });
});

describe('restoreOutputs', () => {
  it('restores contents, exec bits, symlinks and empty directories', async () => {
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    await makeTree(src, 1);
    const entries = await saveOutputs(store, src, ['out', 'single.txt']);
    await mkdir(dst);
    expect(await outputsPresent(dst, entries)).toBe(false);
    await restoreOutputs(blobOpenerFor(store), dst, entries);
    expect(await outputsPresent(dst, entries)).toBe(true);

    expect(await listRecursive(join(dst, 'out'))).toEqual(await listRecursive(join(src, 'out')));
    expect(await readFile(join(dst, 'out/core/api.json'), 'utf8')).toBe('{"api": 1}\n');
    expect(await readFile(join(dst, `out/${LONG}`), 'utf8')).toBe('long name');
    expect(await readFile(join(dst, 'single.txt'), 'utf8')).toBe('a single file output');
    expect((await stat(join(dst, 'out/core/bin/run.sh'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(dst, 'out/core/api.json'))).mode & 0o777).toBe(0o644);
    expect((await lstat(join(dst, 'out/link'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(dst, 'out/link'))).toBe('core/api.json');
    expect((await stat(join(dst, 'out/empty'))).isDirectory()).toBe(true);
    expect(await readdir(join(dst, '.dist-build', 'staging'))).toEqual([]);

    // Saving the restored tree gives the same blobs.
    expect(await saveOutputs(store, dst, ['out', 'single.txt'])).toEqual(entries);
  });

  it('removes what a process killed while it restored left in the staging directory', async () => {
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    await put(src, 'out/a.txt', 'a');
    const entries = await saveOutputs(store, src, ['out']);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const staging = join(dst, '.dist-build', 'staging');
    await put(staging, `${dead}-0123456789ab/out/half.txt`, 'half');
    await put(staging, `${dead}-0123456789ab.old/out/old.txt`, 'old');
    await mkdir(join(staging, `${process.pid}-live`)); // a restore of this process: in use
    await put(staging, `${dead}-recent/out/x.txt`, 'x'); // may be another PID namespace's
    const old = new Date(Date.now() - 2 * 3600_000);
    for (const name of [`${dead}-0123456789ab`, `${dead}-0123456789ab.old`])
      await utimes(join(staging, name), old, old);
    await restoreOutputs(blobOpenerFor(store), dst, entries);
    expect((await readdir(staging)).sort()).toEqual(
      [`${dead}-recent`, `${process.pid}-live`].sort(),
    );
  });

  it('replaces whatever was at the output path', async () => {
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    await put(src, 'out/new.txt', 'new');
    await put(src, 'lib', 'a file now');
    await put(dst, 'out/stale.txt', 'stale');
    await put(dst, 'lib/was-a-dir.txt', 'x');
    const entries = await saveOutputs(store, src, ['out', 'lib']);
    await restoreOutputs(blobOpenerFor(store), dst, entries);
    expect(await readdir(join(dst, 'out'))).toEqual(['new.txt']);
    expect(await readFile(join(dst, 'lib'), 'utf8')).toBe('a file now');
  });

  it('restores a symlink output and creates missing parent directories', async () => {
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    await put(src, 'pkg/v1/lib.js', 'v1');
    await symlink('v1', join(src, 'pkg', 'current'));
    const entries = await saveOutputs(store, src, ['pkg/current', 'pkg/v1']);
    expect(entries[0]!.type).toBe('symlink');
    await restoreOutputs(blobOpenerFor(store), dst, entries);
    expect(await readFile(join(dst, 'pkg/current/lib.js'), 'utf8')).toBe('v1');
  });

  it('places nothing from a corrupt blob', async () => {
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    await put(src, 'out/a.txt', 'a'.repeat(5000));
    await put(dst, 'out/old.txt', 'old');
    const [entry] = await saveOutputs(store, src, ['out']);
    const path = store.blobPath(entry!.digest);
    const bytes = await readFile(path);
    bytes[bytes.length - 2000] ^= 0x01; // inside a.txt's contents: the tar still parses
    await writeFile(path, bytes);

    await expect(restoreOutputs(blobOpenerFor(store), dst, [entry!])).rejects.toThrow(
      CorruptBlobError,
    );
    expect(await readdir(join(dst, 'out'))).toEqual(['old.txt']);
    expect(await readdir(join(dst, '.dist-build', 'staging'))).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(await store.hasBlobs([entry!.digest])).toEqual(new Set());

    // The same through an opener that does not verify: restore checks the digest itself.
    await expect(restoreOutputs(bufferOpener([]), dst, [entry!])).rejects.toThrow(/missing/);
    const corruptOpener: BlobOpener = async () => Readable.from([bytes]);
    await expect(restoreOutputs(corruptOpener, dst, [entry!])).rejects.toThrow(CorruptBlobError);
    expect(await readdir(join(dst, 'out'))).toEqual(['old.txt']);
  });

  it('says which blob is missing', async () => {
    const entry = entryFor(Buffer.from('gone'));
    await expect(restoreOutputs(blobOpenerFor(store), dir, [entry])).rejects.toThrow(
      `blob ${entry.digest} of output out is missing`,
    );
  });

  const file = (name: string, body = 'x') => ({
    header: { name, type: 'file' as const, mode: 0o644 },
    body,
  });
  const good = [
    { header: { name: 'out/', type: 'directory' as const, mode: 0o755 } },
    file('out/ok.txt', 'fine'),
  ];
  const cases: [string, Awaited<Parameters<typeof craftTar>[0]>, string][] = [
    ['a ".." entry', [...good, file('../evil')], '../evil'],
    ['a ".." segment inside', [...good, file('out/../../evil')], 'out/../../evil'],
    ['an absolute entry', [...good, file('/abs')], '/abs'],
    ['an entry outside the declared output', [...good, file('other/x')], 'other/x'],
    ['an entry beside the declared output', [...good, file('out-x')], 'out-x'],
    [
      'a symlink out of the output',
      [...good, { header: { name: 'out/etc', type: 'symlink', linkname: '../../etc' } }],
      'out/etc',
    ],
    [
      'a symlink to an absolute path',
      [...good, { header: { name: 'out/pw', type: 'symlink', linkname: '/etc/passwd' } }],
      'out/pw',
    ],
    [
      'a symlink climbing through a name',
      [
        ...good,
        { header: { name: 'out/self', type: 'symlink', linkname: '.' } },
        { header: { name: 'out/up', type: 'symlink', linkname: 'self/..' } },
      ],
      'out/up',
    ],
    [
      'an entry written through a symlink',
      [
        ...good,
        { header: { name: 'out/self', type: 'symlink', linkname: '.' } },
        file('out/self/x'),
      ],
      'out/self/x',
    ],
    [
      'a hard link',
      [...good, { header: { name: 'out/hard', type: 'link', linkname: 'out/ok.txt' } }],
      'out/hard',
    ],
    [
      'a character device',
      [
        ...good,
        {
          header: { name: 'out/null', type: 'character-device', devmajor: 1, devminor: 3 },
        },
      ],
      'out/null',
    ],
    ['a FIFO', [...good, { header: { name: 'out/fifo', type: 'fifo' } }], 'out/fifo'],
    ['a duplicate entry', [...good, file('out/ok.txt', 'again')], 'out/ok.txt'],
    ['an entry larger than maxEntryBytes', [...good, file('out/big', 'x'.repeat(65))], 'out/big'],
  ];

  it.each(cases)('rejects %s and places nothing', async (_, entries, bad) => {
    const root = join(dir, 'root');
    await put(root, 'out/old.txt', 'old');
    const blob = await craftTar(entries);
    const err = await restoreOutputs(bufferOpener([blob]), root, [entryFor(blob)], {
      maxEntryBytes: 64,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    expect((err as UnsafeArchiveError).entry).toBe(bad);
    expect((err as Error).message).toContain(bad);
    expect(await readdir(join(root, 'out'))).toEqual(['old.txt']);
    expect(await readdir(root)).toEqual(['.dist-build', 'out']);
    expect(await readdir(dir)).toEqual(['cache', 'root']);
    expect(await readdir(join(root, '.dist-build', 'staging'))).toEqual([]);
  });

  it('accepts a hand-made tar without directory entries', async () => {
    const root = join(dir, 'root');
    const blob = await craftTar([file('out/a/b/c.txt', 'deep'), file('out/a/d.txt', 'd')]);
    await restoreOutputs(bufferOpener([blob]), root, [entryFor(blob)]);
    expect(await readFile(join(root, 'out/a/b/c.txt'), 'utf8')).toBe('deep');
    expect(await readFile(join(root, 'out/a/d.txt'), 'utf8')).toBe('d');
  });

  it('refuses to restore through a parent that leads out of the root', async () => {
    const src = join(dir, 'src');
    const root = join(dir, 'root');
    await put(src, 'gen/out/x', 'x');
    const entries = await saveOutputs(store, src, ['gen/out']);
    await mkdir(join(dir, 'elsewhere'));
    await mkdir(root);
    await symlink(join(dir, 'elsewhere'), join(root, 'gen'));
    const err = await restoreOutputs(blobOpenerFor(store), root, entries).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    expect(await readdir(join(dir, 'elsewhere'))).toEqual([]);
  });

  it('restores exact modes whatever the umask', async () => {
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    await makeTree(src, 0);
    const entries = await saveOutputs(store, src, ['out', 'single.txt']);
    const old = process.umask(0o077);
    try {
      await restoreOutputs(blobOpenerFor(store), dst, entries);
    } finally {
      process.umask(old);
    }
    expect((await stat(join(dst, 'out/core/bin/run.sh'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(dst, 'out/core/api.json'))).mode & 0o777).toBe(0o644);
    expect((await stat(join(dst, 'single.txt'))).mode & 0o777).toBe(0o644);
    expect((await stat(join(dst, 'out/core'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(dst, 'out/empty'))).mode & 0o777).toBe(0o755);
  });

  it('restores many small files in many directories', async () => {
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    for (let d = 0; d < 12; d++) {
      for (let f = 0; f < 12; f++) {
        await put(
          src,
          `out/d${d}/s${f}/f${f}.txt`,
          `${d}/${f} `.repeat(1 + d * f),
          f % 3 ? 0o644 : 0o755,
        );
      }
    }
    const entries = await saveOutputs(store, src, ['out']);
    await restoreOutputs(blobOpenerFor(store), dst, entries);
    expect(await listRecursive(join(dst, 'out'))).toEqual(await listRecursive(join(src, 'out')));
    for (let d = 0; d < 12; d++) {
      for (let f = 0; f < 12; f++) {
        const rel = `out/d${d}/s${f}/f${f}.txt`;
        expect(await readFile(join(dst, rel), 'utf8')).toBe(`${d}/${f} `.repeat(1 + d * f));
        expect((await stat(join(dst, rel))).mode & 0o777).toBe(f % 3 ? 0o644 : 0o755);
      }
    }
    expect(await saveOutputs(store, dst, ['out'])).toEqual(entries);
  });

  it('places nothing when an unsafe entry comes after many small files', async () => {
    const root = join(dir, 'root');
    await put(root, 'out/old.txt', 'old');
    const many = Array.from({ length: 60 }, (_, i) => file(`out/f${i}.txt`, `file ${i}`));
    const blob = await craftTar([...good, ...many, file('out/f7.txt', 'again')]);
    const err = await restoreOutputs(bufferOpener([blob]), root, [entryFor(blob)]).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    expect((err as UnsafeArchiveError).entry).toBe('out/f7.txt');
    expect(await readdir(join(root, 'out'))).toEqual(['old.txt']);
    expect(await readdir(join(root, '.dist-build', 'staging'))).toEqual([]);
  });

  it('saves and restores a large file', async () => {
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    await mkdir(join(src, 'big'), { recursive: true });
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) % 256;
    await pipeline(
      Readable.from(
        (function* () {
          for (let i = 0; i < 64; i++) {
            chunk.writeUInt32LE(i, 0);
            yield Buffer.from(chunk);
          }
        })(),
      ),
      createWriteStream(join(src, 'big', 'blob.bin')),
    );
    await put(src, 'big/small.txt', 'small');
    const entries = await saveOutputs(store, src, ['big']);
    expect(entries[0]!.size).toBeGreaterThan(64 * 1024 * 1024);
    await restoreOutputs(blobOpenerFor(store), dst, entries);
    expect(await fileDigest(join(dst, 'big', 'blob.bin'))).toBe(
      await fileDigest(join(src, 'big', 'blob.bin')),
    );
    expect((await stat(join(dst, 'big', 'blob.bin'))).size).toBe(64 * 1024 * 1024);
  });
});
