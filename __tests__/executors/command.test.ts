import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  buildEnv,
  CommandExecutor,
  commandJobSpec,
  DEFAULT_BASE_ENV,
  groupAlive,
} from '../../src/executors/command.js';
import type { CommandExecutorOptions, CommandJob } from '../../src/executors/command.js';
import { LinePrefixer, tail } from '../../src/executors/output.js';
import type { InvocationConfig } from '../../src/config/types.js';
import type { Job, JobSpec, OutputChunk, OutputOptions } from '../../src/executors/types.js';

// Real processes. Every wait is on an event (job end, output seen); the only durations are the
// generous per-test timeouts and the 200 ms kill grace, which only bounds how long a test takes.
const T = 30_000;
const GRACE_MS = 200;

let dir: string;
let logDir: string;
const started: CommandJob[] = [];
const strayPids: number[] = [];
let seq = 0;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-exec-test-'));
  logDir = join(dir, 'logs');
});

afterEach(async () => {
  // Whatever happened in the test, leave no process behind.
  for (const job of started) {
    if (job.pid !== undefined) killQuietly(-job.pid);
  }
  for (const pid of strayPids) killQuietly(pid);
  await Promise.all(started.map((job) => job.result));
  started.length = 0;
  strayPids.length = 0;
  rmSync(dir, { recursive: true, force: true });
});

/** `global.gc`, enabled at run time (the test command has no `--expose-gc`). */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function executor(opts: CommandExecutorOptions = {}): CommandExecutor {
  return new CommandExecutor({ logDir, killGraceMs: GRACE_MS, ...opts });
}

function spec(command: string, over: Partial<JobSpec> = {}): JobSpec {
  seq += 1;
  return {
    id: `job-${seq}`,
    invocation: 'inv',
    command,
    cwd: dir,
    env: {},
    timeoutSeconds: 60,
    ...over,
  };
}

function run(ex: CommandExecutor, command: string, over: Partial<JobSpec> = {}): CommandJob {
  const job = ex.start(spec(command, over));
  started.push(job);
  return job;
}

async function collect(job: Job, opts?: OutputOptions): Promise<OutputChunk[]> {
  const chunks: OutputChunk[] = [];
  for await (const chunk of job.output(opts)) chunks.push(chunk);
  return chunks;
}

async function text(job: Job, opts?: OutputOptions): Promise<string> {
  return Buffer.concat((await collect(job, opts)).map((c) => c.data)).toString('utf8');
}

function streamText(chunks: OutputChunk[], stream: OutputChunk['stream']): string {
  return Buffer.concat(chunks.filter((c) => c.stream === stream).map((c) => c.data)).toString();
}

/** Follows the job's output until `marker` appears; fails if the job ends first. */
async function waitForOutput(job: Job, marker: string): Promise<string> {
  let seen = '';
  for await (const chunk of job.output({ follow: true })) {
    seen += chunk.data.toString('utf8');
    if (seen.includes(marker)) return seen;
  }
  throw new Error(`job ended before printing ${JSON.stringify(marker)}; output: ${seen}`);
}

/** PIDs printed by the command on lines `pid=<n>`; registered for cleanup. */
function pidsIn(output: string): number[] {
  const pids = [...output.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
  strayPids.push(...pids);
  return pids;
}

/** True if the process exists and is not a zombie (zombies are dead; PID 1 may not reap them). */
function isAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}

