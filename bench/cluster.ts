/**
 * Cluster benchmark (`npm run bench:cluster` = node scripts/run-ts.mjs bench/cluster.ts), all on
 * loopback with mutual TLS, the CLI bundled from src/ into a temp dir first:
 *
 * 1. Coordination overhead. A generated config of 1,000 `run: "true"` invocations (a random
 *    top-level env value per bench run, so nothing is cached from an earlier one) runs on an
 *    in-process Master (heartbeat 500 ms) and 16 real `dist-build worker` processes. Per
 *    invocation, overhead = round trip at the master (StartJob sent -> result received) minus the
 *    command's own duration measured on the worker, from just before its spawn to its exit
 *    (Run.timings(); the worker's log and pipe handling count as overhead). Baseline in the same run: the
 *    same 1,000 commands (`/bin/sh -c true`) spawned one after another in a plain loop.
 *    Target: median overhead < 2 ms. Also printed (no target): (run wall - loop wall) / 1,000, the
 *    wall time the cluster adds per invocation to the serial loop. 1b (diagnostic, no target): 200
 *    invocations on 1 worker, the overhead without 16 workers competing for the CPU.
 * 2. Registration. A real `dist-build master --serve` process; 256 WorkerAgents (each with its
 *    own LocalStore, server and connection to the master) in this process, or spread over
 *    `--agent-procs N` child processes (bench/lib/agents-child.ts). Each agent's Worker service
 *    is started first (`listen()`, printed, untimed: on a real worker that is start-up, like its
 *    node process and config), then all join at once (`join()`: a new TLS connection to the
 *    master and a Register call each); time until every `agent.registered` has resolved.
 *    Target < 2 s.
 * 3. Master CPU. With those 256 agents heartbeating every second, the master process's CPU time
 *    (utime+stime from /proc/<pid>/stat) over 10 s, as % of one core. Target < 10%.
 *
 * Options: --workers N (16) --invocations N (1000) --agents N (256) --sample S (10)
 *          --agent-procs N (0 = the agents run in this process)
 *          --profile-master DIR (write a --cpu-prof of the master process of parts 2-3 into DIR)
 *          --profile-worker DIR (a --cpu-prof of worker-1 of part 1)
 *          --skip-overhead / --skip-membership (run one half only)
 *          --no-diagnostic (skip 1b: 200 invocations on 1 worker, overhead without contention).
 *          --key-check (workers compute each job's cache key in their tree first, as pool workers
 *          do; by default they skip it, as the local workers of `dist-build run`, which share
 *          the master's tree like these)
 * Every child process is stopped by PID (SIGTERM, SIGKILL after 5 s), also on failure, and the
 * temp dir is removed.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ephemeralTls, writeCA, writeCert } from '../src/cluster/certs.js';
import type { TlsFiles } from '../src/cluster/certs.js';
import { Master } from '../src/cluster/master.js';
import { workerNodeFlags } from '../src/cluster/local.js';
import { call, protocol, type MasterClient, type StatusResponse } from '../src/cluster/protocol.js';
import { Run } from '../src/cluster/scheduler.js';
import {
  callMetadata,
  channelCredentials,
  channelOptions,
  formatAddress,
  grpcTarget,
  type Address,
} from '../src/cluster/transport.js';
import { loadConfig } from '../src/config/load.js';
import { computeCacheKeys } from '../src/plan/keys.js';
import { expandUnits } from '../src/plan/units.js';
import {
  createAgents,
  joinAgents,
  listenAgents,
  stopAgents,
  type AgentsOptions,
} from './lib/agents.js';
import type { FromChild, ToChild } from './lib/agents-child.js';
import {
  Child,
  CLK_TCK,
  bundleCli,
  bundleScript,
  cpuTicks,
  freePort,
  percentile,
  stopAll,
} from './lib/procs.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const optStr = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const WORKERS = opt('workers', 16);
const INVOCATIONS = opt('invocations', 1000);
const AGENTS = opt('agents', 256);
const SAMPLE_S = opt('sample', 10);
const PROFILE_DIR = optStr('profile-master');
const PROFILE_WORKERS = optStr('profile-worker');
const SKIP_OVERHEAD = args.includes('--skip-overhead');
const SKIP_MEMBERSHIP = args.includes('--skip-membership');
/** Workers check each job's cache key in their tree (a pool's workers do; `run`'s do not). */
const KEY_CHECK = args.includes('--key-check');
/** 0: the agents run in this process; N: spread over N child processes. */
const AGENT_PROCS = opt('agent-procs', 0);
const GRACE_MS = 5000;

