import type { Command } from 'commander';
import os from 'node:os';
import { loadConfig } from '../../config/load.js';
import { LABEL } from '../../config/types.js';
import { KEY_CHECK_MODES, WorkerAgent, type KeyCheckMode } from '../../cluster/worker.js';
import { parseAddress } from '../../cluster/transport.js';
import { openStore, storeKinds, workerCacheDir } from '../../store/open.js';
import { DEFAULT_CONFIG } from '../defaults.js';
import { UsageError } from '../errors.js';
import {
  addSecurityOptions,
  plaintextWarning,
  securityFrom,
  type SecurityFlags,
} from '../security.js';
import {
  cacheDirFlag,
  durationFlag,
  NO_REMOTE_CACHE_HELP,
  positiveInt,
  watchParent,
} from '../util.js';

interface WorkerFlags extends SecurityFlags {
  join: string;
  config: string;
  listen: string[];
  advertise?: string;
  cacheDir?: string;
  /** false with --no-remote-cache */
  remoteCache?: boolean;
  id?: string;
  slots: string;
  label: string[];
  annotation: string[];
  killGrace: string;
  parentPid?: string;
  runId?: string;
  logDir?: string;
  keyCheck: KeyCheckMode | false;
  docker?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** How long a stopped worker waits for what is still pending before it exits. */
const EXIT_GRACE_MS = 2000;

/** Annotations every worker sets from what it is (placement relies on os and arch). */
const BUILT_IN_ANNOTATIONS = [
  'os',
  'arch',
  'executor',
  'docker',
  'store',
  'host',
  'labels',
  'version',
];
const ANNOTATION_KEY = /^[a-z0-9](?:[a-z0-9._/-]{0,126}[a-z0-9])?$/;

export function registerWorker(program: Command): void {
  const cmd = program
    .command('worker')
    .description(
      'Run a worker: join a master, take build invocations from it, keep results in the cache store.',
    )
    .requiredOption('-j, --join <address>', 'the master: tcp://host:port or unix:///path.sock')
    .option('-c, --config <file>', "this worker's copy of the config", DEFAULT_CONFIG)
    .option(
      '-l, --listen <address>',
      'where the Worker service listens (repeatable; default tcp://127.0.0.1:0, a free port, or a socket of its own in <cache dir>/running when --join is a unix socket)',
      collect,
      [],
    )
    .option('--advertise <host>', 'host name the master dials when --listen is 0.0.0.0')
    .option(
      '--cache-dir <dir>',
      "local cache store (default: the config's first local store, else <config dir>/.dist-build/cache)",
    )
    .option('--no-remote-cache', NO_REMOTE_CACHE_HELP)
    .option(
      '--id <id>',
      'worker id (default <host>-command-<stores>, the kinds of store it uses joined by +: build-7-command-local, or build-7-command-local+gha with a gha store)',
    )
    .option('--slots <n>', 'invocations run at once', '1')
    .option('--label <label>', 'a label invocations can require (repeatable)', collect, [])
    .option(
      '--annotation <key=value>',
      'an annotation such as com.example.rack=a3 (repeatable)',
      collect,
      [],
    )
    .option(
      '--kill-grace <duration>',
      'time between SIGTERM and SIGKILL when a job is stopped',
      '10s',
    )
    .option('--log-dir <dir>', 'where job logs are kept (default: a temp dir)')
    .option(
      '--key-check <mode>',
      "when a job's inputs in this worker's tree give another cache key than the master's: warn (run it, do not cache its result), refuse (leave it to another worker) or off (no check: a worker sharing the master's tree)",
      'warn',
    )
    .option('--no-key-check', 'the same as --key-check off')
    .option(
      '--docker <path>',
      'the Docker CLI for docker invocations (default: $DIST_BUILD_DOCKER, else the first docker on PATH that reaches a daemon and builds with BuildKit)',
    )
    .option('--parent-pid <pid>', 'exit when this process is gone (used by `dist-build run`)')
    .option(
      '--run-id <id>',
      'the one run this worker serves, written with its cache counters so that `cache stats` shows that run alone (used by `dist-build run`)',
    );
  addSecurityOptions(cmd, 'worker').addHelpText(
    'after',
    `
Examples:
  $ dist-build worker --join tcp://10.0.0.5:12345 --certs certs --name build-7 --label big
  $ dist-build worker --join unix:///tmp/db.sock --insecure`,
  );
  cmd.action(async (flags: WorkerFlags) => {
    const config = await loadConfig(flags.config);
    cacheDirFlag(config, flags.cacheDir);
    // The id is also the worker's store slot (its cache counters, its Actions cache shard): an
    // empty one was the slot while the worker joined with the default id.
    if (flags.id !== undefined && flags.id.trim() === '')
      throw new UsageError(
        '--id: expected a worker id, got an empty one (leave --id out for the default)',
      );
    for (const label of flags.label) {
      if (!LABEL.test(label))
        throw new UsageError(
          `--label ${JSON.stringify(label)}: expected a label without spaces or commas (one --label per label)`,
        );
    }
    const annotations: Record<string, string> = {};
    for (const a of flags.annotation) {
      const eq = a.indexOf('=');
      if (eq <= 0) throw new UsageError(`--annotation ${a}: expected key=value`);
      const key = a.slice(0, eq);
      if (BUILT_IN_ANNOTATIONS.includes(key)) {
        throw new UsageError(
          `--annotation ${a}: "${key}" is set by the worker itself${key === 'labels' ? ' (give labels with --label)' : ''}`,
        );
      }
      if (!ANNOTATION_KEY.test(key)) {
        throw new UsageError(
          `--annotation ${a}: expected a key of lower-case letters, digits and . _ - / (such as com.example.rack)`,
        );
      }
      if (key in annotations) throw new UsageError(`--annotation ${key} is given twice`);
      annotations[key] = a.slice(eq + 1);
    }
    const join = parseAddress(flags.join);
    if (join.kind === 'tcp' && join.port === 0) {
      throw new UsageError(
        `--join ${flags.join}: port 0 is no master's port (a master given port 0 prints the port it took)`,
      );
    }
    const keyCheck: KeyCheckMode = flags.keyCheck === false ? 'off' : flags.keyCheck;
    if (!KEY_CHECK_MODES.includes(keyCheck)) {
      throw new UsageError(
        `--key-check ${String(flags.keyCheck)}: expected ${KEY_CHECK_MODES.join(', ')}`,
      );
    }
    const killGrace = durationFlag(flags.killGrace, '--kill-grace');
    const cacheDir = workerCacheDir(config, flags.cacheDir);
    const security = await securityFrom(flags, { command: 'worker', roles: ['worker'] });
    // Under `dist-build run` stderr is a pipe to the run: if that process dies (SIGKILL), writing
    // fails with EPIPE, which must not end this worker before it has stopped its jobs.
    process.stderr.on('error', () => undefined);
    const log = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);
    const plaintext = plaintextWarning(flags.listen.map(parseAddress), security);
    if (plaintext) log(`worker: ${plaintext}`);
    // The slot is the worker id: the agent's default id, `<host>-command-<store kind>`, spelled
    // out here because the store needs it before the agent exists.
    const localOnly = flags.remoteCache === false;
    const kinds = storeKinds(config, flags.cacheDir, localOnly);
    const slot = flags.id ?? `${os.hostname().split('.')[0] || 'host'}-command-${kinds.join('+')}`;
    const store = await openStore(config, {
      ...(flags.cacheDir !== undefined ? { cacheDir: flags.cacheDir } : {}),
      slot,
      ...(flags.runId ? { run: flags.runId } : {}),
      localOnly,
      onWarning: (m) => log(`warning: ${m}`),
      // A copy: a gha store call changes process.env (HOME) for a while, which another store
      // (the registry's Docker config in ~/.docker) must not see.
      env: { ...process.env },
    });
    let stopping: Promise<void> | undefined;
    const stop = (why: string): Promise<void> => (stopping ??= agent.stop(why));
    const agent: WorkerAgent = new WorkerAgent({
      config,
      join,
      ...(flags.listen.length ? { listen: flags.listen.map(parseAddress) } : {}),
      ...(flags.advertise ? { advertise: flags.advertise } : {}),
      security,
      store,
      cacheDir,
      ...(flags.id ? { id: flags.id } : {}),
      slots: positiveInt(flags.slots, '--slots'),
      labels: flags.label,
      annotations,
      log,
      ...(flags.logDir ? { logDir: flags.logDir } : {}),
      killGraceMs: killGrace * 1000,
      ...(flags.docker || process.env.DIST_BUILD_DOCKER
        ? { docker: flags.docker || process.env.DIST_BUILD_DOCKER }
        : {}),
      keyCheck,
      onShutdown: () => void stop('the run is over'),
      // A refusal does not go away by asking again: exit 2 (the reason is logged).
      onRefused: () => {
        process.exitCode = 2;
        void stop('refused by the master');
      },
    });
    await agent.start();
    // SIGTERM is a supervisor's way to stop it (exit 0 once stopped); Ctrl-C is an interruption
    // (130, as everywhere in this CLI); SIGHUP, its terminal closing, stops it the same way
    // (129). A second signal stops without waiting: the commands' process groups are killed now
    // (left to the default handler, the worker died and they ran on, orphaned, in the tree), and
    // the worker exits.
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) {
        agent.killJobsNow();
        process.exit(sig === 'SIGINT' ? 130 : (process.exitCode ?? 143));
      }
      signalled = true;
      if (sig === 'SIGINT') process.exitCode ??= 130;
      if (sig === 'SIGHUP') process.exitCode ??= 129;
      void stop(sig);
    };
    process.on('SIGTERM', onSignal);
    // A worker of `dist-build run` (--parent-pid) is in the run's process group: a Ctrl-C in a
    // terminal reaches it too, and the run, which gets the same Ctrl-C, stops its workers itself
    // (SIGTERM; a second Ctrl-C kills them and their commands). Taken here as well, the run's
    // SIGTERM was this worker's second signal: its commands were killed without their
    // --kill-grace, and it exited without flushing its stores or removing its job logs.
    process.on('SIGINT', flags.parentPid ? () => undefined : onSignal);
    // The same for a closing terminal, which hangs up on the run and its workers alike.
    process.on('SIGHUP', flags.parentPid ? () => undefined : onSignal);
    if (flags.parentPid) {
      watchParent(positiveInt(flags.parentPid, '--parent-pid'), () => void stop('parent exited'));
    }
    // Runs until stopped (the gRPC server keeps the process alive meanwhile).
    await new Promise<void>((done) => {
      const poll = setInterval(() => {
        if (!stopping) return;
        clearInterval(poll);
        void stopping.then(done);
      }, 50);
    });
    // Stopped: results stored, the store flushed, the master told. A request still waiting on a
    // cache store that does not answer (one left alone) must not hold the process until its own
    // timeout: past a short grace, exit.
    setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
  });
}