describe('CommandExecutor: exit status', () => {
  it(
    'runs a command to success and captures stdout and stderr',
    async () => {
      const job = run(executor(), 'echo hello; echo oops >&2');
      expect(job.state).toBe('running');
      expect(typeof job.pid).toBe('number');
      const result = await job.result;
      expect(result).toMatchObject({
        state: 'succeeded',
        exitCode: 0,
        signal: null,
        outputBytes: 11,
        reason: 'exited with code 0',
      });
      expect(job.state).toBe('succeeded');
      expect(job.finalResult).toBe(result);
      expect(result.endedAt).toBeGreaterThanOrEqual(result.startedAt);
      expect(result.durationMs).toBeGreaterThanOrEqual(0);
      // The command's own time (spawn to exit) is within the job's, and not rounded.
      expect(result.commandMs).toBeGreaterThan(0);
      expect(result.commandMs!).toBeLessThanOrEqual(result.durationMs + 1);
      const chunks = await collect(job);
      expect(streamText(chunks, 'stdout')).toBe('hello\n');
      expect(streamText(chunks, 'stderr')).toBe('oops\n');
      expect(statSync(job.logPath).size).toBe(11);
      expect(job.logPath).toBe(join(logDir, `${job.id}.log`));
    },
    T,
  );

  it(
    'ends the command at once and fails the job when its log cannot be created (a symlink in its place)',
    async () => {
      mkdirSync(logDir, { recursive: true });
      const target = join(dir, 'not-the-log');
      writeFileSync(target, 'keep\n');
      const id = `job-${seq + 1}`;
      symlinkSync(target, join(logDir, `${id}.log`));
      const marker = join(dir, 'ran-on');
      const job = run(executor(), `sleep 0.5; echo late > ${marker}; sleep 30`);
      expect(job.id).toBe(id);
      const result = await job.result;
      expect(result.state).toBe('failed');
      expect(result.reason).toMatch(/^cannot start: cannot create log .*job-\d+\.log: /);
      expect(groupAlive(job.pid!)).toBe(false);
      expect(readFileSync(target, 'utf8')).toBe('keep\n'); // not written through the link
      await new Promise((r) => setTimeout(r, 700));
      expect(existsSync(marker)).toBe(false); // ended before it got that far
    },
    T,
  );

  it(
    'reports a non-zero exit code as failed',
    async () => {
      const job = run(executor(), 'echo about to fail; exit 3');
      const result = await job.result;
      expect(result).toMatchObject({ state: 'failed', exitCode: 3, signal: null });
      expect(result.reason).toContain('code 3');
      expect(await text(job)).toBe('about to fail\n');
    },
    T,
  );

  it(
    'reports a command killed by a signal from inside as failed',
    async () => {
      const job = run(executor(), 'kill -USR1 $$');
      const result = await job.result;
      expect(result).toMatchObject({ state: 'failed', exitCode: null, signal: 'SIGUSR1' });
      expect(result.reason).toContain('SIGUSR1');
    },
    T,
  );

  it(
    'terminates what the command left running when it exits by itself',
    async () => {
      // One leftover holds the output pipe, the other does not; both must be gone.
      const job = run(
        executor(),
        'sleep 100 & echo pid=$!; sleep 100 >/dev/null 2>&1 & echo pid=$!; exit 0',
      );
      const result = await job.result;
      expect(result.state).toBe('succeeded');
      const pids = pidsIn(await text(job));
      expect(pids).toHaveLength(2);
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
      expect(groupAlive(job.pid!)).toBe(false);
    },
    T,
  );
  it(
    'does not wait forever for pipes held by a process that left the group',
    async () => {
      // `setsid` puts the sleep in a new session: out of reach of group signals (a documented
      // limit), but holding stdout. The job still ends, grace + 2 s after the shell exited.
      const job = run(executor(), 'setsid sleep 100 & echo pid=$!; exit 0');
      const result = await job.result;
      expect(result.state).toBe('succeeded');
      const [escaped] = pidsIn(await text(job));
      expect(escaped).toBeGreaterThan(0);
    },
    T,
  );
});

describe('commandJobSpec', () => {
  const inv: InvocationConfig = {
    name: 'lib',
    run: 'npm run build',
    inputs: [],
    outputs: [],
    needs: [],
    export: false,
    env: { NODE_ENV: 'production' },
    labels: [],
    timeout: 600,
  };

  it('maps a run: invocation to a JobSpec', () => {
    expect(commandJobSpec(inv, { id: 'lib-1', cwd: '/repo' })).toEqual({
      id: 'lib-1',
      invocation: 'lib',
      command: 'npm run build',
      cwd: '/repo',
      env: { NODE_ENV: 'production' },
      timeoutSeconds: 600,
    });
  });

  it('refuses a docker: invocation', () => {
    expect(() => commandJobSpec({ ...inv, run: undefined }, { id: 'x', cwd: '/' })).toThrow(
      /no run: command/,
    );
  });
});

