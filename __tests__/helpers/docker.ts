/**
 * A real Docker daemon for integration tests: Debian's `docker.io` (dockerd 20.10 with BuildKit),
 * started in a temp dir of its own (data root, exec root, socket, pid file) with no networking of
 * its own (`--bridge=none`, no iptables: RUN steps use `--network host`) and the `vfs` storage
 * driver (no mounts to leave behind). Several can run side by side: each is a "machine" of its
 * own. Stopped by PID (dockerd, then the containerd it started), even when a test fails.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';

export const DOCKERD = process.env.DIST_BUILD_TEST_DOCKERD || '/usr/sbin/dockerd';
/** Debian's client (20.10, BuildKit built in); /usr/local/bin/docker here is one without buildx. */
export const DOCKER = process.env.DIST_BUILD_TEST_DOCKER || '/usr/bin/docker';
const BUSYBOX = '/bin/busybox';

/** Whether the daemon and client are installed; throws in CI (where .ci/run installs them). */
export function dockerAvailable(): boolean {
  const missing = [DOCKERD, DOCKER, BUSYBOX].filter((f) => !existsSync(f));
  if (missing.length === 0) return true;
  const msg =
    `${missing.join(', ')} not found: install the Debian packages docker.io and busybox-static ` +
    '(apt-get install -y docker.io busybox-static) to run the docker executor tests';
  if (process.env.CI) throw new Error(msg);
  console.warn(`skipping docker tests: ${msg}`);
  return false;
}

const running = new Set<DockerDaemon>();

export class DockerDaemon {
  stderr = '';
  private exited = false;
  private readonly exit: Promise<void>;

  constructor(
    readonly child: ChildProcess,
    /** Its temp dir (removed by `stop`). */
    readonly dir: string,
  ) {
    running.add(this);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (t: string) => {
      this.stderr = (this.stderr + t).slice(-20_000);
    });
    this.exit = new Promise((r) =>
      child.on('exit', () => {
        this.exited = true;
        r();
      }),
    );
  }

  get host(): string {
    return `unix://${join(this.dir, 'docker.sock')}`;
  }

  /** The environment a worker on this "machine" runs with. */
  get env(): NodeJS.ProcessEnv {
    return { DOCKER_HOST: this.host, DIST_BUILD_DOCKER: DOCKER };
  }

  /** Runs the client against this daemon. */
  docker(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) =>
      execFile(
        DOCKER,
        args,
        { env: { ...process.env, ...this.env, DOCKER_BUILDKIT: '1' }, maxBuffer: 64 << 20 },
        (err, stdout, stderr) =>
          resolve({
            code: err ? Number((err as { code?: unknown }).code) || 1 : 0,
            stdout: String(stdout),
            stderr: String(stderr),
          }),
      ),
    );
  }

  /** The image id of `ref`, or null. */
  async imageId(ref: string): Promise<string | null> {
    const r = await this.docker(['image', 'inspect', '--format', '{{.Id}}', ref]);
    return r.code === 0 ? r.stdout.trim() : null;
  }

  /**
   * `busybox:test`, an image made here (nothing can be pulled): busybox-static's binary as
   * `/bin/busybox` with `sh`, `cat`, `echo`, `ls` and `sleep` linked to it.
   */
  async importBusybox(tag = 'busybox:test'): Promise<void> {
    const root = mkdtempSync(join(this.dir, 'rootfs-'));
    mkdirSync(join(root, 'bin'));
    cpSync(BUSYBOX, join(root, 'bin', 'busybox'));
    for (const c of ['sh', 'cat', 'echo', 'ls', 'sleep'])
      symlinkSync('busybox', join(root, 'bin', c));
    await new Promise<void>((resolve, reject) => {
      const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const imp = spawn(DOCKER, ['import', '-', tag], {
        env: { ...process.env, ...this.env },
        stdio: [tar.stdout!, 'ignore', 'pipe'],
      });
      let err = '';
      imp.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      imp.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`docker import failed: ${err}`)),
      );
    });
    rmSync(root, { recursive: true, force: true });
  }

  /** SIGTERM (dockerd stops its containerd), then SIGKILL for both after 15 s; removes its dir. */
  async stop(): Promise<void> {
    if (!running.delete(this)) return;
    const containerd = this.containerdPid();
    if (!this.exited) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
      await this.exit;
      clearTimeout(timer);
    }
    if (containerd) {
      try {
        process.kill(containerd, 'SIGKILL');
      } catch {
        // stopped with dockerd
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private containerdPid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dir, 'x', 'containerd', 'containerd.pid'), 'utf8'));
      return Number.isInteger(pid) && pid > 1 ? pid : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Starts a daemon and waits until it answers. */
export async function startDockerd(): Promise<DockerDaemon> {
  // Short paths: containerd's sockets live under the exec root (108-byte socket paths).
  const dir = mkdtempSync('/tmp/dbd-');
  const child = spawn(
    DOCKERD,
    [
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'x'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '-H',
      `unix://${join(dir, 'docker.sock')}`,
      '--iptables=false',
      '--ip-masq=false',
      '--bridge=none',
      '--storage-driver=vfs',
    ],
    // Its temp files (containerd's stack dumps among them) go into its own dir, removed by stop.
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TMPDIR: dir } },
  );
  const d = new DockerDaemon(child, dir);
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    if ((await d.docker(['version', '--format', '{{.Server.Version}}'])).code === 0) return d;
    await new Promise((r) => setTimeout(r, 100));
  }
  const why = d.stderr.split('\n').slice(-15).join('\n');
  await d.stop();
  throw new Error(`dockerd did not answer within 30 s:\n${why}`);
}

/** Stops every daemon started by this module (afterAll). */
export async function stopAllDockerd(): Promise<void> {
  await Promise.all([...running].map((d) => d.stop()));
}
