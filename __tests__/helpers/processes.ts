/**
 * Real processes for integration tests: the CLI and the action under test (bundled once per test
 * run by scripts/jest-global-setup.mjs, paths in DIST_BUILD_TEST_CLI and DIST_BUILD_TEST_ACTION), started in a process group of its
 * own so that `stopAll()` ends it and everything it started (workers of `dist-build run`), by PID,
 * whatever happened in the test. Waits are on output lines or exits, never on fixed sleeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';

export function cliPath(): string {
  const p = process.env.DIST_BUILD_TEST_CLI;
  if (!p) throw new Error('DIST_BUILD_TEST_CLI is not set: run integration tests through jest');
  return p;
}

function actionPath(): string {
  const p = process.env.DIST_BUILD_TEST_ACTION;
  if (!p) throw new Error('DIST_BUILD_TEST_ACTION is not set: run integration tests through jest');
  return p;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  stdout = '';
  stderr = '';
  private readonly watchers = new Set<() => void>();

  constructor(
    readonly args: string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv; script?: string } = {},
  ) {
    this.child = spawn(process.execPath, [opts.script ?? cliPath(), ...args], {
      cwd: opts.cwd,
      // As in CI, but not GitHub Actions' (whose grouped output would hide live lines) unless
      // a test asks for it.
      env: { ...process.env, CI: 'true', GITHUB_ACTIONS: undefined, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    tracked.add(this);
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (t: string) => {
      this.stdout += t;
      this.wake();
    });
    this.child.stderr!.on('data', (t: string) => {
      this.stderr += t;
      this.wake();
    });
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code, signal) => {
        tracked.delete(this);
        this.wake();
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get output(): string {
    return this.stdout + this.stderr;
  }

  private wake(): void {
    for (const w of [...this.watchers]) w();
  }

  /** Resolves with the first match of `re` in stdout+stderr; rejects if the process exits first or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = this.output.match(re);
        if (m) {
          done();
          resolve(m);
          return true;
        }
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          reject(new Error(`process exited before ${re}:\n${this.output.slice(-3000)}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${re}:\n${this.output.slice(-3000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.watchers.delete(watcher);
      };
      const watcher = () => void check();
      if (!check()) this.watchers.add(watcher);
    });
  }

  /** Sends `signal` to the process group (the CLI and what it started). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // already gone
    }
  }
}

const tracked = new Set<Proc>();

/** Starts the CLI with `args`. */
export function startCli(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Proc {
  return new Proc(args, opts);
}

/** Runs the CLI to completion. */
export async function runCli(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Exit & { stdout: string; stderr: string }> {
  return finish(startCli(args, opts), opts.timeoutMs);
}

/** Waits for `p` to exit (SIGKILLed after `timeoutMs`, default 2 minutes). */
async function finish(
  p: Proc,
  timeoutMs = 120_000,
): Promise<Exit & { stdout: string; stderr: string }> {
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const exit = await p.exited;
  clearTimeout(timer);
  return { ...exit, stdout: p.stdout, stderr: p.stderr };
}

/**
 * Runs the action (`dist/action.js` as the runner would: `node action.js`) to completion with
 * `inputs` as the runner passes them (`INPUT_<NAME>`, upper case, hyphens kept).
 */
export async function runAction(
  inputs: Record<string, string>,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Exit & { stdout: string; stderr: string }> {
  return finish(startAction(inputs, opts), opts.timeoutMs);
}

/** Starts the action (see `runAction`). */
export function startAction(
  inputs: Record<string, string>,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Proc {
  const env: NodeJS.ProcessEnv = { ...opts.env };
  // The runner passes every input: the defaults of action.yml (expressions such as
  // `${{ github.token }}` evaluate to what the workflow has; here: nothing), then those given.
  const meta = parse(readFileSync(new URL('../../action.yml', import.meta.url), 'utf8')) as {
    inputs: Record<string, { default?: unknown }>;
  };
  for (const [name, input] of Object.entries({ ...meta.inputs })) {
    const value = String(input.default ?? '');
    env[`INPUT_${name.toUpperCase()}`] = value.includes('${{') ? '' : value;
  }
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
  return new Proc([], { ...opts, env, script: actionPath() });
}

/** Ends every process group started by this file that is still running: SIGTERM, then SIGKILL. */
export async function stopAll(graceMs = 3000): Promise<void> {
  const procs = [...tracked];
  for (const p of procs) p.kill('SIGTERM');
  const timer = setTimeout(() => procs.forEach((p) => p.kill('SIGKILL')), graceMs);
  await Promise.all(procs.map((p) => p.exited));
  clearTimeout(timer);
  // Whatever is left in the groups (a child that ignored SIGTERM after its parent exited).
  for (const p of procs) p.kill('SIGKILL');
}

/** Whether a process exists (not a zombie check: enough for "is it gone"). */
/**
 * Sends `signal` to process group `pgid` (a command's, read from a file it wrote), if there is
 * such a group. Anything but a whole number above 1 is refused: `kill(-0)` is this process's
 * own group (jest and everything CI started with it) and `kill(-1)` every process there is, which
 * a pid file read before its writer got to write it would give.
 */
export function killGroup(pgid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // gone
  }
}

/** The pid a command writes into `file` (`echo $$ > file`), once the whole line is there. */
export async function pidFrom(file: string, timeoutMs = 20_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (/^[0-9]+\n/.test(text)) return Number(text.split('\n')[0]);
    if (Date.now() - t0 > timeoutMs) throw new Error(`no pid in ${file} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether process group `pgid` has a member left. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether process group `pgid` is gone within `timeoutMs` (checked every 50 ms). */
export async function groupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const t0 = Date.now();
  while (groupAlive(pgid)) {
    if (Date.now() - t0 >= timeoutMs) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `fn`; if it throws, the error message gets the last output of every process started by
 * this file (the master's view of a failed fault test is usually the explanation).
 */
export async function explained<T>(fn: () => Promise<T>): Promise<T> {
  const seen = new Set<Proc>();
  const track = setInterval(() => tracked.forEach((p) => seen.add(p)), 20);
  try {
    return await fn();
  } catch (err) {
    tracked.forEach((p) => seen.add(p));
    const dump = [...seen]
      .map((p) => `--- ${p.args.join(' ').slice(0, 120)}\n${p.output.slice(-4000)}`)
      .join('\n');
    if (err instanceof Error) err.message += `\n${dump}`;
    throw err;
  } finally {
    clearInterval(track);
  }
}