describe('CommandExecutor: environment and cwd', () => {
  const SECRET = 'DIST_BUILD_SECRET_TEST';
  const SHELL_VARS = ['PWD', 'OLDPWD', 'SHLVL', '_'];

  beforeEach(() => {
    process.env[SECRET] = 'must-not-leak';
  });
  afterEach(() => {
    delete process.env[SECRET];
  });

  function parseEnv(out: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const line of out.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return env;
  }

  it(
    'passes exactly the declared env plus the documented base',
    async () => {
      const job = run(executor(), 'env', { env: { FOO: 'bar', WITH_SPACE: 'a b' } });
      expect((await job.result).state).toBe('succeeded');
      const env = parseEnv(await text(job));
      expect(env.FOO).toBe('bar');
      expect(env.WITH_SPACE).toBe('a b');
      expect(env[SECRET]).toBeUndefined();
      const base = DEFAULT_BASE_ENV.filter((k) => process.env[k] !== undefined);
      for (const key of base) expect(env[key]).toBe(process.env[key]);
      const allowed = new Set(['FOO', 'WITH_SPACE', ...base, ...SHELL_VARS]);
      expect(Object.keys(env).filter((k) => !allowed.has(k))).toEqual([]);
    },
    T,
  );

  it(
    'lets declared values override the base',
    async () => {
      const job = run(executor(), 'echo "$PATH|$HOME"', {
        env: { PATH: '/opt/x/bin:/usr/bin:/bin', HOME: '/nowhere' },
      });
      await job.result;
      expect(await text(job)).toBe('/opt/x/bin:/usr/bin:/bin|/nowhere\n');
    },
    T,
  );

  it(
    'passes the whole parent env with inheritEnv',
    async () => {
      const job = run(executor({ inheritEnv: true }), `echo "$${SECRET}|$FOO"`, {
        env: { FOO: 'bar' },
      });
      await job.result;
      expect(await text(job)).toBe('must-not-leak|bar\n');
    },
    T,
  );

  it(
    'takes the base variables from parentEnv when given, not from process.env at spawn',
    async () => {
      // A worker's gha store points HOME elsewhere while @actions/cache runs.
      const home = process.env.HOME;
      process.env.HOME = join(dir, 'staging');
      try {
        const job = run(
          executor({ parentEnv: { HOME: '/home/worker', PATH: '/usr/bin:/bin' } }),
          'echo "$HOME"',
        );
        await job.result;
        expect(await text(job)).toBe('/home/worker\n');
      } finally {
        if (home === undefined) delete process.env.HOME;
        else process.env.HOME = home;
      }
    },
    T,
  );

  it('buildEnv: base keys only when set, declared wins, custom base', () => {
    const parent = { PATH: '/bin', HOME: '/h', LANG: undefined, OTHER: 'x' };
    expect(buildEnv({ A: '1' }, {}, parent)).toEqual({ PATH: '/bin', HOME: '/h', A: '1' });
    expect(buildEnv({ PATH: '/p' }, {}, parent)).toEqual({ PATH: '/p', HOME: '/h' });
    expect(buildEnv({}, { baseEnv: ['OTHER'] }, parent)).toEqual({ OTHER: 'x' });
    expect(buildEnv({ A: '1' }, { inheritEnv: true }, parent)).toEqual({
      PATH: '/bin',
      HOME: '/h',
      OTHER: 'x',
      A: '1',
    });
  });

  it(
    'runs in the given cwd',
    async () => {
      const sub = join(dir, 'sub dir');
      mkdirSync(sub);
      const job = run(executor(), 'pwd; touch marker', { cwd: sub });
      expect((await job.result).state).toBe('succeeded');
      expect(await text(job)).toBe(`${realpathSync(sub)}\n`);
      expect(existsSync(join(sub, 'marker'))).toBe(true);
    },
    T,
  );

  it(
    'fails with a readable reason when the cwd is missing, without throwing',
    async () => {
      const missing = join(dir, 'no-such-dir');
      const job = run(executor(), 'echo never', { cwd: missing, invocation: 'lib' });
      const result = await job.result;
      expect(result).toMatchObject({ state: 'failed', exitCode: null, signal: null });
      expect(result.reason).toBe(`cannot start: working directory ${missing} does not exist`);
      expect(result.commandMs).toBeUndefined();
      expect(job.pid).toBeUndefined();
      const chunks = await collect(job);
      expect(chunks.every((c) => c.stream === 'stderr')).toBe(true);
      const log = Buffer.concat(chunks.map((c) => c.data)).toString();
      expect(log).toBe(
        `dist-build: cannot start lib: working directory ${missing} does not exist\n`,
      );
      expect(result.outputBytes).toBe(Buffer.byteLength(log));
      expect(await job.stop()).toBe(result);
    },
    T,
  );

  it(
    'fails when the cwd is a file, and when the shell cannot be run',
    async () => {
      const file = join(dir, 'file');
      writeFileSync(file, '');
      const notDir = run(executor(), 'true', { cwd: file });
      expect((await notDir.result).reason).toContain('is not a directory');

      const noShell = run(executor({ shell: join(dir, 'no-such-shell') }), 'true');
      const result = await noShell.result;
      expect(result.state).toBe('failed');
      expect(result.reason).toContain('cannot start');
      expect(result.reason).toContain('ENOENT');
      expect(await text(noShell)).toContain('cannot start');
    },
    T,
  );
});

