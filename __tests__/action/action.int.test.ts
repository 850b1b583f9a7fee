/**
 * The action as the runner starts it (`node dist/action.js`, inputs in `INPUT_*`, outputs in the
 * `GITHUB_OUTPUT` file), bundled from the sources under test next to the CLI it runs. The gha
 * store talks to the local fake of the Actions cache service and of the GitHub REST API.
 */
import type { RunReport } from '../../src/report/types.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startActionsCacheServer } from '../fixtures/actions-cache-server.js';
import type { ActionsCacheServer } from '../fixtures/actions-cache-server.js';
import { alive, runAction, startAction, stopAll } from '../helpers/processes.js';

let tmp: string;
let server: ActionsCacheServer | undefined;

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dist-build-action-'));
});

afterEach(async () => {
  await stopAll();
  await server?.close();
  server = undefined;
  rmSync(tmp, { recursive: true, force: true });
});

const CONFIG = `version: 1
invocations:
  lib:
    run: mkdir -p out && echo "lib $(date +%s%N)" > out/lib.txt
    outputs: [out/lib.txt]
  app:
    run: mkdir -p out && cat out/lib.txt > out/app.txt
    needs: [lib]
    outputs: [out/app.txt]
    export: true
cache:
  stores: [{type: local}, {type: gha}]
`;

/** The outputs the action wrote (`name<<delimiter` blocks, as @actions/core writes them). */
function outputs(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /^([^<\n]+)<<(\S+)\n([\s\S]*?)\n\2$/gm;
  for (const m of readFileSync(file, 'utf8').matchAll(re)) out[m[1]!] = m[3]!;
  return out;
}

function runnerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const file = join(tmp, 'github-output');
  writeFileSync(file, '', { flag: 'a' });
  return {
    GITHUB_ACTIONS: 'true',
    GITHUB_OUTPUT: file,
    GITHUB_WORKSPACE: tmp,
    RUNNER_TEMP: join(tmp, 'runner-temp'),
    ...extra,
  };
}

