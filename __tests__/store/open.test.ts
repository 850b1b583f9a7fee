import { jest } from '@jest/globals';
import { existsSync, mkdtempSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import { LocalStore } from '../../src/store/local.js';
import {
  checkStores,
  effectiveStores,
  openStore,
  openStores,
  STORE_BACKENDS,
  storeKinds,
  workerCacheDir,
} from '../../src/store/open.js';
import { SignedStore, SigningConfigError } from '../../src/store/signing.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-open-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = (cache = '') =>
  parseConfig(
    `version: 1\ninvocations:\n  lib: {run: make}\n${cache}`,
    join(dir, 'dist-build.yml'),
  );
const opts = { slot: 'worker-1', onWarning: () => {}, env: {} };

describe('openStore', () => {
  it('a first local store that cannot be written is read, behind a temporary store of its own (a warning, not failed builds)', async () => {
    // A read-only cache dir (as root, modes do not stop writes: the probe says what it met).
    const probe = jest
      .spyOn(LocalStore.prototype, 'writeProblem')
      .mockResolvedValueOnce("EACCES: permission denied, open '<cache>/tmp/probe'");
    const warnings: string[] = [];
    try {
      const store = await openStore(config(), { ...opts, onWarning: (m) => warnings.push(m) });
      expect(store.layers).toHaveLength(2);
      const [own, shared] = store.layers as LocalStore[];
      expect(shared!.location).toBe(join(dir, '.dist-build', 'cache'));
      expect(own!.location.startsWith(join(tmpdir(), 'dist-build-store-'))).toBe(true);
      expect(warnings).toEqual([
        `${join(dir, '.dist-build', 'cache')}: cannot write there (EACCES: permission denied, open '<cache>/tmp/probe'): what this worker builds is kept in ${own!.location} for this run only`,
      ]);
      // Builds land in the temporary store; the shared one is still read.
      const blob = await store.putBlob(
        (async function* () {
          yield Buffer.from('built here');
        })(),
      );
      expect(existsSync(own!.blobPath(blob.digest))).toBe(true);
      await rm(own!.location, { recursive: true, force: true });
    } finally {
      probe.mockRestore();
    }
  });

  it('writeProblem() is undefined for a store that can be written', async () => {
    const store = await LocalStore.open(join(dir, 'cache'));
    expect(await store.writeProblem()).toBeUndefined();
  });

  it('opens the default local store at <config dir>/.dist-build/cache', async () => {
    const store = await openStore(config(), opts);
    expect(store.kind).toBe('local');
    expect(store.layers).toHaveLength(1);
    expect(store.layers[0]).toBeInstanceOf(LocalStore);
    expect(store.location).toBe(join(dir, '.dist-build', 'cache'));
    await store.flush();
    const stats = JSON.parse(
      await readFile(join(dir, '.dist-build', 'cache', 'stats', 'worker-1.json'), 'utf8'),
    );
    expect(stats.slot).toBe('worker-1');
  });

  it('applies dir and max-size; --cache-dir replaces the first local dir', async () => {
    const c = config(
      'cache: {stores: [{type: local, dir: c1, max-size: 1MB}, {type: local, dir: c2}]}\n',
    );
    const store = await openStore(c, opts);
    const [first, second] = store.layers as LocalStore[];
    expect(first!.dir).toBe(join(dir, 'c1'));
    expect(first!.maxBytes).toBe(1e6);
    expect(second!.dir).toBe(join(dir, 'c2'));
    const flagged = await openStore(c, { ...opts, cacheDir: join(dir, 'flag') });
    expect((flagged.layers[0] as LocalStore).dir).toBe(join(dir, 'flag'));
    expect((flagged.layers[0] as LocalStore).maxBytes).toBe(1e6);
    expect(workerCacheDir(c)).toBe(join(dir, 'c1'));
    expect(workerCacheDir(c, join(dir, 'flag'))).toBe(join(dir, 'flag'));
  });

  it('--cache-dir puts a local store in front when the config has none', () => {
    const c = config('cache: {stores: [{type: gha, scope: main}]}\n');
    expect(effectiveStores(c, join(dir, 'x'))).toEqual([
      { type: 'local', dir: join(dir, 'x') },
      { type: 'gha', scope: 'main' },
    ]);
    expect(workerCacheDir(c)).toBe(join(dir, '.dist-build', 'cache'));
  });

  it('a local store listed after a registry goes in front of it (a registry down must not fail builds)', async () => {
    const c = config(
      'cache:\n  stores:\n    - type: registry\n      ref: 127.0.0.1:9/x\n    - type: local\n      dir: c1\n',
    );
    expect(effectiveStores(c)).toEqual([
      { type: 'local', dir: 'c1' },
      { type: 'registry', ref: '127.0.0.1:9/x' },
    ]);
    const store = await openStore(c, { ...opts, writeStats: false });
    expect(store.layers.map((l) => l.kind)).toEqual(['local', 'registry']);
    expect((store.layers[0] as LocalStore).dir).toBe(join(dir, 'c1'));
    // Nothing listens on port 9: the save still succeeds, into the local store.
    const blob = await store.putBlob(
      (async function* () {
        yield Buffer.from('built here');
      })(),
    );
    expect((await store.layers[0]!.hasBlobs([blob.digest])).has(blob.digest)).toBe(true);
    // The worker id still names the kinds in config order; problems name the store as written.
    expect(storeKinds(c)).toEqual(['registry', 'local']);
    const bad = config(
      'cache:\n  stores:\n    - type: registry\n      ref: 127.0.0.1:9/x\n      chunk-size: 1KB\n    - type: local\n',
    );
    const err = (await openStores(bad, opts).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues[0]).toMatchObject({ line: 8, path: 'cache.stores[0].chunk-size' });
  });

  it('storeKinds: the kinds a worker uses, each once; --no-remote-cache keeps local ones', () => {
    const c = config(
      'cache: {stores: [{type: local}, {type: gha}, {type: local, dir: b}, {type: registry, ref: r/x}]}\n',
    );
    expect(storeKinds(c)).toEqual(['local', 'gha', 'registry']);
    expect(storeKinds(c, undefined, true)).toEqual(['local']);
    expect(storeKinds(config('cache: {stores: [{type: gha}]}\n'), undefined, true)).toEqual([
      'local',
    ]);
  });

  it('a backend missing from this build, or bad options, is a config error', async () => {
    const saved = STORE_BACKENDS.registry;
    delete STORE_BACKENDS.registry;
    try {
      await expect(
        openStores(config('cache: {stores: [{type: registry, ref: x}]}\n'), opts),
      ).rejects.toThrow(/cache.stores\[0\]: registry store: this build of dist-build has no/);
    } finally {
      if (saved) STORE_BACKENDS.registry = saved;
    }
    const c = config();
    c.cache = { stores: [{ type: 'local', colour: 'blue' }] };
    await expect(openStores(c, opts)).rejects.toThrow(ConfigError);
  });

  it('names the line of the store option a backend refuses', async () => {
    const c = config(
      'cache:\n  stores:\n    - type: local\n    - type: registry\n      ref: localhost:5000/x\n      chunk-size: 1KB\n',
    );
    const err = (await openStores(c, opts).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues[0]).toMatchObject({ line: 9, path: 'cache.stores[1].chunk-size' });
    expect(err.message).toMatch(/dist-build\.yml:9:\d+.*chunk-size/);
    // The positions never reach what is hashed or printed as JSON.
    expect(JSON.stringify(c.cache)).not.toContain('line');
  });

  it('names the config file as the loader does (the path given, not the absolute one)', async () => {
    const c = parseConfig(
      'version: 1\ninvocations:\n  lib: {run: make}\ncache:\n  stores:\n    - type: registry\n      ref: localhost:5000/x\n      chunk-size: 1KB\n',
      join(dir, 'dist-build.yml'),
      'dist-build.yml',
    );
    const err = (await checkStores(c).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues).toEqual([expect.objectContaining({ file: 'dist-build.yml', line: 8 })]);
    expect(err.message).toMatch(/^1 problem in dist-build\.yml:\n {2}dist-build\.yml:8:/);
  });

  it("points at a gha option's own line, and names the config file as the loader does", async () => {
    const c = parseConfig(
      'version: 1\ninvocations:\n  lib: {run: make}\ncache:\n  stores:\n    - type: gha\n      scope: main\n      retain-days: -1\n',
      join(dir, 'dist-build.yml'),
      'dist-build.yml',
    );
    const err = (await checkStores(c).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues).toEqual([
      expect.objectContaining({
        file: 'dist-build.yml',
        line: 8,
        path: 'cache.stores[0].retain-days',
      }),
    ]);
    expect(err.message).toMatch(
      /^1 problem in dist-build\.yml:\n {2}dist-build\.yml:8:\d+: cache\.stores\[0\]\.retain-days: gha store: retain-days: must be a non-negative number$/,
    );
  });

  it("reports every store's problems at once, each prefixed once", async () => {
    const c = config(
      'cache:\n  stores:\n    - type: registry\n      chunk-size: 1KB\n    - type: gha\n      scope: ""\n',
    );
    const err = (await openStores(c, opts).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues.map((i) => i.path)).toEqual([
      expect.stringMatching(/^cache\.stores\[0\]/),
      expect.stringMatching(/^cache\.stores\[1\]/),
    ]);
    expect(err.message).not.toMatch(/(\w+) store: \1 store:/);
  });

  it('prepares each store as it opens it (gha: loads @actions/cache before a worker registers), not when only checking', async () => {
    // Loading @actions/cache during a worker's first cache query stalled its heartbeats past the
    // lease when every local worker of `run -w 8` did it at once: the run gave workers up as lost.
    const saved = STORE_BACKENDS.gha!;
    const prepared: string[] = [];
    STORE_BACKENDS.gha = async (options, ctx) => {
      const store = await saved(options, ctx);
      const prepare = store.prepare?.bind(store);
      store.prepare = async () => {
        prepared.push(store.kind);
        await prepare?.();
      };
      return store;
    };
    try {
      const c = config('cache: {stores: [{type: local}, {type: gha}]}\n');
      await checkStores(c);
      expect(prepared).toEqual([]);
      await openStore(c, opts);
      expect(prepared).toEqual(['gha']);
    } finally {
      STORE_BACKENDS.gha = saved;
    }
  });

  it('signs every layer when the secret is set; required without it is an error', async () => {
    const c = config('cache: {sign: {secret-env: S, required: true}}\n');
    await expect(openStore(c, opts)).rejects.toThrow(SigningConfigError);
    const store = await openStore(c, { ...opts, env: { S: 'secret' } });
    expect(store.layers[0]).toBeInstanceOf(SignedStore);
    const warnings: string[] = [];
    const loose = config('cache: {sign: {secret-env: S}}\n');
    const unsigned = await openStore(loose, { ...opts, onWarning: (m) => warnings.push(m) });
    expect(unsigned.layers[0]).toBeInstanceOf(LocalStore);
    expect(warnings).toEqual([expect.stringMatching(/signing is off: S is not set/)]);
  });
});
