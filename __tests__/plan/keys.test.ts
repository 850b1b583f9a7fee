import fs from 'node:fs';
import path from 'node:path';
import type { Config, InvocationConfig } from '../../src/config/types.js';
import { FileIndex } from '../../src/plan/file-index.js';
import {
  KEY_FORMAT,
  canonicalJson,
  computeCacheKeys,
  dependencyOrder,
} from '../../src/plan/keys.js';
import type { Unit } from '../../src/plan/types.js';
import { expandUnits } from '../../src/plan/units.js';
import {
  backdate,
  cleanupTempDirs,
  invocation,
  makeConfig,
  simpleUnits,
  tempDir,
  writeTree,
} from './helpers.js';

afterAll(cleanupTempDirs);

const TREE = {
  'package-lock.json': '{"lockfileVersion":3}',
  'packages/lib/src/index.ts': 'export const x = 1;\n',
  'packages/lib/src/util.ts': 'export const y = 2;\n',
  'packages/lib/src/util.test.ts': 'test("y", () => {});\n',
  'packages/app/src/main.ts': 'import "lib";\n',
  'packages/app/scripts/build.sh': '#!/bin/sh\ntsc\n',
  'tools/gen/gen.py': 'print(1)\n',
  'services/api/Dockerfile': 'FROM node:20\nCOPY . .\n',
  'services/api/.dockerignore': '*.md\nnode_modules\n',
  'services/api/server.js': 'listen()\n',
  'services/api/NOTES.md': 'ignored by .dockerignore\n',
};

/** lib <- app <- api (docker, 2 platforms); gen is unrelated. */
function invocations(): InvocationConfig[] {
  return [
    invocation('lib', {
      run: 'npm run build -w lib',
      inputs: ['packages/lib/**', 'package-lock.json', '!**/*.test.ts'],
      outputs: ['packages/lib/dist'],
      env: { NODE_ENV: 'production', CI: 'true' },
    }),
    invocation('app', {
      run: 'npm run build -w app',
      inputs: ['packages/app/**', 'package-lock.json'],
      outputs: ['packages/app/dist'],
      needs: ['lib'],
    }),
    invocation('gen', { run: 'python tools/gen/gen.py', inputs: ['tools/**'] }),
    invocation('api', {
      docker: {
        context: 'services/api',
        platforms: ['linux/amd64', 'linux/arm64'],
        tags: ['registry/api:latest'],
        buildArgs: { VERSION: '1' },
      },
      needs: ['app'],
    }),
  ];
}

function checkout(files: Record<string, string> = TREE): string {
  const root = tempDir('dist-build-keys-');
  writeTree(root, files);
  fs.chmodSync(path.join(root, 'packages/app/scripts/build.sh'), 0o755);
  return root;
}

/** Keys (unit id -> cache key) for a checkout, with a fresh index in a separate cache dir. */
async function keysOf(
  root: string,
  mutate: (invs: InvocationConfig[]) => void = () => {},
  unitsOf: (c: Config) => Unit[] = expandUnits,
): Promise<Record<string, string>> {
  const invs = invocations();
  mutate(invs);
  const config = makeConfig(root, invs);
  const result = await computeCacheKeys(config, unitsOf(config), {
    cacheDir: path.join(tempDir('dist-build-cache-'), 'index'),
  });
  return Object.fromEntries([...result].map(([id, info]) => [id, info.cacheKey]));
}

