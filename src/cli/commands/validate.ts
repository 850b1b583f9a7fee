import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { expandUnits } from '../../plan/units.js';
import { checkStores } from '../../store/open.js';
import { DEFAULT_CONFIG } from '../defaults.js';
import { count } from '../table.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description(
      "Check a dist-build.yml against the schema and the rules (names, needs, cycles, paths, the cache stores' options); exit 2 when invalid.",
    )
    .option('-c, --config <file>', 'the dist-build.yml to check', DEFAULT_CONFIG)
    .action(async (flags: { config: string }) => {
      const config = await loadConfig(flags.config);
      const units = expandUnits(config);
      await checkStores(config);
      process.stdout.write(
        `${flags.config}: ok (${count(config.invocations.length, 'invocation')}, ${count(units.length, 'unit')})\n`,
      );
    });
}
