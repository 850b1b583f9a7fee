/**
 * What only the GitHub REST API can do with the Actions cache: list a repository's entries
 * (`GET /repos/{owner}/{repo}/actions/caches?key=<prefix>`, paginated) and delete one (`DELETE
 * /repos/{owner}/{repo}/actions/caches/{cache_id}`). The cache service itself (what
 * `@actions/cache` speaks) can only save and restore by key. Used by `dist-build cache stats`,
 * `ls`, `verify` and `prune` on a gha store.
 *
 * Needs a token (`DIST_BUILD_GITHUB_TOKEN`, else `GITHUB_TOKEN`) with `actions: read` to list and
 * `actions: write` to delete, and the repository (`GITHUB_REPOSITORY`, `owner/name`);
 * `GITHUB_API_URL` points at GHES (default https://api.github.com).
 */

export interface GhaCacheEntry {
  /** The entry's id (what a delete names). */
  id: number;
  key: string;
  /** Hash of the paths and compression method; a restore only matches its own version. */
  version: string;
  /** Branch or ref the entry is scoped to (`refs/heads/main`). */
  ref: string;
  sizeBytes: number;
  createdAt: string;
  lastAccessedAt: string;
}

export type GhaListing = { entries: GhaCacheEntry[] } | { unavailable: string };

/** Pages read at the most (100 entries each); a longer listing is refused, not cut short. */
const MAX_PAGES = 1000;
const TIMEOUT_MS = 15_000;

interface Api {
  base: string;
  repo: string;
  headers: Record<string, string>;
}

/** The API base, repository and headers of `env`, or why there are none. */
function api(env: NodeJS.ProcessEnv, what: string): Api | { unavailable: string } {
  const token = env.DIST_BUILD_GITHUB_TOKEN || env.GITHUB_TOKEN;
  const repo = env.GITHUB_REPOSITORY;
  if (!token || !repo) {
    return {
      unavailable: `${what} needs the GitHub API: set GITHUB_TOKEN (or DIST_BUILD_GITHUB_TOKEN) and GITHUB_REPOSITORY`,
    };
  }
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repo)) {
    return { unavailable: `GITHUB_REPOSITORY "${repo}" is not owner/name` };
  }
  return {
    base: (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, ''),
    repo,
    headers: {
      accept: 'application/vnd.github+json',
      authorization: `Bearer ${token}`,
      'x-github-api-version': '2022-11-28',
      'user-agent': 'dist-build',
    },
  };
}

/** One request; an answer, or why there is none. */
async function call(
  a: Api,
  url: URL,
  method: string,
  fetchImpl: typeof fetch,
): Promise<Response | { unavailable: string }> {
  try {
    return await fetchImpl(url, {
      method,
      headers: a.headers,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    return {
      unavailable: `the GitHub API at ${a.base} cannot be reached (${(err as Error).message})`,
    };
  }
}

async function refusal(res: Response, method: string, url: URL): Promise<string> {
  const body = (await res.text().catch(() => '')).slice(0, 200).replace(/\s+/g, ' ');
  const hint =
    method !== 'GET' && (res.status === 403 || res.status === 401)
      ? ' (deleting needs a token with the actions: write permission)'
      : '';
  return `the GitHub API answered ${res.status} for ${method} ${url.pathname}${body ? `: ${body}` : ''}${hint}`;
}

/** The repository's Actions cache entries whose key starts with `prefix`, newest first. */
export async function listGhaCaches(
  prefix: string,
  env: NodeJS.ProcessEnv,
  fetchImpl: typeof fetch = fetch,
): Promise<GhaListing> {
  const a = api(env, 'listing');
  if ('unavailable' in a) return a;
  const entries: GhaCacheEntry[] = [];
  for (let page = 1; page <= MAX_PAGES; page++) {
    const url = new URL(`${a.base}/repos/${a.repo}/actions/caches`);
    url.searchParams.set('key', prefix);
    url.searchParams.set('per_page', '100');
    url.searchParams.set('page', String(page));
    url.searchParams.set('sort', 'created_at');
    url.searchParams.set('direction', 'desc');
    const res = await call(a, url, 'GET', fetchImpl);
    if ('unavailable' in res) return res;
    if (!res.ok) return { unavailable: await refusal(res, 'GET', url) };
    let data: { total_count?: unknown; actions_caches?: unknown };
    try {
      data = (await res.json()) as typeof data;
    } catch {
      return { unavailable: `the GitHub API answered ${url.pathname} with something not JSON` };
    }
    const list = Array.isArray(data.actions_caches) ? data.actions_caches : [];
    for (const c of list as Record<string, unknown>[]) {
      if (typeof c.key !== 'string' || !c.key.startsWith(prefix)) continue;
      entries.push({
        id: typeof c.id === 'number' ? c.id : 0,
        key: c.key,
        version: typeof c.version === 'string' ? c.version : '',
        ref: typeof c.ref === 'string' ? c.ref : '',
        sizeBytes: typeof c.size_in_bytes === 'number' ? c.size_in_bytes : 0,
        createdAt: typeof c.created_at === 'string' ? c.created_at : '',
        lastAccessedAt: typeof c.last_accessed_at === 'string' ? c.last_accessed_at : '',
      });
    }
    const total = typeof data.total_count === 'number' ? data.total_count : 0;
    if (list.length < 100 || page * 100 >= total) return { entries };
  }
  // Newest first: what is left out would be the oldest, which prune must see first.
  return {
    unavailable: `more than ${MAX_PAGES * 100} entries start with ${prefix}: the listing stops there`,
  };
}

/**
 * Deletes one entry by id. An entry that is already gone (404) counts as deleted: it is what
 * was asked for. Throws with the API's answer otherwise.
 */
export async function deleteGhaCache(
  id: number,
  env: NodeJS.ProcessEnv,
  fetchImpl: typeof fetch = fetch,
): Promise<void> {
  const a = api(env, 'deleting an entry');
  if ('unavailable' in a) throw new Error(a.unavailable);
  if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`no such cache entry id: ${id}`);
  const url = new URL(`${a.base}/repos/${a.repo}/actions/caches/${id}`);
  const res = await call(a, url, 'DELETE', fetchImpl);
  if ('unavailable' in res) throw new Error(res.unavailable);
  if (res.ok || res.status === 404) {
    await res.body?.cancel().catch(() => {});
    return;
  }
  throw new Error(await refusal(res, 'DELETE', url));
}
