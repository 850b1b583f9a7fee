/**
 * `CommandExecutor`: runs a `run:` invocation's command through `/bin/sh -c` on this machine.
 *
 * Process handling
 * - The shell is spawned with `detached: true`, so it leads its own process group (and session);
 *   signals go to the whole group (`process.kill(-pid, ...)`), which reaches everything the command
 *   started unless a process deliberately left the group (`setsid`).
 * - Timeout (`timeoutSeconds`) and `stop()` send SIGTERM to the group, then SIGKILL after
 *   `killGraceMs` (default 10 s) if anything in the group is still alive.
 * - When the shell exits by itself, whatever it left running in its group (`server &`) is terminated
 *   the same way. `result` resolves only once the group has no live member (zombies nobody reaps
 *   do not count; after SIGKILL it waits at most one more second) and the log is complete, so after
 *   `await job.result` nothing of the job is running.
 *
 * Environment
 * - The command sees exactly `spec.env` plus a base taken from this process: `PATH`, `HOME`,
 *   `TMPDIR` and `LANG`, each only if set here (`DEFAULT_BASE_ENV`; change with `baseEnv`).
 *   Declared values win over base values. Nothing else leaks from the parent unless
 *   `inheritEnv: true` (then the whole parent environment is the base). The shell itself adds
 *   `PWD` (and may add `OLDPWD`, `SHLVL`, `_`), as shells do.
 *
 * Output
 * - stdout and stderr are appended, in the order they arrive here, to one log file
 *   `<logDir>/<id>.log`; an index of where the stream changes (8 bytes per switch, not per byte)
 *   records which bytes came from which stream. Memory stays bounded whatever the command prints:
 *   when the file write falls behind, the pipes are paused and the command blocks on write.
 * - `output({ from, follow })` reads the file back; `onOutput` sees every chunk live, as it arrives.
 * - Log files stay after the job ends (for replay and `tail`) until `job.dispose()`.
 *
 * Failures to start (missing or non-directory cwd, unusable shell, invalid env) end the job as
 * `failed` with `exitCode: null`; the reason is written to the log (as stderr) and to
 * `result.reason`. `start()` itself throws only for an invalid spec or an id already in use.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  constants as fsConstants,
  createWriteStream,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import type { WriteStream } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { InvocationConfig } from '../config/types.js';
import type {
  Executor,
  Job,
  JobResult,
  JobSpec,
  JobState,
  OutputChunk,
  OutputOptions,
} from './types.js';

/** Parent environment variables passed to commands by default (when set in the parent). */
export const DEFAULT_BASE_ENV: readonly string[] = ['PATH', 'HOME', 'TMPDIR', 'LANG'];

export const DEFAULT_KILL_GRACE_MS = 10_000;

/** Default `logDir`. */
export function defaultLogDir(): string {
  return join(tmpdir(), 'dist-build-jobs');
}

export interface CommandExecutorOptions {
  /** Directory for job logs (`<id>.log`), created if missing. Default `os.tmpdir()/dist-build-jobs`. */
  logDir?: string;
  /** Time between SIGTERM and SIGKILL to the job's process group. Default 10 000 ms. */
  killGraceMs?: number;
  /** Pass the whole parent environment (under the declared env) instead of `baseEnv`. Default false. */
  inheritEnv?: boolean;
  /** Parent variables passed when set (ignored with `inheritEnv`). Default `DEFAULT_BASE_ENV`. */
  baseEnv?: readonly string[];
  /**
   * The environment the base variables (or, with `inheritEnv`, all of them) come from. Default
   * `process.env` as it is at each spawn. A worker gives its environment as it started: the gha
   * store points `HOME` at a staging directory while an `@actions/cache` call runs (see
   * src/store/gha.ts), and a command started meanwhile must not get that.
   */
  parentEnv?: NodeJS.ProcessEnv;
  /** Shell run as `<shell> -c <command>`. Default `/bin/sh`. */
  shell?: string;
  /**
   * Called synchronously with every chunk as it arrives (before it reaches the log file), e.g. to
   * print live output through a `LinePrefixer`. Do not modify `chunk.data`. A throwing listener is
   * reported once per job as a process warning and does not affect the job.
   */
  onOutput?: (chunk: OutputChunk, job: Job) => void;
  /**
   * Called synchronously right after a command's process is spawned, before anything else (its
   * log file is made after): to record its process group while nothing can come in between.
   */
  onSpawn?: (jobId: string, pid: number) => void;
}

