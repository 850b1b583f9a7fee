/**
 * The master: membership of the cluster and the Master service.
 *
 * Stateless on purpose (seed 000): members, leases and run state live in memory. When the master
 * restarts, workers notice (a failed heartbeat, or REREGISTER for a uuid the new master never
 * issued) and register again by themselves, bringing the jobs they still run and the results they
 * could not report; a run started again on the new master adopts those jobs instead of starting
 * them twice, and finds finished results in the workers' stores.
 *
 * Leases: a worker heartbeats every `heartbeatMs`; one that has not been heard from for
 * `leaseTtlMs` is dead and leaves the membership (the scheduler then re-places its work).
 * Worker UUIDs are random and never reused by one master.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  call,
  protocol,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JobReport,
  type LogsRequest,
  type MasterHandlers,
  type Member,
  type MemberStatus,
  type OutputChunkMsg,
  type RunningJob,
  type StartJobRequest,
  type StartJobResponse,
  type StatusResponse,
  type UnitStatus,
  type WorkerClient,
} from './protocol.js';
import {
  authorize,
  callMetadata,
  channelCredentials,
  channelOptions,
  failStream,
  grpcTarget,
  parseAddress,
  refusedCall,
  startServer,
  type Address,
  type Security,
  type ServerHandle,
} from './transport.js';
import { VERSION } from '../version.js';

export interface MasterOptions {
  listen: Address[];
  security: Security;
  /** Heartbeat period asked of workers (default 1000 ms). */
  heartbeatMs?: number;
  /** A worker not heard from for this long is dead (default 3 x heartbeatMs + 500 ms). */
  leaseTtlMs?: number;
  log?: (message: string) => void;
}

export interface MemberState {
  uuid: string;
  id: string;
  member: Member;
  running: RunningJob[];
  registeredAt: number;
  lastHeartbeatAt: number;
  done: number;
  /** Channel to its Worker service, opened on first use. */
  readonly client: WorkerClient;
  closeClient(): void;
  /** Told to shut down at its next heartbeat. */
  shutdown: boolean;
  /** Its heartbeat stream, once the first message came: jobs start through it (`startJob`). */
  stream?: HeartbeatStream;
}

type HeartbeatStream = grpc.ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>;

/** Job ids of reports already handled, kept so a report sent twice (its ack lost) counts once. */
const SEEN_REPORTS = 10_000;
/** How long a stopping master waits for the `logs` calls it is answering. */
const LOG_RELAY_GRACE_MS = 1000;

/**
 * The dist-build release a worker runs (its `version` annotation), when it is not this one's:
 * `dist-build 0.0.9`, or `an older release of dist-build` for one that does not say.
 */
export function otherRelease(member: Member): string | undefined {
  const v = member.annotations?.version;
  if (v === VERSION) return undefined;
  return v ? `dist-build ${v}` : 'an older release of dist-build';
}

export interface MasterEvents {
  joined: [MemberState, { running: RunningJob[]; unreported: JobReport[] }];
  left: [MemberState, string];
  report: [MemberState | undefined, JobReport];
}

/** What the scheduler of the current run exposes to `dist-build status` and `logs`. */
export interface RunView {
  config: string;
  units(): UnitStatus[];
  /** Where the job of an invocation or unit runs/ran: worker uuid and job id. */
  jobOf(nameOrUnit: string): { uuid: string; jobId: string } | undefined;
}

export class Master extends EventEmitter<MasterEvents> {
  readonly id = randomUUID();
  readonly startedAt = Date.now();
  readonly heartbeatMs: number;
  readonly leaseTtlMs: number;
  private readonly members = new Map<string, MemberState>();
  private readonly log: (m: string) => void;
  private server: ServerHandle | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private shutdownAll = false;
  private stopping = false;
  /** `waitForWorkers` in progress: how many, and until when (for Status). */
  private waiting: { n: number; until: number } | undefined;
  /** Registrations refused (wrong token, a certificate of another role), by reason. */
  private readonly refusedJoins = new Map<string, number>();
  /** `logs` calls being answered: a stopping master lets them finish (briefly). */
  private readonly relays = new Set<Promise<void>>();
  /** Jobs started on a heartbeat stream, waiting for the worker's answer. */
  private readonly pendingStarts = new Map<
    string,
    { member: MemberState; settle: (r: StartJobResponse | Error) => void }
  >();
  private readonly seenReports = new Set<string>();
  private lastLeaseCheck = 0;
  /** Reports that came while no run was attached (a worker back after a restart): kept for it. */
  private unclaimed: { m: MemberState | undefined; r: JobReport }[] = [];
  private attached: RunView | undefined;
  /**
   * A run is coming (a `dist-build master` or `run` waiting for its workers): `logs --follow`
   * waits for it rather than answering that nothing has started. Cleared when a run attaches.
   */
  runExpected = false;

