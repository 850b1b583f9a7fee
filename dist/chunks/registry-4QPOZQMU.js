import { createRequire as __dbCreateRequire } from 'node:module'; const require = __dbCreateRequire(import.meta.url);
import {
  CorruptBlobError,
  StoreOptionsError,
  assertDigest,
  digestStream,
  isDigest,
  manifestProblems,
  mapLimit,
  parseSize,
  sha256Digest,
  verifiedStream
} from "./chunk-QPI3LQR2.js";
import "./chunk-7FDW4MNB.js";

// src/store/registry.ts
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join as join2 } from "node:path";
import { Readable as Readable2 } from "node:stream";

// src/store/registry-auth.ts
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

// src/store/registry-http.ts
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
var HttpError = class extends Error {
  code;
  /** The request went out on a kept-alive connection (a reset there is worth one replay). */
  reusedSocket;
  constructor(message, code, reusedSocket, cause) {
    super(message, cause !== void 0 ? { cause } : void 0);
    this.name = "HttpError";
    this.code = code;
    this.reusedSocket = reusedSocket;
  }
};
var agents = {
  http: new HttpAgent({ keepAlive: true, scheduling: "lifo" }),
  https: new HttpsAgent({ keepAlive: true, scheduling: "lifo" })
};
var nodeTransport = (spec) => new Promise((resolve, reject) => {
  const https = spec.url.protocol === "https:";
  const request = https ? httpsRequest : httpRequest;
  const req = request(spec.url, {
    method: spec.method,
    headers: spec.headers,
    agent: https ? agents.https : agents.http
  });
  let answered = false;
  let sent = false;
  let sourceError;
  const source = spec.body instanceof Readable ? spec.body : void 0;
  const fail = (err) => {
    source?.destroy();
    if (answered) return;
    answered = true;
    if (sourceError) return reject(sourceError);
    const code = err.code;
    const plain = https && /wrong version number/i.test(err.message);
    reject(
      new HttpError(
        plain ? "the server does not speak TLS (a plain-http registry needs insecure: true)" : err.message === "socket hang up" && code ? `${code} (socket hang up)` : err.message.trim(),
        code,
        req.reusedSocket,
        err
      )
    );
  };
  req.setTimeout(spec.timeoutMs, () => {
    req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" }));
  });
  req.on("error", fail);
  req.on("response", (res) => {
    answered = true;
    req.setTimeout(0);
    if (!sent && source) {
      source.unpipe(req);
      source.destroy();
      const close = () => req.destroy();
      res.once("end", close);
      res.once("close", close);
    }
    resolve(answerOf(res, spec));
  });
  req.on("finish", () => {
    sent = true;
    if (!answered && spec.afterBodyTimeoutMs !== void 0) {
      req.setTimeout(spec.afterBodyTimeoutMs);
    }
  });
  if (source) {
    source.once("error", (err) => {
      sourceError = err;
      req.destroy(err);
    });
    source.pipe(req);
  } else {
    req.end(spec.body);
  }
});
function answerOf(res, spec) {
  const status = res.statusCode ?? 0;
  if (spec.method === "HEAD" || status === 204 || status === 304 || res.headers["content-length"] === "0") {
    res.resume();
  }
  return {
    method: spec.method,
    status,
    ok: status >= 200 && status < 300,
    url: spec.url.href,
    headers: {
      get(name) {
        const v = res.headers[name.toLowerCase()];
        if (v === void 0) return null;
        return Array.isArray(v) ? v.join(", ") : v;
      }
    },
    body: res
  };
}
function fetchTransport(fetchImpl) {
  return async (spec) => {
    const controller = new AbortController();
    const timer = spec.afterBodyTimeoutMs === 0 ? void 0 : setTimeout(
      () => controller.abort(Object.assign(new Error("timed out"), { name: "TimeoutError" })),
      spec.timeoutMs + (spec.afterBodyTimeoutMs ?? 0)
    );
    let res;
    try {
      const body = spec.body instanceof Readable ? Readable.toWeb(spec.body) : spec.body;
      res = await fetchImpl(spec.url, {
        method: spec.method,
        headers: spec.headers,
        body,
        redirect: "manual",
        signal: controller.signal,
        ...spec.body instanceof Readable ? { duplex: "half" } : {}
      });
    } catch (err) {
      if (spec.body instanceof Readable) spec.body.destroy();
      const e = err;
      const timedOut = e?.name === "TimeoutError" || e?.name === "AbortError";
      const code = timedOut ? "ETIMEDOUT" : e?.cause?.code;
      throw new HttpError(
        timedOut ? "timed out" : code ?? e?.message ?? String(err),
        code,
        false,
        err
      );
    } finally {
      clearTimeout(timer);
    }
    return {
      method: spec.method,
      status: res.status,
      ok: res.ok,
      url: res.url || spec.url.href,
      headers: res.headers,
      body: res.body ? Readable.fromWeb(res.body) : Readable.from([])
    };
  };
}
function discard(res) {
  const body = res.body;
  if (body.readableEnded || body.destroyed) return Promise.resolve();
  const header = res.headers.get("content-length");
  const length = res.method === "HEAD" ? 0 : header === null ? NaN : Number(header);
  if (!(Number.isFinite(length) && length <= 64 * 1024)) {
    body.destroy();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    body.once("end", resolve);
    body.once("close", resolve);
    body.once("error", () => resolve());
    body.resume();
  });
}
function readText(res, max) {
  return readCappedText(res.body, max, () => res.body.destroy());
}
async function readCappedText(body, max, drop) {
  const parts = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    size += buf.length;
    if (size > max) {
      drop();
      throw new Error(`response larger than ${max} bytes`);
    }
    parts.push(buf);
  }
  return Buffer.concat(parts).toString("utf8");
}

