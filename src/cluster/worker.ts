/**
 * The worker agent (`dist-build worker --join ...`): serves the Worker service, registers with the
 * master and keeps its lease with heartbeats, and runs the jobs the master starts.
 *
 * A job: check that the invocation exists in this worker's own config with the same definition
 * digest (otherwise refuse it), bring its dependencies' outputs into the work tree (from the local
 * store, or fetched from a worker that holds them, verified by digest), clear its own declared
 * outputs, run the command (CommandExecutor), save the declared outputs to the store as a result
 * manifest, and report the result to the master. A result that cannot be reported (master gone)
 * is kept and sent again after re-registering, so a master restart loses nothing.
 *
 * The agent never exits because of the master: it re-registers with backoff until it is stopped
 * (`stop()`, SIGTERM) or told to shut down.
 */
import * as grpc from '@grpc/grpc-js';
import {
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { ConfigError, formatIssue } from '../config/errors.js';
import { decodeConfig, parseConfig } from '../config/load.js';
import type { Config, InvocationConfig } from '../config/types.js';
import { CommandExecutor, commandJobSpec } from '../executors/command.js';
import {
  dockerJobSpec,
  findDocker,
  hasImage,
  imagesToLoad,
  loadImage,
  pushImage,
  type DockerInfo,
} from '../executors/docker.js';
import type { CommandJob } from '../executors/command.js';
import { CorruptBlobError, holdsDeclaredOutputs, UnsafeArchiveError } from '../store/types.js';
import type { OutputEntry, ResultManifest, Store } from '../store/types.js';
import { RESULT_FORMAT } from '../store/types.js';
import { blobOpenerFor, digestOutputs, restoreOutputs, saveOutputs } from '../store/pack.js';
import { computeCacheKeys } from '../plan/keys.js';
import { outExclusion } from '../plan/plan.js';
import type { Unit } from '../plan/types.js';
import { expandUnits, imageArchivePath, isImageArchive, unitOutputs } from '../plan/units.js';
import { configDigest, definitionDigest } from './definition.js';
import { isNoSpace, leftByDead, processStartTime } from '../store/fsutil.js';
import {
  CACHE_QUERY_REMOTE_BUDGET_MS,
  call,
  LATE_HIT_WAIT_MS,
  protocol,
  PROTOCOL,
  type BlobChunk,
  type DependencyMsg,
  type ExportRequest,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type Holder,
  type JobReport,
  type MasterClient,
  type OutputChunkMsg,
  type PushImageRequest,
  type PushImageResponse,
  type RunningJob,
  type StartJobRequest,
  type StreamOutputRequest,
  type WorkerClient,
  type WorkerHandlers,
} from './protocol.js';
import { collectStats } from './stats.js';
import {
  authorize,
  callMetadata,
  channelCredentials,
  channelOptions,
  formatAddress,
  failStream,
  grpcTarget,
  parseAddress,
  refusedCall,
  connectProblem,
  startServer,
  type Address,
  type Security,
  type ServerHandle,
} from './transport.js';
import { OutputOutsideTreeError, Workspace } from './workspace.js';
import { VERSION } from '../version.js';

export interface WorkerOptions {
  /** This worker's own copy of the config (its `root` is the work tree). */
  config: Config;
  /**
   * Each job's cache key computed again in this worker's tree (see `checkKey`): when it is not
   * the master's, `warn` (the default) runs the job but does not cache its result (a warning
   * goes with the report), `refuse` leaves the job to another worker; `off` skips the check
   * (workers sharing the master's tree).
   */
  keyCheck?: KeyCheckMode;
  /** The master's address. */
  join: Address;
  /** Where the Worker service listens (default tcp://127.0.0.1:0). */
  listen?: Address[];
  security: Security;
  store: Store;
  /** Directory of the store, for disk stats. */
  cacheDir: string;
  /** Host name to advertise when listening on a wildcard address (default: the host name). */
  advertise?: string;
  /** Requested worker id (default `<host>-command-<store>`). */
  id?: string;
  /** Jobs run at once (default 1). */
  slots?: number;
  labels?: string[];
  annotations?: Record<string, string>;
  /** Log lines (no trailing newline). */
  log?: (message: string) => void;
  logDir?: string;
  killGraceMs?: number;
  /** Called once when the master tells this worker to shut down. */
  onShutdown?: () => void;
  /**
   * The master refused this worker (wrong token, a certificate of the wrong role): with this
   * set, the worker stops trying to register and calls it; without it, it keeps trying.
   */
  onRefused?: (reason: string) => void;
  /** What the cache query gives the slower stores (default `CACHE_QUERY_REMOTE_BUDGET_MS`). */
  cacheQueryBudgetMs?: number;
  /** How long a job waits for a late cache hit (default `LATE_HIT_WAIT_MS`; see `lateHit`). */
  lateHitWaitMs?: number;
  /**
   * The Docker CLI for docker builds (default: the first `docker` on PATH that works; see
   * `findDocker`). A worker looks for one only when its config has docker invocations.
   */
  docker?: string;
}

type Phase = 'preparing' | 'running' | 'saving' | 'done';

interface WorkerJob {
  id: string;
  unit: string;
  invocation: InvocationConfig;
  cacheKey: string;
  deps: DependencyMsg[];
  /** Paths the master left out of the inputs (see `checkKey`). */
  excludeInputs: string[];
  /** The master's config's declared outputs (empty from an older master; see `checkKey`). */
  excludedOutputs: string[];
  /** The unit's last result's key, from the master (a docker build's cache source). */
  previousKey?: string;
  phase: Phase;
  startedAt: number;
  command?: CommandJob;
  report?: JobReport;
  stopped?: string;
}

const RPC_TIMEOUT_MS = 10_000;
/** How long a report sent on the heartbeat stream waits for its ack before going by ReportResult. */
const REPORT_ACK_MS = 5_000;
/** Finished jobs whose logs are kept for StreamOutput / `dist-build logs`. */
const KEEP_FINISHED = 512;
/** Job log directories of workers without `logDir`: `<tmp>/dist-build-jobs-<pid>-<random>`. */
const JOB_LOG_PREFIX = 'dist-build-jobs-';
/** Longest unix socket path used (the system limit is 107 or 103 bytes, with the NUL). */
const MAX_SOCKET_PATH = 100;
/** How long `stop` waits for results being copied into the local store. */
const PULL_GRACE_MS = 1000;
/** How long after a cache lookup or a stored result the store's counters are written. */
const STATS_DELAY_MS = 2000;
/** Name prefix of a worker's own socket in the temp dir (when its cache dir's path is too long). */
const TMP_SOCKET_PREFIX = 'dist-build-worker-';
/** Bytes of a process-group file: `<pgid> <leader's start time>`, padded with spaces (all
 * spaces when free). */
const PGID_WIDTH = 40;

/** Agents created in this process so far. */
let agentInstances = 0;

interface PgidFile {
  path: string;
  fd: number;
}

export class WorkerAgent {
  readonly executor: CommandExecutor;
  /** The environment as this worker started (commands and the Docker CLI get theirs from it). */
  private readonly executorEnv: NodeJS.ProcessEnv = { ...process.env };
  /** The Docker CLI docker builds use (`probeDocker`); undefined when there is none. */
  private docker: DockerInfo | undefined;
  /** Why there is no Docker, when the config has docker invocations. */
  private dockerProblem: string | undefined;
  private readonly log: (m: string) => void;
  private readonly security: Security;
  /** This worker's config: `opts.config`, or the file read again since (see `reloadConfig`). */
  private config: Config;
  /** The config file's inode, size and mtime when it was read (see `reloadConfig`). */
  private configStamp: string;
  private invocations!: Map<string, { inv: InvocationConfig; digest: string }>;
  private readonly workspace: Workspace;
  private readonly jobs = new Map<string, WorkerJob>();
  private readonly finishedOrder: string[] = [];
  private readonly unreported: JobReport[] = [];
  private readonly peers = new Map<string, WorkerClient>();
  private server: ServerHandle | undefined;
  private master: MasterClient | undefined;
  private uuid = '';
  private workerId = '';
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeats: grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse> | undefined;
  /** Result manifests being written (`stop` waits for them). */
  private readonly resultWrites = new Set<Promise<unknown>>();
  /** Results being copied into the local store (`pullResult`). */
  private readonly pulls = new Set<Promise<void>>();
  /** A pending write of the store's counters (see `statsSoon`). */
  private statsTimer: NodeJS.Timeout | undefined;
  /** Reports sent on the heartbeat stream, by job id, waiting for the master's ack. */
  private readonly reportAcks = new Map<string, (acked: boolean) => void>();
  private shutdownAsked = false;
  /** Tells this agent's files from those of other agents in the same process. */
  private readonly instance = agentInstances++;
  /** Process-group files (see `recordJob`), and those not in use. */
  private readonly pgidFiles: PgidFile[] = [];
  private readonly freePgidFiles: PgidFile[] = [];
  private heartbeatMs = 1000;
  private stopping = false;
  private listening: Promise<void> | undefined;
  /** The unix socket `defaultListen` chose, removed by `stop`. */
  private ownSocket: string | undefined;
  private registering: Promise<void> | undefined;
  private registeredOnce: (() => void) | undefined;
  readonly registered: Promise<void>;
  private slots: number;
  /** Process-group files recorded at spawn, by job id, until the job takes its own. */
  private readonly spawnedPgids = new Map<string, PgidFile>();
  /** The job log directory this worker made (none with `logDir`). */
  private readonly ownLogDir: string | undefined;
  /** Units of this worker's config, by id. */
  private units!: Map<string, Unit>;
  /**
   * Cache keys the last cache query could not settle in time (a slow store, an Actions cache
   * shard still being restored): a job for one looks in the stores again first (`lateHit`).
   */
  private readonly unsettled = new Set<string>();
  /**
   * A late hit's lookup that outlasted its wait and has not ended: the stores are stuck (an
   * Actions cache service that does not answer), and later late hits do not wait for them again.
   */
  private stuckLookup: Promise<unknown> | undefined;
  /** Refusals logged lately, by unit and reason (see `startJob`'s `refuse`). */
  private readonly refusals = new Map<string, { at: number; more: number }>();
  /** The last key check (see `checkKey`): they run one after the other. */
  private keyChecks: Promise<void> = Promise.resolve();

  constructor(private readonly opts: WorkerOptions) {
    this.log = opts.log ?? ((m) => process.stderr.write(`${m}\n`));
    this.security = opts.security;
    this.slots = Math.max(1, opts.slots ?? 1);
    this.config = opts.config;
    this.configStamp = fileStamp(opts.config.file);
    this.useConfig(opts.config);
    this.workspace = new Workspace(opts.config.root);
    // Job logs serve StreamOutput while this worker lives: in a directory of its own, removed
    // when it stops (and, when it was killed, by the next worker's listen()).
    if (!opts.logDir) {
      this.ownLogDir = join(
        os.tmpdir(),
        `${JOB_LOG_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`,
      );
    }
    this.executor = new CommandExecutor({
      logDir: opts.logDir ?? this.ownLogDir!,
      // As this worker started: not what a gha store call has in process.env for a while.
      parentEnv: this.executorEnv,
      ...(opts.killGraceMs !== undefined ? { killGraceMs: opts.killGraceMs } : {}),
      // Recorded the moment the command exists (see recordJob).
      onSpawn: (jobId, pid) => {
        const f = this.recordJob(pid);
        if (f) this.spawnedPgids.set(jobId, f);
      },
    });
    this.registered = new Promise((resolve) => (this.registeredOnce = resolve));
  }

  get id(): string {
    return this.workerId;
  }

  /** Addresses the Worker service listens on (after `start`). */
  get addresses(): Address[] {
    return this.server?.addresses ?? [];
  }

  /** `listen()`, then `join()`. */
  async start(): Promise<void> {
    // The store's own start-up (an Actions cache shard's download) runs while this worker
    // registers, not in its first cache query.
    void this.opts.store.warm?.();
    await this.listen();
    this.join();
  }

  /**
   * Gets ready to join: ends what an earlier agent on this cache dir left running, and starts the
   * Worker service (its addresses go into the membership record).
   */
  listen(): Promise<void> {
    this.listening ??= (async () => {
      this.reapOrphans();
      const docker = this.probeDocker();
      await reapTmpSockets();
      reapJobLogs();
      let listen = this.opts.listen;
      if (!listen) {
        const own = this.defaultListen();
        if (own.kind === 'unix') {
          mkdirSync(dirname(own.path), { recursive: true });
          this.ownSocket = own.path;
        }
        listen = [own];
      }
      this.server = await startServer(
        listen,
        [{ definition: protocol().WorkerService, handlers: this.handlers() }],
        this.security,
        (m) => this.log(`worker: ${m}`),
      );
      await docker;
    })();
    return this.listening;
  }

  /**
   * Finds the Docker CLI this worker builds docker invocations with, when its config has any (its
   * `executor` annotation says `docker` then). Without one, those invocations go to other workers.
   */
  private async probeDocker(): Promise<void> {
    if (!this.opts.docker && !this.config.invocations.some((i) => i.docker)) return;
    const probe = await findDocker({
      ...(this.opts.docker ? { docker: this.opts.docker } : {}),
      env: this.executorEnv,
    });
    this.docker = probe.docker;
    if (probe.docker) {
      const d = probe.docker;
      this.log(
        `worker: docker builds with ${d.path} (client ${d.client}, daemon ${d.server} ${d.platform})`,
      );
    } else {
      this.dockerProblem = probe.problems.join('; ');
      this.log(
        `worker: warning: no usable Docker (${this.dockerProblem}): docker invocations go to other workers`,
      );
    }
  }

  /**
   * Where the Worker service listens without `listen`: like the master is reached. A free TCP
   * port on loopback, or, when the master is joined over a unix socket (which needs no TLS), a
   * socket of this worker's own: `<cache dir>/running/<pid>.<n>.sock` (removed by `stop`; one a
   * killed worker left is removed by the next worker on the cache dir, with its other records),
   * or in the temp dir when that path is too long for a socket (one a killed worker left there
   * is removed by the next worker to start, whatever its cache dir).
   */
  private defaultListen(): Address {
    if (this.opts.join.kind !== 'unix') return { kind: 'tcp', host: '127.0.0.1', port: 0 };
    const name = `${process.pid}.${this.instance}.sock`;
    const path = join(this.opts.cacheDir, 'running', name);
    return {
      kind: 'unix',
      path:
        path.length <= MAX_SOCKET_PATH ? path : join(os.tmpdir(), `${TMP_SOCKET_PREFIX}${name}`),
    };
  }

  /**
   * Registers with the master (after `listen()`), retrying until it answers; `registered` resolves
   * on the first success. Heartbeats follow, and a new registration whenever the master forgot us.
   */
  join(): void {
    if (!this.server) throw new Error('WorkerAgent.join() before listen()');
    if (this.master) return;
    this.master = new (protocol().MasterClient)(
      grpcTarget(this.opts.join),
      channelCredentials(this.opts.join, this.security, 'master'),
      channelOptions(this.opts.join),
    );
    void this.register();
  }

  /**
   * Ends every running command's process group with SIGKILL now, without `--kill-grace`: for a
   * worker about to exit at once (a second Ctrl-C), whose commands would otherwise go on writing
   * into the tree with no worker left to stop them.
   */
  killJobsNow(): void {
    for (const job of this.executor.list()) {
      const pgid = job.pid;
      if (pgid === undefined || pgid <= 1) continue;
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Leaves the cluster: stops running jobs (they are reported as the worker's fault), deregisters. */
  async stop(reason = 'worker stopping'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const job of this.jobs.values()) {
      if (job.phase !== 'done') job.stopped = reason;
    }
    if (this.statsTimer) clearTimeout(this.statsTimer);
    await this.executor.stopAll(reason);
    // Results of finished jobs still being written go in first; results being copied in get a
    // moment (a remote store that does not answer must not hold the stop).
    await Promise.allSettled([...this.resultWrites]);
    await Promise.race([
      Promise.allSettled([...this.pulls]),
      new Promise((r) => setTimeout(r, PULL_GRACE_MS).unref()),
    ]);
    // Send out what the store buffers (the Actions cache packs a worker's blobs into one entry).
    await this.opts.store.flush?.().catch((err: unknown) => {
      this.log(`warning: flushing the cache store failed: ${(err as Error).message}`);
    });
    if (this.master && this.uuid) {
      await call(
        this.master,
        this.master.Deregister,
        { worker_uuid: this.uuid, reason },
        callMetadata(this.security),
        2000,
      ).catch(() => undefined);
    }
    this.closeHeartbeats();
    this.master?.close();
    for (const c of this.peers.values()) c.close();
    this.closePgidFiles();
    await this.server?.close();
    if (this.ownSocket) rmSync(this.ownSocket, { force: true });
    if (this.ownLogDir) rmSync(this.ownLogDir, { recursive: true, force: true });
  }

  // --- membership -------------------------------------------------------------------------------

  private member() {
    const store = this.opts.store.kind;
    const host = os.hostname().split('.')[0] || 'host';
    const annotations: Record<string, string> = {
      os: process.platform === 'win32' ? 'windows' : process.platform,
      arch: process.arch === 'x64' ? 'amd64' : process.arch,
      executor: this.docker ? 'command,docker' : 'command',
      // The daemon's version, or why docker builds cannot run here (shown when one is not placed).
      ...(this.docker
        ? { docker: this.docker.server }
        : this.dockerProblem
          ? { docker: `none: ${this.dockerProblem}` }
          : {}),
      store,
      host: os.hostname(),
      // Which release it runs: a pool mixing releases is named by the master.
      version: VERSION,
      ...(this.opts.labels?.length ? { labels: this.opts.labels.join(',') } : {}),
      ...this.opts.annotations,
    };
    return {
      worker_id: this.opts.id ?? `${host}-command-${store}`,
      connections: this.addresses.map((a) => ({
        type: PROTOCOL,
        socket: formatAddress(
          a.kind === 'tcp' && (a.host === '0.0.0.0' || a.host === '::')
            ? { ...a, host: this.opts.advertise ?? os.hostname() }
            : a,
        ),
      })),
      stats: this.stats(),
      annotations,
    };
  }

  private stats() {
    return collectStats(
      [
        { name: 'work', path: this.config.root },
        { name: 'cache', path: this.opts.cacheDir },
      ],
      this.runningCount(),
      this.slots,
    );
  }

  private runningCount(): number {
    let n = 0;
    for (const j of this.jobs.values()) if (j.phase !== 'done') n++;
    return n;
  }

  private running(): RunningJob[] {
    return [...this.jobs.values()]
      .filter((j) => j.phase !== 'done')
      .map((j) => ({ job_id: j.id, unit: j.unit, cache_key: j.cacheKey, started_at: j.startedAt }));
  }

  private register(): Promise<void> {
    this.registering ??= (async () => {
      let delay = 50;
      let failures = 0;
      while (!this.stopping) {
        try {
          const unreported = this.unreported.splice(0);
          const member = this.member();
          const res = await call(
            this.master!,
            this.master!.Register,
            {
              member,
              config_digest: configDigest(this.config),
              running: this.running(),
              unreported,
            },
            callMetadata(this.security),
            RPC_TIMEOUT_MS,
          ).catch((err: unknown) => {
            this.unreported.unshift(...unreported);
            throw err;
          });
          const answeredAt = Date.now();
          const first = !this.uuid;
          this.uuid = res.worker_uuid;
          this.workerId = res.worker_id;
          this.heartbeatMs = Math.max(50, res.heartbeat_ms || 1000);
          this.log(
            `worker ${this.workerId}: ${first ? 'registered' : 're-registered'} with ${formatAddress(this.opts.join)} (master ${res.master_id.slice(0, 8)}, lease ${res.lease_ttl_ms} ms)`,
          );
          if (res.worker_id !== member.worker_id) {
            this.log(
              `worker ${this.workerId}: warning: another worker of this master has the id ${member.worker_id}: give each worker its own --id`,
            );
          }
          this.registeredOnce?.();
          this.openHeartbeats(res.lease_ttl_ms, answeredAt);
          return;
        } catch (err) {
          const e = err as grpc.ServiceError;
          if (e.code === grpc.status.UNAUTHENTICATED || e.code === grpc.status.PERMISSION_DENIED) {
            this.log(`worker: the master refused this worker: ${e.details ?? e.message}`);
            if (this.opts.onRefused) {
              this.opts.onRefused(e.details ?? e.message);
              return;
            }
          } else if (++failures === 1 || failures % 20 === 0) {
            this.log(
              `worker: cannot reach the master at ${formatAddress(this.opts.join)} (${connectProblem(e.details || e.message, this.security.tls !== undefined)}); retrying`,
            );
          }
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 2000);
        }
      }
    })().finally(() => (this.registering = undefined));
    return this.registering;
  }

  /**
   * The heartbeat stream of the current registration: a beat every `heartbeatMs`, an answer for
   * each. A broken stream, an unanswered beat for longer than the lease, or REREGISTER: register
   * again (the jobs keep running meanwhile).
   */
  private openHeartbeats(leaseTtlMs: number, registeredAt = Date.now()): void {
    this.closeHeartbeats();
    const stream = this.master!.Heartbeat(callMetadata(this.security));
    this.heartbeats = stream;
    let answeredAt = registeredAt;
    /** When the last beat was sent (one is due every `heartbeatMs`); the last long gap between two. */
    let beatAt = registeredAt;
    let stall: { ms: number; at: number } | undefined;
    const limit = Math.max(leaseTtlMs, this.heartbeatMs * 3);
    let over = false;
    const again = (why: string) => {
      if (over || this.heartbeats !== stream) return;
      over = true;
      this.closeHeartbeats();
      if (this.stopping) return;
      // This process did not run for a while (stopped, suspended, starved): its beats did not go
      // out, and the master took it for gone. Its own doing, whatever the master then answered.
      const now = Date.now();
      const stalledMs =
        now - beatAt > limit ? now - beatAt : stall && now - stall.at < limit ? stall.ms : 0;
      const reason =
        stalledMs > 0
          ? `this worker did not run for ${Math.round(stalledMs / 1000)} s (stopped or starved), longer than its lease (${why})`
          : why;
      this.log(`worker ${this.workerId}: ${reason}; registering again`);
      // Not from within `register` (this stream's first beat runs in it), whose promise is the
      // one `register` would hand back: after it has settled.
      setImmediate(() => void this.register());
    };
    stream.on('data', (res: HeartbeatResponse) => {
      answeredAt = Date.now();
      if (res.start_jobs.length) {
        // Work from the master (the server's certificate was checked to be a master's): the same
        // checks and answer as a StartJob call.
        const acks = res.start_jobs.map((req) => ({ job_id: req.job_id, ...this.startJob(req) }));
        stream.write(this.streamMessage({ acks }));
      }
      for (const id of res.report_acks) this.reportAcks.get(id)?.(true);
      if (res.command === 'REREGISTER') again('the master does not know this worker');
      else if (res.command === 'SHUTDOWN' && !this.shutdownAsked) {
        this.shutdownAsked = true;
        this.log(`worker ${this.workerId}: the master says the run is over; shutting down`);
        this.opts.onShutdown?.();
      }
    });
    stream.on('error', () => again('lost the master'));
    stream.on('end', () => again('the master closed the heartbeat stream'));
    const beat = () => {
      if (this.stopping || over) return;
      const now = Date.now();
      // (A stalled process's timer fires late, then at once again: the long gap is kept.)
      if (now - beatAt > limit) stall = { ms: now - beatAt, at: now };
      if (now - answeredAt > limit) {
        again('the master stopped answering heartbeats');
        return;
      }
      beatAt = now;
      this.reapOrphans();
      stream.write(this.streamMessage({ stats: this.stats(), running: this.running() }));
    };
    beat();
    this.heartbeatTimer = setInterval(beat, this.heartbeatMs);
  }

  /** A message on the heartbeat stream: a beat (with `stats`), acks or reports. */
  private streamMessage(parts: Partial<HeartbeatRequest>): HeartbeatRequest {
    return { worker_uuid: this.uuid, stats: null, running: [], acks: [], reports: [], ...parts };
  }

  private closeHeartbeats(): void {
    // Reports waiting for an ack on this stream go by ReportResult instead.
    for (const settle of [...this.reportAcks.values()]) settle(false);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    const s = this.heartbeats;
    this.heartbeats = undefined;
    if (s) {
      s.removeAllListeners('data');
      s.on('error', () => undefined);
      s.cancel();
    }
  }

  // --- orphans ----------------------------------------------------------------------------------

  /**
   * Each running command's process group is recorded in a file under `<cache dir>/running/`,
   * named `<worker pid>.<agent>.<n>`. A worker killed with SIGKILL cannot stop its commands; the
   * other workers sharing this cache dir (and this one when it starts again) end the groups whose
   * worker is gone, so a command never keeps writing into a tree where its invocation is being
   * run again. The group leader's start time is recorded with the pgid: a group whose leader's
   * pid has since been taken by another process is over and never signalled (a pgid is not
   * reused while its group has a member).
   * The files are kept open and reused, one per job running at once, and written in place (a
   * file created and removed per job cost 0.2-0.5 ms on this kind of disk, on every job's path).
   */
  private recordJob(pgid: number | undefined): PgidFile | undefined {
    if (pgid === undefined) return undefined;
    try {
      let f = this.freePgidFiles.pop();
      if (!f) {
        const dir = join(this.opts.cacheDir, 'running');
        if (this.pgidFiles.length === 0) mkdirSync(dir, { recursive: true });
        const path = join(dir, `${process.pid}.${this.instance}.${this.pgidFiles.length}`);
        f = { path, fd: openSync(path, 'w', 0o600) };
        this.pgidFiles.push(f);
      }
      const started = processStartTime(pgid) ?? '';
      writeSync(f.fd, `${pgid} ${started}`.padEnd(PGID_WIDTH), 0);
      return f;
    } catch {
      return undefined;
    }
  }

  /** The job of `f` is over: its file is blanked and free for the next one. */
  private forgetJob(f: PgidFile): void {
    try {
      writeSync(f.fd, ' '.repeat(PGID_WIDTH), 0);
      this.freePgidFiles.push(f);
    } catch {
      // left as it is: a reaper finds the group gone
    }
  }

  private closePgidFiles(): void {
    for (const f of this.pgidFiles.splice(0)) {
      try {
        closeSync(f.fd);
      } catch {
        // already closed
      }
      rmSync(f.path, { force: true });
    }
    this.freePgidFiles.length = 0;
  }

  private reapOrphans(): void {
    const dir = join(this.opts.cacheDir, 'running');
    for (const { name, owner } of leftByDead(dir, pgidFileOwner)) {
      const pgid = endGroupOf(join(dir, name));
      if (pgid !== undefined) {
        this.log(
          `worker ${this.workerId}: ended process group ${pgid} left by dead worker ${owner}`,
        );
      }
    }
  }

  // --- jobs -------------------------------------------------------------------------------------

  private handlers(): WorkerHandlers {
    const guard = (
      callLike: Parameters<typeof refusedCall>[0],
      method: string,
      masterOnly = true,
    ) => {
      const err = authorize(
        callLike,
        this.security,
        masterOnly ? ['master'] : ['master', 'worker'],
        method,
      );
      if (err) this.log(`worker: ${refusedCall(callLike, err.reason)}`);
      return err;
    };
    return {
      StartJob: (c, cb) => {
        const err = guard(c, 'StartJob');
        if (err) return cb(err);
        cb(null, this.startJob(c.request));
      },
      StopJob: (c, cb) => {
        const err = guard(c, 'StopJob');
        if (err) return cb(err);
        const job = this.jobs.get(c.request.job_id);
        if (!job) return cb(null, { found: false });
        job.stopped = c.request.reason || 'stopped by the master';
        void job.command?.stop(job.stopped);
        cb(null, { found: true });
      },
      JobStatus: (c, cb) => {
        const err = guard(c, 'JobStatus');
        if (err) return cb(err);
        const job = this.jobs.get(c.request.job_id);
        if (!job) return cb(null, { found: false, state: '', output_bytes: 0, report: null });
        cb(null, {
          found: true,
          state: job.report ? job.report.state : job.phase,
          report: job.report ?? null,
          output_bytes: job.command?.outputBytes ?? 0,
        });
      },
      StreamOutput: (c) => {
        const err = guard(c, 'StreamOutput');
        if (err) return failStream(c, err.code, err.details);
        void this.streamOutput(c);
      },
      HasCache: (c, cb) => {
        const err = guard(c, 'HasCache');
        if (err) return cb(err);
        this.hasCache(c.request.cache_keys).then(
          (res) => cb(null, res),
          (e: Error) => cb({ code: grpc.status.INTERNAL, details: e.message } as grpc.ServiceError),
        );
      },
      FetchBlob: (c) => {
        const err = guard(c, 'FetchBlob', false);
        if (err) return failStream(c, err.code, err.details);
        void this.sendBlob(c, c.request.digest);
      },
      Export: (c) => {
        const err = guard(c, 'Export');
        if (err) return failStream(c, err.code, err.details);
        void this.exportOutput(c);
      },
      PushImage: (c, cb) => {
        const err = guard(c, 'PushImage');
        if (err) return cb(err);
        // The master cancels the call when its run is cancelled: the Docker CLI is stopped.
        const cancelled = new AbortController();
        c.on('cancelled', () => cancelled.abort());
        this.pushImage(c.request, cancelled.signal).then(
          (res) => cb(null, res),
          (e: Error & { code?: number }) =>
            cb({
              code: typeof e.code === 'number' ? e.code : grpc.status.INTERNAL,
              details: e.message,
            } as grpc.ServiceError),
        );
      },
    };
  }

  /**
   * Pushes a docker unit's image to its tags (see `PushImageRequest`): from the work tree's copy
   * of the archive when it holds that blob, else from one restored into a temp dir.
   */
  private async pushImage(req: PushImageRequest, signal: AbortSignal): Promise<PushImageResponse> {
    const refuse = (code: grpc.status, message: string) =>
      Object.assign(new Error(message), { code });
    const unit = this.units.get(req.unit);
    const inv = unit ? this.invocations.get(unit.invocation)?.inv : undefined;
    if (req.worker_uuid !== this.uuid)
      throw refuse(grpc.status.FAILED_PRECONDITION, `addressed to worker ${req.worker_uuid}`);
    if (!inv?.docker?.push)
      throw refuse(
        grpc.status.FAILED_PRECONDITION,
        `${req.unit} pushes no image in this worker's config (${this.config.file})`,
      );
    if (!this.docker)
      throw refuse(
        grpc.status.FAILED_PRECONDITION,
        `this worker has no usable Docker (${this.dockerProblem ?? 'not looked for'})`,
      );
    if (req.path !== imageArchivePath(req.unit))
      throw refuse(grpc.status.INVALID_ARGUMENT, `${req.path} is not the image of ${req.unit}`);
    let blob = req.digest;
    if (!blob) {
      const m = await this.opts.store.getResult(req.cache_key).catch(() => null);
      blob = m?.outputs.find((o) => o.path === req.path)?.digest ?? '';
    }
    if (!blob) throw refuse(grpc.status.NOT_FOUND, `this worker holds no image of ${req.unit}`);
    const root = this.config.root;
    const push = (archive: string) =>
      pushImage(this.docker!, archive, inv.docker!.tags, {
        env: this.executorEnv,
        timeoutMs: inv.timeout * 1000,
        signal,
      });
    const pushed = await this.workspace.withLock(req.path, async () => {
      if ((await this.workspace.held(req.path)) === blob) return push(join(root, req.path));
      const entry = { path: req.path, type: 'file', digest: blob, size: 0, files: 1 } as const;
      return this.withRestored(entry, 'push-', push);
    });
    for (const p of pushed) this.log(`worker ${this.workerId}: pushed ${p.ref} (${p.digest})`);
    return { pushed };
  }

  private startJob(req: StartJobRequest): {
    accepted: boolean;
    reason: string;
  } {
    const refuse = (reason: string) => {
      // The master tries again a few times a second (a busy worker): said once in a while.
      const kind = `${req.unit}\0${reason.replace(/^busy: .*/, 'busy')}`;
      const last = this.refusals.get(kind);
      const now = Date.now();
      if (last && now - last.at < REFUSAL_LOG_MS) last.more++;
      else {
        const more = last?.more ? ` (refused ${last.more} more time(s) since)` : '';
        this.log(
          `worker ${this.workerId}: refused job ${req.job_id} (${req.unit}): ${reason}${more}`,
        );
        this.refusals.set(kind, { at: now, more: 0 });
        if (this.refusals.size > 1000) this.refusals.delete(this.refusals.keys().next().value!);
      }
      return { accepted: false, reason };
    };
    if (this.stopping) return refuse('the worker is stopping');
    if (req.worker_uuid !== this.uuid)
      return refuse(
        `addressed to worker ${req.worker_uuid}, this is ${this.uuid || 'unregistered'}`,
      );
    let known = this.invocations.get(req.invocation);
    // Not as the master has it: the file may have changed since (a pool worker's checkout
    // updated under it).
    if (known?.digest !== req.definition_digest && this.reloadConfig())
      known = this.invocations.get(req.invocation);
    if (!known)
      return refuse(
        `invocation "${req.invocation}" is not in this worker's config (${this.config.file})`,
      );
    if (known.digest !== req.definition_digest)
      return refuse(
        `invocation "${req.invocation}" differs from this worker's config (definition ${known.digest.slice(0, 19)} in ${this.config.file}, master sent ${req.definition_digest.slice(0, 19)}): the master's config is another version`,
      );
    if (known.inv.docker && !this.docker)
      return refuse(
        `invocation "${req.invocation}" is a docker build and this worker has no usable Docker (${this.dockerProblem ?? 'not looked for'})`,
      );
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(req.job_id)) return refuse('invalid job id');
    const existing = this.jobs.get(req.job_id);
    if (existing) {
      // The master retried a StartJob whose answer it lost: the job is already ours.
      if (existing.unit === req.unit && existing.cacheKey === req.cache_key)
        return { accepted: true, reason: 'already running' };
      return refuse(`job id ${req.job_id} is in use`);
    }
    if (this.runningCount() >= this.slots)
      return refuse(`busy: ${this.runningCount()} of ${this.slots} slots in use`);
    const job: WorkerJob = {
      id: req.job_id,
      unit: req.unit,
      invocation: known.inv,
      cacheKey: req.cache_key,
      deps: req.deps,
      excludeInputs: req.exclude_inputs ?? [],
      excludedOutputs: req.excluded_outputs ?? [],
      ...(req.previous_cache_key ? { previousKey: req.previous_cache_key } : {}),
      phase: 'preparing',
      startedAt: Date.now(),
    };
    this.jobs.set(job.id, job);
    void this.runJob(job);
    return { accepted: true, reason: '' };
  }

  private async runJob(job: WorkerJob): Promise<void> {
    const base = {
      job_id: job.id,
      unit: job.unit,
      invocation: job.invocation.name,
      cache_key: job.cacheKey,
      started_at: job.startedAt,
      outputs: [] as OutputEntry[],
      output_bytes: 0,
      has_exit_code: false,
      exit_code: 0,
      signal: '',
      worker_fault: false,
      lost_deps: [] as string[],
      command_ms: 0,
    };
    let report: JobReport;
    let result: ResultManifest | undefined;
    /** Why the result is not cached (see `checkKey`). */
    let keyProblem: string | undefined;
    /** How the command ended, once it has (kept when saving its outputs fails). */
    let ended: Pick<JobReport, 'has_exit_code' | 'exit_code' | 'signal' | 'command_ms'> | undefined;
    try {
      const late = await this.lateHit(job);
      if (late) {
        report = {
          ...base,
          state: 'succeeded',
          reason: 'found in the cache after the cache query',
          ended_at: Date.now(),
          duration_ms: Date.now() - job.startedAt,
          outputs: late.outputs,
          from_cache: true,
        };
        this.finishJob(job, report);
        await this.report(report);
        return;
      }
      const mode = this.opts.keyCheck ?? 'warn';
      if (mode !== 'off') {
        try {
          await this.checkKey(job);
        } catch (err) {
          if (!(err instanceof KeyMismatchError) || mode === 'refuse') throw err;
          // Run, but its result is not this key's result: it stays out of the cache.
          keyProblem = err.message;
          this.log(`worker ${this.workerId}: warning: ${job.unit}: ${keyProblem}`);
        }
      }
      await this.prepare(job);
      if (job.stopped) throw new StoppedError(job.stopped);
      job.phase = 'running';
      const cacheFrom = job.invocation.docker ? await this.dockerCacheSource(job) : [];
      if (job.stopped) throw new StoppedError(job.stopped);
      const spec = job.invocation.docker
        ? dockerJobSpec(job.invocation, {
            cacheFrom,
            id: job.id,
            cwd: this.config.root,
            unit: job.unit,
            ...(this.units.get(job.unit)?.platform
              ? { platform: this.units.get(job.unit)!.platform! }
              : {}),
            docker: this.docker!.path,
            // The images of the docker builds it needs (restored by `prepare`), for its FROM.
            load: imagesToLoad(
              job.deps.map((d) => ({ unit: d.unit, paths: d.outputs.map((o) => o.path) })),
              (this.units.get(job.unit)?.platform ?? this.docker!.platform).toLowerCase(),
            ),
            parentEnv: this.executorEnv,
          })
        : commandJobSpec(job.invocation, { id: job.id, cwd: this.config.root });
      // Where and what it runs, for the command's own logs (not part of the cache key); the
      // config may not set these (WORKER_ENV in src/config/types.ts).
      Object.assign(spec.env, {
        DIST_BUILD_WORKER: this.workerId,
        DIST_BUILD_UNIT: job.unit,
        DIST_BUILD_CACHE_KEY: job.cacheKey,
      });
      const command = this.executor.start(spec);
      job.command = command;
      const pidFile = this.spawnedPgids.get(spec.id);
      this.spawnedPgids.delete(spec.id);
      const r = await command.result;
      if (pidFile) this.forgetJob(pidFile);
      if (job.stopped && r.state === 'stopped') throw new StoppedError(job.stopped);
      ended = {
        has_exit_code: r.exitCode !== null,
        exit_code: r.exitCode ?? 0,
        signal: r.signal ?? '',
        command_ms: r.commandMs ?? 0,
      };
      report = {
        ...base,
        ...ended,
        state: r.state,
        reason: r.reason,
        ended_at: r.endedAt,
        duration_ms: r.durationMs,
        output_bytes: r.outputBytes,
      };
      if (r.state === 'succeeded') {
        job.phase = 'saving';
        let outputs: OutputEntry[];
        let notStored: string | undefined;
        try {
          outputs = await saveOutputs(this.opts.store, this.config.root, this.outputsOf(job));
        } catch (err) {
          if (!isNoSpace(err)) throw err;
          // The disk under the store is full with nothing left to evict: the outputs are built
          // and in the tree; only the cache goes without them.
          notStored = `no room in the cache for its outputs (${(err as Error).message})`;
          this.log(`worker ${this.workerId}: warning: ${job.unit}: ${notStored}`);
          outputs = await digestOutputs(this.config.root, this.outputsOf(job));
        }
        await Promise.all(outputs.map((o) => this.workspace.mark(o.path, o.digest)));
        const manifest: ResultManifest = {
          format: RESULT_FORMAT,
          cacheKey: job.cacheKey,
          unit: job.unit,
          invocation: job.invocation.name,
          exitCode: 0,
          durationMs: r.durationMs,
          worker: this.workerId,
          createdAt: new Date().toISOString(),
          outputs,
        };
        if (keyProblem || notStored) report.reason = `not cached: ${keyProblem ?? notStored}`;
        else result = manifest;
        report.outputs = outputs;
      }
    } catch (err) {
      const stopped = err instanceof StoppedError;
      const rejected = err instanceof KeyMismatchError;
      // Outputs missing, or that cannot be packed (a symlink out of the tree, a FIFO): the same
      // on any worker.
      const badOutput =
        (err as Error).name === 'MissingOutputError' ||
        err instanceof OutputOutsideTreeError ||
        (job.phase === 'saving' && err instanceof UnsafeArchiveError);
      report = {
        ...base,
        // A command that exited 0 without its declared outputs: its exit code, not "no exit code".
        ...ended,
        state: stopped ? 'stopped' : rejected ? 'rejected' : 'failed',
        reason: stopped
          ? `stopped: ${(err as Error).message}`
          : rejected
            ? (err as Error).message
            : `${job.phase === 'preparing' ? 'cannot prepare' : job.phase === 'saving' ? 'cannot save outputs' : 'failed'}: ${(err as Error).message}`,
        ended_at: Date.now(),
        duration_ms: Date.now() - job.startedAt,
        output_bytes: job.command?.outputBytes ?? 0,
        // A command that did not produce its declared outputs, or produced ones that cannot be
        // packed, is the command's fault; a lost dependency is the cache's (the master rebuilds
        // it); anything else that broke around the command (restoring inputs, the store,
        // stopping) is ours.
        worker_fault: !badOutput && !(err instanceof LostDependencyError),
        lost_deps: err instanceof LostDependencyError ? [err.unit] : [],
      };
      if (!stopped)
        this.log(`worker ${this.workerId}: job ${job.id} (${job.unit}): ${report.reason}`);
    }
    this.finishJob(job, report);
    // The outputs' blobs are stored already. The report goes out first (its message leaves in this
    // turn of the event loop); the manifest that makes the result findable by later runs is
    // written right after, and `stop` waits for it before flushing the store. If that write
    // fails, the result is not cached (a warning), which costs a rebuild next time, never a wrong
    // result.
    const reported = this.report(report);
    if (result) {
      const manifest = result;
      const written = new Promise((r) => setImmediate(r))
        .then(() => this.opts.store.putResult(manifest))
        .catch((err: unknown) => {
          this.log(`warning: cannot store the result of ${job.unit}: ${(err as Error).message}`);
        })
        .finally(() => {
          this.resultWrites.delete(written);
          this.statsSoon();
        });
      this.resultWrites.add(written);
      await written;
    }
    await reported;
  }

  private useConfig(config: Config): void {
    this.config = config;
    this.invocations = new Map(
      config.invocations.map((inv) => [inv.name, { inv, digest: definitionDigest(inv) }]),
    );
    this.units = new Map(expandUnits(config).map((u) => [u.id, u]));
  }

  /**
   * Reads the config file again when it changed since it was read (a long-lived pool worker
   * whose checkout was updated); whether it did. Its invocations and units are what later jobs
   * are checked against; the rest (stores, the work tree) stays as the worker started. A file
   * that does not load now leaves the config as it was (a warning).
   */
  private reloadConfig(): boolean {
    const file = this.config.file;
    const stamp = fileStamp(file);
    if (stamp === this.configStamp) return false;
    this.configStamp = stamp;
    try {
      this.useConfig(parseConfig(decodeConfig(readFileSync(file), file), file));
      this.log(`worker ${this.workerId}: ${file} changed: read it again`);
      return true;
    } catch (err) {
      const why =
        err instanceof ConfigError
          ? err.issues.map(formatIssue).join('; ')
          : `${file}: ${(err as Error).message}`;
      this.log(
        `worker ${this.workerId}: warning: ${file} changed and cannot be read now (${why}): keeping the config it had`,
      );
      return false;
    }
  }

  private finishJob(job: WorkerJob, report: JobReport): void {
    job.report = report;
    job.phase = 'done';
    this.finishedOrder.push(job.id);
    void this.pruneFinished();
  }

  /**
   * A job whose key the last cache query could not settle in time (see `unsettled`): its result
   * looked up in the stores again, waiting up to `lateHitWaitMs` for them (a result found in a
   * slower store is copied into the local one, blobs first). The result, or undefined: build it.
   */
  private async lateHit(job: WorkerJob): Promise<ResultManifest | undefined> {
    if (!this.unsettled.delete(job.cacheKey)) return undefined;
    // The wait is for the stores to come up, once: when an earlier job waited in vain and its
    // lookup still hangs, a chain of jobs would otherwise each wait the whole time again.
    if (this.stuckLookup) return undefined;
    const wait = this.opts.lateHitWaitMs ?? LATE_HIT_WAIT_MS;
    let timer: NodeJS.Timeout | undefined;
    let waitedInVain = false;
    const lookup = this.opts.store.getResult(job.cacheKey).catch((err: unknown) => {
      this.log(`warning: ${job.unit}: cache lookup failed: ${(err as Error).message}`);
      return null;
    });
    const manifest = await Promise.race([
      lookup,
      new Promise<null>(
        (done) =>
          (timer = setTimeout(() => {
            waitedInVain = true;
            done(null);
          }, wait)),
      ),
    ]).finally(() => clearTimeout(timer));
    if (waitedInVain) {
      const stuck: Promise<unknown> = lookup.finally(() => {
        if (this.stuckLookup === stuck) this.stuckLookup = undefined;
      });
      this.stuckLookup = stuck;
    }
    if (!manifest) return undefined;
    if (!holdsDeclaredOutputs(manifest.outputs, job.invocation.outputs)) return undefined;
    this.log(`worker ${this.workerId}: ${job.unit}: found in the cache after the cache query`);
    return manifest;
  }

  /**
   * Computes the job's cache key in this worker's own tree (its input files, the master's keys
   * of its dependencies) and throws a `KeyMismatchError` when it is not the key the master sent:
   * a checkout at another commit, or files changed since the master computed the keys. Run
   * anyway, the command would build from other files than the key says, and the result would be
   * stored under that key for every later run to take. Checks run one at a time (they share the
   * file index in the work tree, `.dist-build/index`, which makes them cheap when nothing changed).
   */
  private checkKey(job: WorkerJob): Promise<void> {
    const check = this.keyChecks.then(async () => {
      const config = this.config;
      const unit = this.units.get(job.unit);
      if (!unit) throw new KeyMismatchError(`unit "${job.unit}" is not in this worker's config`);
      const keys = await computeCacheKeys(config, [unit], {
        // Its own cache directory too (`--cache-dir` in its tree), which the master cannot know.
        exclude: [...job.excludeInputs, ...outExclusion(config.root, this.opts.cacheDir)],
        ...(job.excludedOutputs.length ? { outputs: job.excludedOutputs } : {}),
        needKeys: new Map(job.deps.map((d) => [d.unit, d.cache_key])),
      });
      const mine = keys.get(unit.id)!.cacheKey;
      if (mine === job.cacheKey) return;
      throw new KeyMismatchError(
        `the inputs of ${job.unit} in this worker's tree (${config.root}) give cache key ` +
          `${mine.slice(0, 19)}, the master's is ${job.cacheKey.slice(0, 19)}: this checkout ` +
          'differs from the one the master computed the keys in (another commit, files changed ' +
          'since the run started, or files commands wrote into these inputs without declaring ' +
          'them as outputs, such as __pycache__ or other by-products); ' +
          `\`dist-build keys ${job.unit} --json > /tmp/keys.json\` in the master's tree, then ` +
          `\`dist-build keys ${job.unit} --diff /tmp/keys.json\` in this one, names the files`,
      );
    });
    this.keyChecks = check.catch(() => {});
    return check;
  }

  /**
   * What a docker build takes cached layers from (`--cache-from`): the unit's image when this
   * daemon has one under its tags (built here before: its own layer cache has the layers, and the
   * image names them), else the image of the unit's previous result
   * (the master's `previous_cache_key`), loaded from the store into the daemon: a worker new to
   * the unit (another took it before, or it is new to the pool) builds with that result's layers
   * instead of from scratch. Best effort: nothing, with a warning, when that image cannot be had.
   */
  private async dockerCacheSource(job: WorkerJob): Promise<string[]> {
    const docker = this.docker!;
    const env = this.executorEnv;
    for (const tag of job.invocation.docker!.tags)
      if (await hasImage(docker, tag, env)) return [tag];
    if (!job.previousKey) return [];
    try {
      const m = await this.opts.store.getResult(job.previousKey);
      const image = m?.outputs.find((o) => isImageArchive(o.path));
      if (!m || !image) return [];
      const refs = await this.withRestored(image, 'cache-from-', (archive) =>
        loadImage(docker, archive, env, job.invocation.timeout * 1000),
      );
      this.log(
        `worker ${this.workerId}: ${job.unit}: cached layers from its previous image (built by ${m.worker}, ${job.previousKey.slice(0, 19)})`,
      );
      return refs;
    } catch (err) {
      this.log(
        `worker ${this.workerId}: warning: ${job.unit}: no cached layers from its previous image: ${(err as Error).message}`,
      );
      return [];
    }
  }

  /**
   * Restores one output from the store into a temp dir of its own (under `.dist-build/tmp`),
   * calls `fn` with its path there, and removes the dir.
   */
  private async withRestored<T>(
    entry: OutputEntry,
    prefix: string,
    fn: (path: string) => Promise<T>,
  ): Promise<T> {
    const tmp = join(this.config.root, '.dist-build', 'tmp');
    await mkdir(tmp, { recursive: true });
    const scratch = await mkdtemp(join(tmp, prefix));
    try {
      await restoreOutputs(blobOpenerFor(this.opts.store), scratch, [entry], {
        stagingDir: scratch,
      });
      return await fn(join(scratch, entry.path));
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /** The paths a job saves: its declared outputs, and a docker build's image archive. */
  private outputsOf(job: WorkerJob): string[] {
    return unitOutputs(job.invocation, job.unit);
  }

  /** Brings every dependency output into the work tree; clears this job's own outputs. */
  private async prepare(job: WorkerJob): Promise<void> {
    const root = this.config.root;
    for (const dep of job.deps) {
      for (const out of dep.outputs) {
        if ((await this.workspace.held(out.path)) === out.digest) continue;
        await this.workspace.withLock(out.path, async () => {
          if ((await this.workspace.held(out.path)) === out.digest) return;
          try {
            await this.ensureBlob(out.digest, dep.holders);
            await restoreOutputs(blobOpenerFor(this.opts.store), root, [out as OutputEntry]);
          } catch (err) {
            // A corrupt blob is never extracted; reading it to the end lets the store see the
            // mismatch and remove it (extraction may have stopped early on garbage). One that no
            // worker can send is gone too. Either way the dependency must be built again.
            await drain(await this.opts.store.openBlob(out.digest).catch(() => null));
            throw new LostDependencyError(dep.unit, (err as Error).message);
          }
          await this.workspace.mark(out.path, out.digest);
        });
      }
      // Used, so kept: the dependency's result comes into the local store (its blobs are there).
      this.pullResult(dep.cache_key);
    }
    for (const path of this.outputsOf(job)) {
      await this.workspace.withLock(path, () => this.workspace.clear(path));
    }
  }

  /** Makes sure the local store holds `digest`, fetching it from a holder if needed. */
  private async ensureBlob(digest: string, holders: Holder[]): Promise<void> {
    const store = this.opts.store;
    if (
      store.pullBlob ? await store.pullBlob(digest) : (await store.hasBlobs([digest])).has(digest)
    )
      return;
    const errors: string[] = [];
    for (const h of holders) {
      if (h.worker_id === this.workerId) continue;
      for (const conn of h.connections) {
        try {
          const client = this.peer(conn.socket);
          const stream = client.FetchBlob({ worker_uuid: '', digest }, callMetadata(this.security));
          await this.opts.store.putBlob(chunksOf(stream), digest);
          return;
        } catch (err) {
          errors.push(`${h.worker_id} (${conn.socket}): ${(err as Error).message}`);
        }
      }
    }
    throw new Error(
      `blob ${digest.slice(0, 19)} is not in the local store${errors.length ? ` and no holder could send it: ${errors.join('; ')}` : ' and no other worker holds it'}`,
    );
  }

  private peer(socket: string): WorkerClient {
    let c = this.peers.get(socket);
    if (!c) {
      const a = parseAddress(socket);
      const p = protocol();
      c = new p.WorkerClient(
        grpcTarget(a),
        channelCredentials(a, this.security),
        channelOptions(a),
      );
      this.peers.set(socket, c);
    }
    return c;
  }

  /**
   * Sends a finished job's report: on the heartbeat stream when it is up (acknowledged by the
   * master), else, or when no ack comes, with ReportResult calls; failing those, with the next
   * registration. The master drops repeats.
   */
  private async report(report: JobReport): Promise<void> {
    if (await this.reportOnStream(report)) return;
    for (let attempt = 0; attempt < 3 && !this.stopping; attempt++) {
      try {
        await this.registering;
        await call(
          this.master!,
          this.master!.ReportResult,
          { worker_uuid: this.uuid, report },
          callMetadata(this.security),
          RPC_TIMEOUT_MS,
        );
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
      }
    }
    // Kept and sent with the next registration.
    this.unreported.push(report);
  }

  private reportOnStream(report: JobReport): Promise<boolean> {
    const stream = this.heartbeats;
    if (!stream || this.registering || this.reportAcks.has(report.job_id)) {
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(false), REPORT_ACK_MS);
      const settle = (acked: boolean) => {
        clearTimeout(timer);
        this.reportAcks.delete(report.job_id);
        resolve(acked);
      };
      this.reportAcks.set(report.job_id, settle);
      stream.write(this.streamMessage({ reports: [report] }));
    });
  }

  private async pruneFinished(): Promise<void> {
    while (this.finishedOrder.length > KEEP_FINISHED) {
      const id = this.finishedOrder.shift()!;
      const job = this.jobs.get(id);
      this.jobs.delete(id);
      await job?.command?.dispose();
    }
  }

  private async streamOutput(
    c: grpc.ServerWritableStream<StreamOutputRequest, OutputChunkMsg>,
  ): Promise<void> {
    const job = this.jobs.get(c.request.job_id);
    if (!job) {
      failStream(c, grpc.status.NOT_FOUND, `no job ${c.request.job_id}`);
      return;
    }
    let cancelled = false;
    c.on('cancelled', () => (cancelled = true));
    try {
      // A job still preparing has no command yet: wait for it (following) or send nothing.
      while (!job.command && job.phase !== 'done' && c.request.follow && !cancelled) {
        await new Promise((r) => setTimeout(r, 20));
      }
      if (job.command) {
        for await (const chunk of job.command.output({
          from: c.request.from,
          follow: c.request.follow,
        })) {
          if (cancelled) break;
          if (!c.write({ offset: chunk.offset, stream: chunk.stream, data: chunk.data })) {
            await new Promise((r) => c.once('drain', r));
          }
        }
      }
      c.end();
    } catch (err) {
      failStream(c, grpc.status.INTERNAL, (err as Error).message);
    }
  }

  /**
   * The master's cache query. Nothing is copied between layers here (every worker answers it for
   * every unit: copying would fetch every cached result's blobs from a remote store once per
   * worker); blobs come into the local store when they are used (`ensureBlob`, `sendBlob`).
   */
  private async hasCache(keys: string[]) {
    const store = this.opts.store;
    let found: Map<string, ResultManifest>;
    if (store.peekResults) {
      const unsettled = new Set<string>();
      found = await store.peekResults(keys, {
        slowLayersMs: this.opts.cacheQueryBudgetMs ?? CACHE_QUERY_REMOTE_BUDGET_MS,
        unsettled,
      });
      for (const key of keys) {
        if (unsettled.has(key)) this.unsettled.add(key);
        else this.unsettled.delete(key);
      }
    } else {
      found = new Map();
      for (const key of await store.hasResults(keys)) {
        const m = await store.getResult(key);
        if (m) found.set(key, m);
      }
    }
    const results = [];
    for (const key of keys) {
      const m = found.get(key);
      if (m)
        results.push({
          cache_key: key,
          outputs: m.outputs,
          duration_ms: m.durationMs,
          worker: m.worker,
        });
    }
    this.statsSoon();
    return { cache_keys: results.map((r) => r.cache_key), results };
  }

  /**
   * Copies a result used from a remote store into the local one, in the background: nothing waits
   * on a remote store for it but `stop`, and that only briefly (see `PULL_GRACE_MS`).
   */
  private pullResult(cacheKey: string): void {
    const store = this.opts.store;
    if (!store.pullResult) return;
    const pull = store.pullResult(cacheKey).finally(() => this.pulls.delete(pull));
    this.pulls.add(pull);
  }

  /**
   * Writes the store's counters a little later (once for a burst of lookups and results), so
   * `dist-build cache stats` sees a long-lived worker's lookups before it stops.
   */
  private statsSoon(): void {
    if (this.statsTimer || this.stopping || !this.opts.store.writeStats) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = undefined;
      void this.opts.store.writeStats?.();
    }, STATS_DELAY_MS);
    this.statsTimer.unref();
  }

  private async sendBlob(
    c: grpc.ServerWritableStream<unknown, BlobChunk>,
    digest: string,
  ): Promise<void> {
    try {
      // From a remote layer, the blob comes into the local store first (it is being used).
      await this.opts.store.pullBlob?.(digest);
      const stream = await this.opts.store.openBlob(digest);
      if (!stream) {
        failStream(c, grpc.status.NOT_FOUND, `no blob ${digest}`);
        return;
      }
      let cancelled = false;
      c.on('cancelled', () => (cancelled = true));
      for await (const data of stream as AsyncIterable<Buffer>) {
        // A reader that gives up early (its tar parser met garbage) still leaves the rest to be
        // read here: the check at the end is what finds a corrupt blob and removes it.
        if (cancelled) continue;
        if (!c.write({ data, size: 0 })) await new Promise((r) => c.once('drain', r));
      }
      if (!cancelled) c.end();
    } catch (err) {
      failStream(
        c,
        err instanceof CorruptBlobError ? grpc.status.DATA_LOSS : grpc.status.INTERNAL,
        (err as Error).message,
      );
    }
  }

  private async exportOutput(
    c: grpc.ServerWritableStream<ExportRequest, BlobChunk>,
  ): Promise<void> {
    const { unit, cache_key, path, digest } = c.request;
    let blob = digest;
    if (!blob) {
      const m = await this.opts.store.getResult(cache_key).catch(() => null);
      blob = m?.outputs.find((o) => o.path === path)?.digest ?? '';
    }
    if (!blob) {
      failStream(
        c,
        grpc.status.NOT_FOUND,
        `this worker holds no output ${path} of ${unit} (${cache_key.slice(0, 19)})`,
      );
      return;
    }
    await this.sendBlob(c, blob);
    // In use, so kept: the result comes into the local store with its blobs (offline next time).
    this.pullResult(cache_key);
  }
}

