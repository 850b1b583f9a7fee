// GitHub Action entry point (bundled to dist/action.js). GitHub specifics stay here: inputs,
// outputs and the step summary; the work itself is the same code the CLI runs.
import * as core from '@actions/core';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { annotate } from '../cli/github.js';
import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import { formatDuration } from '../config/duration.js';
import {
  numberedWorkers,
  outExclusion,
  planBuild,
  readHistory,
  readPrevious,
} from '../plan/plan.js';
import type { PlanJson } from '../plan/plan.js';
import { cutMarkdown, REPORT_FILES, totalsLine } from '../report/index.js';
import type { RunReport } from '../report/index.js';
import { splitArgs } from './args.js';

/** The largest step summary GitHub Actions shows (less a margin for what @actions/core adds). */
const SUMMARY_MAX_BYTES = 1024 * 1024 - 1024;

/** Most jobs GitHub Actions runs from one matrix. */
const MAX_MATRIX_JOBS = 256;

async function plan(): Promise<void> {
  const config = await loadConfig(core.getInput('config') || 'dist-build.yml');
  const count = workersInput();
  const ids = core.getInput('worker-ids');
  if (count && ids) throw new Error('give only one of the inputs "workers" and "worker-ids"');
  const idList = ids ? ids.split(',').map((id) => id.trim()) : [];
  // As `plan --worker-ids`: "a,b," is a mistake, not a worker with an empty id in the matrix.
  if (idList.some((id) => !id)) throw new Error(`input "worker-ids": empty id in "${ids}"`);
  // The matrix is the plan's workers: GitHub refuses a matrix of more jobs, later and less clearly.
  const jobs = count ? Number(count) : idList.length;
  if (jobs > MAX_MATRIX_JOBS) {
    throw new Error(
      `input "${count ? 'workers' : 'worker-ids'}": ${jobs} workers, but a GitHub Actions matrix runs at most ${MAX_MATRIX_JOBS} jobs`,
    );
  }
  const history = core.getInput('history');
  const previous = core.getInput('previous');
  const result = await planBuild(config, {
    ...(count ? { workers: numberedWorkers(Number(count)) } : {}),
    ...(ids ? { workers: idList.map((id) => ({ id })) } : {}),
    ...(history ? { history: await readHistory(history) } : {}),
    ...(previous ? { previous: await readPrevious(previous) } : {}),
    keys: core.getBooleanInput('keys'),
    exclude: outExclusion(config.root, core.getInput('out') || 'dist-build-out'),
    onWarning: (m) => core.warning(m),
  });
  core.setOutput('matrix', JSON.stringify(result.matrix));
  core.setOutput('plan', JSON.stringify(result));
  core.setOutput('workers', String(result.workers.length));
  await summary(result);
}

