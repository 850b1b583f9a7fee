/**
 * GhaStore pieces that need no tar/zstd: the key scheme, options, and the behaviour without any
 * cache service. Round trips through @actions/cache are in gha.int.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  createGhaStore,
  ghaKeyPart,
  ghaKeyPrefix,
  ghaKeySlotPart,
  ghaNewKey,
  ghaSuperseded,
} from '../../src/store/gha.js';
import { StoreOptionsError } from '../../src/store/errors.js';
import type { GhaCacheEntry } from '../../src/store/gha-api.js';
import { RESULT_FORMAT } from '../../src/store/types.js';
import { startActionsCacheServer } from '../fixtures/actions-cache-server.js';
import type { ActionsCacheServer } from '../fixtures/actions-cache-server.js';

let tmp: string;
let server: ActionsCacheServer | undefined;

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dist-build-gha-unit-'));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(tmp, { recursive: true, force: true });
});

describe('gha keys', () => {
  it('keeps each slot prefix from matching another slot', () => {
    const p1 = ghaKeyPrefix('default', 'worker-1');
    expect(p1).toBe('dist-build-v1-default-worker%2D1-');
    expect(ghaNewKey('default', 'worker-10').startsWith(p1)).toBe(false);
    expect(ghaNewKey('default', 'worker-1').startsWith(p1)).toBe(true);
    expect(ghaKeyPart('a,b c')).toBe('a%2Cb%20c');
    expect(ghaKeySlotPart(ghaNewKey('my-scope', 'worker-10'))).toBe('worker%2D10');
  });

  it('stays under 512 characters and has no commas', () => {
    const key = ghaNewKey('s'.repeat(400), 'w,'.repeat(300));
    expect(key.length).toBeLessThan(512);
    expect(key).not.toContain(',');
    expect(ghaNewKey('x', 'y', new Date('2024-05-06T07:08:09.010Z'))).toMatch(
      /^dist-build-v1-x-y-20240506T070809010Z-[0-9a-f]{8}$/,
    );
  });
});

describe('ghaSuperseded', () => {
  const entry = (
    id: number,
    slot: string,
    ref: string,
    at: string,
    version = 'v',
  ): GhaCacheEntry => ({
    id,
    key: `dist-build-v1-default-${slot}-${at}-${id}`,
    version,
    ref,
    sizeBytes: 100,
    createdAt: at,
    lastAccessedAt: at,
  });

  it('keeps the newest entry of each slot, ref and version: the one a restore finds', () => {
    const main = 'refs/heads/main';
    const e = [
      entry(1, 'w1', main, '2026-11-01T00:00:00Z'),
      entry(2, 'w1', main, '2026-11-03T00:00:00Z'),
      entry(3, 'w1', main, '2026-11-02T00:00:00Z'),
      entry(4, 'w1', 'refs/heads/feature', '2026-11-01T00:00:00Z'),
      entry(5, 'w2', main, '2026-11-01T00:00:00Z'),
      entry(6, 'w1', main, '2026-11-01T00:00:00Z', 'windows'),
      entry(7, 'w2', main, '2026-11-01T00:00:00Z'), // same time as 5: the later id is newer
    ];
    const { live, superseded } = ghaSuperseded(e);
    expect(live.map((x) => x.id).sort()).toEqual([2, 4, 6, 7]);
    expect(superseded.map((x) => x.id).sort()).toEqual([1, 3, 5]);
  });
});

describe('createGhaStore', () => {
  const ctx = (env: NodeJS.ProcessEnv = {}) => ({
    root: '/work/repo',
    slot: 'worker-1',
    onWarning: () => {},
    env,
  });

  it('defaults the shard directory, scope and slots', () => {
    const s = createGhaStore({ slots: 'worker-1, worker-2,worker-3' }, ctx());
    expect(s.kind).toBe('gha');
    expect(s.dir).toBe('/work/repo/.dist-build/gha/worker-1');
    expect(s.scope).toBe('default');
    expect(s.location).toContain('dist-build-v1-default-worker%2D1-');
    expect(createGhaStore({ dir: 'cache/gha' }, ctx()).dir).toBe('/work/repo/cache/gha');
  });

  it('rejects options of the wrong type', () => {
    expect(() => createGhaStore({ scope: 3 }, ctx())).toThrow(StoreOptionsError);
    expect(() => createGhaStore({ slots: [1] }, ctx())).toThrow(StoreOptionsError);
    expect(() => createGhaStore({ retainDays: -1 }, ctx())).toThrow(StoreOptionsError);
    expect(() => createGhaStore({ dir: '' }, ctx())).toThrow(StoreOptionsError);
  });
});

describe('GhaStore without a cache service', () => {
  it('warns once and works as an empty local shard', async () => {
    const warnings: string[] = [];
    const store = createGhaStore(
      { dir: join(tmp, 'shard') },
      { root: tmp, slot: 'worker-1', onWarning: (m) => warnings.push(m), env: {} },
    );
    const missing = `sha256:${'1'.repeat(64)}`;
    expect(await store.getResult(missing)).toBeNull();
    expect(await store.hasResults([missing])).toEqual(new Set());
    const blob = await store.putBlob(Readable.from([Buffer.from('x')]));
    await store.putResult({
      format: RESULT_FORMAT,
      cacheKey: missing,
      unit: 'u',
      invocation: 'u',
      exitCode: 0,
      durationMs: 1,
      worker: 'worker-1',
      createdAt: new Date().toISOString(),
      outputs: [{ path: 'out', type: 'file', digest: blob.digest, size: blob.size, files: 1 }],
    });
    await expect(store.flush()).resolves.toBeUndefined();
    expect(await store.getResult(missing)).not.toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/not available/);
    expect(store.stats()).toEqual({
      restoredEntries: 0,
      savedEntries: 0,
      uploadedBytes: 0,
      warnings: 1,
    });
  });
});

describe('actions-cache-server fake (protocol level)', () => {
  const twirp = (
    srv: ActionsCacheServer,
    env: Record<string, string>,
    method: string,
    body: unknown,
  ) =>
    fetch(`${srv.url}twirp/github.actions.results.api.v1.CacheService/${method}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${env.ACTIONS_RUNTIME_TOKEN}`,
      },
      body: JSON.stringify(body),
    });

  async function save(
    srv: ActionsCacheServer,
    env: Record<string, string>,
    key: string,
    data: string,
  ) {
    const created = (await (
      await twirp(srv, env, 'CreateCacheEntry', { key, version: 'v' })
    ).json()) as {
      ok: boolean;
      signed_upload_url: string;
    };
    expect(created.ok).toBe(true);
    const put = await fetch(created.signed_upload_url, {
      method: 'PUT',
      headers: { 'x-ms-blob-type': 'BlockBlob' },
      body: data,
    });
    expect(put.status).toBe(201);
    const fin = await twirp(srv, env, 'FinalizeCacheEntryUpload', {
      key,
      version: 'v',
      size_bytes: String(data.length),
    });
    expect(await fin.json()).toMatchObject({ ok: true });
  }

  it('keeps keys immutable, matches prefixes newest first, and truncates on demand', async () => {
    const srv = (server = await startActionsCacheServer());
    const env = srv.env('v2');
    await save(srv, env, 'k-1', 'one');
    await save(srv, env, 'k-2', 'two');
    const again = await twirp(srv, env, 'CreateCacheEntry', { key: 'k-1', version: 'v' });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ code: 'already_exists' });

    const look = (await (
      await twirp(srv, env, 'GetCacheEntryDownloadURL', {
        key: 'k-',
        restore_keys: [],
        version: 'v',
      })
    ).json()) as { ok: boolean; matched_key: string; signed_download_url: string };
    expect(look).toMatchObject({ ok: true, matched_key: 'k-2' });
    const ranged = await fetch(look.signed_download_url, { headers: { range: 'bytes=1-2' } });
    expect(ranged.status).toBe(206);
    expect(await ranged.text()).toBe('wo');
    const other = await twirp(srv, env, 'GetCacheEntryDownloadURL', { key: 'k-2', version: 'w' });
    expect(await other.json()).toMatchObject({ ok: false });

    // A forged signature and a missing token are refused.
    expect((await fetch(look.signed_download_url.replace(/sig=[^&]+/, 'sig=x'))).status).toBe(403);
    expect(
      (await twirp(srv, { ACTIONS_RUNTIME_TOKEN: 'nope' }, 'CreateCacheEntry', {})).status,
    ).toBe(401);

    srv.setFault('download', { truncate: true, times: 1 });
    await expect(fetch(look.signed_download_url).then((r) => r.text())).rejects.toThrow();
    expect(await (await fetch(look.signed_download_url)).text()).toBe('two');
  });

  it('evicts the least recently used entries over its size budget', async () => {
    const srv = (server = await startActionsCacheServer({ maxBytes: 10 }));
    const env = srv.env('v2');
    await save(srv, env, 'a', 'aaaa');
    await save(srv, env, 'b', 'bbbb');
    await save(srv, env, 'c', 'cccc');
    expect(srv.entries().map((e) => e.key)).toEqual(['b', 'c']);
  });
});
