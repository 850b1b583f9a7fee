import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deleteGhaCache, listGhaCaches } from '../../src/store/gha-api.js';

/** A fake of GitHub's "list caches for a repository" endpoint. */
let server: Server;
let api: string;
let seen: IncomingMessage[];
let answer: 'ok' | 'forbidden' = 'ok';
const ALL = Array.from({ length: 150 }, (_, i) => ({
  id: i + 1,
  key: `dist-build-v1-main-worker%2D${i % 3}-2026112${i % 10}T000000Z-${i}`,
  ref: 'refs/heads/main',
  size_in_bytes: 1000 + i,
  created_at: '2026-11-29T00:00:00Z',
  last_accessed_at: `2026-11-29T00:${String(i % 60).padStart(2, '0')}:00Z`,
}));

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req);
    const url = new URL(req.url!, 'http://x');
    if (answer === 'forbidden') {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end('{"message":"Resource not accessible by integration"}');
      return;
    }
    const del = /^\/repos\/octo\/repo\/actions\/caches\/([0-9]+)$/.exec(url.pathname);
    if (req.method === 'DELETE' && del) {
      res.writeHead(Number(del[1]) <= ALL.length ? 204 : 404).end();
      return;
    }
    if (url.pathname !== '/repos/octo/repo/actions/caches') {
      res.writeHead(404).end();
      return;
    }
    const key = url.searchParams.get('key') ?? '';
    const page = Number(url.searchParams.get('page') ?? 1);
    const per = Number(url.searchParams.get('per_page') ?? 30);
    const matching = ALL.filter((c) => c.key.startsWith(key));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        total_count: matching.length,
        actions_caches: matching.slice((page - 1) * per, page * per),
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  seen = [];
  answer = 'ok';
});

const env = { GITHUB_TOKEN: 'ghs_x', GITHUB_REPOSITORY: 'octo/repo' };

describe('listGhaCaches', () => {
  it('lists every page of the entries under a prefix, with the token', async () => {
    const r = await listGhaCaches('dist-build-v1-main-', { ...env, GITHUB_API_URL: api });
    expect('entries' in r && r.entries).toHaveLength(150);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.headers.authorization).toBe('Bearer ghs_x');
    const only = await listGhaCaches('dist-build-v1-main-worker%2D1-', {
      ...env,
      GITHUB_API_URL: api,
    });
    expect('entries' in only && only.entries.map((e) => e.sizeBytes)).toHaveLength(50);
    expect('entries' in only && only.entries[0]).toMatchObject({
      key: expect.stringMatching(/^dist-build-v1-main-worker%2D1-/),
      ref: 'refs/heads/main',
    });
  });

  it('says why it cannot list', async () => {
    expect(await listGhaCaches('p', {})).toEqual({
      unavailable: expect.stringMatching(/GITHUB_TOKEN.*GITHUB_REPOSITORY/),
    });
    expect(
      await listGhaCaches('p', { ...env, GITHUB_API_URL: api, GITHUB_REPOSITORY: 'x' }),
    ).toEqual({
      unavailable: expect.stringMatching(/not owner\/name/),
    });
    answer = 'forbidden';
    expect(await listGhaCaches('p', { ...env, GITHUB_API_URL: api })).toEqual({
      unavailable: expect.stringMatching(/answered 403 .*not accessible/),
    });
    expect(await listGhaCaches('p', { ...env, GITHUB_API_URL: 'http://127.0.0.1:1' })).toEqual({
      unavailable: expect.stringMatching(/cannot be reached/),
    });
  });
});

describe('deleteGhaCache', () => {
  it('deletes by id; an entry already gone counts as deleted', async () => {
    await deleteGhaCache(3, { ...env, GITHUB_API_URL: api });
    expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual([
      'DELETE /repos/octo/repo/actions/caches/3',
    ]);
    expect(seen[0]!.headers.authorization).toBe('Bearer ghs_x');
    await deleteGhaCache(999, { ...env, GITHUB_API_URL: api });
  });

  it('says what is missing when it cannot', async () => {
    await expect(deleteGhaCache(3, {})).rejects.toThrow(/deleting an entry needs the GitHub API/);
    await expect(deleteGhaCache(0, { ...env, GITHUB_API_URL: api })).rejects.toThrow(/no such/);
    answer = 'forbidden';
    await expect(deleteGhaCache(3, { ...env, GITHUB_API_URL: api })).rejects.toThrow(
      /answered 403 for DELETE .*not accessible by integration.*actions: write permission/,
    );
  });
});
