/**
 * GhaStore through the unmodified @actions/cache against the local fake of the Actions cache
 * service, over protocol v2 (Twirp + signed blob URLs) and v1 (_apis/artifactcache). An
 * integration test because @actions/cache runs tar and zstd.
 */
import { jest } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGhaStore, ghaKeyPrefix } from '../../src/store/gha.js';
import type { GhaStore } from '../../src/store/gha.js';
import { blobOpenerFor, restoreOutputs, saveOutputs } from '../../src/store/pack.js';
import { RESULT_FORMAT } from '../../src/store/types.js';
import type { ResultManifest, Store } from '../../src/store/types.js';
import { startActionsCacheServer } from '../fixtures/actions-cache-server.js';
import { runCli, stopAll } from '../helpers/processes.js';
import type { ActionsCacheServer } from '../fixtures/actions-cache-server.js';

jest.setTimeout(60_000);

// @actions/glob expands `~` with os.homedir(), which reads the native environment. In a real
// process GhaStore's HOME (set in process.env around each call) reaches it; jest gives each test
// file a copy of process.env that does not, so os.homedir() follows that copy here. Registered
// before @actions/cache is first imported (the store imports it lazily).
for (const name of ['os', 'node:os']) {
  const real = await import('node:os');
  jest.unstable_mockModule(name, () => ({
    ...real,
    default: { ...real.default, homedir: () => process.env.HOME ?? real.homedir() },
    homedir: () => process.env.HOME ?? real.homedir(),
  }));
}

let tmp: string;
let server: ActionsCacheServer | undefined;

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dist-build-gha-'));
});

afterEach(async () => {
  await stopAll();
  await server?.close();
  server = undefined;
  await rm(tmp, { recursive: true, force: true });
});

async function start(): Promise<ActionsCacheServer> {
  server = await startActionsCacheServer();
  return server;
}

interface TestStore {
  store: GhaStore;
  warnings: string[];
}

let dirs = 0;
function makeStore(
  env: NodeJS.ProcessEnv,
  slot = 'worker-1',
  extra: Record<string, unknown> = {},
  ctx: { peerRefreshMs?: number } = {},
): TestStore {
  const warnings: string[] = [];
  const store = createGhaStore(
    { dir: join(tmp, `shard-${dirs++}`), ...extra },
    { root: tmp, slot, onWarning: (m) => warnings.push(m), env, ...ctx },
  );
  return { store, warnings };
}

function key(n: number): string {
  return `sha256:${n.toString(16).padStart(64, '0')}`;
}

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(join(root, rel, '..'), { recursive: true });
    await writeFile(join(root, rel), content);
  }
}

async function buildResult(
  store: Store,
  root: string,
  cacheKey: string,
  outputs: string[],
): Promise<ResultManifest> {
  const manifest: ResultManifest = {
    format: RESULT_FORMAT,
    cacheKey,
    unit: 'lib',
    invocation: 'lib',
    exitCode: 0,
    durationMs: 10,
    worker: 'worker-1',
    createdAt: new Date().toISOString(),
    outputs: await saveOutputs(store, root, outputs),
  };
  await store.putResult(manifest);
  return manifest;
}

const creates = (s: ActionsCacheServer) => s.requests().filter((r) => r.op === 'create').length;
const committed = (s: ActionsCacheServer) => s.entries().filter((e) => e.committed);

/** Saves one result (`out/lib`, two files) on slot worker-1 and flushes it. */
async function seed(srv: ActionsCacheServer, version: 'v1' | 'v2'): Promise<ResultManifest> {
  const work = join(tmp, 'work-a');
  await writeTree(work, { 'out/lib/a.txt': 'alpha\n', 'out/lib/sub/b.txt': 'beta\n' });
  const a = makeStore(srv.env(version));
  const manifest = await buildResult(a.store, work, key(1), ['out/lib']);
  await a.store.flush();
  expect(a.warnings).toEqual([]);
  expect(a.store.stats()).toMatchObject({ savedEntries: 1, warnings: 0 });
  return manifest;
}