const tmp = mkdtempSync(join(os.tmpdir(), 'dist-build-bench-cluster-'));
const children: Child[] = [];
const cleanup = async (): Promise<void> => {
  await stopAll(children, GRACE_MS);
  rmSync(tmp, { recursive: true, force: true });
};
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  void cleanup().then(() => process.exit(130));
});

const fmt = (ms: number, digits = 2): string => `${ms.toFixed(digits)} ms`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Figure {
  what: string;
  value: string;
  target: string;
  met?: boolean;
}
const figures: Figure[] = [];

async function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void) {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          onTimeout?.();
          reject(new Error(`${what}: no result within ${Math.round(ms / 1000)} s`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Baseline: `/bin/sh -c true`, `n` times, one after another. Returns total ms. */
async function spawnLoop(n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      const c = spawn('/bin/sh', ['-c', 'true'], { stdio: 'ignore' });
      c.once('error', reject);
      c.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`/bin/sh -c true exited with ${code}`)),
      );
    });
  }
  return performance.now() - t0;
}

/** utime+stime of these processes, in clock ticks. */
const ticksOf = (pids: number[]): number => pids.reduce((n, pid) => n + cpuTicks(pid), 0);

// --- 1. coordination overhead ------------------------------------------------------------------

/**
 * One cluster run of `INVOCATIONS` x `true` on `WORKERS` worker processes. `main`: the measured
 * configuration (with the baseline and the target); otherwise a diagnostic pass whose figures are
 * reported without a target.
 */
