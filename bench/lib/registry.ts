/**
 * A loopback `docker-registry` (Debian's package, distribution 2.8) for benchmarks: the part of
 * __tests__/helpers/registry.ts that starts one without auth, copied so that a benchmark does not
 * load the token server's certificate code (@peculiar/x509: start-up time and RSS that would count
 * against the store being measured). Started on 127.0.0.1 with a free port and a minimal config
 * in a temporary directory, stopped by PID (SIGTERM, then SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REGISTRY_BIN = process.env.DIST_BUILD_TEST_REGISTRY_BIN || '/usr/bin/docker-registry';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export class BenchRegistry {
  stderr = '';
  readonly exited: Promise<void>;

  constructor(
    readonly child: ChildProcess,
    /** `127.0.0.1:PORT`, as a store `ref` starts. */
    readonly host: string,
    private readonly dir: string,
  ) {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (t: string) => {
      this.stderr = (this.stderr + t).slice(-20_000);
    });
    this.exited = new Promise((resolve) => child.on('close', () => resolve()));
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

  /** SIGTERM, then SIGKILL after 5 s; removes its directory (storage included). */
  async stop(): Promise<void> {
    if (this.alive) {
      try {
        process.kill(this.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(this.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5000);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Starts a registry (storage under `parent`) and waits until `GET /v2/` answers 200. */
export async function startRegistry(parent = tmpdir()): Promise<BenchRegistry> {
  const dir = mkdtempSync(join(parent, 'registry-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  const yaml = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(join(dir, 'storage'))}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  await writeFile(config, `${yaml.join('\n')}\n`);
  const child = spawn(REGISTRY_BIN, ['serve', config], {
    cwd: dir,
    // A clean environment: REGISTRY_* variables would override the config.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const reg = new BenchRegistry(child, `127.0.0.1:${port}`, dir);
  try {
    for (let i = 0; ; i++) {
      if (!reg.alive) throw new Error(`docker-registry exited at start:\n${reg.stderr}`);
      if (i >= 400) throw new Error(`docker-registry did not answer on ${reg.url}:\n${reg.stderr}`);
      try {
        const res = await fetch(`${reg.url}/v2/`, { signal: AbortSignal.timeout(2000) });
        await res.body?.cancel();
        if (res.status === 200) return reg;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await reg.stop();
    throw err;
  }
}
