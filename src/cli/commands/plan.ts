import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { formatDuration } from '../../config/duration.js';
import {
  numberedWorkers,
  outExclusion,
  planBuild,
  readHistory,
  readMembers,
  readPrevious,
} from '../../plan/plan.js';
import type { PlanJson } from '../../plan/plan.js';
import type { WorkerInfo } from '../../plan/types.js';
import { table } from '../table.js';
import { UsageError } from '../errors.js';
import { DEFAULT_CONFIG } from '../defaults.js';

interface PlanFlags {
  config: string;
  workers?: string;
  workerIds?: string;
  members?: string;
  history?: string;
  previous?: string;
  keys: boolean;
  out: string;
  json?: boolean;
}

async function workersFrom(flags: PlanFlags): Promise<WorkerInfo[] | undefined> {
  const given = [flags.workers, flags.workerIds, flags.members].filter((x) => x !== undefined);
  if (given.length > 1)
    throw new UsageError('give only one of --workers, --worker-ids and --members');
  if (flags.workers !== undefined) {
    if (!/^[1-9][0-9]*$/.test(flags.workers))
      throw new UsageError(`--workers: expected a whole number >= 1, got "${flags.workers}"`);
    return numberedWorkers(Number(flags.workers));
  }
  if (flags.workerIds !== undefined) {
    const ids = flags.workerIds.split(',').map((s) => s.trim());
    if (ids.some((id) => !id))
      throw new UsageError(`--worker-ids: empty id in "${flags.workerIds}"`);
    return ids.map((id) => ({ id }));
  }
  if (flags.members !== undefined) return readMembers(flags.members);
  return undefined;
}

export function printPlanTable(plan: PlanJson, configPath: string, balance: number): string {
  const byWorker = new Map<string, string[]>(plan.workers.map((w) => [w, []]));
  for (const [unit, w] of Object.entries(plan.assignments)) byWorker.get(w)?.push(unit);
  const load = (units: string[]): number => units.reduce((s, u) => s + plan.units[u]!.duration, 0);
  const n = Object.keys(plan.units).length;
  const lines = [
    `dist-build plan: ${configPath}: ${n} invocation unit${n === 1 ? '' : 's'} on ${plan.workers.length} worker${plan.workers.length === 1 ? '' : 's'} (balance ${balance})`,
    '',
    table(
      [
        ['WORKER', 'LOAD', 'UNITS'],
        ...plan.workers.map((w) => {
          const us = byWorker.get(w)!;
          return [w, formatDuration(load(us)), us.join(', ') || '-'];
        }),
      ],
      [false, true, false],
    ),
    '',
    table(
      [
        ['UNIT', 'WORKER', 'EXPECTED', 'AFFINITY KEY', 'CACHE KEY'],
        ...Object.entries(plan.units).map(([id, u]) => [
          id,
          plan.assignments[id]!,
          formatDuration(u.duration),
          u.affinityKey,
          u.cacheKey ? u.cacheKey.slice(0, 19) : '-',
        ]),
      ],
      [false, false, true, false, false],
    ),
    '',
    `estimate: makespan ${formatDuration(plan.estimate.makespan)}, lower bound ${formatDuration(plan.estimate.lowerBound)}` +
      ` (${(plan.estimate.makespan / Math.max(plan.estimate.lowerBound, 1e-9)).toFixed(2)}x), capacity per worker ${formatDuration(plan.estimate.capacity)}`,
  ];
  return lines.join('\n');
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description(
      'Place every invocation of a config on workers (consistent hashing with bounded loads) and print the plan.',
    )
    .option('-c, --config <file>', 'the dist-build.yml to plan', DEFAULT_CONFIG)
    .option(
      '-w, --workers <n>',
      "plan for N workers named worker-1..worker-N (default: the config's workers rule)",
    )
    .option('--worker-ids <ids>', 'plan for these comma-separated worker ids')
    .option(
      '--members <file>',
      'plan for workers from a JSON list of membership records {worker_id, annotations}',
    )
    .option(
      '--history <file>',
      'JSON {"durations": {"<invocation>": <seconds>}} measured in earlier runs',
    )
    .option(
      '--previous <file>',
      'the JSON printed by an earlier `plan --json`: invocations first try their previous worker',
    )
    .option(
      '-o, --out <dir>',
      "the --out of the runs this plans: left out of every invocation's inputs, as run does",
      'dist-build-out',
    )
    .option('--no-keys', 'skip hashing inputs (no cache keys in the output)')
    .option('--json', 'print one JSON object: workers, matrix, assignments, estimate, units')
    .addHelpText(
      'after',
      `
Examples:
  $ dist-build plan --config examples/monorepo/dist-build.yml
  $ dist-build plan --workers 8 --history durations.json --json > plan.json
  $ dist-build plan --worker-ids a,b,c --previous plan.json --json`,
    )
    .action(async (flags: PlanFlags) => {
      const config = await loadConfig(flags.config);
      const workers = await workersFrom(flags);
      const plan = await planBuild(config, {
        ...(workers ? { workers } : {}),
        ...(flags.history ? { history: await readHistory(flags.history) } : {}),
        ...(flags.previous ? { previous: await readPrevious(flags.previous) } : {}),
        keys: flags.keys,
        exclude: outExclusion(config.root, flags.out),
        onWarning: (m) => process.stderr.write(`dist-build: warning: ${m}\n`),
      });
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(plan, null, 2)}\n`
          : `${printPlanTable(plan, flags.config, config.placement.balance)}\n`,
      );
    });
}