class StoppedError extends Error {}

/** Reads a stream to its end, ignoring its data and errors. */
async function drain(stream: Readable | null): Promise<void> {
  if (!stream) return;
  try {
    for await (const _ of stream as AsyncIterable<Buffer>) void _;
  } catch {
    // a corrupt blob ends with an error: that is the point
  }
}

/** A refusal of the same unit for the same reason is logged once per this long. */
const REFUSAL_LOG_MS = 30_000;

/** The unit's inputs in this worker's tree give another cache key than the master's. */
class KeyMismatchError extends Error {}

export type KeyCheckMode = 'warn' | 'refuse' | 'off';
export const KEY_CHECK_MODES: readonly KeyCheckMode[] = ['warn', 'refuse', 'off'];

class LostDependencyError extends Error {
  constructor(
    readonly unit: string,
    why: string,
  ) {
    super(`the outputs of ${unit} cannot be had: ${why}`);
  }
}

/** The data of a stream of BlobChunk messages, as a Readable of buffers. */
export function chunksOf(stream: grpc.ClientReadableStream<{ data: Buffer }>): Readable {
  // grpc-js ends the stream and then emits the call's error as a plain event: held from the
  // start, so that a call failing before the consumer reads (a store that checks something
  // first) neither crashes the process (no listener yet) nor passes for a complete blob.
  let failed: unknown;
  stream.on('error', (err) => (failed ??= err));
  return Readable.from(
    (async function* () {
      for await (const chunk of stream as AsyncIterable<{ data: Buffer }>) {
        if (chunk.data.length) yield chunk.data;
      }
      if (failed !== undefined) throw failed;
    })(),
  );
}

