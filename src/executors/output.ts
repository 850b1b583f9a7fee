/**
 * Helpers over job output that work with any `Executor`: the tail of a log, and splitting live
 * chunks into lines prefixed with the invocation name for the CLI.
 */
import type { Job, OutputChunk } from './types.js';

/**
 * The last `bytes` bytes of a job's log (fewer if the log is shorter). Meant for finished jobs,
 * e.g. to print the end of a failed job's log; on a running job it returns the end of what has been
 * written so far. Bytes, not characters: the first character may be a cut multi-byte sequence.
 */
export async function tail(job: Job, bytes: number): Promise<Buffer> {
  const from = Math.max(0, job.outputBytes - Math.max(0, Math.floor(bytes)));
  const parts: Buffer[] = [];
  for await (const chunk of job.output({ from })) parts.push(chunk.data);
  return Buffer.concat(parts);
}

/** A partial line longer than this is emitted as a line of its own rather than held further. */
export const MAX_PARTIAL_LINE = 64 * 1024;

/**
 * Carries the unfinished last line of each stream between `prefixLines` calls. Create one per job
 * (`{}`), pass it to every call, and `flushLines` it when the job ends.
 */
export interface LineState {
  stdout?: Buffer;
  stderr?: Buffer;
}

const NEWLINE = 0x0a;

function prefixOf(invocation: string): string {
  return `[${invocation}] `;
}

/**
 * Turns a chunk of output into text where every line starts with `[invocation] `.
 *
 * Chunks end anywhere, even inside a line or a UTF-8 character. With `state`, the unfinished end of
 * a chunk is held (separately for stdout and stderr, so the two never mix within a line) and comes
 * out with the rest of its line on a later call; the result then contains only complete lines
 * (`''` if none are complete yet). Without `state`, an unfinished end is emitted as a line of its
 * own (a `\n` is added). Lines are split on bytes, so multi-byte characters are never cut.
 */
export function prefixLines(
  invocation: string,
  chunk: OutputChunk | Buffer | string,
  state?: LineState,
): string {
  const stream = isChunk(chunk) ? chunk.stream : 'stdout';
  let data = isChunk(chunk)
    ? chunk.data
    : typeof chunk === 'string'
      ? Buffer.from(chunk, 'utf8')
      : chunk;
  const held = state?.[stream];
  if (held) data = Buffer.concat([held, data]);
  const prefix = prefixOf(invocation);
  let out = '';
  let start = 0;
  for (let nl = data.indexOf(NEWLINE); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
    out += prefix + data.toString('utf8', start, nl + 1);
    start = nl + 1;
  }
  const rest = data.subarray(start);
  if (!state) {
    if (rest.length > 0) out += `${prefix}${rest.toString('utf8')}\n`;
  } else if (rest.length > MAX_PARTIAL_LINE) {
    out += `${prefix}${rest.toString('utf8')}\n`;
    delete state[stream];
  } else if (rest.length > 0) {
    // Copy: `rest` may be a view of a large chunk that should not stay referenced.
    state[stream] = Buffer.from(rest);
  } else {
    delete state[stream];
  }
  return out;
}

/** Emits whatever unfinished lines `state` still holds (each completed with `\n`) and clears it. */
export function flushLines(invocation: string, state: LineState): string {
  let out = '';
  for (const stream of ['stdout', 'stderr'] as const) {
    const held = state[stream];
    if (held && held.length > 0) out += `${prefixOf(invocation)}${held.toString('utf8')}\n`;
    delete state[stream];
  }
  return out;
}

/** `prefixLines` with its state kept for you: `push()` each chunk, `flush()` at the end. */
export class LinePrefixer {
  private readonly state: LineState = {};

  constructor(readonly invocation: string) {}

  push(chunk: OutputChunk | Buffer | string): string {
    return prefixLines(this.invocation, chunk, this.state);
  }

  flush(): string {
    return flushLines(this.invocation, this.state);
  }
}

function isChunk(value: OutputChunk | Buffer | string): value is OutputChunk {
  return typeof value === 'object' && !Buffer.isBuffer(value);
}
