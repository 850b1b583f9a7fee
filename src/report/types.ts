/**
 * The end-of-run report of `dist-build run`: what every build invocation did, on which worker, and
 * which final artifacts were exported. Written as JSON (this shape), Markdown and HTML.
 */

export const REPORT_FORMAT = 'dist-build/report/v1';

/** `skipped`: a dependency failed; `cancelled`: `--fail-fast` or Ctrl-C. */
export type InvocationStatus = 'built' | 'cached' | 'failed' | 'skipped' | 'cancelled';

export interface InvocationReport {
  /** Unit id: `name` or `name@os/arch`. */
  unit: string;
  /** The invocation the unit belongs to. */
  invocation: string;
  /** The worker that built it or held the cache entry; null when it never reached a worker. */
  worker: string | null;
  status: InvocationStatus;
  cacheKey: string;
  /** Epoch ms (built/failed only). */
  startedAt?: number;
  /** Epoch ms (built/failed only). */
  endedAt?: number;
  durationMs?: number;
  exitCode?: number | null;
  reason?: string;
  /** > 1 when re-run after a lost worker. */
  attempts: number;
  outputs: { path: string; digest: string; size: number }[];
}

export interface ExportReport {
  unit: string;
  invocation: string;
  worker: string;
  outputs: { path: string; dest: string; digest: string; size: number; files: number }[];
}

/** A docker unit's image pushed to its tags (`docker.push`), by the worker that held it. */
export interface PushReport {
  unit: string;
  invocation: string;
  worker: string;
  /** Each reference pushed and the manifest digest the registry answered. */
  images: { ref: string; digest: string }[];
}

export interface WorkerReport {
  id: string;
  annotations: Record<string, string>;
  built: number;
  cached: number;
  /** Time its built and failed jobs ran. */
  busyMs: number;
  /** Why it left during the run (lease expired, deregistered...); absent for a worker still there. */
  left?: string;
}

export interface RunReport {
  format: typeof REPORT_FORMAT;
  config: string;
  /** Epoch ms. */
  startedAt: number;
  /** Epoch ms. */
  endedAt: number;
  durationMs: number;
  status: 'succeeded' | 'failed' | 'cancelled';
  workers: WorkerReport[];
  invocations: InvocationReport[];
  exports: ExportReport[];
  /** Images pushed (`docker.push`); absent when none was. */
  pushes?: PushReport[];
  /** Notable events: worker lost, retry, master restarted. */
  events?: { at: number; message: string }[];
}