/**
 * Removes the sockets dead workers left in the temp dir (`dist-build-worker-<pid>.<n>.sock`, made
 * when a cache dir's path was too long for a socket). They name no cache dir: one whose process
 * is gone here and that refuses a connection is stale (a worker in another PID namespace sharing
 * this temp dir still answers). Files that cannot be removed are left.
 */
async function reapTmpSockets(): Promise<void> {
  const dir = os.tmpdir();
  const ownerOf = (name: string) => {
    if (!name.startsWith(TMP_SOCKET_PREFIX)) return undefined;
    const m = /^([0-9]+)\.[0-9]+\.sock$/.exec(name.slice(TMP_SOCKET_PREFIX.length));
    return m ? Number(m[1]) : undefined;
  };
  for (const { name } of leftByDead(dir, ownerOf)) {
    const path = join(dir, name);
    try {
      if (!lstatSync(path).isSocket() || (await answers(path))) continue;
      rmSync(path, { force: true });
    } catch {
      // gone, or not ours to remove
    }
  }
}

/** The worker process a `running/` file belongs to (`<pid>.<agent>.<n>`). */
function pgidFileOwner(name: string): number {
  return Number(name.slice(0, name.indexOf('.')));
}

/**
 * Kills the process group a `running/` file names (if any, and if its leader's pid is not now
 * another process's) and removes the file.
 */
