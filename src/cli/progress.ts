/**
 * What `dist-build run` and `dist-build master` show while a run goes on.
 *
 * - In a terminal (stderr is a TTY and CI is not set): a live block, one line per worker with the
 *   invocation it runs and for how long, under a counter line; notable events (failures, lost
 *   workers, retries) are printed above the block and stay.
 * - Otherwise (CI, pipes, files): plain lines, each job's output prefixed with `[invocation] `,
 *   and one line per event (`compile-core: built on worker-2 in 0.41s`).
 */
import { formatDuration } from '../config/duration.js';
import { LinePrefixer } from '../executors/output.js';
import type { OutputChunkMsg } from '../cluster/protocol.js';
import type { RunEvent } from '../cluster/scheduler.js';

export interface ProgressOptions {
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  total: number;
  /** Force plain output (default: plain unless `out` is a TTY and CI is unset). */
  plain?: boolean;
  /** Print every job's output (plain mode; default true). */
  showOutput?: boolean;
}

const secs = (ms: number): string => formatDuration(Math.round(ms / 10) / 100);

export class Progress {
  readonly live: boolean;
  private readonly running = new Map<string, { unit: string; since: number }>();
  private readonly workers = new Set<string>();
  private readonly prefixers = new Map<string, LinePrefixer>();
  private counts = { built: 0, cached: 0, failed: 0, skipped: 0 };
  private drawn = 0;
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
        if (!this.live && e.attempt > 1)
          this.print(`${e.unit}: attempt ${e.attempt} on ${e.worker}`);
        break;
      case 'cached':
        this.counts.cached++;
        if (!this.live) this.print(`${e.unit}: cached (held by ${e.worker})`);
        break;
      case 'built':
        this.counts.built++;
        this.done(e.worker, e.unit);
        if (!this.live) this.print(`${e.unit}: built on ${e.worker} in ${secs(e.durationMs)}`);
        break;
      case 'failed': {
        this.counts.failed++;
        if (e.worker) this.done(e.worker, e.unit);
        const tail = e.tail?.trimEnd();
        this.print(
          `${e.unit}: FAILED${e.worker ? ` on ${e.worker}` : ''}: ${e.reason}` +
            (tail ? `\n--- last lines of ${e.unit} ---\n${tail}\n---` : ''),
        );
        break;
      }
      case 'skipped':
        this.counts.skipped++;
        this.print(`${e.unit}: skipped: ${e.reason}`);
        break;
      case 'retry':
        this.done(e.worker, e.unit);
        this.print(`${e.unit}: will run again: ${e.reason}`);
        break;
      case 'worker-lost':
        this.workers.delete(e.worker);
        for (const k of [...this.running.keys()])
          if (k.startsWith(e.worker + '\0')) this.running.delete(k);
        this.print(`worker ${e.worker} lost: ${e.reason}`);
        break;
      case 'exported':
        if (!this.live) this.print(`${e.unit}: exported ${e.path} from ${e.worker} to ${e.dest}`);
        break;
    }
  }

  output(unit: string, chunk: OutputChunkMsg): void {
    if (this.live || this.opts.showOutput === false) return;
    let p = this.prefixers.get(unit);
    if (!p) this.prefixers.set(unit, (p = new LinePrefixer(unit)));
    const text = p.push({
      offset: chunk.offset,
      stream: chunk.stream === 'stderr' ? 'stderr' : 'stdout',
      data: chunk.data,
    });
    if (text) this.opts.out.write(text);
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
    for (const [unit, p] of this.prefixers) {
      const rest = p.flush();
      if (rest) this.opts.out.write(rest);
      this.prefixers.delete(unit);
    }
  }

  private done(worker: string, unit: string): void {
    this.running.delete(worker + '\0' + unit);
  }

  private clear(): void {
    if (!this.drawn) return;
    this.opts.out.write(`\x1b[${this.drawn}A\x1b[0J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (!this.live) return;
    const width = Math.max(40, (this.opts.out.columns ?? 100) - 1);
    const c = this.counts;
    const finished = c.built + c.cached + c.failed + c.skipped;
    const lines = [
      `[${finished}/${this.opts.total}] ${c.built} built, ${c.cached} cached` +
        (c.failed ? `, ${c.failed} failed` : '') +
        (c.skipped ? `, ${c.skipped} skipped` : ''),
    ];
    const now = Date.now();
    for (const w of [...this.workers].sort()) {
      const jobs = [...this.running.entries()].filter(([k]) => k.startsWith(w + '\0'));
      const what = jobs.length
        ? jobs.map(([, j]) => `${j.unit} ${secs(now - j.since)}`).join(', ')
        : 'idle';
      lines.push(`  ${w.padEnd(12)} ${what}`.slice(0, width));
    }
    this.clear();
    this.opts.out.write(lines.join('\n') + '\n');
    this.drawn = lines.length;
  }
}
