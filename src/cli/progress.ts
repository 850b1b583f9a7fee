/**
 * What `dist-build run` and `dist-build master` show while a run goes on.
 *
 * - In a terminal (stderr is a TTY and CI is not set): a live block, one line per worker with the
 *   invocation it runs and for how long, under a counter line; notable events (failures, lost
 *   workers, retries) are printed above the block and stay.
 * - Otherwise (CI, pipes, files): plain lines, each job's output prefixed with `[invocation] `,
 *   and one line per event (`compile-core: built on worker-2 in 0.41s`). With `logOrder:
 *   'grouped'`, a job's output is held until the job ends and printed as one block, followed by
 *   its line (on GitHub Actions inside `::group::` / `::endgroup::`, titled with how it ended); a
 *   job printing more than GROUP_LIMIT bytes has its output printed in parts of about that size,
 *   each a whole block (groups cannot nest, so no block stays open while others print). Output
 *   of an earlier attempt that arrives late is printed as it comes, outside the new attempt's
 *   block. With 'stream', lines are printed as they arrive, interleaved between jobs, and a job's
 *   line comes after the last of its output (which can arrive after its result).
 */
import { formatDuration } from '../config/duration.js';
import { LinePrefixer } from '../executors/output.js';
import type { OutputChunkMsg } from '../cluster/protocol.js';
import type { RunEvent } from '../cluster/scheduler.js';
import { shownPath } from '../report/render.js';

export interface ProgressOptions {
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  total: number;
  /** Force plain output (default: plain unless `out` is a TTY and CI is unset). */
  plain?: boolean;
  /** Print every job's output (plain mode; default true). */
  showOutput?: boolean;
  /** Plain mode: each job's output as one block when it ends, or lines as they come (default). */
  logOrder?: 'grouped' | 'stream';
  /** Wrap each block in GitHub Actions' `::group::` / `::endgroup::` commands. */
  groupMarkers?: boolean;
}

/** Bytes of a job's output held for its block; beyond that, what is held goes out as a part. */
export const GROUP_LIMIT = 1024 * 1024;
/**
 * After a job ended, how long its block waits for more of its output to arrive (the end of its
 * output stream normally closes it sooner; on a loaded machine that took over 2 s). Each piece
 * that arrives starts the wait again.
 */
const GROUP_WAIT_MS = 10_000;

interface Group {
  /** The attempt whose output this is (its 'started' event's number). */
  attempt: number;
  /**
   * `--log-order stream`: output goes out as it comes, nothing is held; the group only keeps the
   * job's end line until its output is all out.
   */
  passThrough: boolean;
  held: string[];
  bytes: number;
  /** Parts printed so far (a job printing more than GROUP_LIMIT). */
  parts: number;
  /** The job's output stream is over. */
  ended: boolean;
  /** How the job ended (for the block's title) and the line printed after the block. */
  end?: { how: string; line: string };
  timer?: NodeJS.Timeout;
}

const NATURAL = new Intl.Collator('en', { numeric: true });

const secs = (ms: number): string => formatDuration(Math.round(ms / 10) / 100);