describe.each(['v2', 'v1'] as const)('GhaStore over protocol %s', (version) => {
  it('saves a shard as one entry and a fresh store for the slot restores it', async () => {
    const srv = await start();
    const manifest = await seed(srv, version);
    const entries = committed(srv);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.protocol).toBe(version);
    expect(entries[0]!.key.startsWith(ghaKeyPrefix('default', 'worker-1'))).toBe(true);
    expect(entries[0]!.key.length).toBeLessThan(512);

    const b = makeStore(srv.env(version));
    expect(await b.store.getResult(key(1))).toEqual(manifest);
    expect(await b.store.hasResults([key(1), key(2)])).toEqual(new Set([key(1)]));
    const out = join(tmp, 'work-b');
    await restoreOutputs(blobOpenerFor(b.store), out, manifest.outputs);
    expect(await readFile(join(out, 'out/lib/sub/b.txt'), 'utf8')).toBe('beta\n');
    expect(b.store.stats()).toMatchObject({ restoredEntries: 1, warnings: 0 });
    expect(b.store.restoredKeys).toEqual([entries[0]!.key]);
    expect(b.warnings).toEqual([]);

    // Reading only: nothing to upload.
    await b.store.flush();
    expect(committed(srv)).toHaveLength(1);
  });

  it("warm restores the slot's entry before any lookup, once", async () => {
    const srv = await start();
    await seed(srv, version);
    const downloads = () => srv.requests().filter((r) => r.op === 'download').length;
    const before = downloads();
    const b = makeStore(srv.env(version));
    await b.store.warm();
    expect(downloads()).toBe(before + 1);
    expect(b.store.stats()).toMatchObject({ restoredEntries: 1 });
    expect(await b.store.hasResults([key(1)])).toEqual(new Set([key(1)]));
    expect(downloads()).toBe(before + 1);
  });

  it('uploads nothing on a second flush without new results', async () => {
    const srv = await start();
    const work = join(tmp, 'work');
    await writeTree(work, { 'out/x.txt': 'x' });
    const a = makeStore(srv.env(version));
    await buildResult(a.store, work, key(1), ['out/x.txt']);
    await a.store.flush();
    const before = creates(srv);
    await a.store.flush();
    expect(creates(srv)).toBe(before);
    expect(committed(srv)).toHaveLength(1);
    // A new result makes the next flush save a new entry, holding both results.
    await writeTree(work, { 'out/y.txt': 'y' });
    await buildResult(a.store, work, key(2), ['out/y.txt']);
    await a.store.flush();
    expect(committed(srv)).toHaveLength(2);
    const c = makeStore(srv.env(version));
    expect(await c.store.hasResults([key(1), key(2)])).toEqual(new Set([key(1), key(2)]));
    expect(a.store.stats().uploadedBytes).toBeGreaterThan(0);
  });

  it('packs many small blobs into one entry', async () => {
    const srv = await start();
    const work = join(tmp, 'work');
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`out/f${i}.txt`] = `file ${i}\n`;
    await writeTree(work, files);
    const a = makeStore(srv.env(version));
    for (let i = 0; i < 60; i++) await buildResult(a.store, work, key(i + 1), [`out/f${i}.txt`]);
    await a.store.flush();
    expect(creates(srv)).toBe(1);
    expect(committed(srv)).toHaveLength(1);
    const b = makeStore(srv.env(version));
    const keys = Array.from({ length: 60 }, (_, i) => key(i + 1));
    expect((await b.store.hasResults(keys)).size).toBe(60);
  });

  it('warns and keeps building when the upload is rate-limited (429)', async () => {
    const srv = await start();
    srv.setFault('create', { status: 429 });
    const work = join(tmp, 'work');
    await writeTree(work, { 'out/x.txt': 'x' });
    const a = makeStore(srv.env(version));
    await buildResult(a.store, work, key(1), ['out/x.txt']);
    await expect(a.store.flush()).resolves.toBeUndefined();
    expect(a.warnings).toHaveLength(1);
    expect(a.warnings[0]).toMatch(/rate-limited/);
    expect(committed(srv)).toHaveLength(0);
    // The local shard still serves the result.
    expect(await a.store.getResult(key(1))).not.toBeNull();
    expect(a.store.stats()).toMatchObject({ savedEntries: 0, warnings: 1 });
  });

  it('warns on server errors (5xx) when saving and when downloading', async () => {
    const srv = await start();
    // 501: a 5xx that neither protocol client retries (500/502/503/504 are retried with
    // multi-second backoff by the v2 client, which a unit of work should not wait for).
    srv.setFault('create', { status: 501 });
    const work = join(tmp, 'work');
    await writeTree(work, { 'out/x.txt': 'x' });
    const a = makeStore(srv.env(version));
    await buildResult(a.store, work, key(1), ['out/x.txt']);
    await a.store.flush();
    expect(a.warnings).toHaveLength(1);
    expect(a.warnings[0]).toMatch(/failed/);
    srv.clearFaults();
    await a.store.flush(); // still dirty: this one goes through
    expect(committed(srv)).toHaveLength(1);

    srv.setFault('download', { status: 500 });
    const b = makeStore(srv.env(version));
    expect(await b.store.getResult(key(1))).toBeNull();
    expect(b.warnings).toHaveLength(1);
    expect(b.warnings[0]).toMatch(/restoring .* failed/);
  });

  it("does not hide a slot's older results behind an entry saved after its restore failed", async () => {
    const srv = await start();
    await seed(srv, version); // key(1) in worker-1's entry
    const work = join(tmp, 'work-b');
    await writeTree(work, { 'out/y.txt': 'y' });
    // The restore fails (500) whenever it is tried: nothing is saved over the older entry.
    srv.setFault('download', { status: 501 });
    const b = makeStore(srv.env(version));
    await buildResult(b.store, work, key(2), ['out/y.txt']);
    await b.store.flush();
    expect(committed(srv)).toHaveLength(1);
    expect(b.warnings.join('\n')).toMatch(
      /not saving the shard: restoring this slot's entry failed/,
    );
    // It fails once only: the save restores the entry first and keeps both results.
    srv.clearFaults();
    srv.setFault('download', { status: 501, times: 1 });
    const c = makeStore(srv.env(version));
    await buildResult(c.store, work, key(3), ['out/y.txt']);
    await c.store.flush();
    expect(committed(srv)).toHaveLength(2);
    const d = makeStore(srv.env(version));
    expect(await d.store.getResult(key(1))).not.toBeNull();
    expect(await d.store.getResult(key(3))).not.toBeNull();
  });

  it('warns when the upload fails after the reservation, and counts nothing as saved', async () => {
    const srv = await start();
    // A signed upload URL refused (v2), a chunk refused (v1): @actions/cache v1 still returns
    // the reserved cache id, with a "Failed to save" warning.
    srv.setFault('upload', { status: 403 });
    const work = join(tmp, 'work');
    await writeTree(work, { 'out/x.txt': 'x' });
    const a = makeStore(srv.env(version));
    await buildResult(a.store, work, key(1), ['out/x.txt']);
    await a.store.flush();
    expect(a.warnings).toEqual([expect.stringMatching(/failed.*results of this run stay local/)]);
    expect(a.store.stats()).toMatchObject({ savedEntries: 0, warnings: 1 });
    expect(a.store.savedKeys).toEqual([]);
    expect(committed(srv)).toHaveLength(0);
    srv.clearFaults();
    await a.store.flush(); // still dirty: this one goes through
    expect(committed(srv)).toHaveLength(1);
  });

  it('treats an entry that already exists as saved', async () => {
    const srv = await start();
    srv.setFault('create', { alreadyExists: true });
    const work = join(tmp, 'work');
    await writeTree(work, { 'out/x.txt': 'x' });
    const a = makeStore(srv.env(version));
    await buildResult(a.store, work, key(1), ['out/x.txt']);
    await a.store.flush();
    expect(a.warnings).toEqual([]);
    expect(a.store.stats()).toMatchObject({ savedEntries: 1, uploadedBytes: 0 });
    const before = creates(srv);
    await a.store.flush();
    expect(creates(srv)).toBe(before);
  });

  it('treats a truncated download as a miss and uses nothing from it', async () => {
    const srv = await start();
    await seed(srv, version);
    srv.setFault('download', { truncate: true });
    const b = makeStore(srv.env(version));
    expect(await b.store.getResult(key(1))).toBeNull();
    expect(await b.store.hasBlobs([key(1)])).toEqual(new Set());
    expect(b.warnings).toHaveLength(1);
    expect(await readdir(join(b.store.dir, 'blobs', 'sha256'))).toEqual([]);
    expect(await readdir(join(b.store.dir, 'results', 'sha256'))).toEqual([]);
    srv.clearFaults();
    const c = makeStore(srv.env(version));
    expect(await c.store.getResult(key(1))).not.toBeNull();
  });

  it('drops corrupt blobs that come back from the cache', async () => {
    const srv = await start();
    const work = join(tmp, 'work');
    await writeTree(work, { 'out/x.txt': 'precious bytes\n' });
    const a = makeStore(srv.env(version));
    const manifest = await buildResult(a.store, work, key(1), ['out/x.txt']);
    // Flip a byte in the shard on disk, behind the store's back, then upload it.
    const digest = manifest.outputs[0]!.digest;
    const { LocalStore } = await import('../../src/store/local.js');
    const blobFile = new LocalStore(a.store.dir).blobPath(digest);
    const bytes = await readFile(blobFile);
    bytes[bytes.length - 600] ^= 0x01;
    await writeFile(blobFile, bytes);
    await a.store.flush();
    expect(committed(srv)).toHaveLength(1);

    const b = makeStore(srv.env(version));
    expect(await b.store.getResult(key(1))).toBeNull();
    expect(await b.store.openBlob(digest)).toBeNull();
    expect(b.warnings.join('\n')).toMatch(/corrupt/);
  });

  it('does not upload in read-only cache mode, and still reads', async () => {
    const srv = await start();
    await seed(srv, version);
    const ro = makeStore(srv.env(version, { mode: 'read' }));
    expect(await ro.store.getResult(key(1))).not.toBeNull();
    const work = join(tmp, 'work');
    await writeTree(work, { 'out/y.txt': 'y' });
    await buildResult(ro.store, work, key(2), ['out/y.txt']);
    const before = creates(srv);
    await ro.store.flush();
    await ro.store.flush();
    expect(creates(srv)).toBe(before);
    expect(committed(srv)).toHaveLength(1);
    expect(ro.warnings).toHaveLength(1);
    expect(ro.warnings[0]).toMatch(/does not permit writes/);
    expect(await ro.store.getResult(key(2))).not.toBeNull();
  });

  it('warns when the service denies writes for this run', async () => {
    const srv = await start();
    srv.setFault('create', { denied: true });
    const work = join(tmp, 'work');
    await writeTree(work, { 'out/x.txt': 'x' });
    const a = makeStore(srv.env(version));
    await buildResult(a.store, work, key(1), ['out/x.txt']);
    await a.store.flush();
    expect(a.warnings).toHaveLength(1);
    expect(a.warnings[0]).toMatch(/denied/);
    expect(committed(srv)).toHaveLength(0);
  });

  it('restores through slow responses', async () => {
    const srv = await start();
    await seed(srv, version);
    srv.setFault('lookup', { delayMs: 200 });
    srv.setFault('download', { delayMs: 200 });
    const b = makeStore(srv.env(version));
    expect(await b.store.getResult(key(1))).not.toBeNull();
    expect(b.warnings).toEqual([]);
  });
});