function endGroupOf(file: string): number | undefined {
  let ended: number | undefined;
  try {
    const [pgidText = '', started] = readFileSync(file, 'utf8').trim().split(/\s+/);
    const pgid = Number(pgidText);
    const now = started ? processStartTime(pgid) : undefined;
    if (Number.isInteger(pgid) && pgid > 1 && (now ?? started) === started) {
      process.kill(-pgid, 'SIGKILL');
      ended = pgid;
    }
  } catch {
    // already gone
  }
  try {
    rmSync(file, { force: true });
  } catch {
    // not ours to remove
  }
  return ended;
}

/**
 * Ends the commands a worker process that is gone (or being killed) left running on `cacheDir`
 * at once: `dist-build run` calls it for a local worker it lost, before that worker's jobs run
 * again, since all its workers share one work tree. Returns the process groups ended.
 */
export function endJobsLeftBy(cacheDir: string, pid: number): number[] {
  const dir = join(cacheDir, 'running');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => pgidFileOwner(n) === pid)
    .map((n) => endGroupOf(join(dir, n)))
    .filter((g): g is number => g !== undefined);
}

/** Removes the job log directories of workers that were killed (`<tmp>/dist-build-jobs-<pid>-*`). */
function reapJobLogs(): void {
  const dir = os.tmpdir();
  const ownerOf = (name: string) =>
    name.startsWith(JOB_LOG_PREFIX)
      ? Number(name.slice(JOB_LOG_PREFIX.length).split('-')[0])
      : undefined;
  const uid = process.getuid?.();
  for (const { name } of leftByDead(dir, ownerOf)) {
    const path = join(dir, name);
    try {
      // Only this user's: another's cannot be removed from a sticky /tmp, and is not ours to.
      const st = lstatSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      rmSync(path, { recursive: true, force: true });
    } catch {
      // left for its owner
    }
  }
}

/** Whether something accepts connections on unix socket `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A file's inode, size and modification time, to tell whether it changed; '' when it is gone. */
function fileStamp(file: string): string {
  try {
    const st = statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return '';
  }
}