describe('computeCacheKeys', () => {
  let root: string;
  let base: Record<string, string>;
  beforeAll(async () => {
    root = checkout();
    base = await keysOf(root);
  });

  it('gives every unit a sha256 key, per platform for docker units', () => {
    expect(Object.keys(base).sort()).toEqual(
      ['api@linux/amd64', 'api@linux/arm64', 'app', 'gen', 'lib'].sort(),
    );
    for (const k of Object.values(base)) expect(k).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(base['api@linux/amd64']).not.toBe(base['api@linux/arm64']);
  });

  it('reports file counts, bytes and unmatched patterns', async () => {
    const config = makeConfig(root, [
      invocation('lib', { inputs: ['packages/lib/**', '!**/*.test.ts', 'nope/**'] }),
    ]);
    const info = (await computeCacheKeys(config, simpleUnits(config))).get('lib')!;
    expect(info.files).toBe(2);
    expect(info.bytes).toBe(
      TREE['packages/lib/src/index.ts'].length + TREE['packages/lib/src/util.ts'].length,
    );
    expect(info.unmatched).toEqual(['nope/**']);
  });

  it('is independent of the checkout location, mtimes and index state', async () => {
    const other = checkout();
    backdate(other, 1_234_567_890);
    expect(await keysOf(other)).toEqual(base);
    // cold, then warm from the stored index (clock 10 s ahead: the new files are not racy)
    const config = makeConfig(other, invocations());
    const units = expandUnits(config);
    const run = async () => {
      const index = await FileIndex.open(other, { now: () => Date.now() + 10_000 });
      const keys = await computeCacheKeys(config, units, { index });
      await index.save();
      await index.close();
      return { keys, stats: index.stats };
    };
    const cold = await run();
    const warm = await run();
    expect(fs.existsSync(path.join(other, '.dist-build/index'))).toBe(true);
    expect(cold.stats.hashed).toBeGreaterThan(0);
    expect(warm.stats.hashed).toBe(0);
    expect(warm.stats.hits).toBe(cold.stats.hashed);
    for (const [id, key] of Object.entries(base)) {
      expect(cold.keys.get(id)!.cacheKey).toBe(key);
      expect(warm.keys.get(id)!.cacheKey).toBe(key);
    }
  });

  it('finds added, deleted and renamed files with directory listings from the index', async () => {
    const other = checkout();
    const config = makeConfig(other, invocations());
    const units = expandUnits(config);
    const cacheDir = path.join(tempDir('dist-build-cache-'), 'index');
    /** Every directory's mtime set to the past, so that any later change in it shows. */
    const backdateDirs = (dir = other): void => {
      fs.utimesSync(dir, 1_500_000_000, 1_500_000_000);
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) backdateDirs(path.join(dir, e.name));
      }
    };
    const run = async () => {
      // clock 10 s ahead: the new files and directories are not racy
      const index = await FileIndex.open(other, { cacheDir, now: () => Date.now() + 10_000 });
      const keys = await computeCacheKeys(config, units, { index });
      await index.save();
      await index.close();
      const lib = keys.get('lib')!;
      return {
        lib: lib.cacheKey,
        files: lib.files,
        app: keys.get('app')!.cacheKey,
        ...index.stats,
      };
    };
    backdateDirs();
    const cold = await run();
    expect(cold.lib).toBe(base.lib);
    expect(cold.dirReads).toBeGreaterThan(0);
    const warm = await run();
    expect(warm).toMatchObject({ lib: base.lib, app: base.app, hashed: 0, dirReads: 0 });
    expect(warm.dirHits).toBe(cold.dirReads);

    const src = path.join(other, 'packages/lib/src');
    const changes: [string, () => void, (r: Awaited<ReturnType<typeof run>>) => void][] = [
      [
        'add',
        () => fs.writeFileSync(path.join(src, 'extra.ts'), 'export const z = 0;\n'),
        (r) => expect(r.files).toBe(cold.files + 1),
      ],
      ['delete', () => fs.rmSync(path.join(src, 'extra.ts')), (r) => expect(r.lib).toBe(base.lib)],
      [
        'rename',
        () => fs.renameSync(path.join(src, 'util.ts'), path.join(src, 'util2.ts')),
        (r) => expect(r.files).toBe(cold.files),
      ],
      [
        'add in a new directory',
        () => writeTree(other, { 'packages/lib/src/deep/er/x.ts': 'x' }),
        (r) => expect(r.files).toBe(cold.files + 1),
      ],
    ];
    let before = warm;
    for (const [what, change, check] of changes) {
      backdateDirs();
      await run(); // the listings are stored again (backdating changed the directories)
      change();
      const after = await run();
      expect({ what, changed: after.lib !== before.lib }).toEqual({ what, changed: true });
      expect(after.app).not.toBe(before.app); // the dependent unit too
      expect(after.dirReads).toBeGreaterThan(0);
      check(after);
      before = after;
    }
  });

  it('does not depend on the order files were created in', async () => {
    const reversed = Object.fromEntries(Object.entries(TREE).reverse());
    expect(await keysOf(checkout(reversed))).toEqual(base);
  });

  it('does not change on touch (mtime only)', async () => {
    const other = checkout();
    const before = await keysOf(other);
    const f = path.join(other, 'packages/lib/src/index.ts');
    fs.utimesSync(f, new Date('2001-01-01'), new Date('2001-01-01'));
    expect(await keysOf(other)).toEqual(before);
  });

  it('changes the key of the unit and its dependents on a one-byte change, not of others', async () => {
    const other = checkout({ ...TREE, 'packages/lib/src/util.ts': 'export const y = 3;\n' });
    const changed = await keysOf(other);
    for (const id of ['lib', 'app', 'api@linux/amd64', 'api@linux/arm64']) {
      expect(changed[id]).not.toBe(base[id]); // directly and transitively
    }
    expect(changed.gen).toBe(base.gen);
  });

  it('changes only the dependent chain when a middle unit changes', async () => {
    const other = checkout({ ...TREE, 'packages/app/src/main.ts': 'import "lib"; // v2\n' });
    const changed = await keysOf(other);
    expect(changed.lib).toBe(base.lib);
    expect(changed.gen).toBe(base.gen);
    expect(changed.app).not.toBe(base.app);
    expect(changed['api@linux/amd64']).not.toBe(base['api@linux/amd64']);
  });

  it('ignores files excluded by negations and by .dockerignore', async () => {
    const other = checkout({
      ...TREE,
      'packages/lib/src/util.test.ts': 'changed test',
      'services/api/NOTES.md': 'changed notes',
    });
    expect(await keysOf(other)).toEqual(base);
  });

  it("never takes an invocation's own outputs, nor excluded paths, as its inputs", async () => {
    // lib's inputs (packages/lib/**) cover its outputs (packages/lib/dist): last run's outputs
    // must not change its key (nor app's, which needs it).
    const built = checkout({
      ...TREE,
      'packages/lib/dist/index.js': 'built',
      'packages/app/dist/app.js': 'built',
    });
    expect(await keysOf(built)).toEqual(base);
    const withReport = checkout({ ...TREE, 'tools/out/report.json': '{"at": 1}' });
    const invs = invocations();
    const config = makeConfig(withReport, invs);
    const keyed = async (exclude: string[]) =>
      (
        await computeCacheKeys(config, expandUnits(config), {
          cacheDir: path.join(tempDir('dist-build-cache-'), 'index'),
          exclude,
        })
      ).get('gen')!.cacheKey;
    expect(await keyed(['tools/out'])).toBe(base.gen);
    expect(await keyed([])).not.toBe(base.gen);
    // Paths, not globs: an output named `x|tools` leaves tools/ an input.
    const glob = await keysOf(root, (invs) => {
      invs.find((i) => i.name === 'gen')!.outputs = ['gen/x|tools', 'gen/*'];
    });
    const globChanged = await keysOf(
      checkout({ ...TREE, 'tools/gen/gen.py': 'print(2)' }),
      (invs) => {
        invs.find((i) => i.name === 'gen')!.outputs = ['gen/x|tools', 'gen/*'];
      },
    );
    expect(globChanged.gen).not.toBe(glob.gen);
  });

  it("never takes the config's own store directories in the tree as inputs", async () => {
    // A local store (and a gha shard) kept in the tree, outside .dist-build: each result saved
    // writes there, so a tools/** that took them would never give the same key twice.
    const keyed = async (files: Record<string, string>) => {
      const dir = checkout({ ...TREE, ...files });
      const config: Config = {
        ...makeConfig(dir, invocations()),
        cache: {
          stores: [
            { type: 'local', dir: 'tools/cache' },
            { type: 'gha', dir: './tools/gha/' },
            { type: 'local', dir: path.join(dir, 'tools/abs') },
          ],
        },
      };
      return (
        await computeCacheKeys(config, expandUnits(config), {
          cacheDir: path.join(tempDir('dist-build-cache-'), 'index'),
        })
      ).get('gen')!.cacheKey;
    };
    expect(await keyed({})).toBe(base.gen);
    expect(
      await keyed({
        'tools/cache/blobs/sha256/ab/ab12': 'blob',
        'tools/gha/results/x.json': '{}',
        'tools/abs/blobs/x': 'blob',
      }),
    ).toBe(base.gen);
  });

  it("never takes another invocation's outputs as inputs either (they come in through needs)", async () => {
    // gen globs all of tools/**; a build writing into tools/out (another invocation's output)
    // must not change gen's key, whether it ran before the keys were computed or not.
    const withOut = (invs: InvocationConfig[]) =>
      invs.push(invocation('report', { run: 'true', outputs: ['tools/out'] }));
    const before = await keysOf(root, withOut);
    const after = await keysOf(
      checkout({ ...TREE, 'tools/out/report.json': '{"at": 2}' }),
      withOut,
    );
    expect(after.gen).toBe(before.gen);
    expect(after.gen).toBe(base.gen);
  });

  it("leaves other invocations' outputs out of a docker context too, and a context that is one is not missing", async () => {
    // api's context holds app's output: written by app in the run, it must not change api's key
    // between the run that builds app and the next (api gets it through needs).
    const inContext = (invs: InvocationConfig[]) => (invs[1]!.outputs = ['services/api/dist']);
    const before = await keysOf(root, inContext);
    const after = await keysOf(
      checkout({ ...TREE, 'services/api/dist/app.js': 'built\n' }),
      inContext,
    );
    expect(after['api@linux/amd64']).toBe(before['api@linux/amd64']);
    const config = makeConfig(root, [
      invocation('site', { run: 'true', outputs: ['out/site'] }),
      invocation('img', {
        docker: { context: 'out/site', file: 'services/api/Dockerfile' },
        needs: ['site'],
      }),
    ]);
    const info = (await computeCacheKeys(config, simpleUnits(config))).get('img')!;
    expect(info.unmatched).toEqual([]);
  });

  it('warns about inputs that match files under outputs of an invocation not needed', async () => {
    const shadowedOf = async (files: Record<string, string>, test: Partial<InvocationConfig>) => {
      const root = checkout({ ...TREE, ...files });
      const config = makeConfig(root, [
        invocation('codegen', { run: 'gen', outputs: ['packages/lib/src/gen'] }),
        invocation('test', { run: 'test', inputs: ['packages/lib/src/**'], ...test }),
        invocation('docs', { run: 'docs', inputs: ['docs/**'], outputs: ['docs/out'] }),
      ]);
      const keys = await computeCacheKeys(config, expandUnits(config), {
        cacheDir: path.join(tempDir('dist-build-cache-'), 'index'),
      });
      return Object.fromEntries([...keys].map(([id, k]) => [id, k.shadowed]));
    };
    const generated = {
      'packages/lib/src/gen/api.ts': 'export {}',
      'docs/index.md': '#',
      'docs/out/index.html': '<p>',
    };
    const w = await shadowedOf(generated, {});
    expect(w.test).toEqual([
      'invocations.test.inputs: "packages/lib/src/**" matches packages/lib/src/gen/api.ts, an output of codegen, which test does not need: no invocation\'s outputs are inputs, so changing it would not rebuild test (add needs: [codegen], or narrow the pattern)',
    ]);
    // Its own outputs, an invocation it needs, patterns that miss, outputs not there: no warning.
    expect(w.docs).toEqual([]);
    expect((await shadowedOf(generated, { needs: ['codegen'] })).test).toEqual([]);
    expect((await shadowedOf(generated, { inputs: ['packages/lib/src/*.ts'] })).test).toEqual([]);
    expect(
      (await shadowedOf(generated, { inputs: ['packages/lib/src/**', '!**/gen'] })).test,
    ).toEqual([]);
    expect((await shadowedOf({}, {})).test).toEqual([]);
  });

  it('warns about a docker context that holds outputs of an invocation not needed (what Docker sends)', async () => {
    const shadowedOf = async (files: Record<string, string>, img: Partial<InvocationConfig>) => {
      const root = checkout({ ...TREE, ...files });
      const config = makeConfig(root, [
        invocation('gen', { run: 'gen', outputs: ['services/api/gen'] }),
        invocation('img', { docker: { context: 'services/api' }, ...img }),
      ]);
      const keys = await computeCacheKeys(config, expandUnits(config), {
        cacheDir: path.join(tempDir('dist-build-cache-'), 'index'),
      });
      return keys.get('img')!.shadowed;
    };
    const generated = { 'services/api/gen/client.js': 'x' };
    expect(await shadowedOf(generated, {})).toEqual([
      'invocations.img.docker.context: "services/api" holds services/api/gen/client.js, an output of gen, which img does not need: no invocation\'s outputs are inputs, so changing it would not rebuild img (add needs: [gen], or leave it out with .dockerignore)',
    ]);
    // Needed, left out by .dockerignore, not there: no warning.
    expect(await shadowedOf(generated, { needs: ['gen'] })).toEqual([]);
    expect(await shadowedOf({ ...generated, 'services/api/.dockerignore': 'gen\n' }, {})).toEqual(
      [],
    );
    expect(await shadowedOf({}, {})).toEqual([]);
  });

  it('warns about a docker context that sends .dist-build (Docker does, the key leaves it out)', async () => {
    const warned = async (files: Record<string, string>) => {
      const root = checkout({ ...TREE, Dockerfile: 'FROM scratch\nCOPY . .\n', ...files });
      const config = makeConfig(root, [invocation('img', { docker: { context: '.' } })]);
      const keys = await computeCacheKeys(config, expandUnits(config), {
        cacheDir: path.join(tempDir('dist-build-cache-'), 'index'),
      });
      return keys.get('img')!.shadowed;
    };
    const own = { '.dist-build/run/certs-1/master-key.pem': 'key' };
    expect(await warned(own)).toEqual([
      'invocations.img.docker.context: "." holds .dist-build, dist-build\'s own directory (cache, run state, the run\'s keys), and no .dockerignore leaves it out: Docker sends it (.dist-build/run/certs-1/master-key.pem, for one), so a COPY of the whole context puts it in the image, and the cache key does not cover it (add .dist-build to .dockerignore)',
    ]);
    expect(await warned({ ...own, '.dockerignore': '.dist-build\n' })).toEqual([]);
  });

  it("computes one unit's key alone from its dependencies' keys, as for the whole graph", async () => {
    const config = makeConfig(root, invocations());
    const units = expandUnits(config);
    const app = units.find((u) => u.id === 'app')!;
    const alone = await computeCacheKeys(config, [app], {
      cacheDir: path.join(tempDir('dist-build-cache-'), 'index'),
      needKeys: new Map([['lib', base.lib!]]),
    });
    expect(alone.get('app')!.cacheKey).toBe(base.app);
    await expect(computeCacheKeys(config, [app])).rejects.toThrow(/needs unknown unit "lib"/);
  });

  it('changes on an executable-bit change', async () => {
    const other = checkout();
    fs.chmodSync(path.join(other, 'packages/app/scripts/build.sh'), 0o644);
    const changed = await keysOf(other);
    expect(changed.app).not.toBe(base.app);
    expect(changed.lib).toBe(base.lib);
  });

  it('changes when a file is added, removed or renamed', async () => {
    const added = checkout({ ...TREE, 'packages/lib/src/new.ts': '' });
    expect((await keysOf(added)).lib).not.toBe(base.lib);
    const { ['packages/lib/src/util.ts']: util, ...rest } = TREE;
    const removed = checkout(rest);
    expect((await keysOf(removed)).lib).not.toBe(base.lib);
    const renamed = checkout({ ...rest, 'packages/lib/src/util2.ts': util });
    expect((await keysOf(renamed)).lib).not.toBe(base.lib);
  });

  it('hashes a symlink by its target, without following it', async () => {
    const a = checkout();
    fs.symlinkSync('index.ts', path.join(a, 'packages/lib/src/alias.ts'));
    const b = checkout();
    fs.symlinkSync('util.ts', path.join(b, 'packages/lib/src/alias.ts'));
    const ka = await keysOf(a);
    expect(ka.lib).not.toBe(base.lib);
    expect((await keysOf(b)).lib).not.toBe(ka.lib);
  });

  it('changes on env, command, outputs, build args, target, tags and platform changes', async () => {
    const variants: [string, (invs: InvocationConfig[]) => void, string][] = [
      ['env value', (i) => (i[0]!.env.NODE_ENV = 'development'), 'lib'],
      ['env added', (i) => (i[0]!.env.EXTRA = ''), 'lib'],
      ['command', (i) => (i[0]!.run = 'npm run build -w lib --verbose'), 'lib'],
      ['outputs', (i) => i[0]!.outputs.push('packages/lib/types'), 'lib'],
      ['build arg', (i) => (i[3]!.docker!.buildArgs.VERSION = '2'), 'api@linux/amd64'],
      ['target', (i) => (i[3]!.docker!.target = 'prod'), 'api@linux/amd64'],
      // The image archive is saved by its tags, and `docker load` tags the image with them.
      ['tags', (i) => (i[3]!.docker!.tags = ['registry/api:2']), 'api@linux/amd64'],
      ['platform', (i) => (i[2]!.platform = 'linux/arm64'), 'gen'],
      ['Dockerfile', (i) => (i[3]!.docker!.file = 'services/api/server.js'), 'api@linux/amd64'],
    ];
    for (const [what, mutate, id] of variants) {
      const changed = await keysOf(root, mutate);
      expect([what, changed[id]]).not.toEqual([what, base[id]]);
    }
  });

  it('ignores timeout, estimate, labels, export, push and the order of env/outputs/inputs/tags', async () => {
    const same = await keysOf(root, (i) => {
      i[3]!.docker!.tags = ['registry/api:latest', 'registry/api:latest'];
      i[3]!.docker!.push = true;
      i[0]!.timeout = 5;
      i[0]!.estimate = 99;
      i[0]!.labels = ['gpu'];
      i[0]!.export = true;
      i[0]!.env = { CI: 'true', NODE_ENV: 'production' };
      i[0]!.inputs = ['!**/*.test.ts', 'package-lock.json', 'packages/lib/**'];
      i[1]!.outputs = ['packages/app/dist', 'packages/app/dist'];
    });
    expect(same).toEqual(base);
  });

  it('uses the docker context (filtered) plus the Dockerfile and extra input globs', async () => {
    const other = checkout({ ...TREE, 'services/api/server.js': 'listen(8080)\n' });
    expect((await keysOf(other))['api@linux/arm64']).not.toBe(base['api@linux/arm64']);
    const withInputs = await keysOf(root, (i) => i[3]!.inputs.push('tools/**'));
    expect(withInputs['api@linux/arm64']).not.toBe(base['api@linux/arm64']);
  });

  it('reports a missing docker context or Dockerfile in unmatched, without failing', async () => {
    const config = makeConfig(root, [
      invocation('img', { docker: { context: 'services/nope' }, inputs: ['tools/**'] }),
    ]);
    const info = (await computeCacheKeys(config, simpleUnits(config))).get('img')!;
    expect(info.unmatched).toEqual(['services/nope', 'services/nope/Dockerfile']);
    expect(info.files).toBe(1);
    expect(info.cacheKey).toMatch(/^sha256:/);
  });

  it('shares keys of identical definitions (the name is not part of the key)', async () => {
    const config = makeConfig(root, [
      invocation('one', { run: 'make', inputs: ['tools/**'] }),
      invocation('two', { run: 'make', inputs: ['tools/**'] }),
    ]);
    const keys = await computeCacheKeys(config, simpleUnits(config));
    expect(keys.get('one')!.cacheKey).toBe(keys.get('two')!.cacheKey);
  });

  it("does not share keys of identical docker definitions: the image archive's path names the unit", async () => {
    // A result holds `.dist-build/images/<unit>.tar`: one unit's result is not the other's.
    const config = makeConfig(root, [
      invocation('one', { docker: { context: 'services/api' } }),
      invocation('two', { docker: { context: 'services/api' } }),
    ]);
    const keys = await computeCacheKeys(config, simpleUnits(config));
    expect(keys.get('one')!.cacheKey).not.toBe(keys.get('two')!.cacheKey);
  });

  it('accepts an open index and leaves saving to the caller', async () => {
    const index = await FileIndex.open(root, { cacheDir: path.join(tempDir(), 'idx') });
    const config = makeConfig(root, invocations());
    const keys = await computeCacheKeys(config, expandUnits(config), { index });
    expect(keys.get('lib')!.cacheKey).toBe(base.lib);
    expect(index.stats.hashed).toBeGreaterThan(0);
    await index.close();
  });

  it('throws on unknown needs, unknown invocations and cycles', async () => {
    const config = makeConfig(root, [invocation('a'), invocation('b')]);
    const u = (id: string, needs: string[], inv = id): Unit => ({
      id,
      invocation: inv,
      affinityKey: id,
      needs,
      labels: [],
    });
    await expect(computeCacheKeys(config, [u('a', ['zzz'])])).rejects.toThrow(/unknown unit "zzz"/);
    await expect(computeCacheKeys(config, [u('q', [], 'nope')])).rejects.toThrow(
      /unknown invocation "nope"/,
    );
    await expect(computeCacheKeys(config, [u('a', ['b']), u('b', ['a'])])).rejects.toThrow(
      /cycle: a -> b -> a/,
    );
  });
});

describe('dependencyOrder', () => {
  it('puts needs first and keeps the given order otherwise', () => {
    const u = (id: string, needs: string[] = []): Unit => ({
      id,
      invocation: id,
      affinityKey: id,
      needs,
      labels: [],
    });
    const order = dependencyOrder([u('c', ['b']), u('a'), u('b', ['a']), u('d')]);
    expect(order.map((x) => x.id)).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('canonicalJson', () => {
  it('sorts keys, has no whitespace and is independent of insertion order', () => {
    expect(canonicalJson({ b: [1, 'x'], a: { d: null, c: true } })).toBe(
      '{"a":{"c":true,"d":null},"b":[1,"x"]}',
    );
    expect(canonicalJson({ z: 1, a: 2 })).toBe(canonicalJson({ a: 2, z: 1 }));
    expect(() => canonicalJson(1.5)).toThrow();
    expect(KEY_FORMAT).toBe('dist-build/key/v1');
  });
});
