import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { loadConfig } from '../../config/load.js';
import { ephemeralTls, writeCert } from '../../cluster/certs.js';
import { writeCA } from '../../cluster/certs.js';
import { LocalWorkers, processAlive, selfCommand } from '../../cluster/local.js';
import { Master } from '../../cluster/master.js';
import type { Run } from '../../cluster/scheduler.js';
import { formatAddress } from '../../cluster/transport.js';
import { endJobsLeftBy } from '../../cluster/worker.js';
import { processStartTime, processStillAlive } from '../../store/fsutil.js';
import { storeKinds, workerCacheDir } from '../../store/open.js';
import { workerCount } from '../../plan/units.js';
import { REPORT_FILES } from '../../report/index.js';
import { DEFAULT_CONFIG } from '../defaults.js';
import { driveAndPrint } from '../drive.js';
import {
  cacheDirFlag,
  durationFlag,
  logOrderOption,
  outDirFlag,
  NO_REMOTE_CACHE_HELP,
  planShare,
  positiveInt,
  targetUnits,
} from '../util.js';
import { RunFailure, UsageError } from '../errors.js';
import { onGithubActions, workflowCommand } from '../github.js';

interface RunFlags {
  config: string;
  workers?: string;
  out: string;
  cacheDir?: string;
  /** false with --no-remote-cache */
  remoteCache?: boolean;
  failFast?: boolean;
  output: boolean;
  plain?: boolean;
  logOrder?: 'grouped' | 'stream' | 'auto';
  verbose?: boolean;
  share?: string;
  plan?: string;
  shareTimeout: string;
}

/** Where `dist-build status` and `logs` find a local run in progress. */
export function currentRunFile(root: string): string {
  return join(root, '.dist-build', 'run', 'current.json');
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description(
      'Run every invocation of a config on N local worker processes (an embedded master on loopback with mutual TLS), export the final artifacts and write a report.',
    )
    .argument(
      '[invocations...]',
      'run only these invocations (or unit ids) and what they need (default: all)',
    )
    .option('-c, --config <file>', 'the dist-build.yml to run', DEFAULT_CONFIG)
    .option('-w, --workers <n>', "number of local workers (default: the config's workers rule)")
    .option('-o, --out <dir>', 'where exported artifacts and the report go', 'dist-build-out')
    .option(
      '--cache-dir <dir>',
      "local cache store (default: the config's first local store, else <config dir>/.dist-build/cache)",
    )
    .option('--no-remote-cache', NO_REMOTE_CACHE_HELP)
    .option('--fail-fast', 'stop everything at the first failed invocation')
    .option('--no-output', "do not print the jobs' output (plain mode)")
    .option('--plain', 'plain log lines even in a terminal')
    .addOption(logOrderOption())
    .option('--verbose', "print the workers' own log lines")
    .option(
      '--share <worker>',
      "run only this worker's share of a plan (--plan): the invocations the plan gives it; what they need from other shares comes from the cache stores, once the runners of those shares put it there (one matrix job each)",
    )
    .option('--plan <file>', 'the plan of --share: the JSON of dist-build plan --json')
    .option(
      '--share-timeout <duration>',
      'how long --share waits for what it needs from other shares, at most',
      '1h',
    )
    .addHelpText(
      'after',
      `
Examples:
  $ dist-build run --config examples/monorepo/dist-build.yml
  $ dist-build run --workers 8 --out artifacts --fail-fast
  $ dist-build run site test      # site and test, and what they need
  $ dist-build plan --json --workers 4 > plan.json
  $ dist-build run --share worker-2 --plan plan.json   # on one of 4 runners

Exit code 0 when every invocation succeeded, 1 when one failed, 2 on bad input.`,
    )
    .action(async (targets: string[], flags: RunFlags) => {
      process.exitCode = await runLocal(flags, targets);
    });
}

