/**
 * One run of a config on the cluster: cache check, placement, dispatch, retries, export.
 *
 * 1. Cache check. Every live worker is asked HasCache(all cache keys) at once; a unit whose key a
 *    worker holds is `cached` (its outputs and holders recorded) and never dispatched.
 * 2. Placement. The other units are placed with the foundation's bounded-load rendezvous hashing
 *    (`place`) over the live membership, keyed by affinity key, with the previous run's plan as
 *    `previous`, so each invocation keeps landing on the worker whose cache is warm for it.
 *    Whenever the membership changes, units that have not started are re-placed with the current
 *    assignments as `previous`: only the work of a lost worker (or overflow onto a new one) moves.
 * 3. Dispatch. A unit starts when every unit it needs is built or cached; the start request (on the
 *    worker's heartbeat stream, `Master.startJob`) names the
 *    dependencies' output blobs and the workers holding them, and the worker fetches what its tree
 *    lacks before the command runs. Each worker takes its own ready units, most critical (longest
 *    remaining needs-chain) first; an idle worker takes a ready unit queued on a busy one that it
 *    is eligible for, rather than stand still.
 * 4. Faults. A unit whose worker is lost (lease expired, deregistered, unreachable) or that fails
 *    through the worker's fault is run again on another worker, once: no unit runs more than twice
 *    because of one failure, and none is lost. A command's own failure (exit code, timeout) is not
 *    retried: the unit fails, its dependents are skipped, and everything else still runs
 *    (`failFast` cancels the rest instead).
 * 5. Export. Units marked `export: true` are exported by the worker holding them (the one that
 *    built it, else any holder), streamed over its connection into `exportTo`.
 */
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Config, InvocationConfig } from '../config/types.js';
import { expandUnits, exportedImagePath, isImageArchive, unitOutputs } from '../plan/units.js';
import { declaredOutputs } from '../plan/keys.js';
import { expectedDuration, type History } from '../plan/plan.js';
import { eligible, place } from '../plan/placement.js';
import { needsGraph, tailLengths } from '../plan/simulate.js';
import type { PlacementItem, Unit, WorkerInfo } from '../plan/types.js';
import { isNotFound, leftByDead, removeTree } from '../store/fsutil.js';
import { restoreOutputs } from '../store/pack.js';
import { holdsDeclaredOutputs, type OutputEntry } from '../store/types.js';
import { REPORT_FORMAT } from '../report/types.js';
import type {
  ExportReport,
  InvocationReport,
  PushReport,
  RunReport,
  WorkerReport,
} from '../report/types.js';
import { definitionDigest } from './definition.js';
import { otherRelease, type Master, type MemberState, type RunView } from './master.js';
import { CACHE_QUERY_TIMEOUT_MS } from './protocol.js';
import type {
  BlobChunk,
  DependencyMsg,
  HasCacheResponse,
  JobReport,
  OutputChunkMsg,
  PushImageResponse,
  RunningJob,
  UnitStatus,
} from './protocol.js';
import { chunksOf } from './worker.js';
import { VERSION } from '../version.js';

export type UnitState =
  'waiting' | 'running' | 'built' | 'cached' | 'failed' | 'skipped' | 'cancelled';

const FINAL: ReadonlySet<UnitState> = new Set([
  'built',
  'cached',
  'failed',
  'skipped',
  'cancelled',
]);

export type RunEvent =
  | { type: 'cached'; unit: string; worker: string }
  | { type: 'started'; unit: string; worker: string; attempt: number }
  | { type: 'built'; unit: string; worker: string; durationMs: number }
  | { type: 'failed'; unit: string; worker: string | null; reason: string; tail?: string }
  | { type: 'skipped'; unit: string; reason: string }
  | { type: 'retry'; unit: string; worker: string; reason: string }
  | { type: 'worker-lost'; worker: string; reason: string }
  | { type: 'worker-joined'; worker: string }
  | { type: 'warning'; message: string }
  | { type: 'exported'; unit: string; worker: string; path: string; dest: string }
  | { type: 'pushed'; unit: string; worker: string; ref: string; digest: string }
  | { type: 'waiting-external'; units: string[]; waitMs: number };

export interface RunOptions {
  config: Config;
  /** Config path as the user wrote it (for messages and the report). */
  configPath: string;
  /** Cache key of every unit (unit id -> `sha256:...`). */
  keys: Map<string, string>;
  history?: History;
  /** unit id -> worker id from the previous run: each unit first tries its previous worker. */
  previous?: Record<string, string>;
  failFast?: boolean;
  /** Export `export: true` units into this directory (their root-relative paths). */
  exportTo?: string;
  onEvent?: (e: RunEvent) => void;
  /** Live output of every job (opens an output stream per job when set). */
  /** Output of attempt `attempt` of `unit` (as numbered in its 'started' event), live. */
  onOutput?: (unit: string, chunk: OutputChunkMsg, attempt: number) => void;
  /** The output stream of attempt `attempt` of `unit` (followed for `onOutput`) is over. */
  onOutputEnd?: (unit: string, attempt: number) => void;
  /** Fail the run when no worker is available for this long (default 60 s). */
  noWorkerTimeoutMs?: number;
  /**
   * Called when a worker is lost, before its jobs are placed again (`dist-build run` ends a lost
   * local worker's commands here: its workers share one work tree).
   */
  onWorkerLost?: (workerId: string, why: string) => void;
  /** Bytes of a failed job's log tail to fetch for the failure message (default 4 KiB). */
  tailBytes?: number;
  /**
   * Root-relative paths left out of every unit's inputs when `keys` were computed (`--out`):
   * sent with each job, for the worker's own check of its key.
   */
  excludeInputs?: string[];
  /** Run only these units (ids; every unit they need must be among them). Default: all. */
  only?: ReadonlySet<string>;
  /**
   * Units (among `only`) this run does not build: another run builds them (another runner's
   * share of a plan, `run --share`). They are taken from the cache once there, asked for every
   * `externalPollMs` (default 5 s); one not there within `externalWaitMs` (default 1 h) fails,
   * and what needs it is skipped. Their own needs are not this run's business.
   */
  external?: ReadonlySet<string>;
  externalWaitMs?: number;
  externalPollMs?: number;
}

interface UnitRun {
  unit: Unit;
  inv: InvocationConfig;
  digest: string;
  cacheKey: string;
  duration: number;
  priority: number;
  needs: UnitRun[];
  dependents: UnitRun[];
  state: UnitState;
  /** uuid of the member placement assigned it to. */
  owner?: string;
  job?: { id: string; uuid: string; workerId: string };
  /** performance.now() when the last StartJob was sent and when its result arrived. */
  sentAt?: number;
  reportedAt?: number;
  attempts: number;
  /** Times its outputs were lost and it was built again (at most once). */
  rebuilds: number;
  /** Worker ids it must not go to again (they lost it). */
  excluded: Set<string>;
  outputs: OutputEntry[];
  holders: Set<string>;
  builtBy?: string;
  workerId?: string;
  startedAt?: number;
  endedAt?: number;
  durationMs?: number;
  /** The command's own time on the worker (spawn to exit), when the worker reports it. */
  commandMs?: number;
  exitCode?: number | null;
  reason?: string;
}

export class SchedulerError extends Error {
  override name = 'SchedulerError';
}

