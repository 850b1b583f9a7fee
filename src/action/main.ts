// GitHub Action entry point (bundled to dist/action.js). GitHub specifics stay here: inputs,
// outputs and the step summary; the work itself is the same code the CLI runs.
import * as core from '@actions/core';
import { loadConfig } from '../config/load.js';
import { formatDuration } from '../config/duration.js';
import { numberedWorkers, planBuild, readHistory, readPrevious } from '../plan/plan.js';
import type { PlanJson } from '../plan/plan.js';

async function plan(): Promise<void> {
  const config = await loadConfig(core.getInput('config') || 'dist-build.yml');
  const count = core.getInput('workers');
  const ids = core.getInput('worker-ids');
  if (count && ids) throw new Error('give only one of the inputs "workers" and "worker-ids"');
  if (count && !/^[1-9][0-9]*$/.test(count))
    throw new Error(`input "workers": expected a whole number >= 1, got "${count}"`);
  const history = core.getInput('history');
  const previous = core.getInput('previous');
  const result = await planBuild(config, {
    ...(count ? { workers: numberedWorkers(Number(count)) } : {}),
    ...(ids ? { workers: ids.split(',').map((id) => ({ id: id.trim() })) } : {}),
    ...(history ? { history: await readHistory(history) } : {}),
    ...(previous ? { previous: await readPrevious(previous) } : {}),
    keys: core.getBooleanInput('keys'),
    onWarning: (m) => core.warning(m),
  });
  core.setOutput('matrix', JSON.stringify(result.matrix));
  core.setOutput('plan', JSON.stringify(result));
  core.setOutput('workers', String(result.workers.length));
  await summary(result);
}

async function summary(result: PlanJson): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  const rows = Object.entries(result.units).map(([id, u]) => [
    { data: id },
    { data: result.assignments[id]! },
    { data: formatDuration(u.duration) },
    { data: u.cacheKey ? `<code>${u.cacheKey.slice(0, 19)}</code>` : '-' },
  ]);
  await core.summary
    .addHeading('dist-build plan', 3)
    .addRaw(
      `${Object.keys(result.units).length} units on ${result.workers.length} workers; estimated makespan ` +
        `${formatDuration(result.estimate.makespan)} (lower bound ${formatDuration(result.estimate.lowerBound)})`,
      true,
    )
    .addTable([
      [
        { data: 'Unit', header: true },
        { data: 'Worker', header: true },
        { data: 'Expected', header: true },
        { data: 'Cache key', header: true },
      ],
      ...rows,
    ])
    .write();
}

export async function run(): Promise<void> {
  try {
    const command = core.getInput('command') || 'plan';
    if (command !== 'plan') throw new Error(`input "command": expected "plan", got "${command}"`);
    await plan();
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}

await run();
