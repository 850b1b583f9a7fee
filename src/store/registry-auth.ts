/**
 * Registry credentials and the two authentication schemes of OCI distribution registries.
 *
 * Credentials: `DIST_BUILD_REGISTRY_USERNAME` / `DIST_BUILD_REGISTRY_PASSWORD` from the
 * environment, else the Docker config file (`$DOCKER_CONFIG/config.json`, default
 * `~/.docker/config.json`): `auths[<host>].auth` (base64 `user:password`) or
 * `auths[<host>].username`/`.password`, or a credential helper (`credHelpers[<host>]`, else
 * `credsStore`), run as the Docker CLI runs it (see `loadCredentials`). Secrets never
 * appear in messages.
 *
 * Schemes (chosen by the registry's `WWW-Authenticate` answer to a 401):
 * - `Basic`: every request carries the credentials.
 * - `Bearer realm=...,service=...,scope=...`: a token is fetched from the realm
 *   (`GET realm?service=&scope=`, with the credentials as basic auth when there are any,
 *   anonymously otherwise), read from `token` or `access_token`, and cached per scope set until
 *   shortly before it expires.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readCappedText } from './registry-http.js';

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for messages (never the secret itself). */
  source: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Seconds a token is assumed to live when the token server does not say (the spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;
/** A cached token is renewed this long before it expires. */
const TOKEN_MARGIN_MS = 15_000;
/** Largest token response read. */
const MAX_TOKEN_RESPONSE = 1024 * 1024;

/**
 * Parses a `WWW-Authenticate` header into its challenges (`Bearer realm="..",service="..",
 * scope=".."`). Tolerates quoted strings with escapes and unquoted tokens.
 */
export function parseChallenges(header: string | null): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)/y;
  let pos = 0;
  while (pos < header.length) {
    re.lastIndex = pos;
    const m = re.exec(header);
    if (!m) break;
    pos = re.lastIndex;
    const challenge: Challenge = { scheme: m[1]!.toLowerCase(), params: {} };
    out.push(challenge);
    // auth-params: name=value pairs separated by commas, until the next scheme token.
    const param = /\s*,?\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]*)\s*,?/y;
    for (;;) {
      param.lastIndex = pos;
      const p = param.exec(header);
      if (!p) break;
      const value = p[3] !== undefined ? p[3].replace(/\\(.)/g, '$1') : p[2]!;
      challenge.params[p[1]!.toLowerCase()] = value;
      pos = param.lastIndex;
    }
    while (pos < header.length && /[\s,]/.test(header[pos]!)) pos++;
  }
  return out;
}

/** How long a credential helper may take. */
const HELPER_TIMEOUT_MS = 10_000;

/** Hosts under which a registry's credentials may be filed in a Docker config. */
export function credentialKeys(host: string): string[] {
  if (host === 'registry-1.docker.io' || host === 'docker.io' || host === 'index.docker.io') {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  }
  return [host];
}

/** `https://host:port/v1/` -> `host:port`. */
function normalizeConfigKey(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
}

/**
 * The credentials for `host`, or `null` (anonymous): `DIST_BUILD_REGISTRY_USERNAME`/`PASSWORD`,
 * else the Docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`) as the Docker
 * CLI reads it: a `credHelpers` entry for the host, an `auths` entry, or the `credsStore` helper
 * (helpers are run as `docker-credential-<name> get`). `warn` is told about things the user
 * should fix (half-set environment, a config file that does not parse, a helper that fails).
 */