/** Placements after workers join are at least this far apart (see `onJoined`). */
const REPLAN_GAP_MS = 100;

/** Inserts `u` into `list` (highest priority first) after the units of its priority. */
function insertByPriority(list: UnitRun[], u: UnitRun): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.priority >= u.priority) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, u);
}

export class Run {
  readonly config: string;
  private readonly units: UnitRun[];
  /** Workers that left during the run, and why (for the report). */
  private readonly departed = new Map<
    string,
    { annotations: Record<string, string>; why: string }
  >();
  private readonly byId: Map<string, UnitRun>;
  private readonly runId = randomBytes(4).toString('hex');
  private readonly inflight = new Map<string, number>();
  /** Waiting units whose needs are all built or cached. */
  private readonly readyUnits = new Set<UnitRun>();
  /**
   * `readyUnits` by priority, highest first, and the same per owner: sorted once, kept in order
   * as units become ready, rebuilt when owners change or most entries are spent (sorting on
   * every pump made a run of N units cost N sorts). Units that left `readyUnits` stay in the
   * lists until then and are skipped.
   */
  private queues: { all: UnitRun[]; byOwner: Map<string, UnitRun[]> } | undefined;
  /** Units in a final state (the run is done when all are). */
  private finalUnits = 0;
  /** Members that refused or failed a StartJob: skipped until they are heard from again. */
  private readonly cooling = new Map<string, number>();
  private readonly events: { at: number; message: string }[] = [];
  private readonly startedAt = Date.now();
  /** Unit id -> worker id. No prototype: a unit named "constructor" is not assigned already. */
  private assignments: Record<string, string> = Object.create(null) as Record<string, string>;
  private finished!: () => void;
  /** Ends `awaitExternal`'s wait before its next poll. */
  private wakeExternal: (() => void) | undefined;
  private done: Promise<void>;
  private cancelled = false;
  /** Why the run was cancelled (see `cancel`). */
  private cancelReason = '';
  /** The push in flight (`pushAll`): cancelling the run cancels it. */
  private pushing: grpc.ClientUnaryCall | undefined;
  private fatal: Error | undefined;
  private noWorkerTimer: NodeJS.Timeout | undefined;
  private pumping = false;
  private dispatches = 0;
  /** No dispatch before the cache check and the first placement: events only record state. */
  private dispatching = false;
  private pumpAgain = false;
  /** When `replan` last ran, and the timer of a replan held back (see `onJoined`). */
  private lastReplanAt = 0;
  private replanTimer: NodeJS.Timeout | undefined;
  private readonly listeners: [string, (...args: never[]) => void][] = [];
  /** Every invocation's outputs (sent with each job, for the worker's key check). */
  private readonly excludedOutputs: string[];

  constructor(
    private readonly master: Master,
    private readonly opts: RunOptions,
  ) {
    this.config = opts.configPath;
    this.excludedOutputs = declaredOutputs(opts.config);
    const invs = new Map(opts.config.invocations.map((i) => [i.name, i]));
    const units = expandUnits(opts.config).filter((u) => !opts.only || opts.only.has(u.id));
    const items = units.map((u) => ({
      id: u.id,
      duration: expectedDuration(opts.config, u, opts.history),
      needs: u.needs,
    }));
    const graph = needsGraph(items);
    const tails = tailLengths(items, graph);
    this.units = units.map((u, i) => {
      const inv = invs.get(u.invocation)!;
      const cacheKey = opts.keys.get(u.id);
      if (!cacheKey) throw new SchedulerError(`no cache key for unit ${u.id}`);
      return {
        unit: u,
        inv,
        digest: definitionDigest(inv),
        cacheKey,
        duration: items[i]!.duration,
        priority: tails[i]!,
        needs: [],
        dependents: [],
        state: 'waiting',
        attempts: 0,
        rebuilds: 0,
        excluded: new Set(),
        outputs: [],
        holders: new Set(),
      };
    });
    this.byId = new Map(this.units.map((u) => [u.unit.id, u]));
    for (const u of this.units) {
      if (this.isExternal(u)) continue;
      for (const n of new Set(u.unit.needs)) {
        const dep = this.byId.get(n)!;
        u.needs.push(dep);
        dep.dependents.push(u);
      }
    }
    for (const u of this.units) if (this.ready(u)) this.addReady(u);
    this.done = new Promise((resolve) => (this.finished = resolve));
  }

  /** Built by another run (see `RunOptions.external`): never placed or dispatched here. */
  private isExternal(u: UnitRun): boolean {
    return this.opts.external?.has(u.unit.id) ?? false;
  }

  /**
   * Asks the workers' stores for the external units still waiting until all are there (cached)
   * or `externalWaitMs` is up (those fail); resolves then.
   */
  private async awaitExternal(): Promise<void> {
    const waiting = () => this.units.filter((u) => this.isExternal(u) && u.state === 'waiting');
    if (!waiting().length) return;
    const waitMs = this.opts.externalWaitMs ?? 3_600_000;
    const deadline = Date.now() + waitMs;
    // A short wait is asked about a few times in it.
    const pollMs = Math.min(this.opts.externalPollMs ?? 5000, Math.max(200, waitMs / 4));
    const names = waiting().map((u) => u.unit.id);
    this.note(`waiting for ${names.join(', ')} from the other runners' shares`);
    this.opts.onEvent?.({ type: 'waiting-external', units: names, waitMs });
    while (waiting().length && !this.cancelled && !this.fatal) {
      if (Date.now() >= deadline) {
        for (const u of waiting())
          this.fail(
            u,
            `not in the cache within ${+(waitMs / 1000).toFixed(3)}s: another runner's share of the plan builds it (did its job fail, or does it use other cache stores?)`,
          );
        break;
      }
      await new Promise<void>((r) => {
        this.wakeExternal = r;
        setTimeout(r, pollMs).unref();
      });
      if (this.cancelled || this.fatal) break;
      try {
        await this.checkCache(this.master.live());
      } catch (err) {
        this.note(`cache query for the other shares' units failed: ${(err as Error).message}`);
      }
      this.pump();
      this.checkDone();
    }
    this.checkDone();
  }

  // --- RunView (status, logs) -------------------------------------------------------------------

  unitStatus(): UnitStatus[] {
    return this.units.map((u) => ({
      unit: u.unit.id,
      // Another share's unit is not ready here: it waits for that share to put it in the cache.
      state: u.state === 'waiting' && this.ready(u) && !this.isExternal(u) ? 'ready' : u.state,
      worker: u.job?.workerId ?? u.workerId ?? this.memberId(u.owner) ?? '',
      attempts: u.attempts,
    }));
  }

  jobOf(name: string): { uuid: string; jobId: string } | undefined {
    const u = this.byId.get(name) ?? this.units.find((x) => x.inv.name === name);
    return u?.job ? { uuid: u.job.uuid, jobId: u.job.id } : undefined;
  }

  // --- the run ----------------------------------------------------------------------------------

