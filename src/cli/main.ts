import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { ConfigError } from '../config/errors.js';
import { PlanInputError } from '../plan/plan.js';
import { NoEligibleWorkerError } from '../plan/placement.js';
import { UsageError } from './errors.js';
import { registerPlan } from './commands/plan.js';
import { registerValidate } from './commands/validate.js';

export function buildProgram(): Command {
  const program = new Command('dist-build')
    .description(
      'Spread build invocations over many workers with consistent hashing, without losing cache.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerPlan(program);
  registerValidate(program);
  for (const c of program.commands)
    c.exitOverride().showHelpAfterError('(run with --help for usage)');
  return program;
}

/** Runs the CLI; returns the exit code (0 ok, 1 failure, 2 bad input or usage). */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (
      err instanceof ConfigError ||
      err instanceof UsageError ||
      err instanceof PlanInputError ||
      err instanceof NoEligibleWorkerError
    ) {
      process.stderr.write(`dist-build: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(
      `dist-build: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  }
}
