import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { Master } from '../../cluster/master.js';
import type { Run } from '../../cluster/scheduler.js';
import { formatAddress, parseAddress } from '../../cluster/transport.js';
import { DEFAULT_CONFIG } from '../defaults.js';
import { driveAndPrint } from '../drive.js';
import { RunFailure, UsageError } from '../errors.js';
import {
  addSecurityOptions,
  plaintextWarning,
  securityFrom,
  type SecurityFlags,
} from '../security.js';
import { durationFlag, logOrderOption, outDirFlag, positiveInt, targetUnits } from '../util.js';

interface MasterFlags extends SecurityFlags {
  listen: string[];
  config: string;
  workers: string;
  wait: string;
  out: string;
  heartbeat: string;
  failFast?: boolean;
  stopWorkers?: boolean;
  serve?: boolean;
  output: boolean;
  plain?: boolean;
  logOrder?: 'grouped' | 'stream' | 'auto';
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerMaster(program: Command): void {
  const cmd = program
    .command('master')
    .description(
      'Run a master for a pool of workers (`dist-build worker --join`): wait for them, run the config on them, export, report.',
    )
    .option(
      '-l, --listen <address>',
      'tcp://host:port or unix:///path.sock (repeatable)',
      collect,
      [],
    )
    .argument(
      '[invocations...]',
      'run only these invocations (or unit ids) and what they need (default: all)',
    )
    .option('-c, --config <file>', 'the dist-build.yml to run', DEFAULT_CONFIG)
    .option('-w, --workers <n>', 'start when this many workers have joined', '1')
    .option('--wait <duration>', 'give up when they have not joined after this long', '120s')
    .option('-o, --out <dir>', 'where exported artifacts and the report go', 'dist-build-out')
    .option('--heartbeat <duration>', 'heartbeat period asked of workers (lease = 3x + 0.5s)', '1s')
    .option('--fail-fast', 'stop everything at the first failed invocation')
    .option('--stop-workers', 'tell the workers to exit when the run is over')
    .option('--serve', 'only serve membership (status, logs); run nothing')
    .option('--no-output', "do not print the jobs' output")
    .option('--plain', 'plain log lines even in a terminal')
    .addOption(logOrderOption());
  addSecurityOptions(cmd, 'master').addHelpText(
    'after',
    `
Examples (a pool on two shells):
  $ dist-build certs init && dist-build certs issue --name master --role master \\
      && dist-build certs issue --name w1 && dist-build certs issue --name client --role client
  $ dist-build master --listen tcp://127.0.0.1:12345 --certs .dist-build/certs --workers 1
  $ dist-build worker --join tcp://127.0.0.1:12345 --certs .dist-build/certs --name w1`,
  );
  cmd.action(async (targets: string[], flags: MasterFlags) => {
    if (!flags.listen.length) throw new UsageError('give at least one --listen address');
    if (flags.serve && targets.length)
      throw new UsageError(`--serve runs nothing: leave out ${targets.join(' ')}`);
    const config = flags.serve ? undefined : await loadConfig(flags.config);
    if (config) targetUnits(config, flags.config, targets);
    // Every flag is checked before the master listens.
    const workers = config ? positiveInt(flags.workers, '--workers') : 0;
    const waitMs = durationFlag(flags.wait, '--wait') * 1000;
    const heartbeatMs = durationFlag(flags.heartbeat, '--heartbeat') * 1000;
    if (heartbeatMs < 100) {
      throw new UsageError(`--heartbeat ${flags.heartbeat}: expected at least 100ms`);
    }
    if (config) outDirFlag(config, flags.out);
    const security = await securityFrom(flags, { command: 'master', roles: ['master'] });
    const err = process.stderr;
    // While the run's live progress is on (a terminal), lines go above it (written past it, the
    // next redraw erased them and left part of the old block on the screen).
    let print: ((line: string) => void) | undefined;
    const say = (line: string) => (print ? print(line) : err.write(`${line}\n`));
    const plaintext = plaintextWarning(flags.listen.map(parseAddress), security);
    if (plaintext) say(`dist-build master: ${plaintext}`);
    const master = new Master({
      listen: flags.listen.map(parseAddress),
      security,
      heartbeatMs,
      log: (m) => say(`${new Date().toISOString()} ${m}`),
    });
    // `logs --follow` from now on waits for the run rather than saying nothing has started.
    master.runExpected = !!config;
    await master.start();
    let run: Run | undefined;
    let stopped = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopped) process.exit(130);
      stopped = true;
      say(`dist-build master: ${sig}`);
      if (run) run.cancel(`master interrupted (${sig})`);
      else void master.stop().then(() => process.exit(130));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal); // its terminal closed
    // Once a signal is handled: one sent the moment this line is read (a supervisor, a test)
    // killed the master outright.
    err.write(
      `dist-build master ${master.id.slice(0, 8)} listening on ${master.addresses.map(formatAddress).join(', ')}\n`,
    );
    try {
      if (!config) {
        await new Promise<void>(() => undefined); // until a signal
        return;
      }
      await master.waitForWorkers(workers, waitMs).catch((e: Error) => {
        throw new RunFailure(e.message);
      });
      const code = await driveAndPrint({
        master,
        config,
        configPath: flags.config,
        out: flags.out,
        targets,
        failFast: flags.failFast ?? false,
        showOutput: flags.output,
        plain: flags.plain ?? false,
        logOrder: flags.logOrder,
        err,
        onRun: (r) => (run = r),
        onPrinter: (p, live) => (print = live ? p : undefined),
      });
      process.exitCode = stopped ? 130 : code;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
      // Also when the run ended in an error (a placement error, say): the workers were told to go.
      if (config && flags.stopWorkers) {
        master.shutdownWorkers();
        // Give the workers one heartbeat to hear it.
        await new Promise((r) => setTimeout(r, master.heartbeatMs * 2));
      }
      await master.stop();
    }
  });
}