export async function loadCredentials(
  host: string,
  env: NodeJS.ProcessEnv,
  warn: (message: string) => void,
): Promise<Credentials | null> {
  const user = env.DIST_BUILD_REGISTRY_USERNAME;
  const pass = env.DIST_BUILD_REGISTRY_PASSWORD;
  if (user && pass) {
    return { username: user, password: pass, source: 'DIST_BUILD_REGISTRY_USERNAME/PASSWORD' };
  }
  if (user || pass) {
    warn(
      'only one of DIST_BUILD_REGISTRY_USERNAME and DIST_BUILD_REGISTRY_PASSWORD is set; ' +
        'ignoring it and looking in the Docker config',
    );
  }
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    warn(`${file} does not parse (${(err as Error).message}); using no registry credentials`);
    return null;
  }
  if (typeof config !== 'object' || config === null) return null;
  const c = config as Record<string, unknown>;
  const auths = (typeof c.auths === 'object' && c.auths !== null ? c.auths : {}) as Record<
    string,
    unknown
  >;
  const wanted = credentialKeys(host).map(normalizeConfigKey);
  const server = credentialKeys(host)[0]!;
  const fromHelper = async (name: unknown, where: string): Promise<Credentials | null> => {
    if (typeof name !== 'string' || name === '') return null;
    if (!/^[A-Za-z0-9._-]+$/.test(name)) {
      warn(
        `${file}: ${where} names a credential helper "${name}" that is not a plain name; ignoring it`,
      );
      return null;
    }
    const r = await runHelper(name, server, env);
    if (r.ok && r.username === '<token>') {
      warn(
        `${file}: docker-credential-${name} holds an identity token for ${host}, which dist-build ` +
          'does not use; set DIST_BUILD_REGISTRY_USERNAME/PASSWORD',
      );
      return null;
    }
    if (r.ok) {
      return {
        username: r.username,
        password: r.secret,
        source: `docker-credential-${name} (${where})`,
      };
    }
    if (!/credentials not found/i.test(r.why)) {
      warn(
        `${file}: docker-credential-${name} (${where}) gave no credentials for ${host}: ${r.why}`,
      );
    }
    return null;
  };
  // As the Docker CLI: a helper named for this registry comes first, then the config's own
  // entries, then the default store.
  const helpers = (
    typeof c.credHelpers === 'object' && c.credHelpers !== null ? c.credHelpers : {}
  ) as Record<string, unknown>;
  for (const want of wanted) {
    for (const [key, name] of Object.entries(helpers)) {
      if (normalizeConfigKey(key) === want) return fromHelper(name, `credHelpers.${key}`);
    }
  }
  for (const want of wanted) {
    for (const [key, value] of Object.entries(auths)) {
      if (normalizeConfigKey(key) !== want) continue;
      if (typeof value !== 'object' || value === null) continue;
      const entry = value as Record<string, unknown>;
      if (typeof entry.auth === 'string' && entry.auth !== '') {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon > 0) {
          return {
            username: decoded.slice(0, colon),
            password: decoded.slice(colon + 1),
            source: `${file} (auths.${key})`,
          };
        }
        warn(`${file}: auths.${key}.auth is not base64 "user:password"; ignoring it`);
      }
      if (typeof entry.username === 'string' && typeof entry.password === 'string') {
        return {
          username: entry.username,
          password: entry.password,
          source: `${file} (auths.${key})`,
        };
      }
    }
  }
  const credsStore = c.credsStore;
  return fromHelper(credsStore, 'credsStore');
}

/** Docker's credential-helper protocol: `docker-credential-<name> get`, the server on stdin. */
function runHelper(
  name: string,
  server: string,
  env: NodeJS.ProcessEnv,
): Promise<{ ok: true; username: string; secret: string } | { ok: false; why: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      `docker-credential-${name}`,
      ['get'],
      { env, timeout: HELPER_TIMEOUT_MS, maxBuffer: 64 * 1024, windowsHide: true },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code;
          const why =
            code === 'ENOENT'
              ? `docker-credential-${name} is not on the PATH`
              : (stdout || stderr || err.message).trim().split('\n')[0]!;
          resolve({ ok: false, why });
          return;
        }
        try {
          const out = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
          if (typeof out.Username === 'string' && typeof out.Secret === 'string') {
            resolve({ ok: true, username: out.Username, secret: out.Secret });
          } else resolve({ ok: false, why: 'its answer has no Username and Secret' });
        } catch {
          resolve({ ok: false, why: 'its answer is not JSON' });
        }
      },
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(server);
  });
}