// src/store/registry-auth.ts
var DEFAULT_TOKEN_SECONDS = 60;
var TOKEN_MARGIN_MS = 15e3;
var MAX_TOKEN_RESPONSE = 1024 * 1024;
function parseChallenges(header) {
  if (!header) return [];
  const out = [];
  const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)/y;
  let pos = 0;
  while (pos < header.length) {
    re.lastIndex = pos;
    const m = re.exec(header);
    if (!m) break;
    pos = re.lastIndex;
    const challenge = { scheme: m[1].toLowerCase(), params: {} };
    out.push(challenge);
    const param = /\s*,?\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]*)\s*,?/y;
    for (; ; ) {
      param.lastIndex = pos;
      const p = param.exec(header);
      if (!p) break;
      const value = p[3] !== void 0 ? p[3].replace(/\\(.)/g, "$1") : p[2];
      challenge.params[p[1].toLowerCase()] = value;
      pos = param.lastIndex;
    }
    while (pos < header.length && /[\s,]/.test(header[pos])) pos++;
  }
  return out;
}
var HELPER_TIMEOUT_MS = 1e4;
function credentialKeys(host) {
  if (host === "registry-1.docker.io" || host === "docker.io" || host === "index.docker.io") {
    return ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"];
  }
  return [host];
}
function normalizeConfigKey(key) {
  return key.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "").toLowerCase();
}
async function loadCredentials(host, env, warn) {
  const user = env.DIST_BUILD_REGISTRY_USERNAME;
  const pass = env.DIST_BUILD_REGISTRY_PASSWORD;
  if (user && pass) {
    return { username: user, password: pass, source: "DIST_BUILD_REGISTRY_USERNAME/PASSWORD" };
  }
  if (user || pass) {
    warn(
      "only one of DIST_BUILD_REGISTRY_USERNAME and DIST_BUILD_REGISTRY_PASSWORD is set; ignoring it and looking in the Docker config"
    );
  }
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), ".docker");
  const file = join(dir, "config.json");
  let text;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return null;
  }
  let config;
  try {
    config = JSON.parse(text);
  } catch (err) {
    warn(`${file} does not parse (${err.message}); using no registry credentials`);
    return null;
  }
  if (typeof config !== "object" || config === null) return null;
  const c = config;
  const auths = typeof c.auths === "object" && c.auths !== null ? c.auths : {};
  const wanted = credentialKeys(host).map(normalizeConfigKey);
  const server = credentialKeys(host)[0];
  const fromHelper = async (name, where) => {
    if (typeof name !== "string" || name === "") return null;
    if (!/^[A-Za-z0-9._-]+$/.test(name)) {
      warn(
        `${file}: ${where} names a credential helper "${name}" that is not a plain name; ignoring it`
      );
      return null;
    }
    const r = await runHelper(name, server, env);
    if (r.ok && r.username === "<token>") {
      warn(
        `${file}: docker-credential-${name} holds an identity token for ${host}, which dist-build does not use; set DIST_BUILD_REGISTRY_USERNAME/PASSWORD`
      );
      return null;
    }
    if (r.ok) {
      return {
        username: r.username,
        password: r.secret,
        source: `docker-credential-${name} (${where})`
      };
    }
    if (!/credentials not found/i.test(r.why)) {
      warn(
        `${file}: docker-credential-${name} (${where}) gave no credentials for ${host}: ${r.why}`
      );
    }
    return null;
  };
  const helpers = typeof c.credHelpers === "object" && c.credHelpers !== null ? c.credHelpers : {};
  for (const want of wanted) {
    for (const [key, name] of Object.entries(helpers)) {
      if (normalizeConfigKey(key) === want) return fromHelper(name, `credHelpers.${key}`);
    }
  }
  for (const want of wanted) {
    for (const [key, value] of Object.entries(auths)) {
      if (normalizeConfigKey(key) !== want) continue;
      if (typeof value !== "object" || value === null) continue;
      const entry = value;
      if (typeof entry.auth === "string" && entry.auth !== "") {
        const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        if (colon > 0) {
          return {
            username: decoded.slice(0, colon),
            password: decoded.slice(colon + 1),
            source: `${file} (auths.${key})`
          };
        }
        warn(`${file}: auths.${key}.auth is not base64 "user:password"; ignoring it`);
      }
      if (typeof entry.username === "string" && typeof entry.password === "string") {
        return {
          username: entry.username,
          password: entry.password,
          source: `${file} (auths.${key})`
        };
      }
    }
  }
  const credsStore = c.credsStore;
  return fromHelper(credsStore, "credsStore");
}
function runHelper(name, server, env) {
  return new Promise((resolve) => {
    const child = execFile(
      `docker-credential-${name}`,
      ["get"],
      { env, timeout: HELPER_TIMEOUT_MS, maxBuffer: 64 * 1024, windowsHide: true },
      (err, stdout, stderr) => {
        if (err) {
          const code = err.code;
          const why = code === "ENOENT" ? `docker-credential-${name} is not on the PATH` : (stdout || stderr || err.message).trim().split("\n")[0];
          resolve({ ok: false, why });
          return;
        }
        try {
          const out = JSON.parse(stdout);
          if (typeof out.Username === "string" && typeof out.Secret === "string") {
            resolve({ ok: true, username: out.Username, secret: out.Secret });
          } else resolve({ ok: false, why: "its answer has no Username and Secret" });
        } catch {
          resolve({ ok: false, why: "its answer is not JSON" });
        }
      }
    );
    child.stdin?.on("error", () => {
    });
    child.stdin?.end(server);
  });
}
function basicHeader(creds) {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
}
var TokenError = class extends Error {
  /** `auth`: the token server refused the credentials; `network`/`server` otherwise. */
  kind;
  constructor(kind, message, options) {
    super(message, options);
    this.name = "TokenError";
    this.kind = kind;
  }
};
var TokenCache = class {
  constructor(fetchImpl, timeoutMs) {
    this.fetchImpl = fetchImpl;
    this.timeoutMs = timeoutMs;
  }
  fetchImpl;
  timeoutMs;
  tokens = /* @__PURE__ */ new Map();
  pending = /* @__PURE__ */ new Map();
  /** A cached token for `key`, if it is still fresh. */
  cached(key) {
    const t = this.tokens.get(key);
    if (t && t.expires > Date.now()) return t.token;
    if (t) this.tokens.delete(key);
    return void 0;
  }
  forget(key) {
    this.tokens.delete(key);
  }
  /** A token for `scopes` from the challenge's realm (one request at a time per key). */
  get(key, challenge, scopes, creds) {
    const hit = this.cached(key);
    if (hit) return Promise.resolve(hit);
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchToken(key, challenge, scopes, creds).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }
  async fetchToken(key, challenge, scopes, creds) {
    const realm = challenge.params.realm;
    if (!realm)
      throw new TokenError("server", "the registry asked for a bearer token without a realm");
    let url;
    try {
      url = new URL(realm);
    } catch {
      throw new TokenError(
        "server",
        `the registry's token realm ${JSON.stringify(realm)} is not a URL`
      );
    }
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    for (const s of scopes) url.searchParams.append("scope", s);
    const headers = { accept: "application/json" };
    if (creds) headers.authorization = basicHeader(creds);
    let res;
    try {
      res = await this.fetchImpl(url, {
        headers,
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: "follow"
      });
    } catch (err) {
      throw new TokenError(
        "network",
        `token server ${url.origin} unreachable (${describeError(err)})`,
        {
          cause: err
        }
      );
    }
    const text = await readCapped(res, MAX_TOKEN_RESPONSE).catch(() => "");
    if (res.status === 401 || res.status === 403) {
      throw new TokenError(
        "auth",
        `token server ${url.origin} refused ${creds ? `the credentials from ${creds.source}` : "anonymous access"} (HTTP ${res.status})`
      );
    }
    if (!res.ok) {
      throw new TokenError("server", `token server ${url.origin} answered HTTP ${res.status}`);
    }
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new TokenError("server", `token server ${url.origin} sent something that is not JSON`);
    }
    const token = typeof body.token === "string" && body.token !== "" ? body.token : typeof body.access_token === "string" ? body.access_token : "";
    if (!token) throw new TokenError("server", `token server ${url.origin} sent no token`);
    const seconds = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    const issued = typeof body.issued_at === "string" ? Date.parse(body.issued_at) : NaN;
    const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
    const expires = start + seconds * 1e3 - Math.min(TOKEN_MARGIN_MS, seconds * 1e3 / 4);
    this.tokens.set(key, { token, expires });
    return token;
  }
};
async function readCapped(res, max) {
  const body = res.body;
  if (!body) return "";
  return readCappedText(body, max, () => {
    body.cancel().catch(() => {
    });
  });
}
function describeError(err) {
  const e = err;
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "timed out";
  const cause = e?.cause;
  if (cause?.code) return cause.code;
  if (cause?.message) return cause.message;
  return e?.message ?? String(err);
}

