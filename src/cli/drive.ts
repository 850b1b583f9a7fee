/**
 * Drives one run on a started master: keys, scheduling (src/cluster/scheduler.ts), live progress,
 * export, the report, and what the next run learns (durations and the plan, in
 * `<root>/.dist-build/`). Shared by `dist-build run` (embedded master, local workers) and
 * `dist-build master` (a self-hosted pool).
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Config } from '../config/types.js';
import type { Master } from '../cluster/master.js';
import type { OutputChunkMsg } from '../cluster/protocol.js';
import { Run } from '../cluster/scheduler.js';
import { computeCacheKeys, keyWarnings } from '../plan/keys.js';
import { expandUnits, selectUnits } from '../plan/units.js';
import { outExclusion, type History } from '../plan/plan.js';
import {
  REPORT_FILES,
  shownPath,
  summaryTable,
  writeReport,
  type RunReport,
} from '../report/index.js';
import { onGithubActions } from './github.js';
import { Progress } from './progress.js';

export interface DriveOptions {
  master: Master;
  config: Config;
  configPath: string;
  /** Where exported artifacts and the report go. */
  out: string;
  /** `run --cache-dir`: like `out`, left out of every invocation's inputs when in the tree. */
  cacheDir?: string;
  failFast?: boolean;
  /** Print each job's output (plain mode). */
  showOutput?: boolean;
  /** Force plain progress lines. */
  plain?: boolean;
  /**
   * Plain mode: each job's output as one block when it ends ('grouped'), or lines as they come
   * ('stream'); 'auto' (the default): grouped on GitHub Actions (GITHUB_ACTIONS=true), where the
   * blocks are collapsible groups, else stream.
   */
  logOrder?: 'grouped' | 'stream' | 'auto';
  err?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Called with the run once it exists (Ctrl-C handlers cancel it). */
  onRun?: (run: Run) => void;
  /**
   * Called with a function that prints a line that stays (above the live progress in a terminal;
   * `live`, where it is printed as is, else as `dist-build: <line>`) while the progress display
   * is on, and with `undefined` when it is off again.
   */
  onPrinter?: (print: ((line: string) => void) | undefined, live?: boolean) => void;
  noWorkerTimeoutMs?: number;
  /**
   * Run only these invocations (or unit ids) and what they need; checked by the caller (see
   * `selectUnits`). Default: every invocation.
   */
  targets?: readonly string[];
  /**
   * One runner's share of a plan (`run --share`): the units it runs (`only`), among them those
   * another runner builds (`external`, taken from the cache; see `RunOptions.external`).
   */
  share?: { only: ReadonlySet<string>; external: ReadonlySet<string>; waitMs: number };
  /** See `RunOptions.onWorkerLost`. */
  onWorkerLost?: (workerId: string, why: string) => void;
}

export interface DriveResult {
  report: RunReport;
  exitCode: number;
  files: { json: string; markdown: string; html: string };
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, file);
}