async function overhead(
  cli: string,
  certDir: string,
  tls: Record<string, TlsFiles>,
  WORKERS: number,
  INVOCATIONS: number,
  main: boolean,
) {
  console.log(
    main
      ? `\n## 1. Coordination overhead: ${INVOCATIONS} x run "true" on ${WORKERS} worker processes`
      : `\n## 1b. Diagnostic: the same with ${INVOCATIONS} invocations on ${WORKERS} worker (no CPU contention between workers)`,
  );
  const dir = join(tmp, `overhead-${WORKERS}`);
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'dist-build.yml');
  const lines = [
    'version: 1',
    `env: { BENCH_RUN: "${randomBytes(8).toString('hex')}" }`,
    'invocations:',
  ];
  for (let i = 0; i < INVOCATIONS; i++)
    lines.push(`  n${String(i).padStart(4, '0')}: { run: "true" }`);
  writeFileSync(configFile, lines.join('\n') + '\n');
  const config = await loadConfig(configFile);

  // Baseline first, on a quiet machine (no workers yet).
  if (main) await spawnLoop(20); // warm-up
  const baseMs = main ? await spawnLoop(INVOCATIONS) : NaN;
  if (main)
    console.log(
      `baseline: ${INVOCATIONS} x /bin/sh -c true in a plain loop: ${fmt(baseMs, 0)} (${fmt(baseMs / INVOCATIONS)} per spawn)`,
    );

  const masterLog: string[] = [];
  const master = new Master({
    listen: [{ kind: 'tcp', host: '127.0.0.1', port: 0 }],
    security: { tls: tls.master! },
    heartbeatMs: 500,
    log: (m) => {
      masterLog.push(m);
      if (masterLog.length > 50) masterLog.shift();
    },
  });
  await master.start();
  const masterAddr = formatAddress(master.addresses[0]!);
  const workers: Child[] = [];
  try {
    const t0 = performance.now();
    for (let i = 1; i <= WORKERS; i++) {
      const name = `worker-${i}`;
      const c = new Child(name, process.execPath, [
        ...workerNodeFlags(),
        ...(PROFILE_WORKERS && i === 1
          ? ['--cpu-prof', '--cpu-prof-dir', resolve(PROFILE_WORKERS)]
          : []),
        cli,
        'worker',
        '--join',
        masterAddr,
        '--config',
        configFile,
        '--cache-dir',
        join(dir, 'cache'),
        '--log-dir',
        join(dir, 'logs', name),
        '--certs',
        certDir,
        '--name',
        name,
        '--id',
        name,
        '--parent-pid',
        String(process.pid),
        ...(KEY_CHECK ? [] : ['--no-key-check']),
      ]);
      workers.push(c);
      children.push(c);
    }
    await master.waitForWorkers(WORKERS, 60_000).catch((e: Error) => {
      throw new Error(
        `${e.message}; worker output:\n${workers.map((w) => `  [${w.name}] ${w.tail(3).join(' | ')}`).join('\n')}`,
      );
    });
    const joinMs = performance.now() - t0;
    console.log(`${WORKERS} worker processes started and registered in ${fmt(joinMs, 0)}`);

    const units = expandUnits(config);
    const keyInfo = await computeCacheKeys(config, units);
    const keys = new Map([...keyInfo].map(([id, k]) => [id, k.cacheKey]));
    const run = new Run(master, { config, configPath: configFile, keys, exportTo: undefined });
    const pids = workers.map((w) => w.pid!);
    const w0 = ticksOf(pids);
    const m0 = process.cpuUsage();
    const r0 = performance.now();
    const report = await withTimeout(run.execute(), 120_000, 'the run', () =>
      run.cancel('benchmark timeout'),
    );
    const wallMs = performance.now() - r0;
    const workersCpu = ((ticksOf(pids) - w0) / CLK_TCK) * 1000;
    const m1 = process.cpuUsage(m0);
    const masterCpu = (m1.user + m1.system) / 1000;
    const built = report.invocations.filter((i) => i.status === 'built').length;
    if (report.status !== 'succeeded' || built !== INVOCATIONS) {
      const bad = report.invocations.filter((i) => i.status !== 'built').slice(0, 5);
      throw new Error(
        `the run ${report.status}: ${built}/${INVOCATIONS} built; e.g. ${bad.map((b) => `${b.unit} ${b.status}: ${b.reason ?? ''}`).join('; ')}`,
      );
    }
    const timings = run.timings();
    const over = timings.map((t) => t.roundTripMs - t.commandMs).sort((a, b) => a - b);
    const rtt = timings.map((t) => t.roundTripMs).sort((a, b) => a - b);
    const cmd = timings.map((t) => t.commandMs).sort((a, b) => a - b);
    const med = percentile(over, 50);
    const p95 = percentile(over, 95);
    const max = over[over.length - 1]!;
    const perWorker = new Map<string, number>();
    for (const i of report.invocations)
      perWorker.set(i.worker ?? '?', (perWorker.get(i.worker ?? '?') ?? 0) + 1);
    const counts = [...perWorker.values()].sort((a, b) => a - b);
    console.log(
      `run: ${built}/${INVOCATIONS} built in ${fmt(wallMs, 0)} wall; jobs per worker min ${counts[0]} max ${counts[counts.length - 1]};` +
        ` CPU: master (this process) ${fmt(masterCpu, 0)} = ${fmt(masterCpu / INVOCATIONS)} per invocation,` +
        ` ${WORKERS} worker processes ${fmt(workersCpu, 0)} = ${fmt(workersCpu / INVOCATIONS)} per invocation (without the commands)`,
    );
    console.log(
      `per invocation (n=${timings.length}):  round trip median ${fmt(percentile(rtt, 50))} p95 ${fmt(percentile(rtt, 95))}` +
        ` | command (worker-measured, spawn to exit) median ${fmt(percentile(cmd, 50))} p95 ${fmt(percentile(cmd, 95))}`,
    );
    console.log(
      `coordination overhead (round trip - command): median ${fmt(med)}  p95 ${fmt(p95)}  max ${fmt(max)}  min ${fmt(over[0]!)}`,
    );
    const ratio = wallMs / baseMs;
    if (!main) {
      figures.push({
        what: `overhead median, ${WORKERS} worker (diagnostic)`,
        value: fmt(med),
        target: '-',
      });
      return;
    }
    console.log(
      `cluster run / plain loop: ${fmt(wallMs, 0)} / ${fmt(baseMs, 0)} = ${ratio.toFixed(2)}x` +
        ` (${(INVOCATIONS / (wallMs / 1000)).toFixed(0)} vs ${(INVOCATIONS / (baseMs / 1000)).toFixed(0)} invocations/s);` +
        ` wall time beyond the loop per invocation ${fmt((wallMs - baseMs) / INVOCATIONS)}`,
    );
    figures.push(
      { what: 'overhead median', value: fmt(med), target: '< 2 ms', met: med < 2 },
      { what: 'overhead p95', value: fmt(p95), target: '-' },
      { what: 'overhead max', value: fmt(max), target: '-' },
      {
        what: `run wall (${INVOCATIONS} inv, ${WORKERS} workers)`,
        value: fmt(wallMs, 0),
        target: '-',
      },
      { what: 'baseline: plain spawn loop', value: fmt(baseMs, 0), target: '-' },
      { what: 'run wall / baseline', value: `${ratio.toFixed(2)}x`, target: '-' },
      {
        what: '(run wall - baseline) / invocations',
        value: fmt((wallMs - baseMs) / INVOCATIONS),
        target: '-',
      },
    );
    const early = workers.filter((w) => !w.running);
    if (early.length)
      console.log(`warning: ${early.map((w) => w.name).join(', ')} exited during the run`);
  } finally {
    master.shutdownWorkers();
    await stopAll(workers, GRACE_MS);
    await master.stop();
  }
}