describe('CommandExecutor: timeout and stop', () => {
  it(
    'times out, terminating the whole group including a background grandchild',
    async () => {
      const job = run(executor(), 'sleep 100 & echo pid=$!; sleep 100', { timeoutSeconds: 1 });
      const result = await job.result;
      expect(result.state).toBe('timed-out');
      expect(result.signal).toBe('SIGTERM');
      expect(result.reason).toContain('timed out after 1s');
      const [grandchild] = pidsIn(await text(job));
      expect(grandchild).toBeGreaterThan(0);
      expect(isAlive(grandchild)).toBe(false);
      expect(isAlive(job.pid!)).toBe(false);
      expect(groupAlive(job.pid!)).toBe(false);
    },
    T,
  );

  it(
    'stop() ends a running job and its group; stopping again is fine',
    async () => {
      const job = run(executor(), 'sleep 100 & echo pid=$!; echo ready; sleep 100');
      const [grandchild] = pidsIn(await waitForOutput(job, 'ready'));
      const [a, b] = await Promise.all([job.stop('user asked'), job.stop()]);
      expect(a).toBe(b);
      expect(a.state).toBe('stopped');
      expect(a.reason).toContain('stopped: user asked');
      expect(job.state).toBe('stopped');
      expect(isAlive(grandchild)).toBe(false);
      expect(isAlive(job.pid!)).toBe(false);
      expect(groupAlive(job.pid!)).toBe(false);
      expect(await job.stop('again')).toBe(a);
    },
    T,
  );

  it(
    'SIGKILLs a process that ignores SIGTERM after the grace period',
    async () => {
      const job = run(executor(), "trap '' TERM; sleep 30 & echo pid=$!; echo ready; sleep 30");
      const [grandchild] = pidsIn(await waitForOutput(job, 'ready'));
      const result = await job.stop();
      expect(result.state).toBe('stopped');
      expect(result.signal).toBe('SIGKILL');
      expect(result.reason).toContain(`SIGKILL after ${GRACE_MS}ms grace`);
      expect(result.durationMs).toBeGreaterThanOrEqual(GRACE_MS);
      expect(isAlive(grandchild)).toBe(false);
      expect(groupAlive(job.pid!)).toBe(false);
    },
    T,
  );

  it(
    'SIGKILLs a timed-out process that ignores SIGTERM',
    async () => {
      const job = run(executor(), "trap '' TERM; sleep 30", { timeoutSeconds: 1.5 });
      const result = await job.result;
      expect(result).toMatchObject({ state: 'timed-out', signal: 'SIGKILL', exitCode: null });
    },
    T,
  );

  it(
    'stopAll() stops every running job',
    async () => {
      const ex = executor();
      const jobs = [run(ex, 'echo ready; sleep 100'), run(ex, 'echo ready; sleep 100')];
      await Promise.all(jobs.map((job) => waitForOutput(job, 'ready')));
      const results = await ex.stopAll();
      expect(results.map((r) => r.state)).toEqual(['stopped', 'stopped']);
    },
    T,
  );
});

