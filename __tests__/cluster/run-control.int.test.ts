/**
 * dist-build processes as their users meet them, with real processes: `status` and `logs` while
 * a run goes on (through the run's own client certificate), Ctrl-C while its workers are joining,
 * a run killed with SIGKILL (its workers must still end their commands), warnings of its workers,
 * a worker the master refuses, and output piped into `head`.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { freePort } from '../helpers/registry.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  alive,
  cliPath,
  killGroup,
  groupAlive,
  pidFrom,
  runCli,
  startCli,
  stopAll,
} from '../helpers/processes.js';

let dir: string;
/** Process groups of commands started by the runs here, ended by PID after each test. */
const groups: number[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-run-control-'));
});

afterEach(async () => {
  await stopAll();
  for (const pgid of groups.splice(0)) killGroup(pgid);
  rmSync(dir, { recursive: true, force: true });
});

function repo(config: string): string {
  const root = join(dir, 'repo');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'dist-build.yml'), config);
  return join(root, 'dist-build.yml');
}

/** Polls `check` every 20 ms until it holds; fails after `ms`. */
async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `dist-build run` of `config` on `workers` local workers, artifacts into <dir>/out. */
const runArgs = (config: string, workers: number, ...more: string[]): string[] => [
  'run',
  '--config',
  config,
  '--workers',
  String(workers),
  '--out',
  join(dir, 'out'),
  ...more,
];

const SLOW = `version: 1
invocations:
  slow:
    run: echo $$ > slow.pid; echo "slow is running"; sleep 60
    timeout: 5m
  after:
    run: echo after
    needs: [slow]
`;

/** A run of SLOW on 1 worker, once its command runs; the command's process group is ended after the test. */
async function startSlowRun() {
  const config = repo(SLOW);
  const run = startCli(runArgs(config, 1));
  const pidFile = join(dir, 'repo/slow.pid');
  await until(
    'the slow command',
    () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'),
  );
  const pgid = Number(readFileSync(pidFile, 'utf8'));
  groups.push(pgid);
  return { config, run, pgid };
}

test('status and logs reach a running `dist-build run` with --config alone', async () => {
  const { config, run } = await startSlowRun();
  // The run keeps only the CA's certificate on disk, never its key.
  const certDirs = readdirSync(join(dir, 'repo/.dist-build/run')).filter((e) =>
    e.startsWith('certs-'),
  );
  expect(certDirs).toEqual([`certs-${run.pid}`]);
  const certFiles = readdirSync(join(dir, 'repo/.dist-build/run', certDirs[0]!));
  expect(certFiles).toContain('ca.pem');
  expect(certFiles).not.toContain('ca-key.pem');

  const status = await runCli(['status', '--config', config, '--json'], { timeoutMs: 20_000 });
  expect(status.code).toBe(0);
  expect((JSON.parse(status.stdout) as { members: unknown[] }).members).toHaveLength(1);
  const logs = await runCli(['logs', 'slow', '--config', config], { timeoutMs: 20_000 });
  expect(logs.stderr).toBe('');
  expect(logs.stdout).toContain('slow is running');
  expect(logs.code).toBe(0);
  run.kill('SIGINT');
  expect((await run.exited).code).toBe(130);
}, 60_000);

test('`logs --follow` stopped with Ctrl-C exits 130, not 0 as if the job had ended', async () => {
  const { config, run } = await startSlowRun();
  const logs = startCli(['logs', 'slow', '--follow', '--config', config]);
  await logs.waitFor(/slow is running/);
  logs.kill('SIGINT');
  expect(await logs.exited).toEqual({ code: 130, signal: null });
  expect(logs.stderr).toBe('');
  run.kill('SIGINT');
  expect((await run.exited).code).toBe(130);
}, 60_000);

test("`logs --follow` of a `dist-build run`'s last job, a quick one, prints its output though the run ends right after", async () => {
  const config = repo(`version: 1
invocations:
  slow: {run: 'echo "slow started"; sleep 2'}
  quick: {run: echo quick says hi, needs: [slow]}
`);
  const run = startCli(runArgs(config, 1, '--plain'));
  await run.waitFor(/slow started/);
  // Five of them, 50 ms apart: the master looks for the job every 250 ms, so whatever the
  // timing, most of them look only after the job has ended (and the run's workers are leaving).
  const clients = [];
  for (let i = 0; i < 5; i++) {
    clients.push(startCli(['logs', 'quick', '--follow', '--config', config]));
    await new Promise((r) => setTimeout(r, 50));
  }
  expect((await run.exited).code).toBe(0);
  for (const logs of clients) {
    const exit = await logs.exited;
    expect(logs.stderr).toBe('');
    expect(logs.stdout).toBe('quick says hi\n');
    expect(exit.code).toBe(0);
  }
}, 60_000);