  async execute(): Promise<RunReport> {
    const m = this.master;
    const view: RunView = {
      config: this.config,
      units: () => this.unitStatus(),
      jobOf: (n) => this.jobOf(n),
    };
    m.run = view;
    this.listen('joined', (member: MemberState, info: { running: RunningJob[] }) =>
      this.onJoined(member, info.running),
    );
    this.listen('left', (member: MemberState, why: string) => this.onLeft(member, why));
    this.listen('report', (member: MemberState | undefined, report: JobReport) =>
      this.onReport(member, report),
    );
    try {
      // Reports from before this run (a worker back after a master restart, whose job ended
      // while no master was there) are this run's results when their keys match.
      for (const { m: member, r } of m.takeUnclaimedReports()) this.onReport(member, r);
      await this.checkCache(m.live());
      for (const member of m.live()) this.adopt(member, member.running);
      this.dispatching = true;
      this.replan(this.opts.previous);
      this.pump();
      this.checkDone();
      const external = this.awaitExternal();
      await this.done;
      await external;
      if (this.fatal) throw this.fatal;
      let { exports, lost } = await this.exportAll();
      // An artifact whose bytes turned out corrupt (or gone) on every holder is built again, once.
      if (lost.length && !this.cancelled) {
        this.done = new Promise((resolve) => (this.finished = resolve));
        for (const { unit, why, rebuild } of lost) {
          if (rebuild && this.rebuild(unit, `cannot export it: ${why}`)) continue;
          // Its command succeeded ("failed (exit 0)" would say otherwise): the export failed.
          unit.exitCode = undefined;
          this.fail(unit, `cannot export: ${why}`);
        }
        this.replan();
        this.pump();
        this.checkDone();
        await this.done;
        if (this.fatal) throw this.fatal;
        ({ exports, lost } = await this.exportAll(exports));
      }
      if (lost.length && this.cancelled) {
        // Interrupted (a Ctrl-C on a master whose worker holding an artifact is gone): nothing is
        // built again, and that is the run's status, not an error that hid it (exit 1, no
        // report). An earlier run's copy goes, as for any invocation the run cancelled.
        for (const { unit, why } of lost) {
          this.finish(unit, 'cancelled', `${this.cancelReason}; not exported: ${why}`);
          await this.removeEarlierExport(unit);
        }
        lost = [];
      }
      if (lost.length) {
        throw new SchedulerError(`cannot export ${lost[0]!.unit.unit.id}: ${lost[0]!.why}`);
      }
      return this.report(exports, await this.pushAll());
    } finally {
      for (const [ev, fn] of this.listeners) m.off(ev as 'joined', fn as never);
      if (this.noWorkerTimer) clearTimeout(this.noWorkerTimer);
      if (this.replanTimer) clearTimeout(this.replanTimer);
      if (m.run === view) m.run = undefined;
    }
  }

