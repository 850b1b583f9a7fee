/**
 * Real processes for the cluster benchmark: the CLI bundled from src/cli/bin.ts (as
 * scripts/jest-global-setup.mjs does for the integration tests), child processes that are always
 * stopped by PID (SIGTERM, SIGKILL after a grace period), CPU time from /proc, free ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { bundleScript as bundleFile, repoRoot } from '../../scripts/bundle-cli.mjs';

/** Bundles the CLI (every dependency included) into `outfile` (see scripts/bundle-cli.mjs). */
export { bundleCli, repoRoot } from '../../scripts/bundle-cli.mjs';

/**
 * Bundles a TypeScript entry point (a path in the repository) like scripts/run-ts.mjs does
 * (dependencies external), into node_modules/.cache/dist-build-run so that the dependencies
 * resolve. Returns the bundle's path.
 */
export function bundleScript(entry: string): Promise<string> {
  return bundleFile(join(repoRoot(), entry));
}

/** A child process whose stderr is kept (the last lines) and can be waited on. */
export class Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
  private readonly lines: string[] = [];
  private partial = '';
  private readonly watchers = new Set<(line: string) => void>();

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    opts: { env?: NodeJS.ProcessEnv; ipc?: boolean } = {},
  ) {
    this.proc = spawn(command, args, {
      env: opts.env ?? process.env,
      stdio: opts.ipc ? ['ignore', 'ignore', 'pipe', 'ipc'] : ['ignore', 'ignore', 'pipe'],
    });
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (text: string) => {
      const parts = (this.partial + text).split('\n');
      this.partial = parts.pop() ?? '';
      for (const line of parts) this.line(line);
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.on('error', (err) => this.line(`cannot start: ${err.message}`));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  tail(n = 5): string[] {
    return this.lines.slice(-n);
  }

  private line(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 50) this.lines.shift();
    for (const w of [...this.watchers]) w(line);
  }

  /** Resolves with the first stderr line matching `re`; rejects on exit or after `timeoutMs`. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.watchers.delete(watch);
        this.proc.off('exit', onExit);
      };
      const watch = (line: string) => {
        const m = line.match(re);
        if (m) {
          done();
          resolve(m);
        }
      };
      const onExit = () => {
        done();
        reject(
          new Error(`${this.name} exited before printing ${re}:\n  ${this.tail().join('\n  ')}`),
        );
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `${this.name}: no ${re} within ${timeoutMs} ms:\n  ${this.tail().join('\n  ')}`,
          ),
        );
      }, timeoutMs);
      this.watchers.add(watch);
      this.proc.once('exit', onExit);
      for (const line of this.lines) watch(line);
      if (!this.running) onExit();
    });
  }

  /** SIGTERM by PID, SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs = 5000): Promise<void> {
    const pid = this.proc.pid;
    if (pid === undefined || !this.running) return;
    const timer = setTimeout(() => signal(pid, 'SIGKILL'), graceMs);
    signal(pid, 'SIGTERM');
    await this.exited;
    clearTimeout(timer);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Stops every child at once (by PID), whatever state each is in. */
export async function stopAll(children: Child[], graceMs = 5000): Promise<void> {
  await Promise.all(children.map((c) => c.stop(graceMs)));
}

/** CLK_TCK on Linux (sysconf(_SC_CLK_TCK)); 100 on every mainstream kernel configuration. */
export const CLK_TCK = 100;

/** utime + stime of a process, in clock ticks, from /proc/<pid>/stat. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)" — comm may contain spaces and parentheses, so split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return Number(fields[11]) + Number(fields[12]);
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Sorted-copy percentile (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