export async function drive(opts: DriveOptions): Promise<DriveResult> {
  const { config } = opts;
  const err = opts.err ?? process.stderr;
  const stateDir = join(config.root, '.dist-build');
  await mkdir(stateDir, { recursive: true });
  const historyFile = join(stateDir, 'history.json');
  const planFile = join(stateDir, 'last-plan.json');
  const history = await readJson<History>(historyFile);
  const previous = await readJson<{ assignments: Record<string, string> }>(planFile);

  const share = opts.share;
  const targeted = (opts.targets?.length ?? 0) > 0 || !!share;
  const all = expandUnits(config);
  const units = share
    ? all.filter((u) => share.only.has(u.id))
    : selectUnits(all, opts.targets ?? [], true);
  const excludeInputs = [
    ...outExclusion(config.root, opts.out),
    ...(opts.cacheDir !== undefined ? outExclusion(config.root, opts.cacheDir) : []),
  ];
  // A share's units from other shares are keyed with their own needs, and theirs: those, not
  // the whole graph, are hashed.
  const keyInfo = await computeCacheKeys(
    config,
    share ? selectUnits(all, [...share.only], true) : units,
    { exclude: excludeInputs },
  );
  for (const m of keyWarnings(units, keyInfo)) err.write(`dist-build: warning: ${m}\n`);
  const keys = new Map([...keyInfo].map(([id, k]) => [id, k.cacheKey]));

  const onActions = onGithubActions();
  const progress = new Progress({
    out: err,
    total: units.length,
    ...(opts.plain ? { plain: true } : {}),
    showOutput: opts.showOutput ?? true,
    logOrder:
      opts.logOrder === 'grouped' || (opts.logOrder !== 'stream' && onActions)
        ? 'grouped'
        : 'stream',
    groupMarkers: onActions,
  });
  for (const m of opts.master.live()) progress.event({ type: 'worker-joined', worker: m.id });
  opts.onPrinter?.((line) => progress.print(line), progress.live);
  const out = resolve(opts.out);
  const run = new Run(opts.master, {
    config,
    configPath: opts.configPath,
    keys,
    excludeInputs,
    // A hand-written history may hold keys without durations (its keys are still used).
    ...(history?.durations || history?.keys
      ? { history: { ...history, durations: history.durations ?? {} } }
      : {}),
    ...(previous?.assignments ? { previous: previous.assignments } : {}),
    failFast: opts.failFast ?? false,
    exportTo: out,
    onEvent: (e) => progress.event(e),
    ...(progress.live || opts.showOutput === false
      ? {}
      : {
          onOutput: (unit: string, chunk: OutputChunkMsg, attempt: number) =>
            progress.output(unit, chunk, attempt),
          onOutputEnd: (unit: string, attempt: number) => progress.outputEnd(unit, attempt),
        }),
    ...(opts.noWorkerTimeoutMs ? { noWorkerTimeoutMs: opts.noWorkerTimeoutMs } : {}),
    ...(opts.onWorkerLost ? { onWorkerLost: opts.onWorkerLost } : {}),
    ...(targeted ? { only: new Set(units.map((u) => u.id)) } : {}),
    ...(share ? { external: share.external, externalWaitMs: share.waitMs } : {}),
  });
  opts.onRun?.(run);
  // An earlier run's report must not pass for this one's when this one ends in an error (no
  // worker can take an invocation, an artifact that cannot be exported): it goes now.
  await Promise.all(Object.values(REPORT_FILES).map((f) => rm(join(out, f), { force: true })));
  let report: RunReport;
  try {
    report = await run.execute();
    await progress.drained();
  } finally {
    progress.stop();
    opts.onPrinter?.(undefined);
  }

  // What the next run learns: measured durations and where everything ran.
  const durations: Record<string, number> = { ...history?.durations };
  const lastKeys: Record<string, string> = { ...history?.keys };
  for (const i of report.invocations) {
    if (i.status === 'built' && i.durationMs !== undefined) durations[i.unit] = i.durationMs / 1000;
    if (i.status === 'built' || i.status === 'cached') lastKeys[i.unit] = i.cacheKey;
  }
  await writeJsonAtomic(historyFile, { durations, keys: lastKeys });
  // A run of some invocations keeps where the others went.
  await writeJsonAtomic(planFile, {
    assignments: { ...(targeted ? previous?.assignments : {}), ...run.plan() },
  });

  const files = await writeReport(out, report);
  return { report, exitCode: report.status === 'succeeded' ? 0 : 1, files };
}

/** Colour in a terminal only, not on CI, and never with NO_COLOR set (no-color.org). */
export function useColor(out: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return !!out.isTTY && !env.CI && !env.NO_COLOR;
}

/** The end-of-run text: the table, the exports and where the report is. */
export function finalText(result: DriveResult, color: boolean): string {
  return `${summaryTable(result.report, { color })}\nreport: ${shownPath(result.files.html)} (also .md, .json)\n`;
}

/** `drive`, then the end-of-run text on stdout; returns the run's exit code. */
export async function driveAndPrint(opts: DriveOptions): Promise<number> {
  const result = await drive(opts);
  process.stdout.write(finalText(result, useColor(process.stdout)));
  return result.exitCode;
}