  /** Cancels the run: waiting units are cancelled, running jobs stopped. */
  cancel(reason = 'cancelled'): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.cancelReason = reason;
    this.note(`run cancelled: ${reason}`);
    // A push can take long (a big image, a slow registry): it is stopped, not waited for.
    this.pushing?.cancel();
    for (const u of this.units) {
      if (u.state === 'waiting') this.finish(u, 'cancelled', reason);
      else if (u.state === 'running' && u.job) {
        const member = this.master.member(u.job.uuid);
        if (member) {
          void this.master
            .callWorker(member, (c) => c.StopJob, {
              worker_uuid: member.uuid,
              job_id: u.job.id,
              reason,
            })
            .catch(() => undefined);
        }
        this.finish(u, 'cancelled', reason);
      }
    }
    this.checkDone();
  }

  /**
   * Where each unit went (unit id -> worker id), for the next run's `previous`: the worker that
   * built it, runs it, or was to run it, or for a cached unit the holder it was taken from.
   */
  plan(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const u of this.units) {
      const w =
        u.builtBy ??
        u.job?.workerId ??
        this.assignments[u.unit.id] ??
        (u.state === 'cached' ? u.workerId : undefined);
      if (w) out[u.unit.id] = w;
    }
    return out;
  }

  /**
   * Per built unit: milliseconds from sending StartJob to receiving its result, and the command's
   * own duration as the worker measured it. The difference is the coordination overhead.
   */
  timings(): { unit: string; roundTripMs: number; commandMs: number }[] {
    return this.units
      .filter((u) => u.state === 'built' && u.sentAt !== undefined && u.reportedAt !== undefined)
      .map((u) => ({
        unit: u.unit.id,
        roundTripMs: u.reportedAt! - u.sentAt!,
        commandMs: u.commandMs ?? u.durationMs ?? 0,
      }));
  }

  private listen(ev: string, fn: (...args: never[]) => void): void {
    this.master.on(ev as 'joined', fn as never);
    this.listeners.push([ev, fn]);
  }

  private note(message: string): void {
    this.events.push({ at: Date.now(), message });
  }

  /** A note the user is shown too. */
  private warn(message: string): void {
    this.note(`warning: ${message}`);
    this.opts.onEvent?.({ type: 'warning', message });
  }

  private memberId(uuid: string | undefined): string | undefined {
    return uuid ? this.master.member(uuid)?.id : undefined;
  }

  private async checkCache(members: MemberState[]): Promise<void> {
    const pending = this.units.filter((u) => u.state === 'waiting');
    if (!pending.length || !members.length) return;
    const keys = [...new Set(pending.map((u) => u.cacheKey))];
    const answers = await Promise.all(
      members.map(async (member) => {
        const found: HasCacheResponse['results'] = [];
        for (let i = 0; i < keys.length; i += 2000) {
          const res = await this.master
            .callWorker<{ worker_uuid: string; cache_keys: string[] }, HasCacheResponse>(
              member,
              (c) => c.HasCache,
              { worker_uuid: member.uuid, cache_keys: keys.slice(i, i + 2000) },
              CACHE_QUERY_TIMEOUT_MS,
            )
            .catch((err: grpc.ServiceError) => {
              // Its results count as misses (rebuilt, not wrong): said, since it costs time.
              this.warn(`${unreachable(member, err)}; what it holds is built again`);
              return undefined;
            });
          if (res) found.push(...res.results);
        }
        return { member, found };
      }),
    );
    const byKey = new Map<string, { outputs: OutputEntry[]; holders: MemberState[]; by: string }>();
    for (const { member, found } of answers) {
      for (const r of found) {
        const e = byKey.get(r.cache_key) ?? {
          outputs: r.outputs as OutputEntry[],
          holders: [],
          by: r.worker,
        };
        e.holders.push(member);
        byKey.set(r.cache_key, e);
      }
    }
    for (const u of pending) {
      const hit = byKey.get(u.cacheKey);
      if (!hit) continue;
      if (!holdsDeclaredOutputs(hit.outputs, unitOutputs(u.inv, u.unit.id))) {
        // A result must hold exactly the declared outputs: anything else is not this result.
        this.warn(
          `the cached result of ${u.unit.id} on ${hit.by} holds other outputs than declared: built again`,
        );
        continue;
      }
      u.outputs = hit.outputs;
      for (const h of hit.holders) u.holders.add(h.uuid);
      // The worker the previous run placed it on, if it holds it (so the plan the next run starts
      // from stays the same); else the first holder.
      const previous = this.opts.previous?.[u.unit.id];
      u.workerId = (hit.holders.find((h) => h.id === previous) ?? hit.holders[0]!).id;
      this.finish(u, 'cached');
      this.opts.onEvent?.({ type: 'cached', unit: u.unit.id, worker: u.workerId });
    }
  }

  /** Jobs a (re-)registering worker still runs become this run's jobs when their keys match. */
  private adopt(member: MemberState, running: RunningJob[]): void {
    for (const r of running) {
      const u = this.byId.get(r.unit);
      if (!u || u.cacheKey !== r.cache_key) {
        // A job of an earlier master's run that is none of this run's (its config or inputs
        // have changed since): left running, it held the worker's slot while this run's jobs
        // were refused as busy, and wrote into outputs this run builds.
        const why = u
          ? `a job of an earlier run with another cache key (its definition or inputs changed)`
          : `a job of an earlier run, not in this run's config`;
        this.warn(`stopping ${r.unit} on ${member.id}: ${why}`);
        void this.master
          .callWorker(member, (c) => c.StopJob, {
            worker_uuid: member.uuid,
            job_id: r.job_id,
            reason: `not part of the master's run (${why})`,
          })
          .catch(() => undefined);
        continue;
      }
      if (u.state !== 'waiting') continue;
      this.setState(u, 'running');
      u.attempts = Math.max(1, u.attempts);
      u.job = { id: r.job_id, uuid: member.uuid, workerId: member.id };
      u.startedAt = r.started_at || Date.now();
      this.occupy(member.uuid);
      this.note(`adopted ${u.unit.id}, still running on ${member.id}`);
    }
  }

  private workerInfos(): WorkerInfo[] {
    return this.master.live().map((m) => this.info(m));
  }

  /** Places every unit that has not started on the live members. */
  private replan(previous?: Record<string, string>): void {
    if (!this.dispatching) return;
    this.lastReplanAt = Date.now();
    const members = this.master.live();
    const waiting = this.units.filter((u) => u.state === 'waiting' && !this.isExternal(u));
    if (!waiting.length) return;
    if (!members.length) {
      for (const u of waiting) u.owner = undefined;
      this.queues = undefined;
      this.armNoWorkerTimer();
      return;
    }
    if (this.noWorkerTimer) {
      clearTimeout(this.noWorkerTimer);
      this.noWorkerTimer = undefined;
    }
    const ids = new Set(waiting.map((u) => u.unit.id));
    const items: PlacementItem[] = waiting.map((u) => ({
      id: u.unit.id,
      affinityKey: u.unit.affinityKey,
      duration: u.duration,
      needs: u.unit.needs.filter((n) => ids.has(n)),
      labels: u.unit.labels,
      ...(u.unit.platform ? { platform: u.unit.platform } : {}),
      ...(u.unit.executor ? { executor: u.unit.executor } : {}),
    }));
    const prev: Record<string, string> = { ...previous, ...this.assignments };
    // A unit goes back to a worker that lost it only if nothing else can take it.
    for (const u of waiting)
      if (prev[u.unit.id] && u.excluded.has(prev[u.unit.id]!)) delete prev[u.unit.id];
    let result;
    try {
      result = place({
        items,
        workers: this.workerInfos(),
        balance: this.opts.config.placement.balance,
        previous: prev,
      });
    } catch (err) {
      this.fatal = err as Error;
      this.cancel((err as Error).message);
      return;
    }
    const byId = new Map(members.map((m) => [m.id, m]));
    for (const u of waiting) {
      const wid = result.assignments[u.unit.id]!;
      let owner = byId.get(wid);
      if (owner && u.excluded.has(owner.id)) {
        owner =
          members.find((m) => !u.excluded.has(m.id) && eligible(u.unit, this.info(m))) ?? owner;
      }
      u.owner = owner?.uuid;
      if (owner) this.assignments[u.unit.id] = owner.id;
    }
    this.queues = undefined;
  }

  /** Said with a worker's key problems: that it runs another release than this master. */
  private otherRelease(m: MemberState | undefined): string {
    const release = m && otherRelease(m.member);
    return release ? ` (${m.id} runs ${release}, the master ${VERSION})` : '';
  }

  private info(m: MemberState): WorkerInfo {
    return { id: m.id, annotations: m.member.annotations };
  }

  private armNoWorkerTimer(): void {
    if (this.noWorkerTimer) return;
    const ms = this.opts.noWorkerTimeoutMs ?? 60_000;
    this.noWorkerTimer = setTimeout(() => {
      this.noWorkerTimer = undefined;
      if (this.master.live().length) return;
      // The rest is cancelled with the reason: the run still ends with its table and report.
      this.cancel(`no worker available for ${Math.round(ms / 1000)}s`);
    }, ms);
  }

  private ready(u: UnitRun): boolean {
    return u.needs.every((n) => n.state === 'built' || n.state === 'cached');
  }

  private freeSlots(m: MemberState): number {
    const slots = Math.max(1, m.member.stats?.slots ?? 1);
    return slots - (this.inflight.get(m.uuid) ?? 0);
  }

  /** Starts every ready unit that has a free worker. */
  private pump(): void {
    if (!this.dispatching) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.pumpOnce();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private pumpOnce(): void {
    if (this.cancelled || !this.readyUnits.size) return;
    const now = Date.now();
    const available = this.master
      .live()
      .filter((m) => (this.cooling.get(m.uuid) ?? 0) <= now && this.freeSlots(m) > 0);
    if (!available.length) return;
    const { all: ready, byOwner } = this.readyQueues();
    const isReady = (u: UnitRun) => u.state === 'waiting' && this.readyUnits.has(u);
    // A worker that lost or failed a unit takes it again only when no other one can (the one
    // worker of a pool, restarted after it was killed, under its id).
    const shuns = (u: UnitRun, m: MemberState) => u.excluded.has(m.id) && this.anotherTaker(u);
    // Own queue first.
    for (const m of available) {
      let free = this.freeSlots(m);
      const own = byOwner.get(m.uuid);
      if (!own) continue;
      for (let i = 0; i < own.length && free > 0; i++) {
        const u = own[i]!;
        if (!isReady(u) || shuns(u, m)) continue;
        free--;
        this.dispatch(u, m);
      }
      // Drop what was dispatched (here or elsewhere) from the front.
      let spent = 0;
      while (spent < own.length && !isReady(own[spent]!)) spent++;
      if (spent > 0) own.splice(0, spent);
    }
    // Then idle workers help: a ready unit whose owner is busy (or gone) goes to an idle,
    // eligible worker rather than wait.
    for (const m of available) {
      let free = this.freeSlots(m);
      if (free <= 0) continue;
      for (const u of ready) {
        if (free <= 0) break;
        if (!isReady(u) || shuns(u, m)) continue;
        const owner = u.owner ? this.master.member(u.owner) : undefined;
        if (owner && this.freeSlots(owner) > 0 && (this.cooling.get(owner.uuid) ?? 0) <= now)
          continue;
        if (!eligible(u.unit, this.info(m))) continue;
        free--;
        this.dispatch(u, m);
      }
    }
  }

  /** The priority queues of ready units (see `queues`), rebuilt when stale or mostly spent. */
  private readyQueues(): { all: UnitRun[]; byOwner: Map<string, UnitRun[]> } {
    if (this.queues && this.queues.all.length <= 2 * this.readyUnits.size + 64) return this.queues;
    const q = {
      all: [...this.readyUnits].sort((a, b) => b.priority - a.priority),
      byOwner: new Map<string, UnitRun[]>(),
    };
    for (const u of q.all) this.ownerQueue(q, u)?.push(u);
    return (this.queues = q);
  }

  /** The queue of `u`'s owner in `q` (made on first use); none when it has no live owner. */
  private ownerQueue(q: { byOwner: Map<string, UnitRun[]> }, u: UnitRun): UnitRun[] | undefined {
    if (!u.owner || !this.master.member(u.owner)) return undefined;
    let list = q.byOwner.get(u.owner);
    if (!list) q.byOwner.set(u.owner, (list = []));
    return list;
  }

  /** Unique per dispatch (a unit may be dispatched again after a refusal or a rebuild). */
  private jobId(u: UnitRun): string {
    return `${u.unit.id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80)}.${this.runId}.${++this.dispatches}`;
  }

  private depsOf(u: UnitRun): DependencyMsg[] {
    return u.needs.map((d) => ({
      unit: d.unit.id,
      cache_key: d.cacheKey,
      outputs: d.outputs,
      holders: [...d.holders]
        .map((uuid) => this.master.member(uuid))
        .filter((m): m is MemberState => m !== undefined)
        .map((m) => ({ worker_id: m.id, connections: m.member.connections })),
    }));
  }

  private dispatch(u: UnitRun, m: MemberState): void {
    u.attempts++;
    this.setState(u, 'running');
    const job = { id: this.jobId(u), uuid: m.uuid, workerId: m.id };
    u.job = job;
    u.startedAt = Date.now();
    this.occupy(m.uuid);
    u.sentAt = performance.now();
    this.opts.onEvent?.({ type: 'started', unit: u.unit.id, worker: m.id, attempt: u.attempts });
    this.master
      .startJob(m, {
        worker_uuid: m.uuid,
        job_id: job.id,
        unit: u.unit.id,
        invocation: u.inv.name,
        definition_digest: u.digest,
        cache_key: u.cacheKey,
        deps: this.depsOf(u),
        exclude_inputs: this.opts.excludeInputs ?? [],
        excluded_outputs: this.excludedOutputs,
        ...this.previousKey(u),
      })
      .then(
        (res) => {
          if (u.job !== job || u.state !== 'running') return;
          if (res.accepted) {
            if (this.opts.onOutput) this.follow(u, m, job.id);
            return;
          }
          const mismatch = /differs from this worker's config|not in this worker's config/.test(
            res.reason,
          );
          if (mismatch) {
            // That worker will never run it (its config says otherwise: the user's to fix, so
            // said loudly); another whose config matches may.
            u.excluded.add(m.id);
            this.warn(`worker ${m.id} refused ${u.unit.id}: ${res.reason}`);
          }
          if (/docker build/.test(res.reason) || (mismatch && !this.anotherTaker(u))) {
            this.release(u);
            this.fail(
              u,
              `worker ${m.id} refused it: ${res.reason}${mismatch ? '; no other worker has its definition' : ''}`,
            );
            // The rest goes on (it waited for this worker's slot), and the run may be over.
            this.pump();
            this.checkDone();
            return;
          }
          if (mismatch) {
            this.unstart(u);
            this.replan();
            this.pump();
            return;
          }
          this.undo(u, m, `refused by ${m.id}: ${res.reason}`);
        },
        (err: grpc.ServiceError) => {
          if (u.job !== job || u.state !== 'running') return;
          this.undo(u, m, `StartJob on ${m.id} failed: ${err.details ?? err.message}`);
        },
      );
  }

  /** The unit's last result's key (see `StartJobRequest.previous_cache_key`), for docker builds. */
  private previousKey(u: UnitRun): { previous_cache_key?: string } {
    const key = u.inv.docker ? this.opts.history?.keys?.[u.unit.id] : undefined;
    return key && key !== u.cacheKey ? { previous_cache_key: key } : {};
  }

  /** A StartJob that did not take: the unit waits again; the member cools off briefly. */
  private undo(u: UnitRun, m: MemberState, why: string): void {
    this.unstart(u);
    this.note(why);
    this.cooling.set(m.uuid, Date.now() + 200);
    setTimeout(() => this.pump(), 210).unref();
    this.pump();
  }

  /** A dispatch that did not take: its slot is free, the attempt not counted, the unit waits. */
  private unstart(u: UnitRun): void {
    this.release(u);
    u.attempts--;
    this.setState(u, 'waiting');
    u.job = undefined;
  }

  /** Whether a live worker that has not failed or refused `u` (nor is `except`) may take it. */
  private anotherTaker(u: UnitRun, except?: string): boolean {
    return this.master
      .live()
      .some((m) => m.id !== except && !u.excluded.has(m.id) && eligible(u.unit, this.info(m)));
  }

  private occupy(uuid: string): void {
    this.inflight.set(uuid, (this.inflight.get(uuid) ?? 0) + 1);
  }

  private release(u: UnitRun): void {
    if (!u.job) return;
    const n = (this.inflight.get(u.job.uuid) ?? 1) - 1;
    if (n > 0) this.inflight.set(u.job.uuid, n);
    else this.inflight.delete(u.job.uuid);
  }

  private follow(u: UnitRun, m: MemberState, jobId: string): void {
    const stream = m.client.StreamOutput(
      { worker_uuid: m.uuid, job_id: jobId, from: 0, follow: true },
      this.master.metadata(),
    );
    const attempt = u.attempts;
    stream.on('data', (chunk: OutputChunkMsg) => this.opts.onOutput?.(u.unit.id, chunk, attempt));
    // The end of the data ('end', after the last 'data'), not the call's 'status', which can come
    // while received messages are still queued for 'data'; or an error, after which none come.
    let over = false;
    const ended = () => {
      if (over) return;
      over = true;
      this.opts.onOutputEnd?.(u.unit.id, attempt);
    };
    stream.on('end', ended);
    stream.on('error', ended);
  }

  private onJoined(member: MemberState, running: RunningJob[]): void {
    this.opts.onEvent?.({ type: 'worker-joined', worker: member.id });
    this.note(`worker ${member.id} joined`);
    this.adopt(member, running);
    // Jobs reach it on its own heartbeat stream, but cache queries, logs and exports dial its
    // Worker service: say so now if that cannot be reached, not as silent misses later.
    void this.master
      .callWorker<{ worker_uuid: string; cache_keys: string[] }, HasCacheResponse>(
        member,
        (c) => c.HasCache,
        { worker_uuid: member.uuid, cache_keys: [] },
        CACHE_QUERY_TIMEOUT_MS,
      )
      .catch((err: grpc.ServiceError) => this.warn(unreachable(member, err)));
    // Workers tend to join in bursts (a matrix starting, a pool after a master restart): one
    // placement per REPLAN_GAP_MS at most, so 256 joins do not cost 256 placements of every
    // waiting unit. Until then the newcomer helps with units whose owners are busy.
    const wait = this.lastReplanAt + REPLAN_GAP_MS - Date.now();
    if (wait <= 0 && !this.replanTimer) this.replan();
    else
      this.replanTimer ??= setTimeout(() => {
        this.replanTimer = undefined;
        this.replan();
        this.pump();
      }, wait);
    this.pump();
  }

  private onLeft(member: MemberState, why: string): void {
    this.opts.onWorkerLost?.(member.id, why);
    this.departed.set(member.id, { annotations: member.member.annotations, why });
    this.cooling.delete(member.uuid);
    this.inflight.delete(member.uuid);
    this.opts.onEvent?.({ type: 'worker-lost', worker: member.id, reason: why });
    this.note(`worker ${member.id} left: ${why}`);
    for (const u of this.units) {
      u.holders.delete(member.uuid);
      if (u.state === 'running' && u.job?.uuid === member.uuid) {
        u.job = undefined;
        this.retryOrFail(u, member.id, `its worker ${member.id} left (${why})`);
      }
    }
    this.failStranded();
    this.replan();
    this.pump();
    this.checkDone();
  }

  /**
   * Fails the waiting units that only workers now gone could take: every live worker failed or
   * refused them (with none live, the no-worker timer decides).
   */
  private failStranded(): void {
    if (!this.master.live().length) return;
    for (const u of this.units) {
      if (u.state !== 'waiting' || u.excluded.size === 0 || this.anotherTaker(u)) continue;
      this.fail(u, `no worker left that can take it (${[...u.excluded].join(', ')} could not)`);
    }
  }

  private retryOrFail(u: UnitRun, workerId: string, why: string): void {
    u.excluded.add(workerId);
    if (u.attempts >= 2) {
      this.fail(u, `${why}; it already ran twice`);
      return;
    }
    // A worker that is still here but failed it (it could not save the outputs, say), and no
    // other worker may take it: waiting would be for ever.
    if (this.master.live().some((m) => m.id === workerId) && !this.anotherTaker(u)) {
      this.fail(u, `${why}; no other worker can take it`);
      return;
    }
    this.setState(u, 'waiting');
    this.note(`retrying ${u.unit.id} elsewhere: ${why}`);
    this.opts.onEvent?.({ type: 'retry', unit: u.unit.id, worker: workerId, reason: why });
  }

  private onReport(member: MemberState | undefined, r: JobReport): void {
    const u = this.byId.get(r.unit);
    if (!u || u.cacheKey !== r.cache_key) return;
    const current = u.job?.id === r.job_id;
    if (!current) {
      // A result from a job this run did not start (master restarted) or gave up on: a success
      // is still a result, as long as the unit has not finished or started again elsewhere; so
      // is the command's own failure (its exit code), which running it again would not change.
      const ownFailure = r.state === 'failed' && !r.worker_fault && r.has_exit_code;
      if ((r.state !== 'succeeded' && !ownFailure) || u.state !== 'waiting') return;
      if (ownFailure) {
        u.attempts = Math.max(1, u.attempts);
        this.setState(u, 'running');
      }
    }
    if (current) this.release(u);
    u.reportedAt = performance.now();
    const workerId = member?.id ?? u.job?.workerId ?? '?';
    if (member) this.cooling.delete(member.uuid);
    u.startedAt = r.started_at || u.startedAt;
    u.endedAt = r.ended_at || Date.now();
    u.durationMs = r.duration_ms;
    u.commandMs = r.command_ms || undefined;
    u.exitCode = r.has_exit_code ? r.exit_code : null;
    if (r.lost_deps?.length && !this.cancelled && u.state === 'running') {
      // Its inputs were lost (a corrupt or vanished blob): build them again, then this one.
      u.job = undefined;
      u.attempts = Math.max(0, u.attempts - 1);
      const deps = r.lost_deps.map((id) => this.byId.get(id)).filter((d) => d !== undefined);
      if (
        deps.length &&
        deps.every((d) => this.rebuild(d, `${u.unit.id} could not get its outputs: ${r.reason}`))
      ) {
        this.setState(u, 'waiting');
        this.opts.onEvent?.({ type: 'retry', unit: u.unit.id, worker: workerId, reason: r.reason });
        this.replan();
      } else {
        this.fail(u, r.reason);
      }
    } else if (r.state === 'rejected' && current && !this.cancelled) {
      // That worker will not run it: its tree gives the unit another key (a checkout at another
      // commit). The user's to fix, so said loudly; another worker may run it.
      u.job = undefined;
      u.attempts = Math.max(0, u.attempts - 1);
      u.excluded.add(workerId);
      this.warn(`worker ${workerId} refused ${u.unit.id}: ${r.reason}${this.otherRelease(member)}`);
      if (this.anotherTaker(u)) {
        this.setState(u, 'waiting');
        this.replan();
      } else {
        this.fail(u, `worker ${workerId} refused it: ${r.reason}; no other worker can take it`);
      }
    } else if (r.state === 'succeeded' && r.from_cache) {
      // The worker found it in its stores after all (the cache query could not settle it).
      u.outputs = r.outputs as OutputEntry[];
      if (member) u.holders.add(member.uuid);
      u.workerId = workerId;
      this.finish(u, 'cached');
      this.opts.onEvent?.({ type: 'cached', unit: u.unit.id, worker: workerId });
    } else if (r.state === 'succeeded') {
      // A worker whose tree gives the unit another key built it but kept it out of the cache.
      if (r.reason.startsWith('not cached: '))
        this.warn(
          `worker ${workerId} built ${u.unit.id}, ${r.reason}${/ give cache key /.test(r.reason) ? this.otherRelease(member) : ''}`,
        );
      u.outputs = r.outputs as OutputEntry[];
      if (member) u.holders.add(member.uuid);
      u.builtBy = workerId;
      u.workerId = workerId;
      u.attempts = Math.max(1, u.attempts);
      this.finish(u, 'built');
      this.opts.onEvent?.({
        type: 'built',
        unit: u.unit.id,
        worker: workerId,
        durationMs: r.duration_ms,
      });
    } else if (r.worker_fault && !this.cancelled) {
      u.job = undefined;
      this.retryOrFail(u, workerId, `${workerId}: ${r.reason}`);
      this.replan();
    } else if (u.state === 'running') {
      u.workerId = workerId;
      const job = u.job;
      void this.failWithTail(u, r, job ? this.master.member(job.uuid) : undefined);
      return;
    }
    this.pump();
    this.checkDone();
  }

  private async failWithTail(u: UnitRun, r: JobReport, m: MemberState | undefined): Promise<void> {
    let tail: string | undefined;
    const bytes = this.opts.tailBytes ?? 4096;
    if (m && u.job && r.output_bytes > 0) {
      const parts: Buffer[] = [];
      try {
        const stream = m.client.StreamOutput(
          {
            worker_uuid: m.uuid,
            job_id: u.job.id,
            from: Math.max(0, r.output_bytes - bytes),
            follow: false,
          },
          this.master.metadata(),
          { deadline: Date.now() + 5000 },
        );
        for await (const c of stream as AsyncIterable<OutputChunkMsg>) parts.push(c.data);
        tail = Buffer.concat(parts).toString('utf8');
      } catch {
        // no tail then
      }
    }
    if (u.state !== 'running') return;
    this.fail(u, r.reason, tail);
    this.pump();
    this.checkDone();
  }

  private fail(u: UnitRun, reason: string, tail?: string): void {
    this.finish(u, 'failed', reason);
    this.opts.onEvent?.({
      type: 'failed',
      unit: u.unit.id,
      worker: u.workerId ?? u.job?.workerId ?? null,
      reason,
      ...(tail !== undefined ? { tail } : {}),
    });
    const skip = (d: UnitRun, because: UnitRun): void => {
      if (d.state !== 'waiting') return;
      const why = `needs ${because.unit.id}, which ${because.state === 'failed' ? 'failed' : 'was skipped'}`;
      this.finish(d, 'skipped', why);
      this.opts.onEvent?.({ type: 'skipped', unit: d.unit.id, reason: why });
      for (const e of d.dependents) skip(e, d);
    };
    for (const d of u.dependents) skip(d, u);
    // A unit of another share that nothing here can use any more is not waited for (up to
    // `externalWaitMs`, an hour by default, for nothing).
    for (const e of this.units) {
      if (!this.isExternal(e) || e.state !== 'waiting') continue;
      if (e.dependents.some((d) => d.state === 'waiting')) continue;
      const why = `not waited for: ${e.dependents.map((d) => d.unit.id).join(', ')}, which need${e.dependents.length === 1 ? 's' : ''} it, did not run`;
      this.finish(e, 'skipped', why);
      this.opts.onEvent?.({ type: 'skipped', unit: e.unit.id, reason: why });
    }
    if (this.opts.failFast) this.cancel(`--fail-fast: ${u.unit.id} failed`);
  }

  private finish(u: UnitRun, state: UnitState, reason?: string): void {
    this.setState(u, state);
    if (reason !== undefined) u.reason = reason;
  }

  /**
   * A built or cached unit whose outputs were lost goes back to waiting, once; true when it will
   * be (or already is being) built again (never another share's, `RunOptions.external`).
   */
  private rebuild(d: UnitRun, why: string): boolean {
    // Another share's unit is never built here (the run waited for ever for it).
    if (this.isExternal(d)) return false;
    if (d.state === 'waiting' || d.state === 'running') return true;
    if ((d.state !== 'built' && d.state !== 'cached') || d.rebuilds >= 1) return false;
    d.rebuilds++;
    d.outputs = [];
    d.holders.clear();
    d.builtBy = undefined;
    this.note(`building ${d.unit.id} again: ${why}`);
    this.opts.onEvent?.({ type: 'retry', unit: d.unit.id, worker: d.workerId ?? '-', reason: why });
    this.setState(d, 'waiting');
    return true;
  }

  /** Every state change goes through here, keeping the set of ready units current. */
  private setState(u: UnitRun, state: UnitState): void {
    const was = u.state;
    u.state = state;
    this.finalUnits += Number(FINAL.has(state)) - Number(FINAL.has(was));
    if ((was === 'built' || was === 'cached') && state !== was) {
      for (const d of u.dependents) this.readyUnits.delete(d);
    }
    if (state === 'waiting') {
      if (this.ready(u)) this.addReady(u);
      return;
    }
    this.readyUnits.delete(u);
    if (state === 'built' || state === 'cached') {
      for (const d of u.dependents) if (d.state === 'waiting' && this.ready(d)) this.addReady(d);
    }
  }

  private addReady(u: UnitRun): void {
    if (this.readyUnits.has(u) || this.isExternal(u)) return;
    this.readyUnits.add(u);
    const q = this.queues;
    if (!q) return;
    insertByPriority(q.all, u);
    const own = this.ownerQueue(q, u);
    if (own) insertByPriority(own, u);
  }

  private checkDone(): void {
    if (this.finalUnits !== this.units.length) return;
    this.finished();
    // Nothing is waiting for another share's units any more: their poll ends now, not in 5 s.
    this.wakeExternal?.();
  }

  // --- export -----------------------------------------------------------------------------------

  /** Exports every final artifact not exported yet; `lost` are those no holder could send. */
  private async exportAll(
    already: ExportReport[] = [],
  ): Promise<{ exports: ExportReport[]; lost: LostExport[] }> {
    const dir = this.opts.exportTo;
    if (!dir) return { exports: [], lost: [] };
    // Artifacts are staged in a directory of this export's own: `dir` may be the config's
    // directory (`--out .`), whose .dist-build holds the cache.
    await mkdir(dir, { recursive: true });
    // One left by a run that was killed while it exported (named by its process) goes now: it
    // would stay in `dir` for ever, a partial copy of an artifact.
    const exporter = (n: string) => Number(/^\.dist-build-export-(\d+)-/.exec(n)?.[1]);
    for (const { name } of leftByDead(dir, exporter)) await removeTree(join(dir, name));
    const staging = await mkdtemp(join(dir, `.dist-build-export-${process.pid}-`));
    try {
      return await this.exportInto(dir, staging, already);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * An invocation this run does not export (failed, skipped, cancelled): an earlier run's copy in
   * the export directory would pass for this run's artifact next to a report that says it failed.
   * (With `--out .` they are the work tree's own outputs, left as they are.) None can be there
   * when a file is in the place of one of its parent directories (ENOTDIR).
   */
  private async removeEarlierExport(u: UnitRun): Promise<void> {
    const dir = this.opts.exportTo;
    if (!dir || resolve(dir) === resolve(this.opts.config.root)) return;
    for (const p of unitOutputs(u.inv, u.unit.id))
      await rm(join(dir, isImageArchive(p) ? exportedImagePath(p) : p), {
        recursive: true,
        force: true,
      }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  }

  /** The live workers that hold a unit's outputs, the one that built it first; each once. */
  private holdersOf(u: UnitRun): MemberState[] {
    return [
      ...new Set([
        ...this.master.live().filter((m) => m.id === u.builtBy),
        ...[...u.holders].map((h) => this.master.member(h)).filter((m): m is MemberState => !!m),
      ]),
    ];
  }

  private async exportInto(
    dir: string,
    staging: string,
    already: ExportReport[],
  ): Promise<{ exports: ExportReport[]; lost: LostExport[] }> {
    const out: ExportReport[] = [...already];
    const lost: LostExport[] = [];
    const done0 = new Set(already.map((e) => e.unit));
    for (const u of this.units) {
      if (!u.inv.export) continue;
      if (u.state !== 'built' && u.state !== 'cached') {
        await this.removeEarlierExport(u);
        continue;
      }
      if (done0.has(u.unit.id)) continue;
      const candidates = this.holdersOf(u);
      let lastError: Error | undefined;
      let done: ExportReport | undefined;
      // Whether building it again can help: not when every holder's service could not be
      // reached and it would go back to one of them (the export would fail the same way).
      let rebuild = candidates.length === 0;
      for (const m of candidates) {
        try {
          const outputs: ExportReport['outputs'] = [];
          for (const o of u.outputs) {
            const stream = m.client.Export(
              {
                worker_uuid: m.uuid,
                unit: u.unit.id,
                cache_key: u.cacheKey,
                path: o.path,
                digest: o.digest,
              },
              this.master.metadata(),
            );
            const bytes = chunksOf(stream as grpc.ClientReadableStream<BlobChunk>);
            let dest = join(dir, o.path);
            if (isImageArchive(o.path)) {
              // A docker build's image: `images/<unit>.tar` in the out dir (it is kept under
              // `.dist-build/` in work trees).
              const scratch = await mkdtemp(join(staging, 'image-'));
              await restoreOutputs(async () => bytes, scratch, [o], { stagingDir: staging });
              dest = join(dir, exportedImagePath(o.path));
              await mkdir(dirname(dest), { recursive: true });
              await rename(join(scratch, o.path), dest);
            } else await restoreOutputs(async () => bytes, dir, [o], { stagingDir: staging });
            outputs.push({ path: o.path, dest, digest: o.digest, size: o.size, files: o.files });
            this.opts.onEvent?.({
              type: 'exported',
              unit: u.unit.id,
              worker: m.id,
              path: o.path,
              dest,
            });
          }
          done = { unit: u.unit.id, invocation: u.inv.name, worker: m.id, outputs };
          break;
        } catch (err) {
          const e = err as grpc.ServiceError;
          lastError = e.code === grpc.status.UNAVAILABLE ? new Error(unreachable(m, e)) : e;
          this.note(`export of ${u.unit.id} from ${m.id} failed: ${lastError.message}`);
          // Writing into the export directory failed (a file of an earlier run in the way, no
          // room, no permission): the same from any holder and after a rebuild.
          if ((err as NodeJS.ErrnoException).syscall !== undefined) {
            rebuild = false;
            break;
          }
          // Built again, it goes elsewhere if it can (the same worker may fail the same way).
          if (this.anotherTaker(u, m.id)) {
            u.excluded.add(m.id);
            rebuild = true;
          } else if (e.code !== grpc.status.UNAVAILABLE) rebuild = true;
        }
      }
      if (!done) {
        lost.push({
          unit: u,
          why: lastError ? lastError.message : 'no live worker holds it',
          rebuild,
        });
        continue;
      }
      out.push(done);
    }
    return { exports: out, lost };
  }

  /**
   * Pushes the image of every `docker.push` unit built or found cached, from a worker that holds
   * it (its builder first): every run, so that its tags name this run's images. A push that no
   * holder can make fails its unit (`cannot push: ...`).
   */
  private async pushAll(): Promise<PushReport[]> {
    const done: PushReport[] = [];
    for (const u of this.units) {
      if (!u.inv.docker?.push) continue;
      if (u.state !== 'built' && u.state !== 'cached') continue;
      // The run was cancelled (Ctrl-C, --fail-fast): no push, and the report says so.
      if (this.cancelled) {
        this.finish(u, 'cancelled', `${this.cancelReason}; not pushed`);
        continue;
      }
      const image = u.outputs.find((o) => isImageArchive(o.path));
      const candidates = this.holdersOf(u);
      let why = image ? 'no live worker holds it' : 'its result holds no image';
      let pushed: PushReport | undefined;
      for (const m of image ? candidates : []) {
        try {
          const res = await new Promise<PushImageResponse>((resolve, reject) => {
            this.pushing = m.client.PushImage(
              {
                worker_uuid: m.uuid,
                unit: u.unit.id,
                cache_key: u.cacheKey,
                path: image!.path,
                digest: image!.digest,
              },
              this.master.metadata(),
              { deadline: Date.now() + u.inv.timeout * 1000 },
              (err: grpc.ServiceError | null, r?: PushImageResponse) =>
                err ? reject(err) : resolve(r!),
            );
          }).finally(() => (this.pushing = undefined));
          pushed = { unit: u.unit.id, invocation: u.inv.name, worker: m.id, images: res.pushed };
          for (const p of res.pushed)
            this.opts.onEvent?.({ type: 'pushed', unit: u.unit.id, worker: m.id, ...p });
          break;
        } catch (err) {
          const e = err as grpc.ServiceError;
          why = e.code === grpc.status.UNAVAILABLE ? unreachable(m, e) : (e.details ?? e.message);
          this.note(`push of ${u.unit.id} from ${m.id} failed: ${why}`);
          if (this.cancelled) break;
        }
      }
      if (pushed) done.push(pushed);
      // Interrupted while it pushed: the run's status, not a push that failed.
      else if (this.cancelled) this.finish(u, 'cancelled', `${this.cancelReason}; not pushed`);
      else {
        // Its build succeeded ("failed (exit 0)" would say otherwise): the push failed.
        u.exitCode = undefined;
        this.fail(u, `cannot push: ${why}`);
      }
    }
    return done;
  }

  // --- report -----------------------------------------------------------------------------------

  private report(exports: ExportReport[], pushes: PushReport[] = []): RunReport {
    const endedAt = Date.now();
    const workers = new Map<string, WorkerReport>();
    const row = (id: string, annotations: Record<string, string> = {}): WorkerReport => {
      const w: WorkerReport = { id, annotations, built: 0, cached: 0, busyMs: 0 };
      workers.set(id, w);
      return w;
    };
    for (const m of this.master.live()) row(m.id, m.member.annotations);
    // Workers that took part and left (a lost worker's job ran again elsewhere): counted too.
    for (const [id, d] of this.departed) if (!workers.has(id)) row(id, d.annotations).left = d.why;
    const invocations: InvocationReport[] = this.units.map((u) => {
      const worker = u.workerId ?? u.job?.workerId ?? null;
      if (worker) {
        const w = workers.get(worker) ?? row(worker);
        if (u.state === 'built') w.built++;
        else if (u.state === 'cached') w.cached++;
        // A failed job kept its worker busy too (the report's timeline draws it in its lane).
        if (u.state === 'built' || u.state === 'failed') w.busyMs += u.durationMs ?? 0;
      }
      const timed = u.state === 'built' || u.state === 'failed';
      return {
        unit: u.unit.id,
        invocation: u.inv.name,
        worker,
        status: u.state === 'waiting' || u.state === 'running' ? 'cancelled' : u.state,
        cacheKey: u.cacheKey,
        ...(timed && u.startedAt ? { startedAt: u.startedAt } : {}),
        ...(timed && u.endedAt ? { endedAt: u.endedAt } : {}),
        ...(timed && u.durationMs !== undefined ? { durationMs: u.durationMs } : {}),
        ...(u.exitCode !== undefined ? { exitCode: u.exitCode } : {}),
        ...(u.reason ? { reason: u.reason } : {}),
        attempts: u.attempts,
        outputs: u.outputs.map((o) => ({ path: o.path, digest: o.digest, size: o.size })),
      };
    });
    const failed = invocations.some((i) => i.status === 'failed' || i.status === 'skipped');
    return {
      format: REPORT_FORMAT,
      config: this.config,
      startedAt: this.startedAt,
      endedAt,
      durationMs: endedAt - this.startedAt,
      status:
        this.cancelled && !failed ? 'cancelled' : failed || this.cancelled ? 'failed' : 'succeeded',
      workers: [...workers.values()],
      invocations,
      exports,
      ...(pushes.length ? { pushes } : {}),
      events: this.events,
    };
  }
}

/** An artifact the export could not get; `rebuild`: whether building it again may help. */
interface LostExport {
  unit: UnitRun;
  why: string;
  rebuild: boolean;
}

/** Why the master cannot use a worker's Worker service, with where to look. */
function unreachable(m: MemberState, err: grpc.ServiceError): string {
  const where = m.member.connections.map((c) => c.socket).join(', ');
  const why = (err.details || err.message).replace(/\s*Resolution note:.*$/s, '');
  return `the master cannot reach worker ${m.id}'s service at ${where} (${why})${
    err.code === grpc.status.UNAVAILABLE
      ? ': check its --listen / --advertise address and that its certificate names that host'
      : ''
  }`;
}