// --- 2 + 3. registration and master CPU ----------------------------------------------------------

/** The simulated workers: in this process, or spread over `AGENT_PROCS` child processes. */
interface Simulators {
  /** How long starting the agents' Worker services took (before `start`, untimed). */
  listenMs: number;
  /** Every agent joins at once; registration times (ms, sorted) when all have registered. */
  start(): Promise<number[]>;
  stop(): Promise<void>;
  pids: number[];
}

async function inProcess(opts: AgentsOptions): Promise<Simulators> {
  const agents = await createAgents(opts);
  const listenMs = await listenAgents(agents);
  return {
    listenMs,
    start: () => joinAgents(agents),
    stop: () => stopAgents(agents),
    pids: [process.pid],
  };
}

async function inChildren(opts: AgentsOptions, procs: number): Promise<Simulators> {
  const script = await bundleScript('bench/lib/agents-child.ts');
  const kids: Child[] = [];
  const next = (c: Child, type: FromChild['type'], ms: number) =>
    withTimeout(
      new Promise<FromChild>((resolve, reject) => {
        const on = (m: FromChild) => {
          if (m.type === 'error') reject(new Error(`${c.name}: ${m.message}`));
          else if (m.type === type) resolve(m);
          else return;
          c.proc.off('message', on);
        };
        c.proc.on('message', on);
        void c.exited.then(() => reject(new Error(`${c.name} exited: ${c.tail().join(' | ')}`)));
      }),
      ms,
      `${c.name}: ${type}`,
    );
  for (let k = 0; k < procs; k++) {
    const from = Math.floor((k * opts.count) / procs);
    const to = Math.floor(((k + 1) * opts.count) / procs);
    const share: AgentsOptions = { ...opts, from: opts.from + from, count: to - from };
    const c = new Child(`simulator-${k + 1}`, process.execPath, [script, JSON.stringify(share)], {
      ipc: true,
    });
    kids.push(c);
    children.push(c);
  }
  const ready = await Promise.all(kids.map((c) => next(c, 'ready', 60_000)));
  return {
    listenMs: Math.max(...ready.map((m) => (m.type === 'ready' ? m.listenMs : 0))),
    pids: kids.map((c) => c.pid!),
    start: async () => {
      const answers = kids.map((c) => next(c, 'registered', 60_000));
      for (const c of kids) c.proc.send({ type: 'go' } satisfies ToChild);
      const all = await Promise.all(answers);
      return all.flatMap((m) => (m.type === 'registered' ? m.times : [])).sort((a, b) => a - b);
    },
    stop: async () => {
      const answers = kids.map((c) => next(c, 'stopped', 15_000).catch(() => undefined));
      for (const c of kids) if (c.running) c.proc.send({ type: 'stop' } satisfies ToChild);
      await Promise.all(answers);
      await stopAll(kids, GRACE_MS);
    },
  };
}