  /** The run in progress, for Status and Logs. */
  get run(): RunView | undefined {
    return this.attached;
  }

  set run(view: RunView | undefined) {
    this.attached = view;
    if (view) this.runExpected = false;
  }

  constructor(private readonly opts: MasterOptions) {
    super();
    this.log = opts.log ?? ((m) => process.stderr.write(`${m}\n`));
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.leaseTtlMs = opts.leaseTtlMs ?? this.heartbeatMs * 3 + 500;
  }

  get addresses(): Address[] {
    return this.server?.addresses ?? [];
  }

  async start(): Promise<void> {
    this.server = await startServer(
      this.opts.listen,
      [{ definition: protocol().MasterService, handlers: this.handlers() }],
      this.opts.security,
      (m) => this.log(`master: ${m}`),
    );
    const tick = Math.max(20, Math.min(this.heartbeatMs, this.leaseTtlMs) / 2);
    this.lastLeaseCheck = Date.now();
    this.leaseTimer = setInterval(() => this.expireLeases(tick), tick);
    this.leaseTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    // The workers' heartbeat streams end (each worker hears that the master closed it), rather
    // than having their next beat answered REREGISTER, "the master does not know this worker",
    // while the server closes.
    this.stopping = true;
    this.runExpected = false;
    await this.settleLogRelays();
    for (const m of this.members.values()) {
      m.closeClient();
      m.stream?.end();
    }
    this.members.clear();
    await this.server?.close();
  }

  /**
   * A `logs --follow` of the run's last job (a quick one, done just before the run ended) still
   * has that job's output to relay from its worker: waits for the relays in progress (at most
   * LOG_RELAY_GRACE_MS). Call it before telling the workers to go, which takes the output away.
   */
  async settleLogRelays(): Promise<void> {
    if (this.relays.size) {
      await Promise.race([
        Promise.allSettled([...this.relays]),
        new Promise((r) => setTimeout(r, LOG_RELAY_GRACE_MS).unref()),
      ]);
    }
  }

  /** Live members, in registration order. */
  live(): MemberState[] {
    return [...this.members.values()];
  }

  member(uuid: string): MemberState | undefined {
    return this.members.get(uuid);
  }