/** The `workers` input ('' when not given), checked. */
function workersInput(): string {
  const count = core.getInput('workers');
  if (count && !/^[1-9][0-9]*$/.test(count))
    throw new Error(`input "workers": expected a whole number >= 1, got "${count}"`);
  return count;
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

/** The bundled CLI next to this file. */
function cliFile(): string {
  return fileURLToPath(new URL('./cli.js', import.meta.url));
}

/**
 * Runs the bundled CLI with `args`; its exit code. A cancelled workflow sends SIGINT, then
 * SIGTERM, to this process only (the runner kills the rest of the tree later): they are passed
 * on, so that a run stops as on Ctrl-C (jobs stopped, stores flushed) instead of going on,
 * orphaned, until it is killed.
 */
function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const argv = [cliFile(), ...args];
  core.info(`[command]${process.execPath} ${argv.join(' ')}`);
  const child = spawn(process.execPath, argv, { stdio: 'inherit', env });
  // The first signal only: a cancelled workflow's SIGTERM follows its SIGINT, and a second
  // signal makes `run` kill its workers at once, while they still flush their stores.
  let passed = false;
  const pass = (signal: NodeJS.Signals) => {
    if (passed) return;
    passed = true;
    child.kill(signal);
  };
  process.on('SIGINT', pass);
  process.on('SIGTERM', pass);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      process.off('SIGINT', pass);
      process.off('SIGTERM', pass);
      resolve(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}

/**
 * `command: run`: the whole config on local workers of this runner (`dist-build run`, the bundled
 * CLI next to this file). The workers inherit the runner's Actions cache credentials.
 */
async function runBuild(): Promise<void> {
  const out = resolve(core.getInput('out') || 'dist-build-out');
  // Checked here, so that the error names the input, not the CLI's --workers.
  const count = workersInput();
  const args = ['run', '--config', core.getInput('config') || 'dist-build.yml', '--out', out];
  if (count) args.push('--workers', count);
  const share = core.getInput('share');
  const plan = core.getInput('plan');
  if (!share !== !plan)
    throw new Error(
      share ? 'input "share" needs input "plan"' : 'input "plan" goes with input "share"',
    );
  if (share) args.push('--share', share, '--plan', await planFile(plan));
  // A run that ends before it gets going (a config error) leaves the report of an earlier run
  // in `out` (a self-hosted runner's workspace, a second run step): that one is not this run's.
  const json = join(out, REPORT_FILES.json);
  const markdown = join(out, REPORT_FILES.markdown);
  const before = await Promise.all([fileVersion(json), fileVersion(markdown)]);
  const code = await runCli(args);
  const written = async (file: string, i: number) => {
    const now = await fileVersion(file);
    return now !== undefined && now !== before[i];
  };
  const report = (await written(json, 0)) ? json : undefined;
  core.setOutput('out', out);
  if (report) core.setOutput('report', report);
  if (process.env.GITHUB_STEP_SUMMARY && (await written(markdown, 1))) {
    const md = await readFile(markdown, 'utf8').catch(() => '');
    // GitHub drops a step summary over 1 MiB (an error annotation instead): a run of some
    // thousand invocations had none. The rest is cut, with where the whole report is.
    const note =
      `**The report is cut here**: the step summary holds at most 1 MiB. ` +
      `The whole report: \`${markdown}\` (also .html, .json).`;
    if (md) await core.summary.addRaw(cutMarkdown(md, SUMMARY_MAX_BYTES, note), true).write();
  }
  if (code !== 0) core.setFailed(await runFailure(code, report));
}

/**
 * Why the run failed, for the step's error annotation: which invocations failed and why, from
 * the report this run wrote (the exit code alone says nothing about them).
 */
async function runFailure(code: number, reportFile: string | undefined): Promise<string> {
  const exited = `dist-build run exited with code ${code}`;
  if (!reportFile) return exited;
  try {
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as RunReport;
    const failed = report.invocations.filter((i) => i.status === 'failed');
    const shown = failed
      .slice(0, 10)
      .map((i) => (i.reason ? `${i.unit} (${i.reason})` : i.unit))
      .join(', ');
    const more = failed.length > 10 ? ` and ${failed.length - 10} more` : '';
    return `${exited}: ${totalsLine(report)}${failed.length ? `; failed: ${shown}${more}` : ''}`;
  } catch {
    return exited;
  }
}

/** Which version of a file is there (inode, time and size), or undefined when there is none. */
async function fileVersion(file: string): Promise<string | undefined> {
  const s = await stat(file).catch(() => undefined);
  return s && `${s.ino}:${s.mtimeMs}:${s.size}`;
}

const CACHE_COMMANDS = ['stats', 'verify', 'prune', 'ls'];

/**
 * `command: cache`: `dist-build cache <args>` on the config's stores. Here, unlike in a `run:`
 * step, the Actions cache service is reachable (the runner gives its token to JavaScript actions
 * only), and the `github-token` input lets the gha store list and delete entries through the
 * GitHub API (`verify` and `prune` need `actions: write`).
 */
async function cache(): Promise<void> {
  const args = splitArgs(core.getInput('args'));
  if (!CACHE_COMMANDS.includes(args[0] ?? '')) {
    throw new Error(
      `input "args": expected one of ${CACHE_COMMANDS.join(', ')} and its flags (e.g. "prune --max-size 5GB"), got "${args.join(' ')}"`,
    );
  }
  // The input (default: the workflow's token) wins over GITHUB_TOKEN in the environment, not
  // over DIST_BUILD_GITHUB_TOKEN, which is set for dist-build alone (a token with more rights).
  const token = core.getInput('github-token');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  if (token && !env.DIST_BUILD_GITHUB_TOKEN) {
    core.setSecret(token);
    env.DIST_BUILD_GITHUB_TOKEN = token;
  }
  const named = args.some((a) => /^(-c|--config(=|$))/.test(a));
  const config = named ? [] : ['--config', core.getInput('config') || 'dist-build.yml'];
  // Right after the subcommand: at the end, a flag whose value was left out ("prune
  // --max-size") would take "--config" as its value, and the error be about an extra argument.
  const code = await runCli(['cache', args[0]!, ...config, ...args.slice(1)], env);
  if (code !== 0) core.setFailed(`dist-build cache ${args[0]} exited with code ${code}`);
}

/**
 * The `plan` input as a file for `run --plan`: a path as it is, the JSON (the plan job's output)
 * written to a file in the runner's temp dir.
 */
async function planFile(plan: string): Promise<string> {
  if (!plan.trimStart().startsWith('{')) return plan;
  const parent = process.env.RUNNER_TEMP || tmpdir();
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, 'dist-build-plan-'));
  const file = join(dir, 'plan.json');
  await writeFile(file, plan);
  return file;
}

/** The inputs without a default, by the commands that use them. */
const INPUT_USERS: Record<string, string[]> = {
  workers: ['plan', 'run'],
  'worker-ids': ['plan'],
  history: ['plan'],
  previous: ['plan'],
  share: ['run'],
  plan: ['run'],
  args: ['cache'],
};

export async function run(): Promise<void> {
  try {
    const command = core.getInput('command') || 'plan';
    // An input the command does not use is a mistake (`worker-ids` with `run`, whose workers are
    // worker-1..N): say so rather than run without it.
    for (const [input, users] of Object.entries(INPUT_USERS)) {
      if (core.getInput(input) && !users.includes(command)) {
        core.warning(
          `input "${input}" is not used by command "${command}" (only by ${users.map((u) => `"${u}"`).join(' and ')}): ignored`,
        );
      }
    }
    if (command === 'run') await runBuild();
    else if (command === 'plan') await plan();
    else if (command === 'cache') await cache();
    else throw new Error(`input "command": expected "plan", "run" or "cache", got "${command}"`);
  } catch (err) {
    if (err instanceof ConfigError) annotate(err);
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}

await run();