function connectionsTo(port: number): number | undefined {
  try {
    const out = execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`], {
      encoding: 'utf8',
    });
    return out.split('\n').filter((l) => l.trim()).length;
  } catch {
    return undefined;
  }
}

async function membership(cli: string, certDir: string, simTls: TlsFiles) {
  const where = AGENT_PROCS
    ? `${AGENT_PROCS} simulator processes`
    : 'this process (one event loop)';
  console.log(
    `\n## 2. Registration of ${AGENTS} workers (agents in ${where}); 3. master CPU while they heartbeat (1 s)`,
  );
  const port = await freePort();
  const joinAddr: Address = { kind: 'tcp', host: '127.0.0.1', port };
  const nodeArgs = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', resolve(PROFILE_DIR)] : [];
  const master = new Child('master', process.execPath, [
    ...nodeArgs,
    cli,
    'master',
    '--serve',
    '--listen',
    formatAddress(joinAddr),
    '--certs',
    certDir,
    '--name',
    'master',
    '--heartbeat',
    '1s',
  ]);
  children.push(master);
  let sims: Simulators | undefined;
  let status: MasterClient | undefined;
  try {
    await master.waitForLine(/listening on/, 30_000);
    const masterPid = master.pid!;
    const opts: AgentsOptions = {
      join: joinAddr,
      tls: simTls,
      dir: join(tmp, 'membership'),
      from: 0,
      count: AGENTS,
    };
    sims = AGENT_PROCS ? await inChildren(opts, AGENT_PROCS) : await inProcess(opts);

    const cpu0 = cpuTicks(masterPid);
    const simCpu0 = ticksOf(sims.pids);
    const t0 = performance.now();
    const registeredAt = await withTimeout(
      sims.start(),
      60_000,
      `registration of ${AGENTS} agents`,
    );
    const regMs = performance.now() - t0;
    const regCpu = ((cpuTicks(masterPid) - cpu0) / CLK_TCK) * 1000;
    const simCpu = ((ticksOf(sims.pids) - simCpu0) / CLK_TCK) * 1000;
    console.log(
      `worker services: the ${AGENTS} agents' gRPC servers (TLS) started in ${fmt(sims.listenMs, 0)} before they join (untimed: part of a worker's start-up, like its node process and config)`,
    );
    console.log(
      `registration (join -> registered): all ${registeredAt.length} registered in ${fmt(regMs, 0)} (first ${fmt(registeredAt[0]!, 0)}, median ${fmt(percentile(registeredAt, 50), 0)}, p95 ${fmt(percentile(registeredAt, 95), 0)});` +
        ` CPU meanwhile: master ${fmt(regCpu, 0)} (${fmt(regCpu / AGENTS)} per worker), simulators ${fmt(simCpu, 0)}`,
    );
    figures.push({
      what: `registration of ${AGENTS} workers`,
      value: fmt(regMs, 0),
      target: '< 2000 ms',
      met: regMs < 2000,
    });

    // Steady state: let one heartbeat period pass, then sample the master's CPU time.
    await sleep(1500);
    const conns = connectionsTo(port);
    const c0 = cpuTicks(masterPid);
    const sim0 = ticksOf(sims.pids);
    const s0 = performance.now();
    await sleep(SAMPLE_S * 1000);
    const c1 = cpuTicks(masterPid);
    const sim1 = ticksOf(sims.pids);
    const elapsed = (performance.now() - s0) / 1000;
    const pct = (100 * (c1 - c0)) / CLK_TCK / elapsed;
    const simPct = (100 * (sim1 - sim0)) / CLK_TCK / elapsed;

    // Check that the master really hears every agent about once a second.
    const p = protocol();
    status = new p.MasterClient(
      grpcTarget(joinAddr),
      channelCredentials(joinAddr, { tls: simTls }),
      channelOptions(joinAddr),
    );
    const st = await call<Record<string, never>, StatusResponse>(
      status,
      status.Status,
      {},
      callMetadata({ tls: simTls }),
      10_000,
    );
    const now = Date.now();
    const fresh = st.members.filter((m) => now - Number(m.last_heartbeat_at) < 1600).length;
    console.log(
      `master CPU over ${elapsed.toFixed(1)} s with ${st.members.length} members: ${pct.toFixed(1)}% of one core` +
        ` (${((c1 - c0) / CLK_TCK).toFixed(2)} s CPU, ${((1000 * (c1 - c0)) / CLK_TCK / (AGENTS * elapsed)).toFixed(2)} ms per heartbeat);` +
        ` members heard from in the last 1.6 s: ${fresh}; TCP connections to the master: ${conns ?? '?'};` +
        ` simulators: ${simPct.toFixed(1)}%`,
    );
    figures.push({
      what: `master CPU, ${AGENTS} workers @ 1 s heartbeat`,
      value: `${pct.toFixed(1)}%`,
      target: '< 10% of a core',
      met: pct < 10,
    });
    if (fresh < AGENTS)
      console.log(`warning: only ${fresh} of ${AGENTS} members heartbeat in time`);
  } finally {
    status?.close();
    const s0 = performance.now();
    await sims?.stop();
    if (sims) console.log(`stopped ${AGENTS} agents in ${fmt(performance.now() - s0, 0)}`);
    await master.stop(GRACE_MS);
  }
}