describe('the action', () => {
  it('command plan: outputs the matrix and the plan', async () => {
    writeFileSync(join(tmp, 'dist-build.yml'), CONFIG);
    const env = runnerEnv();
    const r = await runAction({ command: 'plan', workers: '2' }, { cwd: tmp, env });
    expect(r.stdout).not.toMatch(/::error::/);
    expect(r.code).toBe(0);
    const o = outputs(env.GITHUB_OUTPUT!);
    expect(JSON.parse(o.matrix!)).toEqual({
      include: [{ worker: 'worker-1' }, { worker: 'worker-2' }],
    });
    expect(Object.keys(JSON.parse(o.plan!).units).sort()).toEqual(['app', 'lib']);
    expect(o.workers).toBe('2');
  });

  it("command run with share and plan: each matrix job runs its worker's share of the plan output", async () => {
    writeFileSync(join(tmp, 'dist-build.yml'), CONFIG);
    const env = runnerEnv();
    expect((await runAction({ command: 'plan', workers: '2' }, { cwd: tmp, env })).code).toBe(0);
    const plan = outputs(env.GITHUB_OUTPUT!).plan!;
    const assignments = (JSON.parse(plan) as { assignments: Record<string, string> }).assignments;
    const ran: Record<string, string[]> = {};
    for (const worker of ['worker-1', 'worker-2']) {
      const file = join(tmp, `github-output-${worker}`);
      writeFileSync(file, '');
      const shareEnv = runnerEnv({ GITHUB_OUTPUT: file });
      const r = await runAction(
        { command: 'run', share: worker, plan, out: `out-${worker}` },
        { cwd: tmp, env: shareEnv },
      );
      expect({ code: r.code, out: r.stdout.slice(-1500) }).toMatchObject({ code: 0 });
      const report = outputs(shareEnv.GITHUB_OUTPUT!).report;
      ran[worker] = report
        ? (JSON.parse(readFileSync(report, 'utf8')) as RunReport).invocations
            .filter((i) => i.status === 'built')
            .map((i) => i.unit)
            .sort()
        : [];
    }
    // Each share built what the plan gave it, and nothing else.
    for (const worker of ['worker-1', 'worker-2'])
      expect(ran[worker]).toEqual(
        Object.keys(assignments)
          .filter((u) => assignments[u] === worker)
          .sort(),
      );
    // share without plan is refused, naming the inputs.
    const bad = await runAction(
      { command: 'run', share: 'worker-1' },
      { cwd: tmp, env: runnerEnv() },
    );
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/::error::input "share" needs input "plan"/);
  });

  it('command run saves to the Actions cache; command cache prunes it with the github-token input', async () => {
    const srv = (server = await startActionsCacheServer({ readOnlyTokens: ['ghs_read'] }));
    writeFileSync(join(tmp, 'dist-build.yml'), CONFIG);
    const gh = {
      ...srv.env('v2'),
      GITHUB_REPOSITORY: 'octo/repo',
      GITHUB_API_URL: srv.restApiUrl,
      GITHUB_REF: 'refs/heads/main',
    };
    const env = runnerEnv(gh);
    const run = await runAction(
      { command: 'run', workers: '2', out: 'artifacts' },
      { cwd: tmp, env },
    );
    expect(run.stdout).not.toMatch(/::error::/);
    expect(run.code).toBe(0);
    const o = outputs(env.GITHUB_OUTPUT!);
    expect(o.out).toBe(join(tmp, 'artifacts'));
    expect(readFileSync(join(tmp, 'artifacts', 'out', 'app.txt'), 'utf8')).toMatch(/^lib \d+/);
    const saved = srv.entries().filter((e) => e.committed);
    expect(saved.length).toBeGreaterThan(0);

    // Without a token the API cannot be used: the step fails and says why.
    const none = await runAction(
      { command: 'cache', args: 'prune --max-size 1' },
      { cwd: tmp, env },
    );
    expect(none.stdout).toMatch(/cannot prune: .*set GITHUB_TOKEN/);
    expect(none.stdout).toMatch(/::error::dist-build cache prune exited with code 1/);
    expect(none.code).toBe(1);
    // The default input is the workflow's token (`${{ github.token }}`); here one is given, and
    // it is the one used, whatever token the environment holds.
    const p = await runAction(
      { command: 'cache', args: 'prune --max-size 1', 'github-token': 'ghs_fake' },
      { cwd: tmp, env: { ...env, GITHUB_TOKEN: 'ghs_read' } },
    );
    expect(p.stdout).toMatch(/::add-mask::ghs_fake/);
    expect(p.stdout).toMatch(new RegExp(`deleted ${saved.length} cache entr`));
    expect(p.code).toBe(0);
    expect(srv.entries().filter((e) => e.committed)).toEqual([]);
  });

  it('command cache: args are split like a shell would, and a --config there is the one used', async () => {
    writeFileSync(join(tmp, 'dist-build.yml'), CONFIG);
    mkdirSync(join(tmp, 'other dir'));
    writeFileSync(
      join(tmp, 'other dir', 'x.yml'),
      "version: 1\ninvocations:\n  a: {run: 'true'}\ncache:\n  stores: [{type: local, dir: elsewhere}]\n",
    );
    const r = await runAction(
      { command: 'cache', args: `stats --config 'other dir/x.yml'` },
      { cwd: tmp, env: runnerEnv() },
    );
    expect(r.stdout).not.toMatch(/::error::/);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(join(tmp, 'other dir', 'elsewhere'));
  });

  it('command cache: a flag given without its value is reported as such', async () => {
    writeFileSync(join(tmp, 'dist-build.yml'), CONFIG);
    for (const [args, flag] of [
      ['prune --max-size', '--max-size <size>'],
      ['stats --cache-dir', '--cache-dir <dir>'],
    ]) {
      const r = await runAction({ command: 'cache', args: args! }, { cwd: tmp, env: runnerEnv() });
      expect(r.code).toBe(1);
      // Not "too many arguments": the --config the action adds is not taken for its value.
      expect(r.stderr).toContain(`option '${flag}' argument missing`);
    }
  });

  it("command run: a run that fails before it starts does not pass an earlier run's report off as its own", async () => {
    writeFileSync(join(tmp, 'dist-build.yml'), CONFIG.replace(/^cache:[\s\S]*$/m, ''));
    const summary = join(tmp, 'step-summary');
    const env = runnerEnv({ GITHUB_STEP_SUMMARY: summary });
    writeFileSync(summary, '');
    const ok = await runAction({ command: 'run' }, { cwd: tmp, env });
    expect(ok.code).toBe(0);
    expect(readFileSync(summary, 'utf8')).toMatch(/^# dist-build run succeeded/m);
    expect(outputs(env.GITHUB_OUTPUT!).report).toBe(
      join(tmp, 'dist-build-out', 'dist-build-report.json'),
    );

    // The same workspace (a self-hosted runner's), a config with a mistake: the earlier report
    // is still in dist-build-out, and is neither the summary nor the report output of this run.
    writeFileSync(join(tmp, 'dist-build.yml'), `${CONFIG}  bogus: 1\n`);
    writeFileSync(summary, '');
    writeFileSync(env.GITHUB_OUTPUT!, '');
    const bad = await runAction({ command: 'run' }, { cwd: tmp, env });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/::error::dist-build run exited with code 2/);
    expect(readFileSync(summary, 'utf8')).not.toMatch(/succeeded/);
    const o = outputs(env.GITHUB_OUTPUT!);
    expect(o.out).toBe(join(tmp, 'dist-build-out'));
    expect(o.report).toBeUndefined();
  });

  it('command run: the error annotation of a failed run names the invocations that failed', async () => {
    writeFileSync(
      join(tmp, 'dist-build.yml'),
      CONFIG.replace(/^cache:[\s\S]*$/m, '').replace('cat out/lib.txt > out/app.txt', 'exit 3'),
    );
    const r = await runAction({ command: 'run' }, { cwd: tmp, env: runnerEnv() });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^::error::dist-build run exited with code 1: 2 invocations: 1 built, 0 cached, 1 failed in \S+ on 1 worker; failed: app \(exited with code 3\)$/m,
    );
  });

  it("command cache: the stores' warnings are warning annotations, as with command run", async () => {
    writeFileSync(join(tmp, 'dist-build.yml'), CONFIG);
    const r = await runAction({ command: 'cache', args: 'ls' }, { cwd: tmp, env: runnerEnv() });
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).toMatch(
      /^::warning::dist-build: gha store: the GitHub Actions cache service is not available/m,
    );
    expect(r.stdout + r.stderr).not.toMatch(/^dist-build: warning:/m);
  });

  it('annotates the config file on the lines of its problems, for plan and for run', async () => {
    mkdirSync(join(tmp, 'ci'));
    writeFileSync(
      join(tmp, 'ci', 'build.yml'),
      'version: 1\ninvocations:\n  a:\n    run: "true"\n    needs: [b]\n  b:\n    runn: x\n',
    );
    for (const command of ['plan', 'run']) {
      const r = await runAction(
        { command, config: 'ci/build.yml' },
        { cwd: tmp, env: runnerEnv() },
      );
      expect(r.code).toBe(1);
      // Relative to the workspace, as GitHub places annotations.
      expect(r.stdout).toMatch(
        /^::error file=ci\/build\.yml,line=7,col=5,title=dist-build config::invocations\.b\.runn: unknown key "runn"/m,
      );
    }
  });

  it('warns about inputs the command does not use', async () => {
    writeFileSync(join(tmp, 'dist-build.yml'), CONFIG.replace(/^cache:[\s\S]*$/m, ''));
    const r = await runAction(
      { command: 'run', 'worker-ids': 'a,b', history: 'h.json', args: 'stats' },
      { cwd: tmp, env: runnerEnv() },
    );
    expect(r.code).toBe(0);
    const warnings = r.stdout.match(/^::warning::input .*$/gm);
    expect(warnings).toEqual([
      '::warning::input "worker-ids" is not used by command "run" (only by "plan"): ignored',
      '::warning::input "history" is not used by command "run" (only by "plan"): ignored',
      '::warning::input "args" is not used by command "run" (only by "cache"): ignored',
    ]);
  });

  it("command run: the workers' warnings are warning annotations (as under act: no cache service)", async () => {
    writeFileSync(join(tmp, 'dist-build.yml'), CONFIG);
    const r = await runAction({ command: 'run', workers: '2' }, { cwd: tmp, env: runnerEnv() });
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).toMatch(
      /^::warning::dist-build: worker-\d: gha store: the GitHub Actions cache service is not available/m,
    );
    expect(r.stdout + r.stderr).not.toMatch(/^dist-build: warning:/m);
  });

  it('command run: a cancelled workflow (SIGINT to the action only) stops the run as Ctrl-C does', async () => {
    writeFileSync(
      join(tmp, 'dist-build.yml'),
      'version: 1\ninvocations:\n  slow: {run: "echo started; sleep 60"}\n',
    );
    // Not grouped (GITHUB_ACTIONS unset), so that the job's first line shows while it runs.
    const p = startAction({ command: 'run' }, { cwd: tmp, env: runnerEnv({ GITHUB_ACTIONS: '' }) });
    await p.waitFor(/\[slow\] started/);
    const run = Number(
      /^(\d+)$/m.exec(execFileSync('pgrep', ['-P', String(p.pid)], { encoding: 'utf8' }))![1],
    );
    // The runner signals the action's process, not its process group.
    process.kill(p.pid, 'SIGINT');
    const exit = await p.exited;
    expect(p.output).toMatch(/SIGINT: stopping the run and its workers/);
    expect(p.stdout).toMatch(/::error::dist-build run exited with code 130/);
    expect(exit.code).toBe(1);
    expect(alive(run)).toBe(false);
  });

  it('refuses unknown commands and cache subcommands', async () => {
    writeFileSync(join(tmp, 'dist-build.yml'), CONFIG);
    const bad = await runAction({ command: 'deploy' }, { cwd: tmp, env: runnerEnv() });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(
      /::error::input "command": expected "plan", "run" or "cache", got "deploy"/,
    );
    // An empty worker id (a trailing comma) is refused, as by `plan --worker-ids`, rather than
    // put in the matrix as a worker named "".
    const empty = await runAction(
      { command: 'plan', 'worker-ids': 'a,b,' },
      { cwd: tmp, env: runnerEnv() },
    );
    expect(empty.code).toBe(1);
    expect(empty.stdout).toMatch(/::error::input "worker-ids": empty id in "a,b,"/);
    expect(readFileSync(join(tmp, 'github-output'), 'utf8')).not.toMatch(/^matrix/m);
    for (const command of ['plan', 'run']) {
      const workers = await runAction({ command, workers: '4x' }, { cwd: tmp, env: runnerEnv() });
      expect(workers.code).toBe(1);
      expect(workers.stdout).toMatch(
        /^::error::input "workers": expected a whole number >= 1, got "4x"$/m,
      );
    }
    // More workers than a matrix runs.
    const many = await runAction(
      { command: 'plan', workers: '300' },
      { cwd: tmp, env: runnerEnv() },
    );
    expect(many.code).toBe(1);
    expect(many.stdout).toMatch(
      /::error::input "workers": 300 workers, but a GitHub Actions matrix runs at most 256 jobs/,
    );
    const sub = await runAction(
      { command: 'cache', args: 'rm -rf /' },
      { cwd: tmp, env: runnerEnv() },
    );
    expect(sub.code).toBe(1);
    expect(sub.stdout).toMatch(/::error::input "args": expected one of stats, verify, prune, ls/);
  });
});