test('a second `dist-build run` in the same tree is refused while one is in progress, which it leaves alone', async () => {
  const { config, run } = await startSlowRun();
  writeFileSync(
    join(dir, 'repo/other.yml'),
    'version: 1\ninvocations:\n  o: { run: touch o.txt }\n',
  );
  const second = await runCli(
    ['run', '--config', join(dir, 'repo/other.yml'), '--workers', '1', '--out', join(dir, 'out2')],
    { timeoutMs: 60_000 },
  );
  expect(second.stderr).toMatch(
    new RegExp(
      `another dist-build run \\(pid ${run.pid}\\) is in progress in ${join(dir, 'repo')}`,
    ),
  );
  expect(second.code).toBe(2);
  expect(existsSync(join(dir, 'repo/o.txt'))).toBe(false);
  // The first run's file is still there (the second used to overwrite it, and the first of the
  // two to end removed it): status finds the run.
  const status = await runCli(['status', '--config', config, '--json'], { timeoutMs: 20_000 });
  expect(status.code).toBe(0);
  expect(readdirSync(join(dir, 'repo/.dist-build/run')).sort()).toEqual([
    `certs-${run.pid}`,
    'current.json',
  ]);
  run.kill('SIGINT');
  expect((await run.exited).code).toBe(130);
}, 90_000);

test("a run file left by a killed run whose pid is now another process's does not hold up the next run", async () => {
  const config = repo(`version: 1\ninvocations:\n  quick: { run: "true" }\n`);
  mkdirSync(join(dir, 'repo/.dist-build/run'), { recursive: true });
  // The pid is alive (this test's own process), but it is not the process that wrote the file.
  writeFileSync(
    join(dir, 'repo/.dist-build/run/current.json'),
    JSON.stringify({ pid: process.pid, started: '1', master: 'tcp://127.0.0.1:9', certs: dir }),
  );
  // status knows it for a run that is gone, not a master that does not answer.
  const status = await runCli(['status', '--config', config], { timeoutMs: 20_000 });
  expect(status.stderr).toMatch(/no local run in progress .*is gone/);
  expect(status.code).toBe(2);
  const r = await runCli(['run', '--config', config, '--workers', '1', '--out', join(dir, 'out')], {
    timeoutMs: 60_000,
  });
  expect(r.stderr).not.toMatch(/another dist-build run/);
  expect(r.code).toBe(0);
  expect(readdirSync(join(dir, 'repo/.dist-build/run'))).toEqual([]);
}, 60_000);

test('Ctrl-C while the workers are joining stops the run at once; nothing runs', async () => {
  const config = repo(`version: 1
invocations:
  mark:
    run: touch marker
`);
  const run = startCli(['run', '--config', config, '--workers', '4', '--out', join(dir, 'out')]);
  // The run names itself in .dist-build/run as soon as its workers are started.
  const runDir = join(dir, 'repo/.dist-build/run');
  await until(
    'the run to start its workers',
    () => existsSync(runDir) && readdirSync(runDir).some((e) => e.endsWith('.json')),
  );
  process.kill(run.pid, 'SIGINT');
  const exit = await run.exited;
  expect(run.stderr).toMatch(/interrupted \(SIGINT\) while the workers were joining/);
  expect(exit.code).toBe(130);
  expect(existsSync(join(dir, 'repo/marker'))).toBe(false);
}, 60_000);