describe('CommandExecutor: output', () => {
  /** Shell snippet that blocks until the test creates `file` in the job's cwd. */
  const waitFor = (file: string) => `while [ ! -e ${file} ]; do sleep 0.02; done`;

  it(
    'replays from offset 0 and from a middle offset, keeping stream boundaries',
    async () => {
      // stderr is written only after the test has seen stdout, so the arrival order is fixed.
      const job = run(executor(), `printf abc; ${waitFor('go')}; printf DEF >&2`);
      await waitForOutput(job, 'abc');
      writeFileSync(join(dir, 'go'), '');
      await job.result;
      const strip = (cs: OutputChunk[]) =>
        cs.map((c) => ({ offset: c.offset, stream: c.stream, data: c.data.toString() }));
      expect(strip(await collect(job))).toEqual([
        { offset: 0, stream: 'stdout', data: 'abc' },
        { offset: 3, stream: 'stderr', data: 'DEF' },
      ]);
      expect(strip(await collect(job, { from: 2 }))).toEqual([
        { offset: 2, stream: 'stdout', data: 'c' },
        { offset: 3, stream: 'stderr', data: 'DEF' },
      ]);
      expect(strip(await collect(job, { from: 4 }))).toEqual([
        { offset: 4, stream: 'stderr', data: 'EF' },
      ]);
      expect(await collect(job, { from: 6 })).toEqual([]);
      expect(await collect(job, { from: 100, follow: true })).toEqual([]);
    },
    T,
  );

  it(
    'follow yields live chunks in order and ends when the job ends',
    async () => {
      const job = run(
        executor(),
        `echo one; ${waitFor('go1')}; echo two; ${waitFor('go2')}; echo three`,
      );
      let seen = '';
      let expectedOffset = 0;
      for await (const chunk of job.output({ follow: true })) {
        expect(chunk.offset).toBe(expectedOffset);
        expectedOffset += chunk.data.length;
        seen += chunk.data.toString();
        // Each step only happens because the previous output was delivered live.
        if (seen === 'one\n') writeFileSync(join(dir, 'go1'), '');
        if (seen === 'one\ntwo\n') writeFileSync(join(dir, 'go2'), '');
      }
      expect(seen).toBe('one\ntwo\nthree\n');
      expect(job.finalResult?.state).toBe('succeeded');
      // A follower that starts after the end replays everything and ends.
      expect(await text(job, { follow: true })).toBe('one\ntwo\nthree\n');
      expect(await text(job, { from: 4, follow: true })).toBe('two\nthree\n');
    },
    T,
  );

  it(
    'calls onOutput with every chunk as it arrives; LinePrefixer prefixes lines',
    async () => {
      const chunks: OutputChunk[] = [];
      const prefixer = new LinePrefixer('lib');
      let printed = '';
      const ex = executor({
        onOutput: (chunk, job) => {
          expect(job.spec.invocation).toBe('lib');
          chunks.push(chunk);
          printed += prefixer.push(chunk);
        },
      });
      const job = run(ex, 'printf "a\\nb"; printf "c\\n"; printf "no newline"', {
        invocation: 'lib',
      });
      await job.result;
      printed += prefixer.flush();
      const log = readFileSync(job.logPath);
      expect(Buffer.concat(chunks.map((c) => c.data))).toEqual(log);
      let offset = 0;
      for (const chunk of chunks) {
        expect(chunk.offset).toBe(offset);
        offset += chunk.data.length;
      }
      expect(printed).toBe('[lib] a\n[lib] bc\n[lib] no newline\n');
    },
    T,
  );

  it('keeps tens of MB out of memory: right outputBytes, tail, small RSS growth', async () => {
    const size = 50_000_000;
    const command = (n: number) => `head -c ${n} /dev/zero | tr '\\0' x; printf END`;
    // Output arrives in fresh 64 KiB Buffers that are garbage right after use; V8 collects them
    // lazily, so without GCs RSS would measure GC timing (0-30 MB of garbage), not retention.
    // A full GC every few MB makes RSS show what the executor keeps.
    const gc = exposeGc();
    const GC_EVERY = 4 * 1024 * 1024;
    let peakRss = 0;
    let sinceGc = 0;
    const sample = (bytes: number) => {
      sinceGc += bytes;
      if (sinceGc < GC_EVERY) return;
      sinceGc = 0;
      gc();
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
    };
    let seen = 0;
    const ex = executor({
      onOutput: (chunk) => {
        seen += chunk.data.length;
        sample(chunk.data.length);
      },
    });
    const readAll = async (job: Job) => {
      let read = 0;
      let maxChunk = 0;
      for await (const chunk of job.output()) {
        read += chunk.data.length;
        maxChunk = Math.max(maxChunk, chunk.data.length);
        sample(chunk.data.length);
      }
      return { read, maxChunk };
    };

    // Warm-up: the first MBs through the process grow the heap and allocator pools once;
    // measuring after it shows what output itself costs.
    const warmup = run(ex, command(10_000_000));
    await warmup.result;
    await readAll(warmup);
    await warmup.dispose();
    seen = 0;

    gc();
    const rssBefore = process.memoryUsage.rss();
    peakRss = rssBefore;
    const job = run(ex, command(size));
    const result = await job.result;
    expect(result.state).toBe('succeeded');
    expect(result.outputBytes).toBe(size + 3);
    expect(job.outputBytes).toBe(size + 3);
    expect(seen).toBe(size + 3);
    expect(statSync(job.logPath).size).toBe(size + 3);
    expect((await tail(job, 10)).toString()).toBe('xxxxxxxEND');
    expect((await tail(job, 0)).length).toBe(0);

    // Reading it all back streams chunk by chunk.
    const { read, maxChunk } = await readAll(job);
    expect(read).toBe(size + 3);
    expect(maxChunk).toBeLessThanOrEqual(64 * 1024);

    // Keeping the output in memory would add >= 50 MB.
    expect(peakRss - rssBefore).toBeLessThan(size / 4);
  }, 60_000);

  it(
    'tail() of a short log returns all of it',
    async () => {
      const job = run(executor(), 'printf short');
      await job.result;
      expect((await tail(job, 1000)).toString()).toBe('short');
    },
    T,
  );
});