async function runLocal(flags: RunFlags, targets: string[]): Promise<number> {
  const config = await loadConfig(flags.config);
  cacheDirFlag(config, flags.cacheDir);
  outDirFlag(config, flags.out);
  if ((flags.share === undefined) !== (flags.plan === undefined))
    throw new UsageError(
      flags.share !== undefined ? '--share needs --plan' : '--plan goes with --share',
    );
  // An empty one (`--share "${{ matrix.worker }}"` with no such matrix key) ran the whole config.
  if (flags.share === '')
    throw new UsageError('--share: an empty worker id (give one of the workers of the plan)');
  if (flags.share !== undefined && targets.length)
    throw new UsageError('--share runs the invocations the plan gives it: name none');
  const share = flags.share !== undefined ? planShare(config, flags.plan!, flags.share) : undefined;
  const shareWaitMs = share ? durationFlag(flags.shareTimeout, '--share-timeout') * 1000 : 0;
  const units = share ? share.own : targetUnits(config, flags.config, targets);
  if (share && !units.length) {
    // An earlier run's report in --out is not this one's (as when a run starts).
    await Promise.all(
      Object.values(REPORT_FILES).map((f) => rm(join(resolve(flags.out), f), { force: true })),
    );
    process.stderr.write(
      `dist-build: the plan gives ${flags.share} no invocation: nothing to do\n`,
    );
    return 0;
  }
  // A gha store keeps a shard per worker id, and the other shares look in the shards of the plan's
  // workers (its `slots`): a share's results are one shard under its name, from one local worker
  // (with two, they went to <share>.1 and <share>.2, which no other share ever read).
  const oneShard =
    !!share && storeKinds(config, flags.cacheDir, flags.remoteCache === false).includes('gha');
  const n = flags.workers
    ? localWorkerCount(flags.workers)
    : oneShard
      ? 1
      : workerCount(config, units.length);
  if (oneShard && n > 1)
    throw new UsageError(
      `--workers ${n}: a share with a gha store runs one local worker, whose shard is the share's (${flags.share}), as the other shares read it`,
    );
  // Without --cache-dir the workers use the config's stores (default <config dir>/.dist-build/cache).
  const cacheDirArgs = [
    ...(flags.cacheDir ? ['--cache-dir', resolve(flags.cacheDir)] : []),
    ...(flags.remoteCache === false ? ['--no-remote-cache'] : []),
  ];
  const err = process.stderr;

  // An ephemeral CA for this run: certificates for the master, each worker and a client (for
  // `dist-build status` / `logs` while the run goes on), in a private directory.
  const runDir = join(config.root, '.dist-build', 'run');
  const certDir = join(runDir, `certs-${process.pid}`);
  const names = ['master', 'client', ...Array.from({ length: n }, (_, i) => `worker-${i + 1}`)];
  const { ca, tls } = await ephemeralTls(names);
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  await removeStaleCertDirs(runDir);
  await writeCA(certDir, ca, { force: true, certOnly: true });
  for (const name of names)
    await writeCert(certDir, name, { cert: tls[name]!.cert, key: tls[name]!.key });

  const log = flags.verbose ? (m: string) => err.write(`${m}\n`) : () => undefined;
  // A share's workers go by its name (a gha store keeps a shard per worker id), also in what the
  // run says about them (its "worker-1: ..." read as another share's worker).
  const workerId = (i: number) =>
    share ? (n === 1 ? flags.share! : `${flags.share!}.${i}`) : `worker-${i}`;
  // Workers' warnings (a cache store that cannot be used, a corrupt blob) are shown without
  // --verbose too, each text once (every worker of a run shares the stores).
  let print: ((line: string) => void) | undefined;
  const warned = new Set<string>();
  const workerLine = (i: number, line: string) => {
    if (flags.verbose) return void err.write(`[${workerId(i)}] ${line}\n`);
    // `<time> warning: ...`, or `<time> worker <id>: warning: ...` (one about a job or the worker).
    const warning = /^\S+ (?:worker(?: \S+)?: )?warning: (.*)$/.exec(line)?.[1];
    // The same problem met with other blobs is the same warning.
    const kind = warning?.replace(/sha256:[0-9a-f]{64}/g, 'sha256:*');
    if (warning === undefined || warned.has(kind!)) return;
    warned.add(kind!);
    warn(`${workerId(i)}: ${warning}`);
  };
  // A line that stays: above the live progress in a terminal (written past it, the next redraw
  // erased the line and left part of the old block on the screen).
  const say = (text: string) => (print ? print(text) : err.write(`dist-build: ${text}\n`));
  // On GitHub Actions a warning is an annotation, shown on the run's page, not only in the log.
  const warn = (text: string) => {
    if (onGithubActions()) err.write(`${workflowCommand('warning', `dist-build: ${text}`)}\n`);
    else say(`warning: ${text}`);
  };
  const master = new Master({
    listen: [{ kind: 'tcp', host: '127.0.0.1', port: 0 }],
    security: { tls: tls.master! },
    heartbeatMs: 500,
    log,
  });
  // `logs --follow` while the workers join waits for the run rather than saying nothing started.
  master.runExpected = true;
  await master.start();
  const address = formatAddress(master.addresses[0]!);
  let joined = false;
  let workerDied!: (e: Error) => void;
  const early = new Promise<never>((_, reject) => (workerDied = reject));
  early.catch(() => undefined);
  // Written with each worker's cache counters: `cache stats` shows this run's alone.
  const runId = randomBytes(6).toString('hex');
  const workers = new LocalWorkers({
    command: selfCommand(),
    count: n,
    args: (i) => [
      '--join',
      address,
      '--run-id',
      runId,
      '--config',
      config.file,
      ...cacheDirArgs,
      '--certs',
      certDir,
      '--name',
      `worker-${i}`,
      '--id',
      workerId(i),
      '--kill-grace',
      '5s',
      // The master's keys come from this very tree (a check would only see what jobs write).
      '--no-key-check',
    ],
    onLine: workerLine,
    onExit: (i, code, signal) => {
      const why = `${workerId(i)} exited (${signal ?? `code ${code}`})${
        workers.tail(i).length ? `:\n  ${workers.tail(i).slice(-5).join('\n  ')}` : ''
      }`;
      // Before every worker has joined, a worker that exits (bad cache config, unreadable
      // config) ends the run at once instead of after the join timeout.
      if (!joined) workerDied(new RunFailure(why, code === 2 ? 2 : 1));
      // Once the run is interrupted, the workers are stopped (or killed): their exit is no news.
      else if (!interrupted) say(why);
    },
  });
  const current = currentRunFile(config.root);
  let run: Run | undefined;
  let interrupted: string | undefined;
  // Before the run exists (workers still joining), a signal ends the wait for them.
  let abortJoin!: (e: Error) => void;
  const aborted = new Promise<never>((_, reject) => (abortJoin = reject));
  aborted.catch(() => undefined);
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) {
      // Second Ctrl-C (also while stopping): stop waiting for anything, but leave nothing behind:
      // each worker is killed with the commands it runs (a worker told to stop and killed right
      // after could not end them).
      for (let i = 1; i <= n; i++) workers.kill(i);
      void workers
        .stop(0)
        .then(() =>
          Promise.all([
            claimed ? rm(current, { force: true }) : undefined,
            rm(certDir, { recursive: true, force: true }),
          ]),
        )
        .finally(() => process.exit(130));
      return;
    }
    interrupted = `interrupted (${sig})`;
    say(`${sig}: stopping the run and its workers...`);
    if (run) run.cancel(interrupted);
    else abortJoin(new RunFailure(`${interrupted} while the workers were joining`, 130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The terminal closed (or an ssh session dropped): stopped as on Ctrl-C (killed on the spot by
  // Node's default action, the run left its run file and certificates behind, and no report).
  process.on('SIGHUP', onSignal);
  // Whether the run file is this run's (removed at the end): a run refused for another one in
  // progress in the same tree leaves that one's file alone.
  let claimed = false;
  const started = processStartTime(process.pid);
  try {
    await claimRunFile(current, {
      pid: process.pid,
      ...(started ? { started } : {}),
      master: address,
      certs: certDir,
      config: config.file,
    });
    claimed = true;
    workers.start();
    await Promise.race([
      early,
      aborted,
      master.waitForWorkers(n, 30_000).catch((e: Error) => {
        throw new RunFailure(
          `${e.message}; worker output:\n  ${Array.from({ length: n }, (_, i) =>
            workers
              .tail(i + 1)
              .slice(-3)
              .join('\n  '),
          ).join('\n  ')}`,
        );
      }),
    ]);
    joined = true;
    const code = await driveAndPrint({
      master,
      config,
      configPath: flags.config,
      out: flags.out,
      targets,
      ...(share ? { share: { ...share, waitMs: shareWaitMs } } : {}),
      ...(flags.cacheDir !== undefined ? { cacheDir: flags.cacheDir } : {}),
      failFast: flags.failFast ?? false,
      showOutput: flags.output,
      plain: flags.plain ?? false,
      logOrder: flags.logOrder,
      err,
      onPrinter: (p) => (print = p),
      onRun: (r) => {
        run = r;
        if (interrupted) r.cancel(interrupted);
      },
      // A local worker that is lost (killed, or stalled past its lease) is killed with the
      // commands it was running, before they run again elsewhere in the same work tree; none
      // comes back, so with every one gone the run ends at once.
      onWorkerLost: (id, why) => {
        // One that left by itself stopped its commands first.
        if (why.startsWith('deregistered')) return;
        // By its id: a share's workers are named after the share, not worker-<i>.
        const i = Array.from({ length: n }, (_, k) => k + 1).find((k) => workerId(k) === id);
        const pid = i ? workers.kill(i) : undefined;
        if (pid !== undefined) endJobsLeftBy(workerCacheDir(config, flags.cacheDir), pid);
      },
      noWorkerTimeoutMs: 1_000,
    });
    return interrupted ? 130 : code;
  } finally {
    // The signal handlers stay until the workers are gone: a Ctrl-C while they stop ends them
    // at once (with Node's default action it left them, the run file and the keys behind).
    interrupted ??= 'stopping';
    // A `logs --follow` of the last job gets its output from the job's worker before it goes.
    await master.settleLogRelays();
    master.shutdownWorkers();
    // Workers flush their stores as they leave (an Actions cache upload can take a while).
    const killed = await workers.stop(STOP_GRACE_MS);
    if (killed.length > 0) {
      warn(
        `${killed.map(workerId).join(', ')} ${killed.length === 1 ? 'was' : 'were'} still saving to the cache stores ${STOP_GRACE_MS / 1000} s after the run and ${killed.length === 1 ? 'was' : 'were'} killed: what ${killed.length === 1 ? 'it' : 'they'} had not saved (an upload to a remote store: the Actions cache, a registry) is not there`,
      );
    }
    await master.stop();
    if (claimed) await rm(current, { force: true });
    await rm(certDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

/**
 * Writes the run file (`current.json`) for this run, unless another `dist-build run` in progress
 * holds it: two runs in one tree would run the same commands on the same outputs at once (a
 * result packed while the other run's command rewrites its files), and the first to end would
 * remove the other's run file. The file appears whole or not at all (a link of a complete temp
 * file), so two runs starting together cannot both take it. One whose process is gone (a killed
 * run) is taken over, also when its pid is now another process's (a pid reused after the run was
 * killed, as in containers, where pids are small: told apart by the process's start time).
 */
async function claimRunFile(file: string, run: { pid: number } & Record<string, unknown>) {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(run, null, 2));
  try {
    for (;;) {
      try {
        return await link(tmp, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let other: { pid?: unknown; started?: unknown } = {};
      try {
        other = JSON.parse(await readFile(file, 'utf8')) as typeof other;
      } catch {
        // removed meanwhile, or not a run file: taken over
      }
      const { pid, started } = other;
      const recorded = typeof started === 'string' ? started : undefined;
      if (typeof pid === 'number' && pid !== process.pid && processStillAlive(pid, recorded)) {
        throw new UsageError(
          `another dist-build run (pid ${pid}) is in progress in ${dirname(dirname(dirname(file)))}: wait for it to end (or stop it); runs of one tree share its outputs and .dist-build`,
        );
      }
      await rm(file, { force: true });
    }
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Removes the certificate directories of earlier runs whose process is gone (killed runs). */
async function removeStaleCertDirs(runDir: string): Promise<void> {
  for (const entry of await readdir(runDir)) {
    const pid = /^certs-(\d+)$/.exec(entry)?.[1];
    if (pid && Number(pid) !== process.pid && !processAlive(Number(pid)))
      await rm(join(runDir, entry), { recursive: true, force: true });
  }
}

/** How long local workers get to leave (flushing their stores) before they are killed. */
const STOP_GRACE_MS = 60_000;

/** Local worker processes at most: as many as a config's `workers.max` may ask for. */
const MAX_LOCAL_WORKERS = 256;

function localWorkerCount(text: string): number {
  const n = positiveInt(text, '--workers');
  if (n > MAX_LOCAL_WORKERS)
    throw new UsageError(
      `--workers ${n}: at most ${MAX_LOCAL_WORKERS} local worker processes (each is a Node.js process of about 80 MB); for more, run workers on other machines (dist-build master / worker)`,
    );
  return n;
}