export class Progress {
  readonly live: boolean;
  private readonly running = new Map<string, { unit: string; since: number }>();
  private readonly workers = new Set<string>();
  private readonly prefixers = new Map<string, LinePrefixer>();
  private readonly groups = new Map<string, Group>();
  private counts = { built: 0, cached: 0, failed: 0, skipped: 0 };
  private drawn = 0;
  /** Lines held until the job lines waiting for their output are out (see 'skipped'). */
  private readonly afterEnds: string[] = [];
  /** Called once no job line waits for its output any more (see `drained`). */
  private readonly drainWaiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ProgressOptions) {
    this.live = !opts.plain && !!opts.out.isTTY && !process.env.CI;
    if (this.live) {
      this.timer = setInterval(() => this.draw(), 100);
      this.timer.unref();
    }
  }

  event(e: RunEvent): void {
    switch (e.type) {
      case 'worker-joined':
        this.workers.add(e.worker);
        break;
      case 'started':
        this.workers.add(e.worker);
        this.running.set(e.worker + '\0' + e.unit, { unit: e.unit, since: Date.now() });
        // An earlier attempt's block still waiting for its output goes out first.
        this.closeGroup(e.unit);
        if (!this.live && e.attempt > 1)
          this.print(`${e.unit}: attempt ${e.attempt} on ${e.worker}`);
        if (this.showingOutput)
          this.groups.set(e.unit, {
            attempt: e.attempt,
            passThrough: this.opts.logOrder !== 'grouped',
            held: [],
            bytes: 0,
            parts: 0,
            ended: false,
          });
        break;
      case 'cached': {
        this.counts.cached++;
        const line = `${e.unit}: cached (held by ${e.worker})`;
        // Found by the worker it was sent to (after the cache query), or by the query itself.
        const sent = this.done(e.worker, e.unit);
        if (this.live) break;
        if (sent) this.jobEnded(e.unit, `cached on ${e.worker}`, line);
        else this.print(line);
        break;
      }
      case 'built': {
        this.counts.built++;
        this.done(e.worker, e.unit);
        const how = `built on ${e.worker} in ${secs(e.durationMs)}`;
        if (!this.live) this.jobEnded(e.unit, how, `${e.unit}: ${how}`);
        break;
      }
      case 'failed': {
        this.counts.failed++;
        if (e.worker) this.done(e.worker, e.unit);
        const how = `FAILED${e.worker ? ` on ${e.worker}` : ''}`;
        // Grouped, the whole output is in the block just above: no tail.
        const tail = this.groups.get(e.unit)?.passThrough === false ? undefined : e.tail?.trimEnd();
        this.jobEnded(
          e.unit,
          how,
          `${e.unit}: ${how}: ${e.reason}` +
            (tail ? `\n--- last lines of ${e.unit} ---\n${tail}\n---` : ''),
        );
        break;
      }
      case 'skipped': {
        this.counts.skipped++;
        const line = `${e.unit}: skipped: ${e.reason}`;
        // After the line of the failure it follows from, which may still wait for its output.
        if (this.endsPending()) this.afterEnds.push(line);
        else this.print(line);
        break;
      }
      case 'retry':
        this.done(e.worker, e.unit);
        this.jobEnded(
          e.unit,
          `on ${e.worker}, will run again`,
          `${e.unit}: will run again: ${e.reason}`,
        );
        break;
      case 'worker-lost':
        this.workers.delete(e.worker);
        for (const k of [...this.running.keys()])
          if (k.startsWith(e.worker + '\0')) this.running.delete(k);
        this.print(`worker ${e.worker} lost: ${e.reason}`);
        break;
      case 'exported':
        if (!this.live)
          this.print(`${e.unit}: exported ${e.path} from ${e.worker} to ${shownPath(e.dest)}`);
        break;
      case 'waiting-external':
        this.print(
          `waiting for ${e.units.join(', ')} (other runners' shares of the plan) to be in the cache stores, for up to ${+(e.waitMs / 1000).toFixed(3)}s`,
        );
        break;
      case 'pushed':
        this.print(
          `${e.unit}: pushed ${e.ref} (${e.digest || 'no digest given'}) from ${e.worker}`,
        );
        break;
      case 'warning':
        this.print(`warning: ${e.message}`);
        break;
    }
  }

  /** Output of `unit`'s job (of attempt `attempt`, as numbered in its 'started' event). */
  output(unit: string, chunk: OutputChunkMsg, attempt?: number): void {
    if (this.live || this.opts.showOutput === false) return;
    const g = this.groups.get(unit);
    const late = g !== undefined && attempt !== undefined && attempt !== g.attempt;
    // An earlier attempt's late output has its own line state (it is printed as it comes).
    const key = late ? `${unit}\0${attempt}` : unit;
    let p = this.prefixers.get(key);
    if (!p) this.prefixers.set(key, (p = new LinePrefixer(unit)));
    const text = p.push({
      offset: chunk.offset,
      stream: chunk.stream === 'stderr' ? 'stderr' : 'stdout',
      data: chunk.data,
    });
    // Output still coming after the job's result (a huge log streams for a while): the end
    // line waits for the rest of it, not a fixed time from the result (which put it, and on
    // GitHub Actions the end of the block, in the middle of the output, splitting a line).
    if (!late) g?.timer?.refresh();
    if (!text) return;
    if (!g || late || g.passThrough) {
      this.opts.out.write(text);
      return;
    }
    g.held.push(text);
    g.bytes += Buffer.byteLength(text);
    if (g.bytes > GROUP_LIMIT) {
      // Too much to hold: this part goes out as a whole block of its own.
      g.parts++;
      this.opts.out.write(this.block(`${unit} (running, part ${g.parts})`, g.held.join('')));
      g.held = [];
      g.bytes = 0;
    }
  }

  /** The output stream of `unit`'s job is over (grouped: its block can be printed). */
  outputEnd(unit: string, attempt?: number): void {
    const g = this.groups.get(unit);
    if (!g || (attempt !== undefined && attempt !== g.attempt)) return;
    g.ended = true;
    if (g.end) this.closeGroup(unit);
  }

  /** Plain mode with jobs' output shown: a job's end line waits for its output (`jobEnded`). */
  private get showingOutput(): boolean {
    return !this.live && this.opts.showOutput !== false;
  }

  /**
   * A job of `unit` ended: its block (once its output is all in, or after a wait), then `line`;
   * streamed, the rest of its output, then `line`.
   */
  private jobEnded(unit: string, how: string, line: string): void {
    const g = this.groups.get(unit);
    if (!g) return this.print(line);
    g.end = { how, line };
    if (g.ended) return this.closeGroup(unit);
    g.timer ??= setTimeout(() => this.closeGroup(unit), GROUP_WAIT_MS);
    g.timer.unref();
  }

  private closeGroup(unit: string): void {
    const g = this.groups.get(unit);
    if (!g) return;
    this.groups.delete(unit);
    if (g.timer) clearTimeout(g.timer);
    const text = g.held.join('') + (this.prefixers.get(unit)?.flush() ?? '');
    this.prefixers.delete(unit);
    if (text && g.passThrough) {
      this.opts.out.write(text);
    } else if (text) {
      const part = g.parts ? `part ${g.parts + 1}, ` : '';
      this.opts.out.write(this.block(g.end ? `${unit} (${part}${g.end.how})` : unit, text));
    }
    if (g.end) this.print(g.end.line);
    if (this.endsPending()) return;
    for (const line of this.afterEnds.splice(0)) this.print(line);
    for (const done of this.drainWaiters.splice(0)) done();
  }

  /**
   * Resolves once every ended job's output is out, with its end line (see `jobEnded`): a run
   * that is over waits for it before its summary, which came in the middle of a long log.
   */
  drained(): Promise<void> {
    if (!this.endsPending()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** `text` as one block: a `::group::` on GitHub Actions. */
  private block(title: string, text: string): string {
    return this.opts.groupMarkers ? `::group::${title}\n${text}::endgroup::\n` : text;
  }

  /** Prints a line that stays (above the live block in a terminal). */
  print(line: string): void {
    if (this.live) {
      this.clear();
      this.opts.out.write(`${line}\n`);
      this.draw();
    } else {
      this.opts.out.write(`dist-build: ${line}\n`);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.live) this.clear();
    for (const unit of [...this.groups.keys()]) this.closeGroup(unit);
    for (const [unit, p] of this.prefixers) {
      const rest = p.flush();
      if (rest) this.opts.out.write(rest);
      this.prefixers.delete(unit);
    }
  }

  /** `unit` no longer runs on `worker`; whether it was running there. */
  private done(worker: string, unit: string): boolean {
    return this.running.delete(worker + '\0' + unit);
  }

  /** Whether a job's end line waits for the rest of its output (see `jobEnded`). */
  private endsPending(): boolean {
    return [...this.groups.values()].some((g) => g.end);
  }

  private clear(): void {
    if (!this.drawn) return;
    this.opts.out.write(`\x1b[${this.drawn}A\x1b[0J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (!this.live) return;
    // Every line must fit the terminal's width: a wrapped line takes two rows, the cursor went
    // up fewer rows than were drawn, and every redraw left part of the block behind.
    const width = Math.max(1, (this.opts.out.columns || 100) - 1);
    const c = this.counts;
    const finished = c.built + c.cached + c.failed + c.skipped;
    const lines = [
      (
        `[${finished}/${this.opts.total}] ${c.built} built, ${c.cached} cached` +
        (c.failed ? `, ${c.failed} failed` : '') +
        (c.skipped ? `, ${c.skipped} skipped` : '')
      ).slice(0, width),
    ];
    const now = Date.now();
    const rows: { busy: boolean; line: string }[] = [];
    // worker-2 before worker-10.
    for (const w of [...this.workers].sort((a, b) => NATURAL.compare(a, b))) {
      const jobs = [...this.running.entries()].filter(([k]) => k.startsWith(w + '\0'));
      const what = jobs.length
        ? jobs.map(([, j]) => `${j.unit} ${secs(now - j.since)}`).join(', ')
        : 'idle';
      rows.push({ busy: jobs.length > 0, line: `  ${w.padEnd(12)} ${what}`.slice(0, width) });
    }
    // The block must fit the terminal: the cursor cannot move up past its top line, so a taller
    // block was redrawn below its scrolled-off part 10 times a second, filling the scrollback.
    // Busy workers first (shown in worker order); the rest are counted on a last line.
    const room = this.opts.out.rows ? Math.max(1, this.opts.out.rows - 2) : Infinity;
    if (rows.length > room) {
      const shown = [...rows.filter((r) => r.busy), ...rows.filter((r) => !r.busy)].slice(
        0,
        Math.max(0, room - 1),
      );
      const rest = rows.filter((r) => !shown.includes(r));
      const idle = rest.filter((r) => !r.busy).length;
      lines.push(
        ...rows.filter((r) => shown.includes(r)).map((r) => r.line),
        `  ... ${rest.length} more worker${rest.length === 1 ? '' : 's'}${idle ? ` (${idle} idle)` : ''}`.slice(
          0,
          width,
        ),
      );
    } else lines.push(...rows.map((r) => r.line));
    this.clear();
    this.opts.out.write(lines.join('\n') + '\n');
    this.drawn = lines.length;
  }
}
