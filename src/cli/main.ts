import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { ConfigError } from '../config/errors.js';
import { annotate } from './github.js';
import { PlanInputError } from '../plan/plan.js';
import { NoEligibleWorkerError } from '../plan/placement.js';
import { RunFailure, UsageError } from './errors.js';
import { SchedulerError } from '../cluster/scheduler.js';
import { registerPlan } from './commands/plan.js';
import { registerValidate } from './commands/validate.js';
import { registerRun } from './commands/run.js';
import { registerMaster } from './commands/master.js';
import { registerWorker } from './commands/worker.js';
import { registerLogs, registerStatus } from './commands/status.js';
import { registerCerts } from './commands/certs.js';
import { registerCache } from './commands/cache.js';
import { registerKeys } from './commands/keys.js';
import { SigningConfigError } from '../store/signing.js';
import { CertError } from '../cluster/certs.js';
import { AddressError, SecurityError } from '../cluster/transport.js';

export function buildProgram(): Command {
  const program = new Command('dist-build')
    .description(
      'Spread build invocations over many workers with consistent hashing, without losing cache.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerRun(program);
  registerPlan(program);
  registerValidate(program);
  registerKeys(program);
  registerMaster(program);
  registerWorker(program);
  registerStatus(program);
  registerLogs(program);
  registerCerts(program);
  registerCache(program);
  for (const c of program.commands)
    c.exitOverride().showHelpAfterError('(run with --help for usage)');
  return program;
}

/** Runs the CLI; returns the exit code (0 ok, 1 failure, 2 bad input or usage). */
export async function main(argv: string[]): Promise<number> {
  // This command's status only: one an earlier call in this process set (main run twice in one
  // process, as tests and library users do) is not this one's.
  process.exitCode = undefined;
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    // Commands that end with a status of their own (run: 1 when an invocation failed) set it.
    const code = process.exitCode;
    return typeof code === 'number' ? code : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (
      err instanceof ConfigError ||
      err instanceof UsageError ||
      err instanceof PlanInputError ||
      err instanceof NoEligibleWorkerError ||
      err instanceof CertError ||
      err instanceof SigningConfigError ||
      err instanceof SecurityError ||
      err instanceof AddressError
    ) {
      process.stderr.write(`dist-build: ${err.message}\n`);
      if (err instanceof ConfigError) annotate(err);
      return 2;
    }
    if (err instanceof RunFailure || err instanceof SchedulerError) {
      process.stderr.write(`dist-build: ${err.message}\n`);
      return err instanceof RunFailure ? err.exitCode : 1;
    }
    process.stderr.write(
      `dist-build: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  }
}