export function basicHeader(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

/** Why a token could not be had. */
export class TokenError extends Error {
  /** `auth`: the token server refused the credentials; `network`/`server` otherwise. */
  readonly kind: 'auth' | 'network' | 'server';
  constructor(kind: 'auth' | 'network' | 'server', message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TokenError';
    this.kind = kind;
  }
}

interface CachedToken {
  token: string;
  expires: number;
}

/** Fetches and caches bearer tokens per (realm, service, scope set). */
export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly fetchImpl: typeof fetch,
    private readonly timeoutMs: number,
  ) {}

  /** A cached token for `key`, if it is still fresh. */
  cached(key: string): string | undefined {
    const t = this.tokens.get(key);
    if (t && t.expires > Date.now()) return t.token;
    if (t) this.tokens.delete(key);
    return undefined;
  }

  forget(key: string): void {
    this.tokens.delete(key);
  }

  /** A token for `scopes` from the challenge's realm (one request at a time per key). */
  get(
    key: string,
    challenge: Challenge,
    scopes: string[],
    creds: Credentials | null,
  ): Promise<string> {
    const hit = this.cached(key);
    if (hit) return Promise.resolve(hit);
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchToken(key, challenge, scopes, creds).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async fetchToken(
    key: string,
    challenge: Challenge,
    scopes: string[],
    creds: Credentials | null,
  ): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm)
      throw new TokenError('server', 'the registry asked for a bearer token without a realm');
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new TokenError(
        'server',
        `the registry's token realm ${JSON.stringify(realm)} is not a URL`,
      );
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (creds) headers.authorization = basicHeader(creds);
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        headers,
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'follow',
      });
    } catch (err) {
      throw new TokenError(
        'network',
        `token server ${url.origin} unreachable (${describeError(err)})`,
        {
          cause: err,
        },
      );
    }
    const text = await readCapped(res, MAX_TOKEN_RESPONSE).catch(() => '');
    if (res.status === 401 || res.status === 403) {
      throw new TokenError(
        'auth',
        `token server ${url.origin} refused ${creds ? `the credentials from ${creds.source}` : 'anonymous access'} (HTTP ${res.status})`,
      );
    }
    if (!res.ok) {
      throw new TokenError('server', `token server ${url.origin} answered HTTP ${res.status}`);
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new TokenError('server', `token server ${url.origin} sent something that is not JSON`);
    }
    const token =
      typeof body.token === 'string' && body.token !== ''
        ? body.token
        : typeof body.access_token === 'string'
          ? body.access_token
          : '';
    if (!token) throw new TokenError('server', `token server ${url.origin} sent no token`);
    const seconds =
      typeof body.expires_in === 'number' && body.expires_in > 0
        ? body.expires_in
        : DEFAULT_TOKEN_SECONDS;
    const issued = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : NaN;
    const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
    const expires = start + seconds * 1000 - Math.min(TOKEN_MARGIN_MS, (seconds * 1000) / 4);
    this.tokens.set(key, { token, expires });
    return token;
  }
}

/** Reads at most `max` bytes of a response body as text (the rest is discarded). */
export async function readCapped(res: Response, max: number): Promise<string> {
  const body = res.body;
  if (!body) return '';
  return readCappedText(body as unknown as AsyncIterable<Uint8Array>, max, () => {
    body.cancel().catch(() => {});
  });
}

/** A short description of a fetch error (undici hides the useful part in `cause`). */
export function describeError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  const cause = e?.cause;
  if (cause?.code) return cause.code;
  if (cause?.message) return cause.message;
  return e?.message ?? String(err);
}
