/**
 * The executor interface: how a worker runs one build invocation as a job. `CommandExecutor`
 * (`command.ts`) runs `run:` invocations through a shell; a docker or buildah executor is meant to
 * be one more file implementing `Executor` the same way.
 *
 * Contract shared by every executor:
 * - `start()` never throws for something that goes wrong with the job itself (missing cwd, command
 *   not found, spawn failure): the job ends `failed` and the reason is in its log and in
 *   `JobResult.reason`. It throws synchronously only for an invalid `JobSpec` (a programming error).
 * - Output of a job is one combined, append-only byte log (stdout and stderr interleaved in arrival
 *   order). Offsets are byte positions in that log; a chunk knows which stream it came from.
 * - `result` resolves once, when the job has ended, everything it started is gone and the log is
 *   complete. It never rejects.
 */

/** What to run. Built by the worker from an `InvocationConfig` (see `src/config/types.ts`). */
export interface JobSpec {
  /** Unique per executor; also used as a file name, so only `[A-Za-z0-9._-]` (not `.`/`..`). */
  id: string;
  /** Invocation name, for messages and output prefixes. */
  invocation: string;
  /** Shell command (`InvocationConfig.run`). */
  command: string;
  /** Absolute working directory. */
  cwd: string;
  /** Declared environment (`InvocationConfig.env`). */
  env: Record<string, string>;
  /** Seconds before the job is stopped as `timed-out`; `0` or `Infinity` means no limit. */
  timeoutSeconds: number;
}

/**
 * `queued` -> `running` -> one of the final states. `CommandExecutor` spawns inside `start()`, so
 * its jobs are `running` (or already `failed`) when `start()` returns; `queued` is for executors
 * that have work to do before the process exists (pulling an image, waiting for a slot).
 */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'timed-out' | 'stopped';

/** Final states, for `isFinal()`. */
export const FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'timed-out', 'stopped'];

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.includes(state);
}

export interface JobResult {
  /** A final state. */
  state: Exclude<JobState, 'queued' | 'running'>;
  /** Exit code of the command, `null` if it was killed by a signal or never started. */
  exitCode: number | null;
  /** Signal that ended the command (`'SIGTERM'`, `'SIGKILL'`...), or `null`. */
  signal: string | null;
  /** Epoch milliseconds. */
  startedAt: number;
  /** Epoch milliseconds. */
  endedAt: number;
  /** Monotonic duration, not `endedAt - startedAt`. */
  durationMs: number;
  /**
   * The command's own time: from just before it is spawned to its exit, in fractional
   * milliseconds (`durationMs` also counts the executor's work around it: the log, pipes). Absent
   * when it never started.
   */
  commandMs?: number;
  /** Bytes in the job's log (stdout + stderr + any executor message). */
  outputBytes: number;
  /** One human-readable line: why the job ended (`exited with code 3`, `timed out after 600s`...). */
  reason: string;
}

export interface OutputChunk {
  /** Byte offset of `data[0]` in the job's combined log. */
  offset: number;
  /** Which stream the bytes came from. Executor messages (e.g. "cannot start") are `stderr`. */
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

export interface OutputOptions {
  /** Byte offset to start from (default 0). Offsets past the end yield nothing (or wait, with `follow`). */
  from?: number;
  /** Keep yielding new output until the job ends (default false: stop at what exists now). */
  follow?: boolean;
}

export interface Job {
  readonly id: string;
  readonly spec: JobSpec;
  /** Current state; a final state once `result` has resolved. */
  readonly state: JobState;
  /** Bytes of output received so far. */
  readonly outputBytes: number;
  /** The result once the job has ended, `undefined` before (a synchronous view of `result`). */
  readonly finalResult: JobResult | undefined;
  /** Resolves when the job has ended; never rejects. */
  readonly result: Promise<JobResult>;
  /**
   * Ends the job (state `stopped`, unless it already ended or is already timing out) and resolves
   * once everything it started is gone. Idempotent: later calls return the same result.
   */
  stop(reason?: string): Promise<JobResult>;
  /**
   * The combined log from `from`, in order, in chunks of bounded size. Reading never holds more than
   * one chunk in memory; each iteration is independent (several readers may follow one job).
   */
  output(opts?: OutputOptions): AsyncIterable<OutputChunk>;
  /** Stops the job if needed, then deletes its log. The job's output is no longer readable. */
  dispose(): Promise<void>;
}

export interface Executor {
  /** `'command'`, later `'docker'`, `'buildah'`... */
  readonly kind: string;
  /** Starts a job; see the contract above for what may throw. */
  start(spec: JobSpec): Job;
  /** A job started by this executor and not yet disposed. */
  get(id: string): Job | undefined;
}
