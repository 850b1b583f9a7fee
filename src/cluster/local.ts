/**
 * Local worker processes for `dist-build run`: separate OS processes running `dist-build worker`,
 * as real workers would be, each told the PID of its parent so that it exits if the parent dies
 * without stopping it. `stop()` ends them by PID: SIGTERM, then SIGKILL after a grace period.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface LocalWorkersOptions {
  /** argv prefix that runs the dist-build CLI, e.g. `[process.execPath, '/path/dist/cli.js']`. */
  command: string[];
  /** Arguments of worker `i` (1-based), after `worker`. */
  args: (i: number) => string[];
  count: number;
  env?: NodeJS.ProcessEnv;
  /** Every line a worker prints on stderr. */
  onLine?: (worker: number, line: string) => void;
  /** A worker process ended before `stop()`. */
  onExit?: (worker: number, code: number | null, signal: NodeJS.Signals | null) => void;
}

export class LocalWorkers {
  readonly children: ChildProcess[] = [];
  private stopping = false;
  private readonly tails = new Map<number, string[]>();

  constructor(private readonly opts: LocalWorkersOptions) {}

  get pids(): number[] {
    return this.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  /** The last lines worker `i` printed (for error messages). */
  tail(i: number): string[] {
    return this.tails.get(i) ?? [];
  }

  start(): void {
    const [bin, ...pre] = this.opts.command;
    for (let i = 1; i <= this.opts.count; i++) {
      const child = spawn(
        bin!,
        [...pre, 'worker', ...this.opts.args(i), '--parent-pid', String(process.pid)],
        {
          env: this.opts.env ?? process.env,
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      this.children.push(child);
      let partial = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (text: string) => {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) this.line(i, line);
      });
      child.on('exit', (code, signal) => {
        if (partial) this.line(i, partial);
        if (!this.stopping) this.opts.onExit?.(i, code, signal);
      });
      child.on('error', (err) => this.line(i, `cannot start worker: ${err.message}`));
    }
  }

  private line(i: number, line: string): void {
    let t = this.tails.get(i);
    if (!t) this.tails.set(i, (t = []));
    t.push(line);
    if (t.length > 20) t.shift();
    this.opts.onLine?.(i, line);
  }

  /**
   * Kills worker `i` (1-based) at once, stopped (SIGSTOP) or not, and the process groups of the
   * commands it had started (its children, found before it dies: afterwards they belong to
   * init); returns its pid, if it had one.
   */
  kill(i: number): number | undefined {
    const c = this.children[i - 1];
    if (!c || c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return c?.pid;
    const groups = childGroups(c.pid);
    for (const pid of [c.pid, ...groups.map((g) => -g)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    return c.pid;
  }

  /**
   * Stops every worker process by PID and waits until all have exited; returns the numbers
   * (1-based) of those still running after `graceMs`, which were killed (a worker flushes its
   * stores as it leaves: what it had not saved is lost).
   */
  async stop(graceMs = 5000): Promise<number[]> {
    this.stopping = true;
    const killed: number[] = [];
    const alive = this.children.filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(
      alive.map(
        (c) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              try {
                c.kill('SIGKILL');
                killed.push(this.children.indexOf(c) + 1);
              } catch {
                // gone
              }
            }, graceMs);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            try {
              c.kill('SIGTERM');
              // A stopped process (SIGSTOP, Ctrl-Z) would only see it when continued.
              c.kill('SIGCONT');
            } catch {
              clearTimeout(timer);
              resolve();
            }
          }),
      ),
    );
    return killed.sort((a, b) => a - b);
  }
}

/**
 * The process groups of `pid`'s children that lead their own group (the commands a worker
 * starts: each in a group of its own), from /proc; none where there is no /proc.
 */
export function childGroups(pid: number): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const groups: number[] = [];
  for (const name of names) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [, ppid, pgrp] = stat
        .slice(stat.lastIndexOf(')') + 2)
        .split(' ')
        .map(Number);
      if (ppid === pid && pgrp === Number(name)) groups.push(pgrp);
    } catch {
      // gone meanwhile
    }
  }
  return groups;
}

/**
 * V8 options of the worker processes `dist-build run` starts. A worker's store work (packing,
 * extracting and hashing outputs of thousands of files) makes V8 grow its young generation to the
 * default cap of 3 x 16 MiB; a 4 MiB semi-space takes 30-40 MB off a worker's peak RSS in
 * `npm run bench:store` (1 GiB of outputs) at the same throughput. Options the user already gave
 * (`node --max-semi-space-size=N`, NODE_OPTIONS) win. `dist-build worker` started by hand runs
 * with whatever node is given: `NODE_OPTIONS=--max-semi-space-size=4 dist-build worker ...`.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** The `WORKER_NODE_FLAGS` that neither `execArgv` nor NODE_OPTIONS already set (by name). */
export function workerNodeFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): string[] {
  const given = new Set(
    [...execArgv, ...nodeOptions.split(/\s+/)].map((a) => a.split('=')[0]!.replace(/_/g, '-')),
  );
  return WORKER_NODE_FLAGS.filter((f) => !given.has(f.split('=')[0]!));
}

/**
 * How to run this CLI again as a worker process of `dist-build run`: this node with its options
 * plus `WORKER_NODE_FLAGS`, and this script (just the executable when there is no script).
 */
export function selfCommand(): string[] {
  const script = process.argv[1];
  if (!script) return [process.execPath];
  return [process.execPath, ...process.execArgv, ...workerNodeFlags(), script];
}

export { processAlive } from '../store/fsutil.js';