describe('CommandExecutor: job bookkeeping', () => {
  it('rejects invalid specs synchronously', () => {
    const ex = executor();
    expect(() => ex.start(spec('true', { id: '../escape' }))).toThrow(/invalid job id/);
    expect(() => ex.start(spec('true', { id: '..' }))).toThrow(/invalid job id/);
    expect(() => ex.start(spec(''))).toThrow(/command/);
    expect(() => ex.start(spec('true', { timeoutSeconds: -1 }))).toThrow(/timeoutSeconds/);
    expect(() => ex.start(spec('true', { timeoutSeconds: NaN }))).toThrow(/timeoutSeconds/);
  });

  it(
    'refuses a duplicate id until the first job is disposed, which removes its log',
    async () => {
      const ex = executor();
      const first = run(ex, 'echo first', { id: 'same' });
      expect(() => ex.start(spec('echo second', { id: 'same' }))).toThrow(/already exists/);
      expect(ex.get('same')).toBe(first);
      await first.result;
      expect(existsSync(first.logPath)).toBe(true);
      await first.dispose();
      expect(existsSync(first.logPath)).toBe(false);
      expect(ex.get('same')).toBeUndefined();
      expect(await collect(first)).toEqual([]);

      const second = run(ex, 'echo second', { id: 'same' });
      await second.result;
      expect(await text(second)).toBe('second\n');
    },
    T,
  );

  it(
    'dispose() stops a running job first',
    async () => {
      const ex = executor();
      const job = run(ex, 'echo ready; sleep 100');
      await waitForOutput(job, 'ready');
      await job.dispose();
      expect(job.state).toBe('stopped');
      expect(groupAlive(job.pid!)).toBe(false);
      expect(ex.list()).toEqual([]);
    },
    T,
  );

  it(
    'has every byte in the log at the result, and closes every log file soon after (nothing leaks)',
    async () => {
      const ex = executor();
      const openLogs = () =>
        readdirSync('/proc/self/fd').filter((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`).startsWith(logDir);
          } catch {
            return false; // closed meanwhile
          }
        }).length;
      const jobs = Array.from({ length: 12 }, (_, i) =>
        run(ex, i % 3 === 0 ? 'true' : `echo out-${i}; echo err-${i} >&2`),
      );
      const results = await Promise.all(jobs.map((j) => j.result));
      expect(results.map((r) => r.state)).toEqual(jobs.map(() => 'succeeded'));
      // Every byte is in the file when the result is there.
      for (const [i, job] of jobs.entries())
        expect(statSync(job.logPath).size).toBe(i % 3 === 0 ? 0 : `out-${i}\nerr-${i}\n`.length);
      const deadline = Date.now() + 10_000;
      while (openLogs() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(openLogs()).toBe(0);
    },
    T,
  );
});