describe('GhaStore shards and slots (v2)', () => {
  it("keeps slots apart and finds a result in another slot's shard once", async () => {
    const srv = await start();
    await seed(srv, 'v2'); // on worker-1
    // worker-10's prefix must not pick up worker-1's entry, nor the other way around.
    const w10 = makeStore(srv.env('v2'), 'worker-10');
    expect(await w10.store.getResult(key(1))).toBeNull();
    expect(w10.store.stats().restoredEntries).toBe(0);

    const w2 = makeStore(srv.env('v2'), 'worker-2', { slots: ['worker-1', 'worker-3'] });
    const manifest = await w2.store.getResult(key(1));
    expect(manifest).not.toBeNull();
    expect(w2.store.stats().restoredEntries).toBe(1); // worker-1's shard; stopped there
    // A result missing everywhere restores each remaining slot once, then is a plain miss.
    const lookupsBefore = srv.requests().filter((r) => r.op === 'lookup').length;
    expect(await w2.store.getResult(key(9))).toBeNull();
    expect(await w2.store.getResult(key(8))).toBeNull();
    expect(srv.requests().filter((r) => r.op === 'lookup').length).toBe(lookupsBefore + 1);
    // The adopted result is now part of worker-2's shard.
    await w2.store.flush();
    const w2again = makeStore(srv.env('v2'), 'worker-2');
    expect(await w2again.store.getResult(key(1))).not.toBeNull();
    expect(w2.warnings).toEqual([]);
  });

  it("restores another slot's shard again on a miss once it is old enough (a share waiting for another's result)", async () => {
    const srv = await start();
    const work = join(tmp, 'work-refresh');
    await writeTree(work, { 'out/a.txt': 'a\n' });
    const w2 = makeStore(
      srv.env('v2'),
      'worker-2',
      { slots: ['worker-1'] },
      { peerRefreshMs: 300 },
    );
    // worker-1 has saved nothing yet: a miss.
    expect(await w2.store.getResult(key(1))).toBeNull();
    const w1 = makeStore(srv.env('v2'), 'worker-1');
    await buildResult(w1.store, work, key(1), ['out/a.txt']);
    await w1.store.flush();
    // Asked again at once: the shard restored a moment ago is not restored again.
    const lookups = () => srv.requests().filter((r) => r.op === 'lookup').length;
    const before = lookups();
    expect(await w2.store.getResult(key(1))).toBeNull();
    expect(lookups()).toBe(before);
    // Later: restored again, and worker-1's new entry has the result.
    await new Promise((r) => setTimeout(r, 350));
    expect((await w2.store.getResult(key(1)))?.cacheKey).toBe(key(1));
    expect(lookups()).toBe(before + 1);
    expect(w2.warnings).toEqual([]);
  });

  it("concurrent lookups in another slot's shard wait for its one restore", async () => {
    const srv = await start();
    const work = join(tmp, 'work-conc');
    await writeTree(work, { 'out/a.txt': 'a\n', 'out/b.txt': 'b\n' });
    const w1 = makeStore(srv.env('v2'), 'worker-1');
    await buildResult(w1.store, work, key(1), ['out/a.txt']);
    await buildResult(w1.store, work, key(2), ['out/b.txt']);
    await w1.store.flush();
    const w2 = makeStore(srv.env('v2'), 'worker-2', { slots: ['worker-1'] });
    const found = await Promise.all([1, 2, 1, 2].map((n) => w2.store.getResult(key(n))));
    expect(found.map((m) => m?.cacheKey)).toEqual([key(1), key(2), key(1), key(2)]);
    expect(w2.store.stats().restoredEntries).toBe(1);
    expect(w2.warnings).toEqual([]);
  });

  it('respects branch scopes: a feature branch reads main, main does not read the feature', async () => {
    const srv = await start();
    await seed(srv, 'v2'); // refs/heads/main
    const feature = srv.env('v2', { scopes: ['refs/heads/feature', 'refs/heads/main'] });
    const f = makeStore(feature);
    expect(await f.store.getResult(key(1))).not.toBeNull();
    const work = join(tmp, 'work-f');
    await writeTree(work, { 'out/f.txt': 'feature' });
    await buildResult(f.store, work, key(2), ['out/f.txt']);
    await f.store.flush();
    expect(
      committed(srv)
        .map((e) => e.scope)
        .sort(),
    ).toEqual(['refs/heads/feature', 'refs/heads/main']);
    const m = makeStore(srv.env('v2'));
    expect(await m.store.getResult(key(2))).toBeNull();
    expect(await m.store.getResult(key(1))).not.toBeNull();
  });

  it("lists every slot's results: slots from the GitHub API's listing, or from the slots option", async () => {
    const srv = await start();
    await seed(srv, 'v2'); // key(1) on worker-1
    const work = join(tmp, 'work-b');
    await writeTree(work, { 'out/x/c.txt': 'gamma\n' });
    const w7 = makeStore(srv.env('v2'), 'worker-7');
    await buildResult(w7.store, work, key(2), ['out/x']);
    await buildResult(w7.store, work, key(3), ['out/x']);
    await w7.store.flush();
    const keysOf = async (s: GhaStore, prefix?: string) => {
      const out: string[] = [];
      for await (const r of s.listResults(prefix)) out.push(r.cacheKey);
      return out.sort();
    };
    const api = {
      GITHUB_TOKEN: 'ghs_test',
      GITHUB_REPOSITORY: 'octo/repo',
      GITHUB_API_URL: srv.restApiUrl,
    };
    // The CLI's own slot holds nothing; the API names worker-1 and worker-7.
    const cli = makeStore({ ...srv.env('v2'), ...api }, 'cli');
    expect(await keysOf(cli.store)).toEqual([key(1), key(2), key(3)]);
    expect(cli.store.stats().restoredEntries).toBe(2);
    expect(await keysOf(cli.store, key(2))).toEqual([key(2)]);
    expect(await keysOf(cli.store, key(3).slice(7))).toEqual([key(3)]); // bare hex, as `--key` takes
    expect(cli.store.stats().restoredEntries).toBe(2); // each shard restored once
    expect(cli.warnings).toEqual([]);
    // Without the API: the slots option, and nothing else.
    const opt = makeStore(srv.env('v2'), 'cli', { slots: ['worker-7'] });
    expect(await keysOf(opt.store)).toEqual([key(2), key(3)]);
    expect(opt.warnings.join('\n')).toMatch(
      /listing the shards of this slot and of the slots option only: .*GITHUB_TOKEN/,
    );
    const bare = makeStore(srv.env('v2'), 'cli');
    expect(await keysOf(bare.store)).toEqual([]);
    // Not silently: what was left out, and why.
    expect(bare.warnings.join('\n')).toMatch(/listing the shards of this slot only: /);
    // A worker lists its own shard first, and a result in two shards once.
    const w1 = makeStore({ ...srv.env('v2'), ...api }, 'worker-1');
    expect(await keysOf(w1.store)).toEqual([key(1), key(2), key(3)]);
    expect(srv.requests().some((r) => r.protocol === 'rest' && r.status === 200)).toBe(true);
  });

  it('leaves process.env and stdout as they were', async () => {
    const srv = await start();
    const before = { ...process.env };
    await seed(srv, 'v2');
    expect(process.env).toEqual(before);
  });
});