test('a `dist-build run` killed with SIGKILL: its workers end their commands and leave; the next run clears its certificates', async () => {
  const { config, run, pgid } = await startSlowRun();
  process.kill(run.pid, 'SIGKILL'); // the run only, not its workers
  await run.exited;
  // The worker sees its parent gone within 0.5 s and stops the job (SIGTERM to its group).
  await until('the command to end', () => !groupAlive(pgid));
  // ... and exits: nothing is left in the run's process group.
  await until('the worker to exit', () => !groupAlive(run.pid));

  const runDir = join(dir, 'repo/.dist-build/run');
  expect(readdirSync(runDir)).toContain(`certs-${run.pid}`);
  // status and logs see that the run is gone (not a master that does not answer).
  const status = await runCli(['status', '--config', config], { timeoutMs: 20_000 });
  expect(status.code).toBe(2);
  expect(status.stderr).toMatch(new RegExp(`no local run in progress .*pid ${run.pid}, is gone`));
  writeFileSync(config, `version: 1\ninvocations:\n  quick: { run: "true" }\n`);
  const next = await runCli(
    ['run', '--config', config, '--workers', '1', '--out', join(dir, 'out')],
    {
      timeoutMs: 60_000,
    },
  );
  expect(next.code).toBe(0);
  expect(readdirSync(runDir).filter((e) => e.startsWith('certs-'))).toEqual([]);
}, 90_000);

test('a cache store that cannot be used is a warning the run shows once (without --verbose), and the run succeeds', async () => {
  // A port nobody listens on: the registry store is unreachable.
  const port = await freePort();
  const config = repo(`version: 1
cache:
  stores:
    - type: local
    - type: registry
      ref: 127.0.0.1:${port}/team/cache
      insecure: true
invocations:
  a: { run: mkdir -p out && echo a > out/a.txt, outputs: [out/a.txt] }
  b: { run: mkdir -p out && echo b > out/b.txt, outputs: [out/b.txt] }
  c: { run: mkdir -p out && echo c > out/c.txt, outputs: [out/c.txt] }
`);
  const res = await runCli(
    ['run', '--config', config, '--workers', '2', '--out', join(dir, 'out')],
    {
      timeoutMs: 60_000,
    },
  );
  expect(res.code).toBe(0);
  // Each problem once, whichever worker met it first and with whatever blob.
  const warnings = res.stderr.split('\n').filter((l) => l.startsWith('dist-build: warning: '));
  const kinds = warnings.map((w) =>
    w.replace(/^dist-build: warning: worker-\d: /, '').replace(/sha256:[0-9a-f]{64}/g, '*'),
  );
  expect(new Set(kinds).size).toBe(kinds.length);
  expect(warnings.join('\n')).toMatch(
    new RegExp(`warning: worker-\\d: .*registry http://127\\.0\\.0\\.1:${port} unreachable`),
  );
  // --no-remote-cache: the config's registry store is left out (no warning, nothing asked of it).
  const local = await runCli(
    runArgs(config, 2, '--no-remote-cache', '--cache-dir', join(dir, 'local-only')),
    { timeoutMs: 60_000 },
  );
  expect(local.code).toBe(0);
  expect(local.stderr).not.toMatch(/warning/);
  expect(local.stdout).toMatch(/3 invocations: 3 built/);
  const stats = await runCli(['cache', 'stats', '--config', config, '--no-remote-cache', '--json']);
  expect(
    (JSON.parse(stats.stdout) as { stores: { type: string }[] }).stores.map((r) => r.type),
  ).toEqual(['local']);
}, 60_000);

test('a worker the master refuses (wrong token) says why and exits 2 instead of retrying forever', async () => {
  const config = repo(`version: 1\ninvocations:\n  a: { run: "true" }\n`);
  const sock = join(dir, 'm.sock');
  const master = startCli(['master', '--serve', '--listen', `unix://${sock}`], {
    env: { DIST_BUILD_TOKEN: 'right' },
  });
  await master.waitFor(/listening|serving/i);
  const worker = await runCli(
    [
      'worker',
      '--join',
      `unix://${sock}`,
      '--config',
      config,
      '--id',
      'w',
      '--cache-dir',
      join(dir, 'wc'),
    ],
    { env: { DIST_BUILD_TOKEN: 'wrong' }, timeoutMs: 30_000 },
  );
  expect(worker.stderr).toMatch(/the master refused this worker: Register: wrong token/);
  expect(worker.code).toBe(2);
}, 60_000);

