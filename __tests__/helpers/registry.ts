/**
 * A real OCI registry for integration tests: the Debian package `docker-registry` (distribution
 * 2.8, `/usr/bin/docker-registry`), started on 127.0.0.1 with a free port and a minimal config in
 * a temporary directory (never the packaged config), and stopped by PID (SIGTERM, then SIGKILL)
 * by `stopAllRegistries()` whatever happened in the test. Also a small token server for the
 * registry's token auth: checks basic credentials and issues ES256 JWTs whose `x5c` header carries
 * a self-signed certificate that is the registry's `rootcertbundle`.
 *
 * Without the binary: when `CI` is set, loading this module's `registryBinary()` throws (fail
 * loudly); otherwise it warns and returns `null` so that the tests skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA } from '../../src/cluster/certs.js';

export const REGISTRY_BIN = process.env.DIST_BUILD_TEST_REGISTRY_BIN || '/usr/bin/docker-registry';

/** The registry binary, or `null` (tests skip) when it is missing outside CI. */
export function registryBinary(): string | null {
  if (existsSync(REGISTRY_BIN)) return REGISTRY_BIN;
  const msg =
    `${REGISTRY_BIN} not found: install the Debian package docker-registry ` +
    '(apt-get install -y docker-registry) to run the registry store tests';
  if (process.env.CI) throw new Error(msg);
  console.warn(`skipping registry tests: ${msg}`);
  return null;
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface TokenAuthConfig {
  realm: string;
  service: string;
  issuer: string;
  rootCertBundle: string;
}

const running = new Set<RegistryProcess>();

export class RegistryProcess {
  stderr = '';
  readonly exited: Promise<void>;

  constructor(
    readonly child: ChildProcess,
    /** `127.0.0.1:PORT`, as a store `ref` starts. */
    readonly host: string,
    /** Storage root directory. */
    readonly root: string,
    private readonly dir: string,
  ) {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (t: string) => {
      this.stderr = (this.stderr + t).slice(-20_000);
    });
    this.exited = new Promise((resolve) => child.on('close', () => resolve()));
    running.add(this);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The file holding a blob's bytes in the registry's filesystem storage. */
  blobDataPath(digest: string): string {
    const hex = digest.replace(/^sha256:/, '');
    return join(this.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  }

  /** SIGTERM, then SIGKILL if it has not exited after a while; removes its directory. */
  async stop(): Promise<void> {
    if (this.alive) {
      try {
        process.kill(this.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          try {
            process.kill(this.pid, 'SIGKILL');
          } catch {
            // already gone
          }
          resolve();
        }, 5000);
      });
      await Promise.race([this.exited, killed]);
      clearTimeout(timer);
      await this.exited;
    }
    running.delete(this);
    await rm(this.dir, { recursive: true, force: true });
  }
}

function configYaml(root: string, port: number, auth?: TokenAuthConfig): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(root)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (auth) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${JSON.stringify(auth.realm)}`,
      `    service: ${JSON.stringify(auth.service)}`,
      `    issuer: ${JSON.stringify(auth.issuer)}`,
      `    rootcertbundle: ${JSON.stringify(auth.rootCertBundle)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Starts a registry and waits until `GET /v2/` answers (200, or 401 with token auth). */
export async function startRegistry(
  opts: { tokenAuth?: TokenAuthConfig } = {},
): Promise<RegistryProcess> {
  const bin = registryBinary();
  if (!bin) throw new Error('docker-registry is not installed');
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'dist-build-registry-'));
    const root = join(dir, 'storage');
    const port = await freePort();
    const config = join(dir, 'config.yml');
    await writeFile(config, configYaml(root, port, opts.tokenAuth));
    const child = spawn(bin, ['serve', config], {
      cwd: dir,
      // A clean environment: REGISTRY_* variables would override the config.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const reg = new RegistryProcess(child, `127.0.0.1:${port}`, root, dir);
    try {
      await waitReady(reg);
      return reg;
    } catch (err) {
      lastError = err;
      await reg.stop();
    }
  }
  throw lastError;
}

async function waitReady(reg: RegistryProcess): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (!reg.alive) throw new Error(`docker-registry exited at start:\n${reg.stderr}`);
    try {
      const res = await fetch(`${reg.url}/v2/`, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer on ${reg.url}:\n${reg.stderr}`);
}

/** Stops every registry started by this module (call in afterAll/afterEach). */
export async function stopAllRegistries(): Promise<void> {
  await Promise.all([...running].map((r) => r.stop()));
}

// ---------------------------------------------------------------------------------------------
// Token server

export interface TokenServer {
  /** `http://127.0.0.1:PORT/token` */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file with the signing certificate (the registry's rootcertbundle). */
  rootCertBundle: string;
  /** Tokens issued / requests refused so far. */
  issued: number;
  refused: number;
  /** Scopes asked for, in order. */
  scopes: string[];
  stop(): Promise<void>;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/**
 * A token server for `users` (name -> password): basic credentials required (anonymous and wrong
 * ones get 401); grants whatever repository actions are asked for.
 */
export async function startTokenServer(users: Record<string, string>): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'dist-build-token-'));
  const ca = await createCA({ name: 'dist-build test token signer', days: 2 });
  const bundle = join(dir, 'bundle.pem');
  await writeFile(bundle, ca.cert);
  const key: KeyObject = createPrivateKey(ca.key);
  const der = ca.cert.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  const service = 'test-registry';
  const issuer = 'test-issuer';
  const state = { issued: 0, refused: 0, scopes: [] as string[] };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization ?? '';
    const m = /^Basic (.+)$/.exec(auth);
    const [user, ...rest] = m ? Buffer.from(m[1]!, 'base64').toString('utf8').split(':') : [];
    const ok = url.pathname === '/token' && user !== undefined && users[user] === rest.join(':');
    if (!ok) {
      state.refused++;
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Basic realm="test"',
      });
      res.end(JSON.stringify({ details: 'bad credentials' }));
      return;
    }
    const scopes = url.searchParams.getAll('scope');
    state.scopes.push(...scopes);
    const access = scopes
      .map((s) => /^repository:(.+):([a-z,*]+)$/.exec(s))
      .filter((x): x is RegExpExecArray => x !== null)
      .map((x) => ({ type: 'repository', name: x[1]!, actions: x[2]!.split(',') }));
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [der] };
    const claims = {
      iss: issuer,
      sub: user,
      aud: url.searchParams.get('service') ?? service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    const token = `${input}.${b64url(signature)}`;
    state.issued++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: bundle,
    get issued() {
      return state.issued;
    },
    get refused() {
      return state.refused;
    },
    get scopes() {
      return state.scopes;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