/** The environment a command gets: see the module comment. Exported for tests and `--dry-run`s. */
export function buildEnv(
  declared: Record<string, string>,
  opts: Pick<CommandExecutorOptions, 'inheritEnv' | 'baseEnv'> = {},
  parent: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  const keys = opts.inheritEnv ? Object.keys(parent) : (opts.baseEnv ?? DEFAULT_BASE_ENV);
  for (const key of keys) {
    const value = parent[key];
    if (value !== undefined) env[key] = value;
  }
  return Object.assign(env, declared);
}

/**
 * The `JobSpec` for a `run:` invocation: its command, declared env and timeout, run in `cwd`
 * (normally the config's root, `Config.root`). Throws for a `docker:` invocation.
 */
export function commandJobSpec(
  invocation: InvocationConfig,
  opts: { id: string; cwd: string },
): JobSpec {
  if (invocation.run === undefined) {
    throw new TypeError(`invocation ${invocation.name} has no run: command`);
  }
  return {
    id: opts.id,
    invocation: invocation.name,
    command: invocation.run,
    cwd: opts.cwd,
    env: { ...invocation.env },
    timeoutSeconds: invocation.timeout,
  };
}

const ID_PATTERN = /^[A-Za-z0-9._-]+$/;

function validateSpec(spec: JobSpec): void {
  if (!ID_PATTERN.test(spec.id) || spec.id === '.' || spec.id === '..') {
    throw new TypeError(`invalid job id ${JSON.stringify(spec.id)}: use [A-Za-z0-9._-]`);
  }
  if (typeof spec.command !== 'string' || spec.command === '') {
    throw new TypeError(`job ${spec.id}: command must be a non-empty string`);
  }
  if (typeof spec.cwd !== 'string' || spec.cwd === '') {
    throw new TypeError(`job ${spec.id}: cwd must be a non-empty string`);
  }
  if (typeof spec.timeoutSeconds !== 'number' || !(spec.timeoutSeconds >= 0)) {
    throw new TypeError(`job ${spec.id}: timeoutSeconds must be a number >= 0`);
  }
}

export class CommandExecutor implements Executor {
  readonly kind = 'command';
  readonly logDir: string;
  private readonly jobs = new Map<string, CommandJob>();

  constructor(readonly options: CommandExecutorOptions = {}) {
    this.logDir = options.logDir ?? defaultLogDir();
  }

  start(spec: JobSpec): CommandJob {
    validateSpec(spec);
    if (this.jobs.has(spec.id)) {
      throw new Error(`job ${spec.id} already exists in this executor (dispose it first)`);
    }
    const job = new CommandJob({ ...spec, env: { ...spec.env } }, this.options, this.logDir, () =>
      this.jobs.delete(spec.id),
    );
    this.jobs.set(spec.id, job);
    job.begin();
    return job;
  }

  get(id: string): CommandJob | undefined {
    return this.jobs.get(id);
  }

  /** Jobs not yet disposed, in start order. */
  list(): CommandJob[] {
    return [...this.jobs.values()];
  }

  /** Stops every job that is still running (e.g. when the worker shuts down). */
  async stopAll(reason = 'executor shutting down'): Promise<JobResult[]> {
    return Promise.all(this.list().map((job) => job.stop(reason)));
  }
}

/** Largest delay `setTimeout` accepts (~24.8 days); longer timeouts are clamped to it. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Maximum bytes per chunk yielded by `output()`. */
const READ_CHUNK = 64 * 1024;
/** Log directories made by this process (made once, not before every command). */
const logDirs = new Set<string>();
/** Log bytes buffered for the file before the command's pipes are paused. */
const LOG_HIGH_WATER = 1024 * 1024;
/** After SIGKILL, how long to wait for the group to disappear (zombies, D state) before giving up. */
const AFTER_KILL_WAIT_MS = 1000;
/** Extra wait, after SIGKILL, for pipes held open by a process outside the group. */
const PIPE_CLOSE_MARGIN_MS = 2000;
/** Polling interval (doubling) while waiting for a process group to empty. */
const GROUP_POLL_MIN_MS = 5;
const GROUP_POLL_MAX_MS = 100;

type FinalState = JobResult['state'];

export class CommandJob implements Job {
  readonly id: string;
  readonly logPath: string;
  readonly result: Promise<JobResult>;

  private _state: JobState = 'queued';
  private _final: JobResult | undefined;
  private resolveResult!: (result: JobResult) => void;
  private readonly startedAt = Date.now();
  private readonly t0 = performance.now();
  private readonly graceMs: number;

