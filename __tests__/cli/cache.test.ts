import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { main } from '../../src/cli/main.js';
import { captured } from '../helpers/capture.js';
import { LocalStore } from '../../src/store/local.js';
import { STORE_BACKENDS } from '../../src/store/open.js';
import { RESULT_FORMAT } from '../../src/store/types.js';
import type { ResultManifest, Store } from '../../src/store/types.js';

/** Runs the CLI in process and captures what it prints. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const before = process.exitCode;
  try {
    const { value: code, out, err } = await captured(() => main(args));
    return { code, out, err };
  } finally {
    process.exitCode = before;
  }
}

const sha = (data: string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function manifest(cacheKey: string, unit: string, digest: string, size: number): ResultManifest {
  return {
    format: RESULT_FORMAT,
    cacheKey,
    unit,
    invocation: unit,
    exitCode: 0,
    durationMs: 5,
    worker: 'worker-1',
    createdAt: '2024-01-01T00:00:00.000Z',
    outputs: [{ path: `out/${unit}`, type: 'dir', digest, size, files: 1 }],
  };
}

let dir: string;
let configFile: string;
let cacheDir: string;
let store: LocalStore;
const keys = { lib: sha('lib'), app: sha('app') };
const digests: Record<string, string> = {};

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-cache-cli-'));
  configFile = join(dir, 'dist-build.yml');
  writeFileSync(
    configFile,
    `version: 1
invocations:
  lib: {run: 'true', outputs: [out/lib]}
  app: {run: 'true', outputs: [out/app]}
cache:
  stores:
    - {type: local, dir: cache, max-size: 1GiB}
`,
  );
  cacheDir = join(dir, 'cache');
  store = await LocalStore.open(cacheDir);
  for (const unit of ['lib', 'app'] as const) {
    const data = Buffer.alloc(2048, unit);
    const info = await store.putBlob(Readable.from([data]));
    digests[unit] = info.digest;
    await store.putResult(manifest(keys[unit], unit, info.digest, info.size));
  }
  const old = new Date(Date.now() - 3600_000);
  const { utimes } = await import('node:fs/promises');
  await utimes(store.blobPath(digests.lib!), old, old);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('dist-build cache', () => {
  it('ls lists the results, filtered by --key, as a table or JSON', async () => {
    const r = await cli('cache', 'ls', '--config', configFile);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/CACHE KEY\s+UNIT\s+SIZE\s+CREATED\s+STORE/);
    expect(r.out).toContain(keys.lib);
    expect(r.out).toContain(keys.app);

    const j = await cli('cache', 'ls', '-c', configFile, '--key', keys.app.slice(0, 14), '--json');
    expect(j.code).toBe(0);
    expect(JSON.parse(j.out)).toEqual([
      {
        cacheKey: keys.app,
        unit: 'app',
        size: 2048,
        createdAt: '2024-01-01T00:00:00.000Z',
        store: 'local',
        location: cacheDir,
      },
    ]);
    // Either case, with or without sha256:; anything but hex digits is a usage error.
    const upper = await cli(
      'cache',
      'ls',
      '-c',
      configFile,
      '--key',
      keys.app.slice(0, 14).toUpperCase(),
      '--json',
    );
    expect((JSON.parse(upper.out) as { cacheKey: string }[]).map((e) => e.cacheKey)).toEqual([
      keys.app,
    ]);
    const bare = await cli(
      'cache',
      'ls',
      '-c',
      configFile,
      '--key',
      keys.app.slice(7, 14),
      '--json',
    );
    expect((JSON.parse(bare.out) as { cacheKey: string }[]).map((e) => e.cacheKey)).toEqual([
      keys.app,
    ]);
    const bad = await cli('cache', 'ls', '-c', configFile, '--key', 'xyz');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--key xyz: expected the start of a cache key/);
  });

  it("stats counts entries and bytes, and the last run's lookups (those of the worker that made the most)", async () => {
    const layer = (hits: number, misses: number) => ({
      kind: 'local',
      location: cacheDir,
      results: { hits, misses },
      blobs: { hits: 0, misses: 0 },
      copiedIn: 0,
      errors: 0,
    });
    await mkdir(join(cacheDir, 'stats'), { recursive: true });
    const now = new Date().toISOString();
    await writeFile(
      join(cacheDir, 'stats', 'worker-1.json'),
      JSON.stringify({ slot: 'worker-1', updatedAt: now, layers: [layer(3, 1)] }),
    );
    await writeFile(
      join(cacheDir, 'stats', 'worker-2.json'),
      JSON.stringify({ slot: 'worker-2', updatedAt: now, layers: [layer(2, 4)] }),
    );
    // From an older run: not counted.
    await writeFile(
      join(cacheDir, 'stats', 'worker-9.json'),
      JSON.stringify({
        slot: 'worker-9',
        updatedAt: '2020-01-01T00:00:00Z',
        layers: [layer(100, 100)],
      }),
    );
    const j = await cli('cache', 'stats', '-c', configFile, '--json');
    expect(j.code).toBe(0);
    const s = JSON.parse(j.out);
    expect(s.stores).toEqual([
      expect.objectContaining({
        type: 'local',
        location: cacheDir,
        results: 2,
        blobs: 2,
        bytes: 4096,
        // Workers sharing a cache directory each count the master's cache query: not summed;
        // worker-2 made the most lookups (2 + 4).
        hits: 2,
        misses: 4,
      }),
    ]);
    expect(s.lastRun.workers).toBe(2);
    const t = await cli('cache', 'stats', '-c', configFile);
    expect(t.out).toMatch(/STORE\s+LOCATION\s+RESULTS\s+BLOBS\s+BYTES\s+HITS\s+MISSES/);
    expect(t.out).toMatch(/last run in each store \(2 workers/);

    // A `dist-build run` names its run: a later run with one worker is that worker alone, though
    // the two files of the run before are from the same minutes.
    const later = new Date(Date.now() + 1000).toISOString();
    for (const [name, run, at, hits] of [
      ['worker-1', 'r1', now, 7],
      ['worker-2', 'r1', now, 8],
      ['worker-3', 'r2', later, 1],
    ] as const)
      await writeFile(
        join(cacheDir, 'stats', `${name}.json`),
        JSON.stringify({ slot: name, run, since: now, updatedAt: at, layers: [layer(hits, 0)] }),
      );
    const r2 = JSON.parse((await cli('cache', 'stats', '-c', configFile, '--json')).out);
    expect(r2.lastRun.workers).toBe(1);
    expect(r2.stores[0]).toMatchObject({ hits: 1, misses: 0 });
    // Its workers counted that run alone: no note about long-lived workers counting many runs.
    const t2 = await cli('cache', 'stats', '-c', configFile);
    expect(t2.out).toMatch(/last run in each store \(1 worker, last at /);
    expect(t2.out).not.toMatch(/counting since|long-lived/);
  });

  it('verify reports and drops corrupt blobs, exit 1; clean is exit 0', async () => {
    const clean = await cli('cache', 'verify', '-c', configFile);
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(/2 blobs checked, 0 corrupt/);
    await writeFile(store.blobPath(digests.app!), 'rotten');
    const r = await cli('cache', 'verify', '-c', configFile);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/2 blobs checked, 1 corrupt/);
    expect(r.out).toContain(digests.app);
    expect(await store.hasResults([keys.app, keys.lib])).toEqual(new Set([keys.lib]));
    // A result naming a blob that is gone (removed by hand, or a put that raced an eviction).
    await rm(store.blobPath(digests.lib!));
    const d = await cli('cache', 'verify', '-c', configFile);
    expect(d.out).toMatch(/0 blobs checked, 0 corrupt/);
    expect(await store.hasResults([keys.lib])).toEqual(new Set());
  });

  it('verify reports and drops a truncated result file, exit 1', async () => {
    const text = await readFile(store.resultPath(keys.app), 'utf8');
    await writeFile(store.resultPath(keys.app), text.slice(0, 40));
    const r = await cli('cache', 'verify', '-c', configFile);
    expect(r.out).toMatch(
      /2 blobs checked, 0 corrupt\n.*: 1 result that cannot be read \(removed\):/,
    );
    expect(r.out).toContain(keys.app);
    expect(r.code).toBe(1);
    expect(await store.hasResults([keys.app, keys.lib])).toEqual(new Set([keys.lib]));
    expect((await cli('cache', 'verify', '-c', configFile)).code).toBe(0);
  });

  it('prune --max-size evicts least recently used entries; a bad size is exit 2', async () => {
    const r = await cli('cache', 'prune', '-c', configFile, '--max-size', '3KiB');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/removed 1 blob \(2\.00 KiB\) and 1 result; 2\.00 KiB left/);
    expect(await store.hasResults([keys.app, keys.lib])).toEqual(new Set([keys.app]));
    // A blob used within --grace (60s by default) is kept: a run may be using it.
    await utimes(store.blobPath(digests.app!), new Date(), new Date());
    const kept = await cli('cache', 'prune', '-c', configFile, '--max-size', '1');
    expect(kept.out).toMatch(
      /removed 0 blobs .* left \(limit 1 B\); over the limit: the rest was used in the last 60s \(--grace\)/,
    );
    const gone = await cli('cache', 'prune', '-c', configFile, '--max-size', '1', '--grace', '0');
    expect(gone.out).toMatch(/removed 1 blob .* and 1 result; 0 B left/);
    const bad = await cli('cache', 'prune', '-c', configFile, '--max-size', 'lots');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--max-size: invalid size "lots"/);
  });

  it('--cache-dir replaces the configured local store', async () => {
    const other = join(dir, 'elsewhere');
    mkdirSync(other);
    const r = await cli('cache', 'ls', '-c', configFile, '--cache-dir', other, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual([]);
    const s = await cli('cache', 'stats', '-c', configFile, '--cache-dir', other, '--json');
    expect(JSON.parse(s.out).stores[0].location).toBe(other);
  });

  it('--cache-dir that is not a directory, or (for cache) does not exist, is exit 2 in one line', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const typo = join(dir, 'cahce');
    for (const [args, message] of [
      [
        ['cache', 'stats', '-c', configFile, '--cache-dir', file],
        `--cache-dir ${file}: not a directory`,
      ],
      [
        ['cache', 'ls', '-c', configFile, '--cache-dir', typo],
        `--cache-dir ${typo}: no such directory`,
      ],
      [['run', '-c', configFile, '--cache-dir', file], `--cache-dir ${file}: not a directory`],
      [
        [
          'worker',
          '-c',
          configFile,
          '--cache-dir',
          file,
          '--join',
          'unix:///nowhere.sock',
          '--insecure',
        ],
        `--cache-dir ${file}: not a directory`,
      ],
    ] as const) {
      const r = await cli(...args);
      expect(r.code).toBe(2);
      expect(r.err).toContain(message);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
    expect(existsSync(typo)).toBe(false);
  });

  it('counts a gha store by what the GitHub API lists', async () => {
    const saved = STORE_BACKENDS.gha;
    const entry = (slot: string, n: number) => ({
      key: `dist-build-v1-main-${slot}-20261129T00000${n}Z-ab`,
      ref: 'refs/heads/main',
      sizeBytes: 1_000_000,
      createdAt: '2026-11-29T00:00:00Z',
      lastAccessedAt: `2026-11-29T01:00:0${n}Z`,
    });
    const gha: Store = Object.assign(Object.create(store) as Store, {
      kind: 'gha',
      location: 'gha scope main',
      stats: undefined,
      remoteEntries: async () => ({
        entries: [entry('worker%2D1', 1), entry('worker%2D1', 2), entry('worker%2D2', 3)],
      }),
    });
    STORE_BACKENDS.gha = () => gha;
    try {
      writeFileSync(
        configFile,
        `version: 1\ninvocations:\n  lib: {run: 'true'}\ncache:\n  stores: [{type: local, dir: cache}, {type: gha, scope: main}]\n`,
      );
      const s = await cli('cache', 'stats', '-c', configFile, '--json');
      expect(JSON.parse(s.out).stores[1]).toMatchObject({
        type: 'gha',
        entries: 3,
        bytes: 3_000_000,
        lastUsed: '2026-11-29T01:00:03Z',
      });
      // What the text output says below the table is in the JSON too.
      expect(JSON.parse(s.out).notes).toEqual(
        expect.arrayContaining([expect.stringMatching(/3 cache entries on GitHub/)]),
      );
      const t = await cli('cache', 'stats', '-c', configFile);
      expect(t.out).toMatch(
        /gha gha scope main: 3 cache entries on GitHub for this scope, from 2 worker slots/,
      );
    } finally {
      if (saved) STORE_BACKENDS.gha = saved;
      else delete STORE_BACKENDS.gha;
    }
  });

  it('stats counts a store that can list its results, and says so when the listing fails', async () => {
    const saved = STORE_BACKENDS.registry;
    let down = false;
    const listing: Store = Object.assign(Object.create(store) as Store, {
      kind: 'registry',
      location: 'reg.example/team/cache',
      stats: undefined,
      listResults: async function* () {
        if (down) throw new Error('registry http://reg.example unreachable (ECONNREFUSED)');
        yield { cacheKey: keys.lib, unit: 'lib', size: 100, createdAt: '2024-01-01T00:00:00Z' };
        yield { cacheKey: keys.app, unit: 'app', size: 50, createdAt: '2024-02-01T00:00:00Z' };
      },
    });
    STORE_BACKENDS.registry = () => listing;
    try {
      writeFileSync(
        configFile,
        `version: 1\ninvocations:\n  lib: {run: 'true'}\ncache:\n  stores: [{type: local, dir: cache}, {type: registry, ref: reg.example/team/cache}]\n`,
      );
      const up = await cli('cache', 'stats', '-c', configFile, '--json');
      expect(up.code).toBe(0);
      expect(JSON.parse(up.out).stores[1]).toMatchObject({
        type: 'registry',
        results: 2,
        bytes: 150,
        lastUsed: '2024-02-01T00:00:00Z',
      });
      down = true;
      // verify of a store that cannot be reached: said so, exit 1 (not a clean bill of health).
      (listing as { verify?: () => Promise<unknown> }).verify = () =>
        Promise.reject(new Error('registry http://reg.example unreachable (ECONNREFUSED)'));
      const v = await cli('cache', 'verify', '-c', configFile);
      expect(v.code).toBe(1);
      expect(v.out).toMatch(
        /registry reg\.example\/team\/cache: cannot verify: registry http:\/\/reg\.example unreachable/,
      );
      const r = await cli('cache', 'stats', '-c', configFile);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(
        /registry reg\.example\/team\/cache: cannot count entries: registry http:\/\/reg\.example unreachable/,
      );
      expect(r.err).toBe('');
      // ls lists the stores it can, and says which it cannot (no stack trace), exit 1.
      const ls = await cli('cache', 'ls', '-c', configFile);
      expect(ls.code).toBe(1);
      expect(ls.err).toMatch(
        /^dist-build: registry reg\.example\/team\/cache: cannot list results: registry http:\/\/reg\.example unreachable \(ECONNREFUSED\)\n$/,
      );
    } finally {
      if (saved) STORE_BACKENDS.registry = saved;
      else delete STORE_BACKENDS.registry;
    }
  });

  it('says clearly when a backend cannot do an operation', async () => {
    const saved = STORE_BACKENDS.gha;
    const blind: Store = Object.assign(Object.create(store) as Store, {
      kind: 'gha',
      location: 'gha scope main',
      listResults: undefined,
      stats: undefined,
      verify: undefined,
      prune: undefined,
    });
    STORE_BACKENDS.gha = () => blind;
    try {
      writeFileSync(
        configFile,
        `version: 1\ninvocations:\n  lib: {run: 'true'}\ncache:\n  stores: [{type: local, dir: cache}, {type: gha, scope: main}]\n`,
      );
      const ls = await cli('cache', 'ls', '-c', configFile, '--json');
      expect(ls.code).toBe(0);
      expect(JSON.parse(ls.out)).toHaveLength(2);
      expect(ls.err).toMatch(
        /gha gha scope main: cannot list results: the gha backend does not support it/,
      );
      const v = await cli('cache', 'verify', '-c', configFile);
      expect(v.out).toMatch(/gha gha scope main: cannot verify/);
      const p = await cli('cache', 'prune', '-c', configFile, '--max-size', '1GB');
      expect(p.out).toMatch(/gha gha scope main: cannot prune/);
      const s = await cli('cache', 'stats', '-c', configFile);
      expect(s.out).toMatch(/gha gha scope main: cannot count entries/);
    } finally {
      if (saved) STORE_BACKENDS.gha = saved;
      else delete STORE_BACKENDS.gha;
    }
  });
});