  /** Resolves when at least `n` workers are registered; rejects after `timeoutMs`. */
  waitForWorkers(n: number, timeoutMs: number): Promise<void> {
    if (this.members.size >= n) return Promise.resolve();
    this.waiting = { n, until: Date.now() + timeoutMs };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        this.off('joined', onJoin);
        // Workers that tried and were refused are why, often: said here, not only in the log.
        const refused = [...this.refusedJoins].map(([why, k]) => `${k}x ${why}`).join(', ');
        reject(
          new Error(
            `only ${this.members.size} of ${n} workers registered within ${Math.round(timeoutMs / 1000)}s${refused ? ` (refused: ${refused})` : ''}`,
          ),
        );
      }, timeoutMs);
      timer.unref();
      const onJoin = () => {
        if (this.members.size < n) return;
        this.waiting = undefined;
        clearTimeout(timer);
        this.off('joined', onJoin);
        resolve();
      };
      this.on('joined', onJoin);
    });
  }

  /** Every worker is told to shut down at its next heartbeat (the run that started them is over). */
  shutdownWorkers(): void {
    this.shutdownAll = true;
    for (const m of this.members.values()) m.shutdown = true;
  }

  metadata(): grpc.Metadata {
    return callMetadata(this.opts.security);
  }

  private remove(m: MemberState, why: string): void {
    if (this.members.get(m.uuid) !== m) return;
    this.members.delete(m.uuid);
    m.closeClient();
    this.log(`master: worker ${m.id} left: ${why}`);
    this.emit('left', m, why);
  }

  private expireLeases(tick: number): void {
    const now = Date.now();
    // This timer came late: the master's own event loop was busy, and heartbeats may be waiting
    // in it unread. Nobody is expired on this round (a stalled master must not lose its workers).
    const late = now - this.lastLeaseCheck - tick;
    this.lastLeaseCheck = now;
    if (late > this.leaseTtlMs / 2) return;
    for (const m of this.members.values()) {
      if (now - m.lastHeartbeatAt > this.leaseTtlMs) {
        this.remove(m, `lease expired (no heartbeat for ${now - m.lastHeartbeatAt} ms)`);
      }
    }
  }

  private uniqueId(wanted: string): string {
    const taken = new Set([...this.members.values()].map((m) => m.id));
    if (!taken.has(wanted)) return wanted;
    for (let i = 2; ; i++) if (!taken.has(`${wanted}-${i}`)) return `${wanted}-${i}`;
  }

  private handlers(): MasterHandlers {
    const sec = this.opts.security;
    const guard = (
      c: Parameters<typeof refusedCall>[0],
      method: string,
      roles: ('worker' | 'client' | 'master')[],
    ) => {
      const err = authorize(c, sec, roles, method);
      if (err) this.log(`master: ${refusedCall(c, err.reason)}`);
      return err;
    };
    return {
      Register: (c, cb) => {
        const err = guard(c, 'Register', ['worker']);
        if (err) {
          this.refusedJoins.set(err.reason, (this.refusedJoins.get(err.reason) ?? 0) + 1);
          return cb(err);
        }
        const req = c.request;
        const conn = req.member?.connections?.[0];
        if (!req.member?.worker_id || !conn) {
          return cb({
            code: grpc.status.INVALID_ARGUMENT,
            details: 'Register needs a member with a worker_id and at least one connection',
          } as grpc.ServiceError);
        }
        let address: Address;
        try {
          address = parseAddress(conn.socket);
          channelCredentials(address, sec); // checks the security rules for that address
        } catch (e) {
          return cb({
            code: grpc.status.INVALID_ARGUMENT,
            details: `connection ${conn.socket}: ${(e as Error).message}`,
          } as grpc.ServiceError);
        }
        const now = Date.now();
        // The channel to the worker is made on first use (most heartbeat-only members never need it).
        let client: WorkerClient | undefined;
        const state: MemberState = {
          uuid: randomUUID(),
          id: this.uniqueId(req.member.worker_id),
          member: req.member,
          running: req.running,
          registeredAt: now,
          lastHeartbeatAt: now,
          done: 0,
          get client() {
            return (client ??= new (protocol().WorkerClient)(
              grpcTarget(address),
              channelCredentials(address, sec),
              channelOptions(address),
            ));
          },
          closeClient: () => client?.close(),
          shutdown: this.shutdownAll,
        };
        // Another live worker has this id: this one gets `<id>-2`. Said, since the id is the
        // worker's placement slot, and which of the two gets the plain id can change every time
        // they join (a master restart), moving their invocations away from their warm caches.
        const holder =
          state.id !== req.member.worker_id
            ? [...this.members.values()].find((m) => m.id === req.member!.worker_id)
            : undefined;
        this.members.set(state.uuid, state);
        this.log(
          `master: worker ${state.id} joined from ${conn.socket}${req.running.length ? ` with ${req.running.length} running job(s)` : ''}`,
        );
        const release = otherRelease(req.member);
        if (release) {
          this.log(
            `master: warning: worker ${state.id} runs ${release}, this master ${VERSION}: ` +
              'where their releases compute cache keys differently, it refuses (or builds without caching) every job; run one release on every machine',
          );
        }
        if (state.id !== req.member.worker_id) {
          this.log(
            `master: warning: worker id ${req.member.worker_id} is taken${holder ? ` by the worker at ${holder.member.connections[0]?.socket ?? '?'}` : ''}: the worker from ${conn.socket} is ${state.id}; give each worker its own --id`,
          );
        }
        cb(null, {
          worker_uuid: state.uuid,
          worker_id: state.id,
          lease_ttl_ms: this.leaseTtlMs,
          heartbeat_ms: this.heartbeatMs,
          master_id: this.id,
        });
        this.emit('joined', state, { running: req.running, unreported: req.unreported });
        for (const r of req.unreported) this.acceptReport(state, r);
      },
      Heartbeat: (stream) => {
        const err = guard(stream, 'Heartbeat', ['worker']);
        if (err) {
          failStream(stream, err.code, err.details);
          return;
        }
        let member: MemberState | undefined;
        stream.on('data', (req: HeartbeatRequest) => {
          const m = this.members.get(req.worker_uuid);
          if (!m) {
            if (!this.stopping) stream.write(this.answer('REREGISTER'));
            stream.end();
            return;
          }
          if (member !== m) {
            member = m;
            m.stream = stream;
          }
          m.lastHeartbeatAt = Date.now();
          for (const a of req.acks) {
            const p = this.pendingStarts.get(a.job_id);
            if (p?.member === m) p.settle({ accepted: a.accepted, reason: a.reason });
          }
          if (req.reports.length) {
            const acks = req.reports.filter((r) => r.job_id).map((r) => r.job_id);
            stream.write({ ...this.answer('NONE'), report_acks: acks });
            for (const r of req.reports) if (r.job_id) this.acceptReport(m, r);
          }
          if (req.stats) {
            m.member.stats = req.stats;
            m.running = req.running;
            stream.write(this.answer(m.shutdown ? 'SHUTDOWN' : 'NONE'));
          }
        });
        // The worker's heartbeat stream closing means its process or its connection is gone.
        const closed = (why: string) => {
          if (member) {
            if (member.stream === stream) member.stream = undefined;
            for (const p of [...this.pendingStarts.values()]) {
              if (p.member === member) p.settle(new Error(`${member.id}: ${why}`));
            }
            this.remove(member, why);
          }
          member = undefined;
        };
        stream.on('end', () => {
          stream.end();
          closed('its heartbeat stream ended');
        });
        stream.on('error', () => closed('its connection broke'));
        stream.on('cancelled', () => closed('its connection broke'));
      },
      Deregister: (c, cb) => {
        const err = guard(c, 'Deregister', ['worker']);
        if (err) return cb(err);
        const m = this.members.get(c.request.worker_uuid);
        if (m) this.remove(m, `deregistered (${c.request.reason || 'no reason given'})`);
        cb(null, {});
      },
      ReportResult: (c, cb) => {
        const err = guard(c, 'ReportResult', ['worker']);
        if (err) return cb(err);
        const m = this.members.get(c.request.worker_uuid);
        if (m) m.lastHeartbeatAt = Date.now();
        if (!c.request.report?.job_id) {
          return cb({
            code: grpc.status.INVALID_ARGUMENT,
            details: 'ReportResult needs a report with a job_id',
          } as grpc.ServiceError);
        }
        cb(null, { accepted: true, reason: '' });
        this.acceptReport(m, c.request.report);
      },
      Status: (c, cb) => {
        const err = guard(c, 'Status', ['client', 'master', 'worker']);
        if (err) return cb(err);
        cb(null, this.status());
      },
      Logs: (c) => {
        const err = guard(c, 'Logs', ['client', 'master']);
        if (err) return failStream(c, err.code, err.details);
        const relay = this.relayLogs(c).finally(() => this.relays.delete(relay));
        this.relays.add(relay);
      },
    };
  }

  status(): StatusResponse {
    const members: MemberStatus[] = this.live().map((m) => ({
      worker_uuid: m.uuid,
      member: { ...m.member, worker_id: m.id },
      running: m.running,
      registered_at: m.registeredAt,
      last_heartbeat_at: m.lastHeartbeatAt,
      done: m.done,
    }));
    return {
      master_id: this.id,
      started_at: this.startedAt,
      members,
      config: this.run?.config ?? '',
      units: this.run?.units() ?? [],
      waiting_for: this.waiting?.n ?? 0,
      waiting_until: this.waiting?.until ?? 0,
    };
  }

  private async relayLogs(
    c: grpc.ServerWritableStream<LogsRequest, OutputChunkMsg>,
  ): Promise<void> {
    const name = c.request.invocation;
    const follow = c.request.follow;
    let gone = false;
    c.on('cancelled', () => (gone = true));
    while (follow && !gone && !this.run && this.runExpected)
      await new Promise((r) => setTimeout(r, 250));
    if (gone) return;
    // The run in progress now (the one waited for, if any), kept: one that ends meanwhile (its
    // last job a quick one, done between two looks) still has that job's output to give.
    const run = this.run;
    const unitsOf = () =>
      (run?.units() ?? []).filter((u) => u.unit === name || u.unit.startsWith(`${name}@`));
    if (run && unitsOf().length === 0) {
      failStream(c, grpc.status.NOT_FOUND, `no invocation ${name} in this run`);
      return;
    }
    const live = () =>
      unitsOf().some((u) => u.state === 'waiting' || u.state === 'ready' || u.state === 'running');
    const notice = (text: string) =>
      c.write({ offset: 0, stream: 'stderr', data: Buffer.from(`dist-build: ${text}\n`) });
    /** The job followed last: --follow goes on with the unit's next attempt, if it gets one. */
    let last: string | undefined;
    let from = c.request.from;
    for (;;) {
      let where = run?.jobOf(name);
      // --follow waits for a job that has not started yet (or for the next attempt), while its
      // unit may still get one.
      while (follow && !gone && (!where || where.jobId === last)) {
        if (!live()) {
          if (last !== undefined) return void c.end();
          const states = unitsOf().map((u) => u.state);
          if (states.length) {
            failStream(
              c,
              grpc.status.NOT_FOUND,
              `${name} ran no job in this run (${states.join(', ')})`,
            );
            return;
          }
          break;
        }
        await new Promise((r) => setTimeout(r, 250));
        where = run?.jobOf(name);
      }
      if (gone) return;
      const m = where && this.members.get(where.uuid);
      if (!where || !m) {
        failStream(
          c,
          grpc.status.NOT_FOUND,
          where
            ? `the worker that ran ${name} has left`
            : run
              ? `no job of ${name} has started in this run`
              : 'no run in progress on this master',
        );
        return;
      }
      if (last !== undefined) notice(`${name}: next attempt, on ${m.id}`);
      last = where.jobId;
      const upstream = m.client.StreamOutput(
        { worker_uuid: m.uuid, job_id: where.jobId, from, follow },
        this.metadata(),
      );
      from = 0;
      const cancel = () => upstream.cancel();
      c.on('cancelled', cancel);
      try {
        for await (const chunk of upstream as AsyncIterable<OutputChunkMsg>) {
          if (!c.write(chunk)) await new Promise((r) => c.once('drain', r));
        }
        if (!follow) return void c.end();
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (e.code === grpc.status.CANCELLED) return;
        if (!follow || !live()) {
          failStream(c, e.code ?? grpc.status.UNAVAILABLE, e.details ?? e.message);
          return;
        }
        // Its worker is gone (killed, unreachable): the unit runs again elsewhere.
        notice(`${name}: lost the output of ${m.id} (${e.details ?? e.message})`);
      } finally {
        c.off('cancelled', cancel);
      }
    }
  }

  /**
   * Starts a job on `m`: on its heartbeat stream when it has one (no call of its own), else with
   * a StartJob call. Rejects when the worker does not answer within `timeoutMs` or its stream
   * breaks first.
   */
  startJob(m: MemberState, req: StartJobRequest, timeoutMs = 10_000): Promise<StartJobResponse> {
    const stream = m.stream;
    if (!stream || stream.destroyed || this.pendingStarts.has(req.job_id)) {
      return this.callWorker<StartJobRequest, StartJobResponse>(
        m,
        (c) => c.StartJob,
        req,
        timeoutMs,
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new Error(`${m.id} did not answer StartJob within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const settle = (r: StartJobResponse | Error) => {
        clearTimeout(timer);
        this.pendingStarts.delete(req.job_id);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.pendingStarts.set(req.job_id, { member: m, settle });
      stream.write({ ...this.answer('NONE'), start_jobs: [req] });
    });
  }

  private answer(command: HeartbeatResponse['command']): HeartbeatResponse {
    return { command, lease_ttl_ms: this.leaseTtlMs, start_jobs: [], report_acks: [] };
  }

  /** A finished job's report, from the stream or a ReportResult call; a repeat is dropped. */
  private acceptReport(m: MemberState | undefined, r: JobReport): void {
    if (this.seenReports.has(r.job_id)) return;
    this.seenReports.add(r.job_id);
    if (this.seenReports.size > SEEN_REPORTS) {
      this.seenReports.delete(this.seenReports.values().next().value!);
    }
    if (m) m.done++;
    if (!this.run) {
      this.unclaimed.push({ m, r });
      if (this.unclaimed.length > SEEN_REPORTS) this.unclaimed.shift();
    }
    this.emit('report', m, r);
  }

  /** The reports that came before a run was attached (see `unclaimed`), once. */
  takeUnclaimedReports(): { m: MemberState | undefined; r: JobReport }[] {
    return this.unclaimed.splice(0);
  }

  /** Unary call to a member's Worker service. */
  callWorker<Req, Res>(
    m: MemberState,
    method: (client: WorkerClient) => Parameters<typeof call<Req, Res>>[1],
    req: Req,
    timeoutMs = 10_000,
  ): Promise<Res> {
    return call<Req, Res>(m.client, method(m.client), req, this.metadata(), timeoutMs);
  }
}