  private child: ChildProcess | undefined;
  private _pid: number | undefined;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Why we are ending the job (set by timeout/stop, before the shell has exited). */
  private cause: { state: 'timed-out' | 'stopped' | 'failed'; reason: string } | undefined;
  private startError: string | undefined;
  private finishing = false;
  private disposed = false;

  private timeoutTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private pipeTimer: NodeJS.Timeout | undefined;
  private killSentAt: number | undefined;
  /** `performance.now()` just before the spawn and at the command's exit. */
  private spawnedAt: number | undefined;
  private exitedAt: number | undefined;

  private log: WriteStream | undefined;
  private logError: Error | undefined;
  private received = 0;
  private flushed = 0;
  private paused = false;
  /** Offsets where the stream changes; segment i is `firstStream` for even i, the other for odd. */
  private readonly segStarts: number[] = [];
  private firstStream: OutputChunk['stream'] = 'stdout';
  private lastStream: OutputChunk['stream'] | undefined;
  private readonly waiters = new Set<() => void>();
  private listenerFailed = false;

  constructor(
    readonly spec: JobSpec,
    private readonly options: CommandExecutorOptions,
    logDir: string,
    private readonly onDispose: () => void,
  ) {
    this.id = spec.id;
    this.logPath = join(logDir, `${spec.id}.log`);
    this.graceMs = Math.max(0, options.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
  }

  get state(): JobState {
    return this._state;
  }

  get outputBytes(): number {
    return this.received;
  }

  get finalResult(): JobResult | undefined {
    return this._final;
  }

  /** PID of the shell, which is also the process group id; `undefined` if it never started. */
  get pid(): number | undefined {
    return this._pid;
  }

  /**
   * Called once by the executor: spawns the command and opens its log. Never throws.
   *
   * The log is created right after the spawn, while the command starts (creating a file costs
   * 0.2-0.5 ms on slow disks, which would otherwise come before every command). Nothing can be
   * read from the pipes before this returns, so no output is missed. A log that cannot be
   * created ends the command at once with SIGKILL, and the job fails: a job never runs without
   * its log.
   */
  begin(): void {
    const { cwd } = this.spec;
    try {
      if (!statSync(cwd).isDirectory()) {
        this.failStart(`working directory ${cwd} is not a directory`);
        return;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.failStart(
        code === 'ENOENT'
          ? `working directory ${cwd} does not exist`
          : `working directory ${cwd} is not usable: ${message(err)}`,
      );
      return;
    }

    const shell = this.options.shell ?? '/bin/sh';
    let child: ChildProcess;
    this.spawnedAt = performance.now();
    try {
      child = spawn(shell, ['-c', this.spec.command], {
        cwd,
        env: buildEnv(this.spec.env, this.options, this.options.parentEnv ?? process.env),
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      this.failStart(`cannot run ${shell}: ${message(err)}`);
      return;
    }
    this.child = child;
    this._pid = child.pid;
    this._state = 'running';
    if (child.pid !== undefined) this.options.onSpawn?.(this.id, child.pid);
    const logProblem = this.openLog();

    child.on('error', (err) => {
      // Without `child.kill()` or IPC, 'error' means the spawn itself failed.
      if (this.exit) return;
      this.failStart(`cannot run ${shell} in ${cwd}: ${message(err)}`);
    });
    child.on('exit', (code, signal) => this.onExit(code, signal));
    child.on('close', (code, signal) => void this.onClose(code, signal));
    for (const [stream, pipe] of [
      ['stdout', child.stdout],
      ['stderr', child.stderr],
    ] as const) {
      pipe?.on('data', (data: Buffer) => this.append(stream, data));
      pipe?.on('error', () => {
        // A read error ends the pipe; what was read so far is kept.
      });
    }
    if (logProblem) {
      this.cause = {
        state: 'failed',
        reason: `cannot start: cannot create log ${this.logPath}: ${logProblem}`,
      };
      this.signalGroup('SIGKILL');
      return;
    }

    const ms = this.spec.timeoutSeconds * 1000;
    if (ms > 0 && Number.isFinite(ms)) {
      this.timeoutTimer = setTimeout(
        () => this.terminate('timed-out', `timed out after ${this.spec.timeoutSeconds}s`),
        Math.min(ms, MAX_TIMER_MS),
      );
    }
  }

  /** Creates the log (its directory too, once per process); the problem if it cannot. */
  private openLog(): string | undefined {
    const dir = dirname(this.logPath);
    // No symlink following: the default log dir is in a shared /tmp.
    const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fsConstants;
    for (let attempt = 0; ; attempt++) {
      try {
        if (!logDirs.has(dir)) {
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          logDirs.add(dir);
        }
        const fd = openSync(this.logPath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600);
        this.log = createWriteStream(this.logPath, { fd, highWaterMark: LOG_HIGH_WATER });
        this.log.on('error', (err) => this.onLogError(err));
        return undefined;
      } catch (err) {
        // The directory was removed since: make it again, once.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt === 0) {
          logDirs.delete(dir);
          continue;
        }
        return message(err);
      }
    }
  }

  stop(reason?: string): Promise<JobResult> {
    this.terminate('stopped', reason ? `stopped: ${reason}` : 'stopped');
    return this.result;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.stop('disposed');
    this.disposed = true;
    this.onDispose();
    await unlink(this.logPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async *output(opts: OutputOptions = {}): AsyncGenerator<OutputChunk> {
    let pos = Math.max(0, Math.floor(opts.from ?? 0));
    const follow = opts.follow ?? false;
    let fh: FileHandle | undefined;
    try {
      for (;;) {
        if (this.disposed) return;
        const end = this.flushed;
        if (pos < end) {
          if (!fh) {
            try {
              fh = await open(this.logPath, 'r');
            } catch (err) {
              if (this.disposed) return;
              throw err;
            }
          }
          const { stream, segEnd } = this.segmentAt(pos);
          const n = Math.min(READ_CHUNK, end - pos, segEnd - pos);
          const buf = Buffer.allocUnsafe(n);
          const { bytesRead } = await fh.read(buf, 0, n, pos);
          if (bytesRead === 0) return; // the file was removed or truncated under us
          yield { offset: pos, stream, data: bytesRead < n ? buf.subarray(0, bytesRead) : buf };
          pos += bytesRead;
          continue;
        }
        // `flushed` is final once `_final` is set (every log write has completed before), so
        // this is exact.
        if (!follow || this._final) return;
        await new Promise<void>((resolve) => this.waiters.add(resolve));
      }
    } finally {
      await fh?.close();
    }
  }

  // --- output ---------------------------------------------------------------------------------

  private append(stream: OutputChunk['stream'], data: Buffer): void {
    if (data.length === 0) return;
    const offset = this.received;
    if (this.lastStream === undefined) {
      this.firstStream = stream;
      this.segStarts.push(offset);
    } else if (stream !== this.lastStream) {
      this.segStarts.push(offset);
    }
    this.lastStream = stream;
    this.received += data.length;

    const log = this.log;
    if (log && !this.logError) {
      const ok = log.write(data, (err) => {
        if (!err && !this.logError) this.flushed += data.length;
        this.wake();
      });
      if (!ok && !this.paused) {
        this.paused = true;
        this.child?.stdout?.pause();
        this.child?.stderr?.pause();
        log.once('drain', () => this.resumePipes());
      }
    }

    const listener = this.options.onOutput;
    if (listener) {
      try {
        listener({ offset, stream, data }, this);
      } catch (err) {
        if (!this.listenerFailed) {
          this.listenerFailed = true;
          process.emitWarning(`onOutput listener failed for job ${this.id}: ${message(err)}`);
        }
      }
    }
  }

  private resumePipes(): void {
    if (!this.paused) return;
    this.paused = false;
    this.child?.stdout?.resume();
    this.child?.stderr?.resume();
  }

  private onLogError(err: Error): void {
    this.logError ??= err;
    // Keep draining the pipes so the command is not blocked forever; output is counted, not kept.
    this.resumePipes();
    this.wake();
  }

  private segmentAt(pos: number): { stream: OutputChunk['stream']; segEnd: number } {
    const starts = this.segStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    const other = this.firstStream === 'stdout' ? 'stderr' : 'stdout';
    return {
      stream: lo % 2 === 0 ? this.firstStream : other,
      segEnd: lo + 1 < starts.length ? starts[lo + 1] : Infinity,
    };
  }

  private wake(): void {
    if (this.waiters.size === 0) return;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const resolve of waiters) resolve();
  }

  // --- process lifecycle ----------------------------------------------------------------------

  private terminate(state: 'timed-out' | 'stopped', reason: string): void {
    if (this._final || this.finishing) return;
    if (this._pid === undefined) return; // not started: failStart is already finishing it
    // The first cause wins; once the shell has exited its own exit status decides the state.
    if (!this.cause && !this.exit) this.cause = { state, reason };
    this.signalGroup('SIGTERM');
    this.scheduleKill();
  }

  private scheduleKill(): void {
    if (this.killTimer || this.killSentAt !== undefined) return;
    this.killTimer = setTimeout(() => {
      this.killTimer = undefined;
      this.killSentAt = performance.now();
      this.signalGroup('SIGKILL');
    }, this.graceMs);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (this._pid === undefined) return;
    try {
      process.kill(-this._pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  }

  private groupAlive(): boolean {
    return this._pid !== undefined && groupAlive(this._pid);
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exit = { code, signal };
    this.exitedAt = performance.now();
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    if (this.groupAlive()) {
      // Leftovers (`cmd &`) or children still handling SIGTERM: end them too.
      this.signalGroup('SIGTERM');
      this.scheduleKill();
    }
    // If something outside the group keeps our pipes open, stop waiting for it eventually.
    this.pipeTimer = setTimeout(() => {
      this.child?.stdout?.destroy();
      this.child?.stderr?.destroy();
    }, this.graceMs + PIPE_CLOSE_MARGIN_MS);
  }

  private async onClose(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.finishing || this.startError !== undefined) return;
    const exit = this.exit ?? { code, signal };
    this.exit = exit;
    await this.waitGroupGone();
    if (this.finishing) return;

    let state: FinalState;
    let reason: string;
    const how =
      exit.code !== null ? `exit code ${exit.code}` : `signal ${exit.signal ?? 'unknown'}`;
    if (this.cause) {
      state = this.cause.state;
      reason = `${this.cause.reason} (${how}${this.killSentAt !== undefined ? `, SIGKILL after ${this.graceMs}ms grace` : ''})`;
    } else if (exit.code === 0) {
      state = 'succeeded';
      reason = 'exited with code 0';
    } else if (exit.code !== null) {
      state = 'failed';
      reason = `exited with code ${exit.code}`;
    } else {
      state = 'failed';
      reason = `killed by ${exit.signal ?? 'unknown signal'}`;
    }
    await this.finish(state, exit.code, exit.signal, reason);
  }

  /** Resolves when nothing is left in the process group (see AFTER_KILL_WAIT_MS). */
  private async waitGroupGone(): Promise<void> {
    let delay = GROUP_POLL_MIN_MS;
    while (this.groupAlive()) {
      this.scheduleKill();
      if (
        this.killSentAt !== undefined &&
        performance.now() - this.killSentAt > AFTER_KILL_WAIT_MS
      ) {
        return; // zombies nobody reaps, or a process stuck in the kernel: nothing more to do
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, GROUP_POLL_MAX_MS);
    }
  }

  private failStart(reason: string): void {
    if (this.finishing) return;
    this.startError = reason;
    if (!this.log) this.openLog(); // the reason goes into the log, as the command's output would
    this.append(
      'stderr',
      Buffer.from(`dist-build: cannot start ${this.spec.invocation}: ${reason}\n`),
    );
    void this.finish('failed', null, null, `cannot start: ${reason}`);
  }

  private async finish(
    state: FinalState,
    exitCode: number | null,
    signal: string | null,
    reason: string,
  ): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    for (const timer of [this.timeoutTimer, this.killTimer, this.pipeTimer]) {
      if (timer) clearTimeout(timer);
    }
    // Every write has completed ('finish'); closing the file is left to the stream (one more
    // trip through libuv's thread pool, which on a busy machine took ~10 ms per job for nothing).
    const log = this.log;
    if (log && !log.destroyed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          log.off('finish', done);
          log.off('close', done);
          resolve();
        };
        log.once('finish', done);
        log.once('close', done); // after an error, 'finish' never comes
        log.end();
      });
    }
    if (this.logError) reason += `; log incomplete: ${this.logError.message}`;
    const durationMs = Math.round(performance.now() - this.t0);
    const result: JobResult = {
      state,
      exitCode,
      signal,
      startedAt: this.startedAt,
      endedAt: Date.now(),
      durationMs,
      ...(this.spawnedAt !== undefined && this.exitedAt !== undefined
        ? { commandMs: this.exitedAt - this.spawnedAt }
        : {}),
      outputBytes: this.received,
      reason,
    };
    this._final = result;
    this._state = state;
    this.resolveResult(result);
    this.wake();
  }
}

/**
 * Whether process group `pgid` has a member that is not a zombie. Zombies count as gone: when the
 * shell has exited, its orphans are reparented to PID 1, and in containers PID 1 often never reaps
 * them, so `kill(-pgid, 0)` alone would report a dead group alive. Linux: scans `/proc` (only when
 * `kill` says the group exists); elsewhere falls back to `kill(-pgid, 0)`.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false; // ESRCH (or EPERM: not ours to wait for)
  }
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
