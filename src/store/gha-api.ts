/**
 * The one thing about the Actions cache that only the GitHub REST API can tell: which entries a
 * repository holds (`GET /repos/{owner}/{repo}/actions/caches?key=<prefix>`, paginated). The
 * cache service itself (what `@actions/cache` speaks) can only restore by key. Used by
 * `dist-build cache stats` to show a gha store's shard entries and bytes on GitHub.
 *
 * Needs a token with `actions: read` (`DIST_BUILD_GITHUB_TOKEN`, else `GITHUB_TOKEN`) and the
 * repository (`GITHUB_REPOSITORY`, `owner/name`); `GITHUB_API_URL` points at GHES (default
 * https://api.github.com).
 */

export interface GhaCacheEntry {
  key: string;
  /** Branch or ref the entry is scoped to (`refs/heads/main`). */
  ref: string;
  sizeBytes: number;
  createdAt: string;
  lastAccessedAt: string;
}

export type GhaListing = { entries: GhaCacheEntry[] } | { unavailable: string };

/** Pages read at the most (100 entries each). */
const MAX_PAGES = 50;
const TIMEOUT_MS = 15_000;

/** The repository's Actions cache entries whose key starts with `prefix`, newest first. */
export async function listGhaCaches(
  prefix: string,
  env: NodeJS.ProcessEnv,
  fetchImpl: typeof fetch = fetch,
): Promise<GhaListing> {
  const token = env.DIST_BUILD_GITHUB_TOKEN || env.GITHUB_TOKEN;
  const repo = env.GITHUB_REPOSITORY;
  if (!token || !repo) {
    return {
      unavailable:
        'listing needs the GitHub API: set GITHUB_TOKEN (or DIST_BUILD_GITHUB_TOKEN) and GITHUB_REPOSITORY',
    };
  }
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repo)) {
    return { unavailable: `GITHUB_REPOSITORY "${repo}" is not owner/name` };
  }
  const api = (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '');
  const entries: GhaCacheEntry[] = [];
  for (let page = 1; page <= MAX_PAGES; page++) {
    const url = new URL(`${api}/repos/${repo}/actions/caches`);
    url.searchParams.set('key', prefix);
    url.searchParams.set('per_page', '100');
    url.searchParams.set('page', String(page));
    url.searchParams.set('sort', 'created_at');
    url.searchParams.set('direction', 'desc');
    let res: Response;
    try {
      res = await fetchImpl(url, {
        headers: {
          accept: 'application/vnd.github+json',
          authorization: `Bearer ${token}`,
          'x-github-api-version': '2022-11-28',
          'user-agent': 'dist-build',
        },
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      return {
        unavailable: `the GitHub API at ${api} cannot be reached (${(err as Error).message})`,
      };
    }
    if (!res.ok) {
      const body = (await res.text().catch(() => '')).slice(0, 200).replace(/\s+/g, ' ');
      return {
        unavailable: `the GitHub API answered ${res.status} for ${url.pathname}${body ? `: ${body}` : ''}`,
      };
    }
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
        key: c.key,
        ref: typeof c.ref === 'string' ? c.ref : '',
        sizeBytes: typeof c.size_in_bytes === 'number' ? c.size_in_bytes : 0,
        createdAt: typeof c.created_at === 'string' ? c.created_at : '',
        lastAccessedAt: typeof c.last_accessed_at === 'string' ? c.last_accessed_at : '',
      });
    }
    const total = typeof data.total_count === 'number' ? data.total_count : 0;
    if (list.length < 100 || page * 100 >= total) break;
  }
  return { entries };
}
