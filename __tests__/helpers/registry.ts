/**
 * A real OCI registry for integration tests: the Debian package `docker-registry` (distribution
 * 2.8, `/usr/bin/docker-registry`), started on 127.0.0.1 with a free port and a minimal config in
 * a temporary directory (never the packaged config), and stopped by PID (SIGTERM, then SIGKILL)
 * by `stopAllRegistries()` whatever happened in the test. Benchmarks use it too (bench:store), so
 * it loads nothing heavy: the token server for the registry's token auth is token-server.ts.
 *
 * Without the binary: when `CI` is set, loading this module's `registryBinary()` throws (fail
 * loudly); otherwise it warns and returns `null` so that the tests skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
  opts: {
    tokenAuth?: TokenAuthConfig;
    /** Where its directory goes (default: the OS temp dir). */ parent?: string;
  } = {},
): Promise<RegistryProcess> {
  const bin = registryBinary();
  if (!bin) throw new Error('docker-registry is not installed');
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(opts.parent ?? tmpdir(), 'dist-build-registry-'));
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