test('output piped into a reader that stops early ends the command quietly (no EPIPE trace)', async () => {
  // A plan of 2,000 invocations: far more than a pipe holds, so the command is still writing.
  const lines = ['version: 1', 'invocations:'];
  for (let i = 0; i < 2000; i++) lines.push(`  inv-${i}: { run: "true" }`);
  const config = repo(lines.join('\n') + '\n');
  const child = spawn(
    process.execPath,
    [cliPath(), 'plan', '--config', config, '--workers', '8', '--json', '--no-keys'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Like `| head -1`: read a little, then close the pipe while the command is still writing.
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  expect(stderr).toBe('');
  expect(code).toBe(0);
});

test("on GitHub Actions each job's output is one collapsible group, even when jobs run side by side", async () => {
  const config = repo(`version: 1
invocations:
  a: { run: "echo a1; sleep 0.3; echo a2; sleep 0.3; echo a3" }
  b: { run: "echo b1; sleep 0.3; echo b2 >&2; sleep 0.3; echo b3" }
`);
  const res = await runCli(
    ['run', '--config', config, '--workers', '2', '--out', join(dir, 'out')],
    {
      env: { GITHUB_ACTIONS: 'true' },
      timeoutMs: 60_000,
    },
  );
  expect(res.code).toBe(0);
  for (const u of ['a', 'b'])
    expect(res.stderr).toMatch(
      new RegExp(
        `::group::${u} \\(built on worker-\\d in [^)]+\\)\\n\\[${u}\\] ${u}1\\n\\[${u}\\] ${u}2\\n\\[${u}\\] ${u}3\\n::endgroup::\\ndist-build: ${u}: built on`,
      ),
    );
  // --log-order stream: lines as they come (the two jobs interleave).
  const streamed = await runCli(
    runArgs(config, 2, '--log-order', 'stream', '--cache-dir', join(dir, 'fresh-cache')),
    { env: { GITHUB_ACTIONS: 'true' }, timeoutMs: 60_000 },
  );
  expect(streamed.stderr).toMatch(/^\[a\] a2$/m);
  expect(streamed.stderr).not.toMatch(/::group::/);
}, 90_000);

test('a run whose summary goes into a reader that stops early keeps its exit code and cleans up', async () => {
  // 2,000 rows of summary: more than a pipe holds, so the run is still writing when it closes.
  const lines = ['version: 1', 'invocations:', '  broken: { run: "exit 1" }'];
  for (let i = 0; i < 2000; i++) lines.push(`  inv-${i}: { run: "true" }`);
  const config = repo(lines.join('\n') + '\n');
  // `run ... | head -1` in bash with pipefail: the pipeline's status is the run's.
  const child = spawn(
    'bash',
    [
      '-c',
      'set -o pipefail; "$0" "$1" run --config "$2" --workers 4 --out "$3" --no-output | head -1 > /dev/null',
      process.execPath,
      cliPath(),
      config,
      join(dir, 'out'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CI: 'true' } },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  expect(stderr).not.toMatch(/EPIPE/);
  expect(code).toBe(1); // `broken` failed
  const runDir = join(dir, 'repo/.dist-build/run');
  expect(readdirSync(runDir)).toEqual([]); // current.json and the certificates are gone
}, 120_000);

/** The lines a terminal shows after `text` (cursor up `ESC[nA`, erase down `ESC[0J`, colours). */
function screen(text: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  // eslint-disable-next-line no-control-regex
  for (const token of text.split(/(\x1b\[[0-9;]*[A-Za-z]|\r|\n)/)) {
    // eslint-disable-next-line no-control-regex
    const up = /^\u001b\[(\d*)A$/.exec(token);
    if (token === '\n') lines[++row] ??= '';
    else if (up) row = Math.max(0, row - Number(up[1] || 1));
    else if (token === '\u001b[0J') {
      lines.splice(row + 1);
      lines[row] = '';
    } else if (token !== '\r' && !token.startsWith('\u001b[')) lines[row] += token;
  }
  return lines;
}

/**
 * The CLI with `args` (a shell command line after the CLI's path) in a terminal: a pty through
 * script(1). `tty()` is what it printed so far; `closed` its exit code.
 */
function inTerminal(args: string) {
  const child = spawn(
    'script',
    ['-qfec', `'${process.execPath}' '${cliPath()}' ${args}`, '/dev/null'],
    {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { ...process.env, CI: undefined, GITHUB_ACTIONS: undefined, TERM: 'xterm' },
    },
  );
  let tty = '';
  child.stdout.on('data', (d: Buffer) => (tty += d.toString()));
  const closed = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  return { child, tty: () => tty, closed };
}

test('Ctrl-C in a terminal: the live progress is cleared before the "stopping" line, which stays on the screen', async () => {
  const config = repo(SLOW);
  // A terminal (a pty through script(1)); a Ctrl-C typed into it reaches the run and its workers.
  const { child, tty, closed } = inTerminal(
    `run --config '${config}' --workers 2 --out '${join(dir, 'out')}'`,
  );
  const runFile = join(dir, 'repo/.dist-build/run/current.json');
  try {
    const pidFile = join(dir, 'repo/slow.pid');
    groups.push(await pidFrom(pidFile));
    // The run leads the terminal's foreground process group (ended after the test if need be).
    groups.push((JSON.parse(readFileSync(runFile, 'utf8')) as { pid: number }).pid);
    await until('the live progress', () => /slow \d/.test(tty()));
    child.stdin.write('\x03');
    expect(await closed).toBe(130);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const shown = screen(tty());
  // It used to be written past the progress block, which the next redraw then half erased.
  expect(shown).toContain('SIGINT: stopping the run and its workers...');
  expect(shown.filter((l) => /^\[\d+\/\d+\]|^ {2}worker-\d/.test(l))).toEqual([]);
  expect(shown.join('\n')).toMatch(/slow +worker-\d +cancelled/);
}, 60_000);

test('a run whose terminal is closed (SIGHUP, then EIO on every write to it) stops as on Ctrl-C and cleans up', async () => {
  const config = repo(SLOW);
  const { child, tty, closed } = inTerminal(
    `run --config '${config}' --workers 1 --out '${join(dir, 'out')}'`,
  );
  const pgid = await pidFrom(join(dir, 'repo/slow.pid'));
  groups.push(pgid);
  const runPid = (
    JSON.parse(readFileSync(join(dir, 'repo/.dist-build/run/current.json'), 'utf8')) as {
      pid: number;
    }
  ).pid;
  groups.push(runPid);
  await until('the live progress', () => /slow \d/.test(tty()));
  child.kill('SIGKILL'); // the terminal goes away
  await closed;
  await until('the run to end', () => !alive(runPid));
  await until('the command to end', () => !groupAlive(pgid), 5000);
  // It used to die of the EIO writing its table to the terminal, leaving these behind.
  expect(readdirSync(join(dir, 'repo/.dist-build/run'))).toEqual([]);
  expect(readFileSync(join(dir, 'out/dist-build-report.md'), 'utf8')).toMatch(/cancelled/);
}, 60_000);

test('`dist-build master` in a terminal: its log lines (a worker leaving) go above the live progress, which leaves nothing behind', async () => {
  const config = repo(SLOW);
  const sock = `unix://${join(dir, 'm.sock')}`;
  const { child, tty, closed } = inTerminal(
    `master --listen '${sock}' --config '${config}' --workers 1 --wait 60s --heartbeat 500ms --out '${join(dir, 'out')}'`,
  );
  try {
    await until('the master to listen', () => tty().includes('listening on'));
    const worker = startCli(
      ['worker', '--join', sock, '--config', config, '--cache-dir', join(dir, 'cache')],
      { cwd: join(dir, 'repo') },
    );
    const pidFile = join(dir, 'repo/slow.pid');
    groups.push(await pidFrom(pidFile));
    await until('the live progress', () => /slow \d/.test(tty()));
    worker.kill('SIGTERM');
    expect(await closed).toBe(1);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const shown = screen(tty());
  expect(shown.some((l) => / master: worker \S+ left: deregistered \(SIGTERM\)$/.test(l))).toBe(
    true,
  );
  expect(shown.filter((l) => /^\[\d+\/\d+\]|^ {2}\S+ +(idle|slow)/.test(l))).toEqual([]);
  expect(shown.join('\n')).toMatch(/slow +- +failed/);
}, 60_000);

test("a worker's busy time in the report counts its failed jobs too", async () => {
  const config = repo(`version: 1
invocations:
  ok: { run: "sleep 0.3" }
  broken: { run: "sleep 0.6; exit 3" }
`);
  const res = await runCli(runArgs(config, 1, '--no-output'), { timeoutMs: 60_000 });
  expect(res.code).toBe(1);
  const report = JSON.parse(readFileSync(join(dir, 'out/dist-build-report.json'), 'utf8')) as {
    workers: { id: string; busyMs: number }[];
    invocations: { unit: string; durationMs: number }[];
  };
  const ran = report.invocations.reduce((ms, i) => ms + i.durationMs, 0);
  expect(ran).toBeGreaterThanOrEqual(900);
  expect(report.workers).toHaveLength(1);
  expect(report.workers[0]!.busyMs).toBe(ran);
}, 90_000);

test('Ctrl-C in a terminal (the run and its workers get it): the command still has its --kill-grace, and the worker leaves nothing behind', async () => {
  const config = repo(`version: 1
invocations:
  tidy:
    run: trap 'sleep 1; echo cleaned > cleaned.txt; exit 1' TERM; echo $$ > tidy.pid; sleep 60 & wait
`);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const run = startCli(runArgs(config, 1), { env: { TMPDIR: tmp } });
  groups.push(await pidFrom(join(dir, 'repo/tidy.pid')));
  // To the run's process group, as a terminal sends it: the worker used to take the run's own
  // SIGTERM that followed for a second Ctrl-C, kill the command at once and exit on the spot.
  run.kill('SIGINT');
  expect((await run.exited).code).toBe(130);
  expect(readFileSync(join(dir, 'repo/cleaned.txt'), 'utf8')).toBe('cleaned\n');
  expect(readdirSync(tmp)).toEqual([]); // the worker's job logs
}, 60_000);

test('a second Ctrl-C in a terminal stops the run at once and kills a command that ignores SIGTERM', async () => {
  const config = repo(`version: 1
invocations:
  stubborn:
    run: trap '' TERM; echo $$ > stubborn.pid; sleep 60
`);
  const run = startCli(runArgs(config, 1));
  const pgid = await pidFrom(join(dir, 'repo/stubborn.pid'));
  groups.push(pgid);
  run.kill('SIGINT');
  await run.waitFor(/stopping the run/);
  const t0 = Date.now();
  run.kill('SIGINT');
  expect((await run.exited).code).toBe(130);
  expect(Date.now() - t0).toBeLessThan(4000); // the workers' --kill-grace is 5 s
  await until('the command to end', () => !groupAlive(pgid), 2000);
  expect(readdirSync(join(dir, 'repo/.dist-build/run'))).toEqual([]);
}, 60_000);

test('SIGHUP (its terminal closed) stops a run as Ctrl-C does: commands stopped, a report, nothing left in .dist-build/run', async () => {
  const { run, pgid } = await startSlowRun();
  run.kill('SIGHUP'); // the process group, as a shell whose terminal closes sends it
  expect((await run.exited).code).toBe(130);
  expect(run.stderr).toMatch(/SIGHUP: stopping the run and its workers/);
  await until('the command to end', () => !groupAlive(pgid), 5000);
  expect(readdirSync(join(dir, 'repo/.dist-build/run'))).toEqual([]);
  expect(readFileSync(join(dir, 'out/dist-build-report.md'), 'utf8')).toMatch(/cancelled/);
}, 60_000);

test('SIGHUP stops `dist-build master` as Ctrl-C does (exit 130)', async () => {
  const master = startCli(['master', '--serve', '--listen', `unix://${join(dir, 'm.sock')}`]);
  await master.waitFor(/listening on/);
  master.kill('SIGHUP');
  expect(await master.exited).toEqual({ code: 130, signal: null });
  expect(master.stderr).toMatch(/dist-build master: SIGHUP/);
}, 30_000);

test("a job's output still coming in when the run is over is printed in full before the summary", async () => {
  // 30 MB of output: the job ends well before the master has streamed it all from the worker.
  const config = repo(`version: 1
invocations:
  loud:
    run: "yes $(printf %099d 0) | head -n 300000; echo LAST"
`);
  const log = join(dir, 'log.txt');
  const child = spawn(
    'bash',
    [
      '-c',
      '"$0" "$1" run --config "$2" --workers 1 --out "$3" > "$4" 2>&1',
      process.execPath,
      cliPath(),
      config,
      join(dir, 'out'),
      log,
    ],
    { stdio: 'ignore', env: { ...process.env, CI: 'true', GITHUB_ACTIONS: undefined } },
  );
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  expect(code).toBe(0);
  const text = readFileSync(log, 'utf8');
  const last = text.indexOf('\n[loud] LAST\n');
  expect(last).toBeGreaterThan(0);
  // The end line and the table used to come in the middle of it, the rest of it after them.
  expect(text.indexOf('dist-build: loud: built on')).toBeGreaterThan(last);
  expect(text.indexOf('\nINVOCATION ')).toBeGreaterThan(last);
  expect(text.match(/^\[loud\] 0{99}$/gm)).toHaveLength(300_000);
}, 90_000);