describe('GhaStore verify and prune (v2, with the GitHub API)', () => {
  const api = (srv: ActionsCacheServer, token = 'ghs_write') => ({
    GITHUB_TOKEN: token,
    GITHUB_REPOSITORY: 'octo/repo',
    GITHUB_API_URL: srv.restApiUrl,
  });

  /** worker-1: key(1), good; worker-7: key(2) whose blob is corrupt, and key(3), good. */
  async function seedCorrupt(srv: ActionsCacheServer): Promise<string> {
    await seed(srv, 'v2');
    const work = join(tmp, 'work-c');
    await writeTree(work, { 'out/bad.txt': 'will be flipped\n'.repeat(100), 'out/ok.txt': 'ok\n' });
    const w7 = makeStore(srv.env('v2'), 'worker-7');
    const bad = await buildResult(w7.store, work, key(2), ['out/bad.txt']);
    await buildResult(w7.store, work, key(3), ['out/ok.txt']);
    const digest = bad.outputs[0]!.digest;
    const { LocalStore } = await import('../../src/store/local.js');
    const blobFile = new LocalStore(w7.store.dir).blobPath(digest);
    const bytes = await readFile(blobFile);
    bytes[10] ^= 0x01;
    await writeFile(blobFile, bytes);
    await w7.store.flush();
    expect(committed(srv)).toHaveLength(2);
    return digest;
  }

  it('verify replaces an entry holding a corrupt blob with one without it', async () => {
    const srv = await start();
    const digest = await seedCorrupt(srv);
    const oldKey = committed(srv).find((e) => e.key.includes('worker%2D7'))!.key;
    const env = { ...srv.env('v2'), ...api(srv), GITHUB_REF: 'refs/heads/main' };
    const cli = makeStore(env, 'cli');
    const r = await cli.store.verify();
    expect(r.corrupt).toEqual([digest]);
    expect(r.removedResults).toBe(1);
    const w7 = r.entries.find((e) => e.key === oldKey)!;
    expect(w7).toMatchObject({
      ref: 'refs/heads/main',
      checked: 2,
      corrupt: [digest],
      brokenResults: 1,
      outcome: 'repaired',
      replacedBy: expect.stringMatching(new RegExp(`^${ghaKeyPrefix('default', 'worker-7')}`)),
    });
    // worker-1's one output is a directory: one blob.
    expect(r.entries.find((e) => e.key !== oldKey)).toMatchObject({ outcome: 'ok', checked: 1 });
    expect(committed(srv).map((e) => e.key)).not.toContain(oldKey);
    expect(committed(srv).map((e) => e.key)).toContain(w7.replacedBy);
    // The slot's next restore gets the good result and nothing corrupt.
    const again = makeStore(srv.env('v2'), 'worker-7');
    expect(await again.store.getResult(key(3))).not.toBeNull();
    expect(await again.store.getResult(key(2))).toBeNull();
    expect(again.warnings).toEqual([]);
    const second = await makeStore(env, 'cli').store.verify();
    expect(second.corrupt).toEqual([]);
    expect(second.entries.map((e) => e.outcome)).toEqual(['ok', 'ok']);
  });

  it('verify reports what it cannot replace: another ref, no delete permission, no API', async () => {
    const srv = await startActionsCacheServer({ readOnlyTokens: ['ghs_read'] });
    server = srv;
    const digest = await seedCorrupt(srv);
    const before = committed(srv).map((e) => e.key);
    // A feature branch reads main's entries but its saves land in its own scope.
    const feature = {
      ...srv.env('v2', { scopes: ['refs/heads/feature', 'refs/heads/main'] }),
      ...api(srv),
      GITHUB_REF: 'refs/heads/feature',
    };
    const f = await makeStore(feature, 'cli').store.verify();
    expect(f.corrupt).toEqual([digest]);
    expect(f.removedResults).toBe(0);
    expect(f.entries.find((e) => e.corrupt.length)).toMatchObject({
      outcome: 'reported',
      detail: expect.stringMatching(/belongs to refs\/heads\/main.*verify on refs\/heads\/main/),
    });
    expect(committed(srv).map((e) => e.key)).toEqual(before);
    // Without GITHUB_REF the ref a save lands in is the one the runtime token may write.
    const noRef: NodeJS.ProcessEnv = { ...feature };
    delete noRef.GITHUB_REF;
    const n = await makeStore(noRef, 'cli').store.verify();
    expect(n.entries.find((e) => e.corrupt.length)).toMatchObject({
      outcome: 'reported',
      detail: expect.stringMatching(
        /belongs to refs\/heads\/main, .* lands in refs\/heads\/feature/,
      ),
    });
    expect(committed(srv).map((e) => e.key)).toEqual(before);
    // Without the GitHub API: the service's slots only, nothing deleted, and it says so.
    const bare = makeStore(srv.env('v2'), 'cli', { slots: ['worker-7'] });
    const b = await bare.store.verify();
    expect(b.entries.map((e) => e.outcome)).toEqual(['reported']);
    expect(b.entries[0]!.detail).toMatch(/cannot delete it: .*GITHUB_TOKEN/);
    expect(b.incomplete).toMatch(
      /only the shards of this slot and of the slots option .*GITHUB_TOKEN/,
    );
    expect(bare.warnings).toEqual([]);
    const none = await makeStore(srv.env('v2'), 'cli').store.verify();
    expect(none.entries).toEqual([]);
    expect(none.incomplete).toMatch(/only the shards of this slot were looked for/);
    // A token without actions: write: the new entry is saved (restores take it), the delete is
    // refused.
    const ro = makeStore({ ...srv.env('v2'), ...api(srv, 'ghs_read') }, 'cli');
    const r = await ro.store.verify();
    const replaced = r.entries.find((e) => e.corrupt.length)!;
    expect(replaced).toMatchObject({
      outcome: 'replaced',
      replacedBy: expect.stringMatching(/worker%2D7/),
      detail: expect.stringMatching(/403.*actions: write/),
    });
    expect(r.removedResults).toBe(1);
    expect(committed(srv).map((e) => e.key)).toEqual([...before, replaced.replacedBy]);
    const later = await makeStore(
      { ...srv.env('v2'), ...api(srv, 'ghs_read') },
      'cli',
    ).store.verify();
    expect(later.entries.map((e) => e.outcome)).toEqual(['ok', 'ok']);
    // Without the cache service there is nothing to read.
    await expect(makeStore({ ...api(srv) }, 'cli').store.verify()).rejects.toThrow(
      /Actions cache service is not available/,
    );
  });

  it("a corrupt blob an earlier process left in this machine's shard is not uploaded again", async () => {
    const srv = await start();
    const work = join(tmp, 'work-s');
    await writeTree(work, { 'out/a.txt': 'kept\n', 'out/b.txt': 'rotted on disk\n'.repeat(50) });
    const dir = join(tmp, 'persistent-shard');
    const first = makeStore(srv.env('v2'), 'worker-1', { dir });
    await buildResult(first.store, work, key(1), ['out/a.txt']);
    const bad = await buildResult(first.store, work, key(2), ['out/b.txt']);
    await first.store.flush();
    // The disk flips a byte of a blob the next process (same shard dir) never reads.
    const { LocalStore } = await import('../../src/store/local.js');
    const blobFile = new LocalStore(dir).blobPath(bad.outputs[0]!.digest);
    const bytes = await readFile(blobFile);
    bytes[5] ^= 0x01;
    await writeFile(blobFile, bytes);
    const next = makeStore(srv.env('v2'), 'worker-1', { dir });
    await writeTree(work, { 'out/c.txt': 'new\n' });
    await buildResult(next.store, work, key(3), ['out/c.txt']);
    await next.store.flush();
    expect(next.warnings.join('\n')).toMatch(
      /was corrupt: removed; the results naming it are not saved/,
    );
    const fresh = makeStore(srv.env('v2'), 'worker-1');
    expect(await fresh.store.getResult(key(1))).not.toBeNull();
    expect(await fresh.store.getResult(key(3))).not.toBeNull();
    expect(await fresh.store.getResult(key(2))).toBeNull();
    expect(fresh.warnings).toEqual([]);
  });

  it('verify says which slot it could not read, and deletes nothing', async () => {
    const srv = await start();
    await seed(srv, 'v2');
    const before = committed(srv).map((e) => e.key);
    srv.setFault('download', { truncate: true });
    const cli = makeStore({ ...srv.env('v2'), ...api(srv) }, 'cli');
    const r = await cli.store.verify();
    expect(r.entries).toEqual([
      expect.objectContaining({
        key: `${ghaKeyPrefix('default', 'worker-1')}*`,
        outcome: 'unreadable',
        detail: expect.stringMatching(/\S/),
      }),
    ]);
    expect(cli.warnings).toEqual([]);
    expect(committed(srv).map((e) => e.key)).toEqual(before);
  });

  it("prune deletes this scope's superseded entries first, then the least recently used", async () => {
    const srv = await startActionsCacheServer({ readOnlyTokens: ['ghs_read'] });
    server = srv;
    const work = join(tmp, 'work-p');
    await writeTree(work, { 'out/a.txt': 'a'.repeat(5000), 'out/b.txt': 'b', 'out/c.txt': 'c' });
    const save = async (slot: string, n: number, file: string, scope = 'default') => {
      const s = makeStore(srv.env('v2'), slot, { scope });
      await buildResult(s.store, work, key(n), [file]);
      await s.store.flush();
    };
    await save('worker-1', 1, 'out/a.txt'); // superseded twice
    await save('worker-1', 2, 'out/b.txt'); // superseded once
    await save('worker-1', 3, 'out/c.txt'); // live
    await save('worker-2', 4, 'out/b.txt'); // live
    await save('worker-1', 5, 'out/c.txt', 'other'); // another scope: never touched
    const ours = () => committed(srv).filter((e) => !e.key.includes('-other-'));
    const sizes = new Map(committed(srv).map((e) => [e.key, e.size]));
    const size = (k: string) => sizes.get(k)!;
    const [first, second, third, w2] = ours().map((e) => e.key);
    const total = ours().reduce((n, e) => n + e.size, 0);
    const cli = makeStore({ ...srv.env('v2'), ...api(srv) }, 'cli');

    const p1 = await cli.store.prune(total - 1);
    expect(p1).toMatchObject({ removedEntries: 1, removedSuperseded: 1, entriesLeft: 3 });
    expect(p1.freedBytes).toBe(size(first!));
    expect(p1.bytes).toBe(total - size(first!));
    expect(ours().map((e) => e.key)).toEqual([second, third, w2]);
    // Down to the live entries' size: every superseded entry goes, no live one.
    const p2 = await cli.store.prune(size(third!) + size(w2!));
    expect(p2).toMatchObject({ removedEntries: 1, removedSuperseded: 1, entriesLeft: 2 });
    expect(ours().map((e) => e.key)).toEqual([third, w2]);
    // Then the least recently used live entry: restoring worker-1 makes worker-2's the older.
    await makeStore(srv.env('v2'), 'worker-1').store.getResult(key(3));
    const p3 = await cli.store.prune(size(third!));
    expect(p3).toMatchObject({ removedEntries: 1, removedSuperseded: 0, entriesLeft: 1 });
    expect(ours().map((e) => e.key)).toEqual([third]);
    expect(committed(srv).filter((e) => e.key.includes('-other-'))).toHaveLength(1);
    // Refusals are errors that say what is missing, and delete nothing.
    await expect(
      makeStore({ ...srv.env('v2'), ...api(srv, 'ghs_read') }, 'cli').store.prune(0),
    ).rejects.toThrow(/403 .*Resource not accessible by integration.*actions: write/);
    await expect(makeStore(srv.env('v2'), 'cli').store.prune(0)).rejects.toThrow(
      /needs the GitHub API: set GITHUB_TOKEN/,
    );
    expect(ours().map((e) => e.key)).toEqual([third]);
    expect((await cli.store.prune(0)).entriesLeft).toBe(0);
    expect(ours()).toEqual([]);
    // A delete that fails after others went through ends the prune and says what was done.
    await save('worker-1', 6, 'out/a.txt');
    await save('worker-1', 7, 'out/b.txt');
    srv.setFault('delete', { skip: 1, status: 502 });
    const partial = await cli.store.prune(0);
    expect(partial).toMatchObject({ removedEntries: 1, entriesLeft: 1 });
    expect(partial.failed).toMatch(/deleting dist-build-v1-default-worker%2D1-\S+ failed: .*502/);
    expect(ours()).toHaveLength(1);
  });

  it('dist-build cache ls --json on GitHub Actions prints only the JSON on stdout', async () => {
    const srv = await start();
    const manifest = await seed(srv, 'v2');
    const config = join(tmp, 'dist-build.yml');
    await writeFile(
      config,
      "version: 1\ninvocations:\n  lib: {run: 'true'}\ncache:\n  stores: [{type: gha}]\n",
    );
    const env = { ...srv.env('v2'), ...api(srv), GITHUB_ACTIONS: 'true' };
    const r = await runCli(['cache', 'ls', '--json', '--config', config], { env });
    expect(r.code).toBe(0);
    // The masks of the signed download URLs still reach the runner, on stderr.
    expect(r.stderr).toMatch(/^::add-mask::/m);
    const listed = JSON.parse(r.stdout) as { cacheKey: string }[];
    expect(listed.map((l) => l.cacheKey)).toEqual([manifest.cacheKey]);
  });

  it('dist-build cache verify and cache prune work on a gha store', async () => {
    const srv = await start();
    const digest = await seedCorrupt(srv);
    const config = join(tmp, 'dist-build.yml');
    await writeFile(
      config,
      "version: 1\ninvocations:\n  lib: {run: 'true'}\ncache:\n  stores: [{type: gha}]\n",
    );
    const env = { ...srv.env('v2'), ...api(srv), GITHUB_REF: 'refs/heads/main' };
    const v = await runCli(['cache', 'verify', '--config', config], { env });
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/2 entries \(the newest of each worker slot\), 3 blobs checked/);
    expect(v.stdout).toMatch(
      /worker%2D7-\S+ \(refs\/heads\/main\): 1 of 2 blobs corrupt, 1 result naming them: replaced by dist-build-v1-default-worker%2D7-\S+ \(the rest of it\), and deleted/,
    );
    expect(v.stdout).toContain(`    ${digest}`);
    const again = await runCli(['cache', 'verify', '--config', config], { env });
    expect(again.code).toBe(0);
    const p = await runCli(['cache', 'prune', '--config', config, '--max-size', '1'], { env });
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(
      /deleted 2 cache entries on GitHub \(.*; superseded by a newer entry of their worker slot: 0\); 0 left, 0 B \(limit 1 B\)/,
    );
    expect(committed(srv)).toEqual([]);
    // Without the API, verify cannot find the workers' slots: it says so, and fails.
    const blind = await runCli(['cache', 'verify', '--config', config], { env: srv.env('v2') });
    expect(blind.stdout).toMatch(
      /no entry to verify\n {2}not every worker slot was verified: only the shards of this slot were looked for: .*GITHUB_TOKEN/,
    );
    expect(blind.code).toBe(1);
    // Without a token the command says what it needs, and fails.
    const bare = await runCli(['cache', 'prune', '--config', config, '--max-size', '1'], {
      env: srv.env('v2'),
    });
    expect(bare.code).toBe(1);
    expect(bare.stdout).toMatch(/cannot prune: .*needs the GitHub API: set GITHUB_TOKEN/);
  });
});