// src/store/registry.ts
var RESULT_ARTIFACT_TYPE = "application/vnd.dist-build.result.v1+json";
var RESULT_CONFIG_TYPE = RESULT_ARTIFACT_TYPE;
var OUTPUT_LAYER_TYPE = "application/vnd.dist-build.output.v1.tar";
var OCI_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
var OCI_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json";
var TITLE_ANNOTATION = "org.opencontainers.image.title";
var CREATED_ANNOTATION = "org.opencontainers.image.created";
var UNIT_ANNOTATION = "dev.dist-build.unit";
var KEY_ANNOTATION = "dev.dist-build.cache-key";
var DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;
var DEFAULT_CONCURRENCY = 8;
var MIN_CHUNK_SIZE = 64 * 1024;
var MAX_CHUNK_SIZE = 2 * 1024 ** 3;
var MAX_CONCURRENCY = 256;
var FILE_READ = 1024 * 1024;
var MAX_DOCUMENT = 4 * 1024 * 1024;
var TIMEOUT_MS = 6e4;
var LARGE_BODY = 1024 * 1024;
var AFTER_BODY_TIMEOUTS = 5;
var AFTER_BODY_BYTES_PER_MS = 1e3;
var BACKOFF_MS = 3e4;
var MAX_BACKOFF_MS = 10 * 6e4;
var WRITES_DENIED_MS = 10 * 6e4;
var TAGS_PAGE = 1e3;
var MAX_REDIRECTS = 5;
var TAG_RE = /^r-([0-9a-f]{64})$/;
var REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
var StoreUnavailableError = class extends Error {
  /** `network`, `auth`, `server` (an unexpected answer) or `protocol` (an unusable one). */
  kind;
  /** HTTP status, when there was an answer. */
  status;
  constructor(kind, message, opts = {}) {
    super(message, opts.cause !== void 0 ? { cause: opts.cause } : void 0);
    this.name = "StoreUnavailableError";
    this.kind = kind;
    this.status = opts.status;
  }
};
var RegistryOptionError = class extends StoreOptionsError {
  constructor(option, message) {
    super(`${option}: ${message}`, option);
    this.name = "RegistryOptionError";
  }
};
function looksLikeHost(component) {
  return component.includes(".") || component.includes(":") || component === "localhost";
}
function parseRegistryRef(ref, option = "ref") {
  const fail = (why) => {
    throw new RegistryOptionError(option, `${JSON.stringify(ref)} ${why}`);
  };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) {
    fail("has a scheme; write host[:port]/repository (plain http: set insecure: true)");
  }
  if (ref.includes("@")) fail("names a digest; write host[:port]/repository");
  const slash = ref.indexOf("/");
  if (slash <= 0) fail("is not host[:port]/repository (e.g. ghcr.io/org/cache)");
  const host = ref.slice(0, slash).toLowerCase();
  const repository = ref.slice(slash + 1);
  const hostMatch = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::(\d{1,5}))?$/.exec(
    host
  );
  if (!hostMatch) fail(`has an invalid host ${JSON.stringify(host)}`);
  if (!looksLikeHost(host)) {
    fail(
      `starts with ${JSON.stringify(host)}, which is not a registry host (a host has a dot or a port, or is localhost): write host[:port]/repository, e.g. ghcr.io/${ref}`
    );
  }
  const port = hostMatch[2];
  if (port !== void 0 && (Number(port) < 1 || Number(port) > 65535)) {
    fail(`has an invalid port ${port}`);
  }
  if (/:[^/]*$/.test(repository)) fail("has a tag; write host[:port]/repository");
  if (!REPO_RE.test(repository) || repository.length > 255) {
    fail(
      `has an invalid repository ${JSON.stringify(repository)} (lower-case letters, digits and separators . _ __ - between them, components joined by /)`
    );
  }
  const name = hostMatch[1];
  const loopback = name === "localhost" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name) || name === "[::1]";
  const apiHost = name === "docker.io" || name === "index.docker.io" ? "registry-1.docker.io" : host;
  return { host, apiHost, repository, loopback };
}
function createRegistryStore(options, ctx) {
  const known = ["ref", "insecure", "mount-from", "chunk-size", "concurrency"];
  for (const key of Object.keys(options)) {
    if (known.includes(key) || key === "type") continue;
    throw new RegistryOptionError(
      key,
      `unknown option (the registry store takes ${known.join(", ")})`
    );
  }
  const ref = options.ref;
  if (ref === void 0 || ref === null || ref === "") {
    throw new RegistryOptionError(
      "ref",
      "is required: host[:port]/repository, e.g. ghcr.io/org/cache"
    );
  }
  if (typeof ref !== "string") throw new RegistryOptionError("ref", "must be a string");
  const parsed = parseRegistryRef(ref.trim());
  const insecure = options.insecure;
  if (insecure !== void 0 && typeof insecure !== "boolean") {
    throw new RegistryOptionError("insecure", "must be true or false");
  }
  let mountFrom;
  const mf = options["mount-from"];
  if (mf !== void 0 && mf !== null) {
    if (typeof mf !== "string" || mf === "") {
      throw new RegistryOptionError("mount-from", "must be a repository path of the same registry");
    }
    mountFrom = mf.startsWith(`${parsed.host}/`) ? mf.slice(parsed.host.length + 1) : mf;
    const first = mountFrom.slice(0, mountFrom.indexOf("/"));
    if (mountFrom.includes("/") && looksLikeHost(first)) {
      throw new RegistryOptionError(
        "mount-from",
        `${JSON.stringify(mf)} is on another registry (${first}): blobs can only be mounted from a repository of ${parsed.host}`
      );
    }
    if (!REPO_RE.test(mountFrom)) {
      throw new RegistryOptionError(
        "mount-from",
        `${JSON.stringify(mf)} is not a repository path of ${parsed.host} (e.g. org/other-cache)`
      );
    }
    if (mountFrom === parsed.repository) mountFrom = void 0;
  }
  const chunkSize = sizeOption(options["chunk-size"], "chunk-size");
  if (chunkSize !== void 0 && (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE)) {
    throw new RegistryOptionError(
      "chunk-size",
      `must be between 64 KiB and 2 GiB (got ${chunkSize})`
    );
  }
  const concurrency = options.concurrency;
  if (concurrency !== void 0 && (typeof concurrency !== "number" || !Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY)) {
    throw new RegistryOptionError("concurrency", `must be an integer from 1 to ${MAX_CONCURRENCY}`);
  }
  return new RegistryStore({
    ref: ref.trim(),
    insecure,
    mountFrom,
    chunkSize,
    concurrency,
    env: ctx.env,
    onWarning: ctx.onWarning,
    tempDir: ctx.root ? join2(ctx.root, ".dist-build", "tmp") : void 0
  });
}
function sizeOption(value, option) {
  if (value === void 0 || value === null) return void 0;
  if (typeof value !== "number" && typeof value !== "string") {
    throw new RegistryOptionError(
      option,
      `expected bytes (a number, or like "16MiB"), got ${JSON.stringify(value)}`
    );
  }
  try {
    return parseSize(value);
  } catch (err) {
    throw new RegistryOptionError(option, err.message);
  }
}
var RegistryStore = class _RegistryStore {
  kind = "registry";
  location;
  ref;
  chunkSize;
  /** `chunk-size` was given: files larger than a chunk go up in chunks too. */
  chunkSizeSet;
  concurrency;
  mountFrom;
  /** `adoptBlobFile` only reads the file (see `ReadOnlyAdopter` in layered.ts). */
  adoptReadsOnly = true;
  origin;
  repoPath;
  transport;
  onRequest;
  timeoutMs;
  tempPath;
  env;
  onWarning;
  warned = /* @__PURE__ */ new Set();
  tokens;
  /** Blobs found corrupt in this process: misses from now on. */
  corrupt = /* @__PURE__ */ new Set();
  credentials;
  basicAuth;
  plainManifests = false;
  mountRefused = false;
  /** The registry answered 413 to a whole file: chunks from now on. */
  largeBodiesRefused = false;
  downUntil = 0;
  /** Network failures since the registry last answered (each one doubles the backoff). */
  downCount = 0;
  downError;
  /**
   * The registry refused a write (a pull-only token, a read-only account): writes fail at once
   * with that error until then, without asking for a token and being refused again each time.
   */
  writesDeniedUntil = 0;
  writesDenied;
  /** The registry's last `WWW-Authenticate` challenge (`null` until it asks). */
  challenge = null;
  counters = { uploadedBytes: 0, requests: 0, mountedBlobs: 0 };
  constructor(opts) {
    this.ref = parseRegistryRef(opts.ref);
    const insecure = opts.insecure ?? this.ref.loopback;
    this.origin = `${insecure ? "http" : "https"}://${this.ref.apiHost}`;
    this.location = `${this.ref.host}/${this.ref.repository}`;
    this.repoPath = `/v2/${this.ref.repository}`;
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.chunkSizeSet = opts.chunkSize !== void 0;
    this.concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
    this.mountFrom = opts.mountFrom;
    this.transport = opts.fetch ? fetchTransport(opts.fetch) : nodeTransport;
    this.onRequest = opts.onRequest;
    this.timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
    this.tempPath = opts.tempDir ?? join2(tmpdir(), `dist-build-registry-${process.getuid?.() ?? "user"}`);
    this.env = opts.env ?? process.env;
    this.onWarning = opts.onWarning ?? (() => {
    });
    const fetchImpl = opts.fetch ?? fetch;
    this.tokens = new TokenCache((input, init) => {
      this.counters.requests++;
      return fetchImpl(input, init);
    }, this.timeoutMs);
  }
  /** Counters since the store was made. */
  stats() {
    return { ...this.counters, plainManifests: this.plainManifests };
  }
  /** The tag of a cache key's result: `r-<64 hex>`. */
  static tagFor(cacheKey) {
    assertDigest(cacheKey, "cache key");
    return `r-${cacheKey.slice("sha256:".length)}`;
  }
  // -------------------------------------------------------------------------------------------
  // Store
  async hasBlobs(digests) {
    for (const d of digests) assertDigest(d);
    try {
      return await this.existingBlobs(digests);
    } catch (err) {
      return this.miss(err, /* @__PURE__ */ new Set());
    }
  }
  async hasResults(cacheKeys) {
    for (const k of cacheKeys) assertDigest(k, "cache key");
    try {
      const unique = [...new Set(cacheKeys)];
      const flags = await mapLimit(unique, this.concurrency, async (key) => {
        const res = await this.send({
          method: "HEAD",
          url: `${this.repoPath}/manifests/${_RegistryStore.tagFor(key)}`,
          headers: { accept: OCI_MANIFEST_TYPE },
          what: `HEAD result ${key}`
        });
        await discard(res);
        if (res.status === 404) return false;
        if (res.ok) return true;
        throw this.unexpected(res, `HEAD result ${key}`);
      });
      return new Set(unique.filter((_, i) => flags[i]));
    } catch (err) {
      return this.miss(err, /* @__PURE__ */ new Set());
    }
  }
  async putBlob(data, expectedDigest) {
    if (expectedDigest !== void 0) assertDigest(expectedDigest, "expected digest");
    let session;
    try {
      if (expectedDigest !== void 0) {
        const known = await this.knownBlob(expectedDigest);
        if (known) {
          destroySource(data);
          return known;
        }
        const opened = await this.openSession(expectedDigest);
        if (opened.mounted) {
          destroySource(data);
          return await this.stored(opened.mounted);
        }
        session = opened.session;
      }
      const hash = createHash("sha256");
      const chunks = readChunks(data, this.chunkSize, hash)[Symbol.asyncIterator]();
      const first = await chunks.next();
      const firstChunk = first.done ? Buffer.alloc(0) : first.value;
      const second = first.done || firstChunk.length < this.chunkSize ? void 0 : await chunks.next();
      if (second === void 0 || second.done) {
        const digest2 = `sha256:${hash.digest("hex")}`;
        checkExpected(expectedDigest, digest2);
        if (session === void 0) {
          const known = await this.knownBlob(digest2);
          if (known) return known;
          const opened = await this.openSession(digest2);
          if (opened.mounted) return await this.stored(opened.mounted);
          session = opened.session;
        }
        await this.finishUpload(session, digest2, firstChunk);
        session = void 0;
        return await this.stored({ digest: digest2, size: firstChunk.length });
      }
      session ??= (await this.openSession(void 0)).session;
      const up = session;
      let offset = 0;
      let next;
      let current = firstChunk;
      let pendingSecond = second.value;
      while (current !== void 0) {
        if (pendingSecond !== void 0) {
          next = Promise.resolve({ done: false, value: pendingSecond });
          pendingSecond = void 0;
        } else {
          next = chunks.next();
        }
        next.catch(() => {
        });
        await this.patchChunk(up, offset, current);
        offset += current.length;
        const r = await next;
        current = r.done ? void 0 : r.value;
      }
      const digest = `sha256:${hash.digest("hex")}`;
      checkExpected(expectedDigest, digest);
      await this.finishUpload(up, digest, void 0);
      session = void 0;
      return await this.stored({ digest, size: offset });
    } catch (err) {
      destroySource(data);
      throw this.forPut(err);
    } finally {
      if (session) await this.cancelSession(session);
    }
  }
  async putBlobFile(file) {
    let info;
    try {
      info = await digestStream(createReadStream(file, { highWaterMark: FILE_READ }));
    } catch (err) {
      throw this.forPut(err);
    }
    return this.uploadFile(file, info);
  }
  /**
   * A blob just uploaded (or mounted) whole. One this process found corrupt (an invocation built
   * again after its blob was) is read back: a registry keeps the bytes it holds for a digest until
   * its garbage collection removes them, and takes an upload of the same digest without storing
   * it again. Served intact, it is no longer corrupt, and a result naming it can be stored.
   */
  async stored(info) {
    if (!this.corrupt.has(info.digest)) return info;
    const what = `GET blob ${info.digest}`;
    const res = await this.getFollowing(`${this.repoPath}/blobs/${info.digest}`, what);
    if (!res.ok) throw this.unexpected(res, what);
    const served = await digestStream(this.received(res, what));
    if (served.digest === info.digest) {
      this.corrupt.delete(info.digest);
    } else {
      await this.deleteBlob(info.digest);
      this.warnOnce(
        `still-corrupt:${info.digest}`,
        `${this.location}: blob ${info.digest} was uploaded again, but the registry still serves its corrupt copy (a registry keeps the bytes it has for a digest until its garbage collection removes them): results naming it are not stored; run the registry's garbage collection`
      );
    }
    return info;
  }
  /** Where `saveOutputs` packs blobs for `adoptBlobFile`. */
  async tempDir() {
    await mkdir(this.tempPath, { recursive: true });
    return this.tempPath;
  }
  /**
   * Uploads `file`, which the caller hashed to `digest` while writing it: no second read to hash
   * it (the registry checks the digest of what arrives). The file is left where it is.
   */
  async adoptBlobFile(file, digest) {
    assertDigest(digest);
    let size;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      throw this.forPut(err);
    }
    return this.uploadFile(file, { digest, size });
  }
  /**
   * Uploads a file of known digest and size, streamed from disk: one PUT when it fits in a chunk,
   * or whatever its size unless `chunk-size` was set or the registry refused a large body (413);
   * else PATCH chunks (each a range of the file) and a closing PUT.
   */
  async uploadFile(file, info) {
    let session;
    try {
      const known = await this.knownBlob(info.digest);
      if (known) return info;
      const opened = await this.openSession(info.digest);
      if (opened.mounted) return await this.stored(info);
      session = opened.session;
      const fileBody = (start, end) => () => createReadStream(file, { start, end: end - 1, highWaterMark: FILE_READ });
      try {
        let whole = info.size <= this.chunkSize || !this.chunkSizeSet && !this.largeBodiesRefused;
        if (whole) {
          try {
            await this.finishUpload(session, info.digest, {
              body: fileBody(0, info.size),
              length: info.size
            });
          } catch (err) {
            if (!(err instanceof StoreUnavailableError) || err.status !== 413) throw err;
            if (info.size <= this.chunkSize) throw err;
            this.largeBodiesRefused = true;
            await this.cancelSession(session);
            session = void 0;
            session = (await this.openSession(void 0)).session;
            whole = false;
          }
        }
        if (!whole) {
          for (let offset = 0; offset < info.size; offset += this.chunkSize) {
            const end = Math.min(info.size, offset + this.chunkSize);
            await this.patchChunk(session, offset, {
              body: fileBody(offset, end),
              length: end - offset
            });
          }
          await this.finishUpload(session, info.digest, void 0);
        }
      } catch (err) {
        if (err instanceof StoreUnavailableError && err.status === 400) {
          throw new CorruptBlobError(
            info.digest,
            void 0,
            `${file} does not hash to ${info.digest} (changed while it was being uploaded to ${this.location}?); nothing stored`
          );
        }
        throw err;
      }
      session = void 0;
      return await this.stored(info);
    } catch (err) {
      throw this.forPut(err);
    } finally {
      if (session) await this.cancelSession(session);
    }
  }
  async openBlob(digest) {
    assertDigest(digest);
    try {
      return await this.readBlob(digest);
    } catch (err) {
      return this.miss(err, null);
    }
  }
  /**
   * `openBlob`, except that a registry that cannot answer throws (`StoreUnavailableError`): `null`
   * is a blob the repository does not hold (or one found corrupt).
   */
  async readBlob(digest) {
    if (this.corrupt.has(digest)) return null;
    const res = await this.getFollowing(`${this.repoPath}/blobs/${digest}`, `GET blob ${digest}`);
    if (res.status === 404) {
      await discard(res);
      return null;
    }
    if (!res.ok) throw this.unexpected(res, `GET blob ${digest}`);
    return verifiedStream(this.received(res, `GET blob ${digest}`), digest, async (err) => {
      this.corrupt.add(digest);
      const removed = await this.deleteBlob(digest);
      this.warnOnce(
        `corrupt:${digest}`,
        `${this.location}: blob ${digest} is corrupt (its bytes hash to ${err.actual}); not used` + (removed ? ", removed from the repository" : "")
      );
    });
  }
  /**
   * The body of a blob's answer, as it arrives; a connection lost before its end (or fewer bytes
   * than the Content-Length) ends it with a `network` `StoreUnavailableError`, so that a blob cut
   * short in transit is never taken for a corrupt one.
   */
  received(res, what) {
    const body = res.body;
    const expected = contentLength(res);
    const fail = (got, why, cause) => new StoreUnavailableError(
      "network",
      `${this.location}: ${what}: the connection was lost after ${got}${expected >= 0 ? ` of ${expected}` : ""} bytes (${why})`,
      { cause }
    );
    const timeoutMs = this.timeoutMs;
    async function* bytes() {
      let got = 0;
      let waitingSince = Date.now();
      const watchdog = setInterval(
        () => {
          if (waitingSince > 0 && Date.now() - waitingSince >= timeoutMs) {
            body.destroy(new Error(`no data for ${timeoutMs / 1e3} s`));
          }
        },
        Math.min(5e3, Math.max(10, timeoutMs / 4))
      );
      watchdog.unref();
      try {
        for await (const chunk of body) {
          waitingSince = 0;
          got += chunk.length;
          yield chunk;
          waitingSince = Date.now();
        }
      } catch (err) {
        throw fail(got, err?.message ?? String(err), err);
      } finally {
        clearInterval(watchdog);
      }
      if (expected >= 0 && got !== expected) throw fail(got, "short answer");
    }
    return Readable2.from(bytes(), { objectMode: false });
  }
  async getResult(cacheKey) {
    const tag = _RegistryStore.tagFor(cacheKey);
    try {
      return await this.readResult(tag, cacheKey);
    } catch (err) {
      return this.miss(err, null);
    }
  }
  /**
   * `getResult`, except that a registry that cannot answer throws (`StoreUnavailableError`): `null`
   * is a result the repository does not hold or that cannot be used (warned about).
   */
  async readResult(tag, cacheKey, unusable) {
    const doc = await this.fetchManifest(tag);
    if (doc === null) return null;
    const problem = ociManifestProblem(doc);
    if (problem)
      return this.warnResult(cacheKey, unusable, `has an unusable OCI manifest: ${problem}`);
    const config = doc.config;
    const text = await this.fetchSmallBlob(config.digest, config.size);
    if (text === null)
      return this.warnResult(
        cacheKey,
        unusable,
        `names a config blob ${config.digest} that is gone`
      );
    if (typeof text !== "string")
      return this.warnResult(cacheKey, unusable, `has a corrupt config blob ${config.digest}`);
    let value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return this.warnResult(cacheKey, unusable, `does not parse (${err.message})`);
    }
    const problems = manifestProblems(value);
    if (problems.length > 0)
      return this.warnResult(cacheKey, unusable, `is not valid: ${problems.join("; ")}`);
    const manifest = value;
    if (manifest.cacheKey !== cacheKey) {
      return this.warnResult(cacheKey, unusable, `is for another cache key (${manifest.cacheKey})`);
    }
    const layers = new Set(doc.layers.map((l) => l.digest));
    const unlisted = manifest.outputs.map((o) => o.digest).filter((d) => !layers.has(d));
    const bad = manifest.outputs.map((o) => o.digest).filter((d) => this.corrupt.has(d));
    const present = unlisted.length > 0 ? await this.existingBlobs(unlisted) : /* @__PURE__ */ new Set();
    const missing = [.../* @__PURE__ */ new Set([...bad, ...unlisted.filter((d) => !present.has(d))])];
    if (missing.length > 0) {
      return this.warnResult(
        cacheKey,
        unusable,
        `names missing or corrupt blobs: ${missing.join(", ")}`
      );
    }
    return manifest;
  }
  async putResult(manifest) {
    const problems = manifestProblems(manifest);
    if (problems.length > 0) throw new TypeError(`invalid result manifest: ${problems.join("; ")}`);
    try {
      this.checkWritesAllowed();
      const digests = manifest.outputs.map((o) => o.digest);
      const present = await this.existingBlobs(digests);
      const missing = [...new Set(digests.filter((d) => !present.has(d)))];
      if (missing.length > 0) {
        const corrupt = missing.filter((d) => this.corrupt.has(d));
        throw new Error(
          `result ${manifest.cacheKey} names blobs that are not stored: ${missing.join(", ")}` + (corrupt.length > 0 ? ` (found corrupt in the registry: ${corrupt.join(", ")})` : "")
        );
      }
      const config = Buffer.from(JSON.stringify(manifest));
      const configDigest = sha256Digest(config);
      if (!await this.knownBlob(configDigest)) {
        const opened = await this.openSession(configDigest);
        if (!opened.mounted) await this.finishUpload(opened.session, configDigest, config);
      }
      await this.putManifest(manifest, { digest: configDigest, size: config.length });
    } catch (err) {
      throw this.forPut(err);
    }
  }
  /**
   * `dist-build cache prune --max-size`: while the blobs the repository's results name (each
   * once) add up to more than `maxBytes`, removes the oldest result (registries keep no access
   * times), then the blobs no remaining result names. Needs a registry that allows deletes (a
   * refusal is an error); the space itself comes back with the registry's garbage collection.
   */
  async prune(maxBytes) {
    const results = (await this.readableResults()).map((r) => ({
      key: r.cacheKey,
      createdAt: r.createdAt,
      blobs: new Map(r.outputs.map((o) => [o.digest, o.size]))
    }));
    results.sort((a, b) => a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0);
    const named = /* @__PURE__ */ new Map();
    for (const r of results)
      for (const [digest, size] of r.blobs) {
        const n = named.get(digest) ?? { size, by: 0 };
        n.by++;
        named.set(digest, n);
      }
    let bytes = [...named.values()].reduce((sum, n) => sum + n.size, 0);
    const out = { removedBlobs: 0, removedResults: 0, freedBytes: 0, bytes };
    for (const r of results) {
      if (bytes <= maxBytes) break;
      await this.deleteResult(r.key);
      out.removedResults++;
      for (const digest of r.blobs.keys()) {
        const n = named.get(digest);
        if (--n.by > 0) continue;
        named.delete(digest);
        bytes -= n.size;
        if (await this.deleteBlob(digest)) {
          out.removedBlobs++;
          out.freedBytes += n.size;
        }
      }
    }
    out.bytes = bytes;
    return out;
  }
  /**
   * Every result the repository lists whose manifest can be read (`prune`, `verify`), with the
   * created time its listing gives. A registry that cannot answer throws: a result it could not
   * read now is not left out (its blobs would pass for named by none). The cache keys of listed
   * results that cannot be used (config blob gone or corrupt, invalid) go to `unusable`.
   */
  async readableResults(unusable) {
    const out = [];
    for await (const r of this.listResults()) {
      const manifest = await this.readResult(
        _RegistryStore.tagFor(r.cacheKey),
        r.cacheKey,
        unusable
      );
      if (manifest) out.push({ ...manifest, createdAt: r.createdAt });
    }
    return out;
  }
  /** Deletes the manifest (by digest: registries do not delete tags) of a result. */
  async deleteResult(cacheKey) {
    const tag = _RegistryStore.tagFor(cacheKey);
    const head = await this.send({
      method: "HEAD",
      url: `${this.repoPath}/manifests/${tag}`,
      headers: { accept: OCI_MANIFEST_TYPE },
      what: `HEAD manifest ${tag}`
    });
    await discard(head);
    if (head.status === 404) return;
    const digest = head.headers.get("docker-content-digest");
    if (!head.ok || !digest) throw this.unexpected(head, `HEAD manifest ${tag}`);
    const res = await this.send({
      method: "DELETE",
      url: `${this.repoPath}/manifests/${digest}`,
      what: `delete result ${tag}`
    });
    await discard(res);
    if (res.status !== 202 && res.status !== 200 && res.status !== 204 && res.status !== 404)
      throw this.unexpected(
        res,
        `delete result ${tag} (the registry must allow deletes: storage.delete.enabled)`
      );
  }
  /**
   * `dist-build cache verify`: downloads and rehashes every blob the repository's results name,
   * each once. A corrupt blob is removed when the registry allows deletes (`openBlob` does it);
   * the results naming it then miss, since a result counts only with all its blobs. Results
   * themselves are small manifests, checked on every read: one that cannot be used (its config
   * blob gone or corrupt, not valid) is in `badResults`, and removed too. A registry that cannot
   * be reached is an error (`StoreUnavailableError`), not a clean bill of health.
   */
  async verify() {
    const badResults = [];
    const results = await this.readableResults(badResults);
    const digests = new Set(results.flatMap((r) => r.outputs.map((o) => o.digest)));
    const corrupt = [];
    const missing = [];
    await mapLimit([...digests], this.concurrency, async (digest) => {
      const stream = await this.readBlob(digest);
      if (!stream) {
        missing.push(digest);
        return;
      }
      try {
        for await (const chunk of stream) void chunk;
      } catch (err) {
        if (!(err instanceof CorruptBlobError)) throw err;
        corrupt.push(digest);
      }
    });
    const unusable = /* @__PURE__ */ new Set([...corrupt, ...missing]);
    let removedResults = 0;
    const remove = async (cacheKey) => {
      try {
        await this.deleteResult(cacheKey);
        return true;
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || err.kind === "network") throw err;
        return false;
      }
    };
    for (const r of results) {
      if (!r.outputs.some((o) => unusable.has(o.digest))) continue;
      if (await remove(r.cacheKey)) removedResults++;
    }
    for (const key of badResults) await remove(key);
    return {
      checked: digests.size,
      corrupt: corrupt.sort(),
      missing: missing.sort(),
      removedResults,
      ...badResults.length > 0 ? { badResults: badResults.sort() } : {}
    };
  }
  /** Results in the repository (tags `r-<hex>`), optionally only cache keys starting `prefix`. */
  async *listResults(prefix = "") {
    const want = prefix.startsWith("sha256:") ? prefix : prefix === "" ? "" : `sha256:${prefix}`;
    let url = `${this.repoPath}/tags/list?n=${TAGS_PAGE}`;
    try {
      while (url !== void 0) {
        const res = await this.send({ method: "GET", url, what: "list tags" });
        if (res.status === 404) {
          await discard(res);
          return;
        }
        if (!res.ok) throw this.unexpected(res, "list tags");
        const body = parseJson(await readText(res, 64 * MAX_DOCUMENT));
        const tags = Array.isArray(body?.tags) ? body.tags : [];
        const keys = tags.map((t) => typeof t === "string" ? TAG_RE.exec(t) : null).filter((m) => m !== null).map((m) => `sha256:${m[1]}`).filter((k) => k.startsWith(want));
        for (let i = 0; i < keys.length; i += this.concurrency) {
          const batch = keys.slice(i, i + this.concurrency);
          const listings = await mapLimit(batch, this.concurrency, (k) => this.listing(k));
          for (const l of listings) if (l) yield l;
        }
        url = nextLink(res.headers.get("link"), res.url || this.origin);
      }
    } catch (err) {
      throw this.forPut(err);
    }
  }
  // -------------------------------------------------------------------------------------------
  // Blobs
  async existingBlobs(digests) {
    const unique = [...new Set(digests)].filter((d) => !this.corrupt.has(d));
    const sizes = await mapLimit(unique, this.concurrency, (d) => this.headBlob(d));
    return new Set(unique.filter((_, i) => sizes[i] !== null));
  }
  /** `{digest, size}` of a blob in the repository (and not known corrupt), or `null`. */
  async knownBlob(digest) {
    if (this.corrupt.has(digest)) return null;
    const size = await this.headBlob(digest);
    return size === null ? null : { digest, size };
  }
  /** Size of a blob in the repository (-1 when the registry does not say), `null` if absent. */
  async headBlob(digest) {
    const what = `HEAD blob ${digest}`;
    const res = await this.send({ method: "HEAD", url: `${this.repoPath}/blobs/${digest}`, what });
    await discard(res);
    if (res.status === 404) return null;
    if (res.ok) return contentLength(res);
    if (isRedirect(res.status)) return -1;
    throw this.unexpected(res, what);
  }
  /** Starts an upload; with a digest and `mount-from`, tries a cross-repository mount first. */
  async openSession(digest) {
    this.checkWritesAllowed();
    const base = `${this.repoPath}/blobs/uploads/`;
    if (digest !== void 0 && this.mountFrom !== void 0 && !this.mountRefused) {
      const from = this.mountFrom;
      const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
      let res2;
      try {
        res2 = await this.send({
          method: "POST",
          url: base + query,
          headers: { "content-length": "0" },
          extraScopes: [`repository:${from}:pull`],
          what: `mount blob ${digest} from ${from}`
        });
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || err.kind !== "auth") throw err;
        this.mountRefused = true;
        this.warnOnce(
          "mount",
          `${this.location}: cannot mount blobs from ${from} (${err.message}); uploading instead`
        );
      }
      if (res2?.status === 201) {
        await discard(res2);
        this.counters.mountedBlobs++;
        const size = await this.headBlob(digest);
        return { mounted: { digest, size: size ?? -1 } };
      }
      if (res2?.status === 202) return { session: await this.sessionFrom(res2) };
      if (res2) await discard(res2);
    }
    const res = await this.send({
      method: "POST",
      url: base,
      headers: { "content-length": "0" },
      what: "start a blob upload"
    });
    if (res.status !== 202) throw this.unexpected(res, "start a blob upload");
    return { session: await this.sessionFrom(res) };
  }
  async sessionFrom(res) {
    await discard(res);
    const loc = res.headers.get("location");
    if (!loc)
      throw new StoreUnavailableError(
        "protocol",
        `${this.location}: upload started without a Location`
      );
    return { location: new URL(loc, this.origin) };
  }
  async patchChunk(session, offset, chunk) {
    const length = Buffer.isBuffer(chunk) ? chunk.length : chunk.length;
    const body = Buffer.isBuffer(chunk) ? () => chunk : chunk.body;
    const res = await this.send({
      method: "PATCH",
      url: session.location,
      headers: {
        "content-type": "application/octet-stream",
        "content-range": `${offset}-${offset + length - 1}`
      },
      body,
      bodyLength: length,
      countUpload: true,
      what: "upload a blob chunk"
    });
    if (res.status !== 202) throw this.unexpected(res, `upload a blob chunk at ${offset}`);
    await discard(res);
    const loc = res.headers.get("location");
    if (loc) session.location = new URL(loc, session.location);
  }
  /** The closing PUT, with the last bytes (or none after PATCH chunks). */
  async finishUpload(session, digest, last) {
    const url = new URL(session.location);
    url.searchParams.set("digest", digest);
    const length = last === void 0 ? 0 : last.length;
    const body = last === void 0 ? void 0 : Buffer.isBuffer(last) ? () => last : last.body;
    const res = await this.send({
      method: "PUT",
      url,
      headers: { "content-type": "application/octet-stream" },
      body,
      bodyLength: length,
      countUpload: true,
      what: `finish the upload of ${digest}`
    });
    if (res.status !== 201 && res.status !== 204 && res.status !== 200) {
      throw this.unexpected(res, `finish the upload of ${digest}`);
    }
    await discard(res);
  }
  async cancelSession(session) {
    try {
      const res = await this.send({
        method: "DELETE",
        url: session.location,
        what: "cancel an upload"
      });
      await discard(res);
    } catch {
    }
  }
  /** Deletes a blob from the repository when the registry allows it; whether it did. */
  async deleteBlob(digest) {
    try {
      const res = await this.send({
        method: "DELETE",
        url: `${this.repoPath}/blobs/${digest}`,
        what: `delete blob ${digest}`
      });
      await discard(res);
      return res.status === 202 || res.status === 200 || res.status === 204;
    } catch {
      return false;
    }
  }
  /**
   * A small blob (a result config) read whole and verified: its text, `null` when it is absent,
   * `false` when it is corrupt (warned about).
   */
  async fetchSmallBlob(digest, size) {
    if (this.corrupt.has(digest)) return false;
    const res = await this.getFollowing(`${this.repoPath}/blobs/${digest}`, `GET blob ${digest}`);
    if (res.status === 404) {
      await discard(res);
      return null;
    }
    if (!res.ok) throw this.unexpected(res, `GET blob ${digest}`);
    let text;
    try {
      const body = this.received(res, `GET blob ${digest}`);
      text = await readCappedText(body, Math.max(size, 0) + 1, () => body.destroy());
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      text = "";
    }
    const actual = sha256Digest(text);
    if (actual !== digest || Buffer.byteLength(text) !== size) {
      this.corrupt.add(digest);
      const removed = await this.deleteBlob(digest);
      this.warnOnce(
        `corrupt:${digest}`,
        `${this.location}: blob ${digest} is corrupt (its bytes hash to ${actual}); not used` + (removed ? ", removed from the repository" : "")
      );
      return false;
    }
    return text;
  }
  /** GET that follows redirects itself, sending credentials only to the registry. */
  async getFollowing(path, what) {
    let res = await this.send({ method: "GET", url: path, what });
    for (let i = 0; i < MAX_REDIRECTS && isRedirect(res.status); i++) {
      const loc = res.headers.get("location");
      await discard(res);
      if (!loc)
        throw new StoreUnavailableError(
          "protocol",
          `${this.location}: ${what}: redirect without a Location`
        );
      const url = new URL(loc, res.url || this.origin);
      res = await this.send({ method: "GET", url, what });
    }
    return res;
  }
  // -------------------------------------------------------------------------------------------
  // Manifests
  async fetchManifest(tag) {
    const what = `GET manifest ${tag}`;
    const res = await this.send({
      method: "GET",
      url: `${this.repoPath}/manifests/${tag}`,
      headers: { accept: OCI_MANIFEST_TYPE },
      what
    });
    if (res.status === 404) {
      await discard(res);
      return null;
    }
    if (!res.ok) throw this.unexpected(res, what);
    let text;
    try {
      text = await readText(res, MAX_DOCUMENT);
    } catch (err) {
      throw new StoreUnavailableError(
        "protocol",
        `${this.location}: ${what}: ${err.message}`
      );
    }
    const value = parseJson(text);
    return value === void 0 ? { unparsable: true } : value;
  }
  async putManifest(manifest, config) {
    const tag = _RegistryStore.tagFor(manifest.cacheKey);
    const attempt = async (plain) => {
      const doc = buildManifest(manifest, config, plain);
      const body = Buffer.from(JSON.stringify(doc));
      return this.send({
        method: "PUT",
        url: `${this.repoPath}/manifests/${tag}`,
        headers: { "content-type": OCI_MANIFEST_TYPE },
        body: () => body,
        bodyLength: body.length,
        what: `PUT manifest ${tag}`
      });
    };
    let res = await attempt(this.plainManifests);
    if (!this.plainManifests && (res.status === 400 || res.status === 415 || res.status === 422)) {
      const why = await errorSummary(res);
      res = await attempt(true);
      if (res.status === 201 || res.status === 200) {
        this.plainManifests = true;
      } else {
        const again = await errorSummary(res);
        throw new StoreUnavailableError(
          "protocol",
          `${this.location}: the registry refused the result manifest for ${manifest.cacheKey} (HTTP 400 ${why}; plain form: HTTP ${res.status} ${again})`,
          { status: res.status }
        );
      }
    }
    if (res.status !== 201 && res.status !== 200) {
      const why = await errorSummary(res);
      throw new StoreUnavailableError(
        res.status >= 500 ? "server" : "protocol",
        `${this.location}: PUT manifest ${tag}: unexpected HTTP ${res.status} ${why}`,
        { status: res.status }
      );
    }
    await discard(res);
  }
  async listing(cacheKey) {
    const doc = await this.fetchManifest(_RegistryStore.tagFor(cacheKey));
    if (doc === null || ociManifestProblem(doc)) return null;
    const m = doc;
    const size = m.layers.reduce((n, l) => n + (Number.isSafeInteger(l.size) ? l.size : 0), 0);
    let unit = m.annotations?.[UNIT_ANNOTATION];
    let createdAt = m.annotations?.[CREATED_ANNOTATION];
    if (typeof unit !== "string" || typeof createdAt !== "string") {
      const text = await this.fetchSmallBlob(m.config.digest, m.config.size);
      const value = typeof text === "string" ? parseJson(text) : void 0;
      if (manifestProblems(value).length > 0) return null;
      unit = value.unit;
      createdAt = value.createdAt;
    }
    return { cacheKey, unit, size, createdAt };
  }
  // -------------------------------------------------------------------------------------------
  // HTTP and authentication
  scopesFor(extra = []) {
    return [`repository:${this.ref.repository}:pull,push`, ...extra];
  }
  authorization(scopeKey) {
    if (this.basicAuth) return this.basicAuth;
    const token = this.tokens.cached(scopeKey);
    return token ? `Bearer ${token}` : void 0;
  }
  loadCredentials() {
    this.credentials ??= loadCredentials(
      this.ref.host,
      this.env,
      (m) => this.warnOnce(`credentials:${m}`, `${this.location}: ${m}`)
    );
    return this.credentials;
  }
  /**
   * Answers a 401 to a request sent with `sentWith` (its Authorization header, if any): gets what
   * the challenge asks for, or throws an `auth` error.
   */
  async authenticate(header, scopeKey, scopes, sentWith) {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    const creds = await this.loadCredentials();
    if (bearer) {
      this.tokens.forget(scopeKey);
      const wanted = new Set(scopes);
      for (const s of (bearer.params.scope ?? "").split(" ")) if (s) wanted.add(s);
      try {
        await this.tokens.get(scopeKey, bearer, [...wanted], creds);
      } catch (err) {
        if (err instanceof TokenError) {
          const kind = err.kind === "auth" ? "auth" : err.kind === "network" ? "network" : "server";
          throw new StoreUnavailableError(kind, `${this.location}: ${err.message}`, { cause: err });
        }
        throw err;
      }
      return;
    }
    if (basic) {
      if (!creds) {
        throw new StoreUnavailableError(
          "auth",
          `${this.location}: the registry wants credentials (set DIST_BUILD_REGISTRY_USERNAME/PASSWORD or log in with docker login)`
        );
      }
      const header2 = basicHeader(creds);
      if (sentWith === header2) throw this.refused(creds);
      this.basicAuth = header2;
      return;
    }
    throw new StoreUnavailableError(
      "auth",
      `${this.location}: the registry answered 401 without a usable challenge`
    );
  }
  refused(creds) {
    return new StoreUnavailableError(
      "auth",
      `${this.location}: the registry refused the credentials from ${creds.source}`,
      { status: 401 }
    );
  }
  /**
   * One request to the registry, authenticated: after a 401 it authenticates and replays the
   * request once. Network failures throw a `network` `StoreUnavailableError` (and put the
   * registry aside for a while); 401/403 after authenticating throw an `auth` one.
   */
  async send(spec) {
    const url = typeof spec.url === "string" && spec.url.startsWith("/") ? new URL(spec.url, this.origin) : new URL(spec.url);
    const ours = url.origin === this.origin;
    const scopes = this.scopesFor(spec.extraScopes);
    const scopeKey = scopes.join(" ");
    if (Date.now() < this.downUntil && this.downError) {
      const cause = this.downError;
      throw new StoreUnavailableError(
        "network",
        `${this.location}: not asked (${spec.what}): ${cause.message.replace(`${this.location}: `, "")}; asked again in ${Math.ceil((this.downUntil - Date.now()) / 1e3)} s`,
        { cause }
      );
    }
    for (let attempt = 0; ; attempt++) {
      const headers = { ...spec.headers };
      if (spec.bodyLength !== void 0) headers["content-length"] = String(spec.bodyLength);
      if (ours && spec.bodyLength !== void 0 && spec.bodyLength >= LARGE_BODY) {
        await this.freshAuthorization(scopeKey, scopes);
      }
      const auth = ours ? this.authorization(scopeKey) : void 0;
      if (auth) headers.authorization = auth;
      let res;
      try {
        this.counters.requests++;
        this.onRequest?.(spec.method, url);
        res = await this.transport({
          method: spec.method,
          url,
          headers,
          body: spec.body?.(),
          timeoutMs: this.timeoutMs,
          // Storing a large blob may take the registry a while once it has all of it.
          afterBodyTimeoutMs: (spec.bodyLength ?? 0) >= LARGE_BODY ? this.timeoutMs * AFTER_BODY_TIMEOUTS + Math.ceil(spec.bodyLength / AFTER_BODY_BYTES_PER_MS) : void 0
        });
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        if (attempt === 0 && err.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE")) {
          continue;
        }
        const e = new StoreUnavailableError(
          "network",
          `${this.location}: registry ${this.origin} unreachable (${spec.what}: ${err.message})`,
          { cause: err }
        );
        if (Date.now() >= this.downUntil) {
          this.downUntil = Date.now() + Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** this.downCount);
          this.downCount = Math.min(this.downCount + 1, 16);
        }
        this.downError = e;
        throw e;
      }
      this.downCount = 0;
      if (res.status === 401 && ours && attempt === 0) {
        await discard(res);
        this.challenge = res.headers.get("www-authenticate");
        await this.authenticate(this.challenge, scopeKey, scopes, auth);
        continue;
      }
      if (res.status === 401 || res.status === 403) {
        const summary = await errorSummary(res);
        if (res.status === 401 && ours && auth !== void 0 && auth === this.basicAuth) {
          const creds = await this.loadCredentials();
          if (creds) throw this.refused(creds);
        }
        throw new StoreUnavailableError(
          "auth",
          `${this.location}: access denied (${spec.what}: HTTP ${res.status}${summary ? ` ${summary}` : ""})`,
          { status: res.status }
        );
      }
      if (spec.countUpload && res.ok && spec.bodyLength)
        this.counters.uploadedBytes += spec.bodyLength;
      return res;
    }
  }
  /**
   * Before a large body: when the registry has asked for a bearer token and the one for `scopeKey`
   * has expired, gets a new one (the body then goes out once, authenticated).
   */
  async freshAuthorization(scopeKey, scopes) {
    if (this.challenge === null || this.authorization(scopeKey) !== void 0) return;
    if (!parseChallenges(this.challenge).some((c) => c.scheme === "bearer")) return;
    await this.authenticate(this.challenge, scopeKey, scopes, void 0);
  }
  unexpected(res, what) {
    void discard(res);
    const kind = res.status >= 500 || res.status === 429 ? "server" : "protocol";
    return new StoreUnavailableError(
      kind,
      `${this.location}: ${what}: unexpected HTTP ${res.status}`,
      {
        status: res.status
      }
    );
  }
  /** Problems of a read become a warning (once per kind) and `value`. */
  miss(err, value) {
    if (err instanceof StoreUnavailableError) {
      this.warnOnce(err.kind, `${err.message}; cache misses`);
    } else {
      this.warnOnce(
        "unexpected",
        `${this.location}: ${err?.message ?? String(err)}; cache misses`
      );
    }
    return value;
  }
  /** Errors of the `put*` methods: registry problems as `StoreUnavailableError`, others as is. */
  checkWritesAllowed() {
    if (this.writesDenied && Date.now() < this.writesDeniedUntil) throw this.writesDenied;
  }
  forPut(err) {
    if (err instanceof StoreUnavailableError && err.kind === "auth" && err !== this.writesDenied) {
      this.writesDenied = err;
      this.writesDeniedUntil = Date.now() + WRITES_DENIED_MS;
    }
    if (err instanceof StoreUnavailableError || err instanceof CorruptBlobError) return err;
    if (err instanceof Error && err.name === "AbortError") {
      return new StoreUnavailableError("network", `${this.location}: ${err.message}`, {
        cause: err
      });
    }
    return err;
  }
  /** A result that cannot be used: a warning (once), listed in `unusable` when given. */
  warnResult(cacheKey, unusable, problem) {
    unusable?.push(cacheKey);
    this.warnOnce(`result:${cacheKey}`, `${this.location}: result ${cacheKey} ${problem}; a miss`);
    return null;
  }
  warnOnce(id, message) {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.onWarning(message);
  }
};
function buildManifest(manifest, config, plain) {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_TYPE,
    ...plain ? {} : { artifactType: RESULT_ARTIFACT_TYPE },
    config: { mediaType: plain ? OCI_CONFIG_TYPE : RESULT_CONFIG_TYPE, ...config },
    layers: manifest.outputs.map((o) => ({
      mediaType: OUTPUT_LAYER_TYPE,
      digest: o.digest,
      size: o.size,
      annotations: { [TITLE_ANNOTATION]: o.path }
    })),
    annotations: {
      [CREATED_ANNOTATION]: manifest.createdAt,
      [UNIT_ANNOTATION]: manifest.unit,
      [KEY_ANNOTATION]: manifest.cacheKey
    }
  };
}
function ociManifestProblem(value) {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return "not a JSON object";
  const m = value;
  if (m.unparsable) return "does not parse";
  if (m.schemaVersion !== 2) return "schemaVersion is not 2";
  if (m.mediaType !== void 0 && m.mediaType !== OCI_MANIFEST_TYPE)
    return `media type ${String(m.mediaType)}`;
  if (m.artifactType !== void 0 && m.artifactType !== RESULT_ARTIFACT_TYPE) {
    return `artifact type ${String(m.artifactType)} is not ${RESULT_ARTIFACT_TYPE}`;
  }
  const c = m.config;
  if (typeof c !== "object" || c === null) return "no config";
  if (c.mediaType !== RESULT_CONFIG_TYPE && c.mediaType !== OCI_CONFIG_TYPE) {
    return `config media type ${String(c.mediaType)}`;
  }
  if (!isDigest(c.digest)) return "config digest is not a sha256 digest";
  if (!Number.isSafeInteger(c.size) || c.size < 0 || c.size > MAX_DOCUMENT)
    return "config size is unusable";
  if (!Array.isArray(m.layers)) return "layers is not an array";
  for (const l of m.layers) {
    if (typeof l !== "object" || l === null || !isDigest(l.digest)) {
      return "a layer has no sha256 digest";
    }
  }
  return null;
}
async function* readChunks(data, size, hash) {
  let buf = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const chunk of data) {
    let bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    hash.update(bytes);
    while (bytes.length > 0) {
      const n = Math.min(bytes.length, size - filled);
      bytes.copy(buf, filled, 0, n);
      filled += n;
      bytes = bytes.subarray(n);
      if (filled === size) {
        yield buf;
        buf = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buf.subarray(0, filled);
  return void 0;
}
function checkExpected(expected, actual) {
  if (expected !== void 0 && actual !== expected) {
    throw new CorruptBlobError(
      expected,
      actual,
      `data for blob ${expected} hashes to ${actual}; nothing stored`
    );
  }
}
function destroySource(data) {
  const d = data;
  if (typeof d.destroy === "function") d.destroy();
}
function isRedirect(status) {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}
function contentLength(res) {
  const n = Number(res.headers.get("content-length"));
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}
async function errorSummary(res) {
  try {
    const body = parseJson(await readText(res, 64 * 1024));
    const e = body?.errors?.[0];
    return e ? `${e.code ?? ""}${e.message ? `: ${e.message}` : ""}`.slice(0, 300) : "";
  } catch {
    return "";
  }
}
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return void 0;
  }
}
function nextLink(header, base) {
  if (!header) return void 0;
  for (const part of header.split(",")) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /rel="?next"?/.test(m[2])) return new URL(m[1], base);
  }
  return void 0;
}
export {
  DEFAULT_CHUNK_SIZE,
  DEFAULT_CONCURRENCY,
  OCI_CONFIG_TYPE,
  OCI_MANIFEST_TYPE,
  OUTPUT_LAYER_TYPE,
  RESULT_ARTIFACT_TYPE,
  RESULT_CONFIG_TYPE,
  RegistryOptionError,
  RegistryStore,
  StoreUnavailableError,
  TITLE_ANNOTATION,
  createRegistryStore,
  parseRegistryRef
};