function summary(totalS: number): void {
  const rows = figures.map((f) => [
    f.what,
    f.value,
    f.target,
    f.met === undefined ? '' : f.met ? 'met' : 'NOT met',
  ]);
  const head = ['figure', 'value', 'target', ''];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 1 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ');
  console.log('\n## Summary');
  console.log(line(head));
  console.log('-'.repeat(line(head).length));
  for (const r of rows) console.log(line(r));
  console.log(`\ntotal benchmark time ${totalS.toFixed(1)} s`);
}

async function main(): Promise<void> {
  const start = performance.now();
  console.log(
    `node ${process.version}, ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? '?'}; temp dir ${tmp}`,
  );
  const cli = join(tmp, 'cli.mjs');
  const names = ['master', 'sim', ...Array.from({ length: WORKERS }, (_, i) => `worker-${i + 1}`)];
  const [, { ca, tls }] = await Promise.all([bundleCli(cli), ephemeralTls(names)]);
  const certDir = join(tmp, 'certs');
  await writeCA(certDir, ca, { force: true });
  for (const name of names)
    await writeCert(certDir, name, { cert: tls[name]!.cert, key: tls[name]!.key });
  console.log(
    `bundled the CLI and issued ${names.length} certificates in ${fmt(performance.now() - start, 0)}`,
  );

  if (!SKIP_OVERHEAD) {
    await overhead(cli, certDir, tls, WORKERS, INVOCATIONS, true);
    if (!args.includes('--no-diagnostic')) await overhead(cli, certDir, tls, 1, 200, false);
  }
  if (!SKIP_MEMBERSHIP) await membership(cli, certDir, tls.sim!);
  summary((performance.now() - start) / 1000);
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  console.error(`\nbench/cluster: ${(err as Error).stack ?? String(err)}`);
} finally {
  await cleanup();
}
process.exit(failed ? 1 : 0);
