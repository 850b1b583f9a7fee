/**
 * Faults with real processes: `dist-build master` and `dist-build worker` as separate processes
 * over unix sockets with mutual TLS, each worker with its own copy of the tree and its own cache
 * (a self-hosted pool on one machine), and `dist-build run` for failing commands.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueCert, writeCA, writeCert } from '../../src/cluster/certs.js';
import type { RunReport } from '../../src/report/types.js';
import {
  cliPath,
  explained,
  killGroup,
  runCli,
  groupAlive,
  groupGone,
  startCli,
  stopAll,
  type Proc,
} from '../helpers/processes.js';
import { stallTheWorkerOfB, STALL_CONFIG } from '../helpers/stall.js';

let dir: string;
let certs: string;

beforeAll(async () => {
  certs = mkdtempSync(join(tmpdir(), 'dist-build-faults-certs-'));
  const ca = await createCA();
  await writeCA(certs, ca);
  await writeCert(certs, 'master', await issueCert(ca, { name: 'master', role: 'master' }));
  await writeCert(certs, 'client', await issueCert(ca, { name: 'client', role: 'client' }));
  for (const w of ['w1', 'w2']) {
    await writeCert(certs, w, await issueCert(ca, { name: w, role: 'worker' }));
  }
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-faults-'));
});

afterEach(async () => {
  await stopAll();
  // Commands record their PIDs: end any a killed worker left behind.
  const pids = join(dir, 'pids');
  if (existsSync(pids)) {
    for (const pid of readFileSync(pids, 'utf8').split('\n')) killGroup(Number(pid));
  }
  rmSync(dir, { recursive: true, force: true });
});

afterAll(() => rmSync(certs, { recursive: true, force: true }));

/** `slow` prints where it runs, counts its starts, and takes a while; `after` needs its output. */
const POOL_CONFIG = `version: 1
invocations:
  slow:
    run: >-
      echo $$ >> ../pids; echo start >> ../starts-slow; echo "slow on $DIST_BUILD_WORKER";
      sleep 3; mkdir -p out && echo done > out/slow.txt
    outputs: [out/slow.txt]
  quick:
    run: mkdir -p quick && echo q > quick/q.txt
    outputs: [quick]
  after:
    run: mkdir -p final && cat out/slow.txt quick/q.txt > final/after.txt
    needs: [slow, quick]
    outputs: [final]
    export: true
`;

function tree(name: string, config: string): string {
  const root = join(dir, name);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'dist-build.yml'), config);
  return join(root, 'dist-build.yml');
}

/** A checkout `name` of `config` whose `src.txt` holds `src`; its config file. */
function checkout(name: string, config: string, src: string): string {
  const file = tree(name, config);
  writeFileSync(join(dir, name, 'src.txt'), src);
  return file;
}

const sock = (): string => `unix://${join(dir, 'master.sock')}`;

function startMaster(config: string, workers = 2): Proc {
  return startCli([
    'master',
    '--listen',
    sock(),
    '--config',
    config,
    '--workers',
    String(workers),
    '--out',
    join(dir, 'artifacts'),
    '--certs',
    certs,
    '--name',
    'master',
    '--heartbeat',
    '500ms',
    '--wait',
    '60s',
    '--plain',
  ]);
}

function startWorker(name: string, config: string, ...extra: string[]): Proc {
  return startCli([
    'worker',
    '--join',
    sock(),
    '--config',
    config,
    '--cache-dir',
    join(dir, `cache-${name}`),
    '--certs',
    certs,
    '--name',
    name,
    '--id',
    name,
    '--kill-grace',
    '1s',
    ...extra,
  ]);
}

/** The worker and process group a command wrote (`echo $DIST_BUILD_WORKER $$ > FILE`). */
async function startedAs(file: string): Promise<[string, string]> {
  const deadline = Date.now() + 30_000;
  while (!(existsSync(file) && readFileSync(file, 'utf8').endsWith('\n'))) {
    if (Date.now() > deadline) throw new Error(`${file}: the command never started`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const [name, pgid] = readFileSync(file, 'utf8').trim().split(' ');
  return [name!, pgid!];
}

function report(): RunReport {
  return JSON.parse(
    readFileSync(join(dir, 'artifacts/dist-build-report.json'), 'utf8'),
  ) as RunReport;
}

const starts = (): number =>
  readFileSync(join(dir, 'starts-slow'), 'utf8').split('\n').filter(Boolean).length;

test(
  'SIGKILL a worker while it runs a job: the job runs again elsewhere and the run succeeds',
  () =>
    explained(async () => {
      // The first start of slow lasts until its worker is killed, however slow the machine is
      // (with 3 s, a loaded machine finished it before the kill).
      const config = POOL_CONFIG.replace(
        'sleep 3;',
        'if [ "$(wc -l < ../starts-slow)" -eq 1 ]; then sleep 60; fi;',
      ).replace('> final/after.txt', '> final/after.txt; echo after-done; sleep 1');
      const master = startMaster(tree('m', config));
      const workers = {
        w1: startWorker('w1', tree('t1', config)),
        w2: startWorker('w2', tree('t2', config)),
      };
      const [, victim] = await master.waitFor(/\[slow\] slow on (w\d)/);

      // While it runs: the membership table and the job's log through the master.
      const status = await runCli(['status', '--master', sock(), '--certs', certs, '--json']);
      expect(status.code).toBe(0);
      const members = (JSON.parse(status.stdout) as { members: { worker_id: string }[] }).members;
      expect(members.map((m) => m.worker_id).sort()).toEqual(['w1', 'w2']);
      const logs = await runCli(['logs', 'slow', '--master', sock(), '--certs', certs]);
      expect(logs.stdout).toContain(`slow on ${victim}`);
      // An invocation without a job is an error at once (the call used to wait forever).
      const none = await runCli(['logs', 'after', '--master', sock(), '--certs', certs], {
        timeoutMs: 10_000,
      });
      expect(none.code).not.toBe(0);
      expect(none.stderr).toMatch(/no job of after has started/);
      const unknown = await runCli(['logs', 'nope', '--master', sock(), '--certs', certs]);
      expect(unknown.stderr).toMatch(/no invocation nope in this run/);
      // --follow waits for the job to start, then follows it to its end.
      const follow = startCli(['logs', 'after', '--follow', '--master', sock(), '--certs', certs]);
      // Following the job that is about to lose its worker goes on with its next attempt.
      const followSlow = startCli([
        'logs',
        'slow',
        '--follow',
        '--master',
        sock(),
        '--certs',
        certs,
      ]);
      await followSlow.waitFor(/slow on w\d/);

      workers[victim as 'w1' | 'w2'].kill('SIGKILL');
      const survivor = victim === 'w1' ? 'w2' : 'w1';
      const exit = await master.exited;
      expect(master.stderr).toMatch(new RegExp(`worker ${victim} lost`));
      expect(exit.code).toBe(0);
      const r = report();
      const slow = r.invocations.find((i) => i.unit === 'slow')!;
      expect(slow).toMatchObject({ status: 'built', worker: survivor, attempts: 2 });
      // The lost worker is in the report, with why it left.
      expect(r.workers.find((w) => w.id === victim)?.left).toEqual(expect.any(String));
      expect(master.stdout).toMatch(/on 2 workers \(1 left during the run\)/);
      expect(starts()).toBe(2);
      expect(r.invocations.find((i) => i.unit === 'after')!.status).toBe('built');
      expect(readFileSync(join(dir, 'artifacts/final/after.txt'), 'utf8')).toBe('done\nq\n');
      expect((await follow.exited).code).toBe(0);
      expect(follow.stdout).toContain('after-done');
      expect((await followSlow.exited).code).toBe(0);
      expect(followSlow.stdout).toContain(`slow on ${victim}\n`);
      expect(followSlow.stdout).toContain(`slow on ${survivor}\n`);
      expect(followSlow.stderr).toContain(`dist-build: slow: next attempt, on ${survivor}\n`);
    }),
  90_000,
);

test(
  'SIGKILL the one worker of a pool while it runs a job, start it again: it runs the job again',
  () =>
    explained(async () => {
      const config = POOL_CONFIG.replace(
        'sleep 3;',
        'if [ "$(wc -l < ../starts-slow)" -eq 1 ]; then sleep 60; fi;',
      );
      const master = startMaster(tree('m', config), 1);
      const t1 = tree('t1', config);
      const first = startWorker('w1', t1);
      await master.waitFor(/\[slow\] slow on w1/);
      first.kill('SIGKILL');
      await master.waitFor(/worker w1 lost/);
      // Restarted (by systemd, say) under its id: the unit it lost is its again, not shunned.
      startWorker('w1', t1);
      const exit = await Promise.race([
        master.exited,
        new Promise<null>((r) => setTimeout(() => r(null), 40_000)),
      ]);
      expect(exit?.code).toBe(0);
      const slow = report().invocations.find((i) => i.unit === 'slow')!;
      expect(slow).toMatchObject({ status: 'built', worker: 'w1', attempts: 2 });
      expect(starts()).toBe(2);
      expect(readFileSync(join(dir, 'artifacts/final/after.txt'), 'utf8')).toBe('done\nq\n');
    }),
  90_000,
);

test(
  'a worker whose config differs is left out for what it refuses; another worker runs it',
  () =>
    explained(async () => {
      const names = ['a', 'b', 'c', 'd', 'e', 'f'];
      const config = (suffix: string) =>
        `version: 1\ninvocations:\n${names.map((n) => `  ${n}: {run: "echo ${n}${suffix}"}`).join('\n')}\n`;
      const master = startMaster(tree('m', config('')));
      startWorker('w1', tree('t1', config('')));
      startWorker('w2', tree('t2', config('; true')));
      const exit = await master.exited;
      expect(exit.code).toBe(0);
      expect(master.stderr).toMatch(
        /warning: worker w2 refused [a-f]: invocation "[a-f]" differs from this worker's config/,
      );
      const r = report();
      expect(r.invocations.map((i) => [i.unit, i.status, i.worker])).toEqual(
        names.map((n) => [n, 'built', 'w1']),
      );
    }),
  90_000,
);

test(
  "a worker whose checkout differs from the master's (another commit) never builds under the master's keys",
  () =>
    explained(async () => {
      const names = ['a', 'b', 'c', 'd'];
      const cfg = `version: 1
invocations:
${names.map((n) => `  ${n}: {run: "mkdir -p out/${n} && cat src.txt > out/${n}/x", inputs: [src.txt], outputs: [out/${n}], export: true}`).join('\n')}
`;
      const master = startMaster(checkout('m', cfg, 'v2\n'));
      startWorker('w1', checkout('t1', cfg, 'v2\n'));
      // w2's checkout is behind: built there, the artifacts would hold v1 under v2's keys.
      startWorker('w2', checkout('t2', cfg, 'v1\n'), '--key-check', 'refuse');
      const exit = await master.exited;
      expect(exit.code).toBe(0);
      expect(master.stderr).toMatch(
        /warning: worker w2 refused [a-d]: the inputs of [a-d] in this worker's tree \(.*t2\) give cache key sha256:\w+, the master's is sha256:\w+: this checkout differs/,
      );
      expect(report().invocations.map((i) => [i.unit, i.status, i.worker])).toEqual(
        names.map((n) => [n, 'built', 'w1']),
      );
      for (const n of names) {
        expect(readFileSync(join(dir, `artifacts/out/${n}/x`), 'utf8')).toBe('v2\n');
      }
    }),
  90_000,
);

test(
  'with every worker behind the master, the invocations fail with why; nothing is built',
  () =>
    explained(async () => {
      const cfg = `version: 1
invocations:
  a: {run: "mkdir -p out && cat src.txt > out/a", inputs: [src.txt], outputs: [out/a]}
`;
      const master = startMaster(checkout('m', cfg, 'v2\n'));
      startWorker('w1', checkout('t1', cfg, 'v1\n'), '--key-check', 'refuse');
      startWorker('w2', checkout('t2', cfg, 'v1\n'), '--key-check', 'refuse');
      const exit = await master.exited;
      expect(exit.code).toBe(1);
      expect(master.stderr).toMatch(
        /worker w\d refused it: the inputs of a in this worker's tree .* this checkout differs .*; no other worker can take it/,
      );
      expect(report().invocations.map((i) => [i.unit, i.status])).toEqual([['a', 'failed']]);
      for (const t of ['t1', 't2']) expect(existsSync(join(dir, t, 'out/a'))).toBe(false);
    }),
  90_000,
);

test(
  'by default a worker behind the master builds, warns, and keeps the result out of the cache',
  () =>
    explained(async () => {
      const cfg = `version: 1
invocations:
  a: {run: "mkdir -p out && cat src.txt > out/a", inputs: [src.txt], outputs: [out/a], export: true}
`;
      const master = startMaster(checkout('m', cfg, 'v2\n'));
      startWorker('w1', checkout('t1', cfg, 'v1\n'));
      startWorker('w2', checkout('t2', cfg, 'v1\n'));
      expect((await master.exited).code).toBe(0);
      expect(master.stderr).toMatch(
        /warning: worker w\d built a, not cached: the inputs of a in this worker's tree .* this checkout differs .*declaring them as outputs/,
      );
      // The way to find out, with the keys file out of the tree (an input where "**" matches it).
      expect(master.stderr).toContain(
        "`dist-build keys a --json > /tmp/keys.json` in the master's tree",
      );
      const worker = report().invocations[0]!.worker!;
      // Its result is not under the master's key: nothing a later run could take for v2.
      const results = join(dir, `cache-${worker}`, 'results');
      const stored = existsSync(results) ? readdirSync(results, { recursive: true }) : [];
      expect(stored.filter((f) => String(f).endsWith('.json'))).toEqual([]);
    }),
  90_000,
);

test(
  'a worker stopped with Ctrl-C exits 130 (interrupted), with SIGTERM 0 (asked to stop)',
  () =>
    explained(async () => {
      const cfg = 'version: 1\ninvocations:\n  a: {run: "sleep 30"}\n';
      const master = startMaster(tree('m', cfg));
      const w1 = startWorker('w1', tree('t1', cfg));
      const w2 = startWorker('w2', tree('t2', cfg));
      await master.waitFor(/worker w2 joined/);
      await master.waitFor(/worker w1 joined/);
      w1.kill('SIGINT');
      w2.kill('SIGTERM');
      expect((await w1.exited).code).toBe(130);
      expect((await w2.exited).code).toBe(0);
    }),
  90_000,
);

test(
  '`logs --follow` started while the master waits for its workers waits for the job, not "no job has started"; status says what it waits for',
  () =>
    explained(async () => {
      const master = startMaster(tree('m', POOL_CONFIG));
      await master.waitFor(/listening on/);
      // status says what the master waits for.
      const status = await runCli(['status', '--master', sock(), '--certs', certs]);
      expect(status.stdout).toMatch(
        /, 0 workers \(waiting for 2 before it runs, [0-9.ms]+ left\)$/m,
      );
      const json = await runCli(['status', '--master', sock(), '--certs', certs, '--json']);
      expect(JSON.parse(json.stdout)).toMatchObject({ waiting: { workers: 2 } });
      const logs = startCli(['logs', 'slow', '--follow', '--master', sock(), '--certs', certs]);
      // It is waiting (it used to end at once, exit 2).
      await new Promise((r) => setTimeout(r, 1000));
      expect(logs.child.exitCode).toBeNull();
      startWorker('w1', tree('t1', POOL_CONFIG));
      startWorker('w2', tree('t2', POOL_CONFIG));
      expect(await logs.exited).toEqual({ code: 0, signal: null });
      expect(logs.stdout).toMatch(/^slow on w[12]$/m);
      expect((await master.exited).code).toBe(0);
    }),
  90_000,
);

test(
  'a master restarted with another config stops the jobs of the earlier run that are none of its own',
  () =>
    explained(async () => {
      const v1 = `version: 1
invocations:
  a: {run: "echo $$ >> ../pids; echo $$ > ../a1.pid; sleep 60"}
`;
      const v2 = 'version: 1\ninvocations:\n  a: {run: "echo v2"}\n';
      const first = startMaster(tree('m', v1));
      startWorker('w1', tree('t1', v1));
      startWorker('w2', tree('t2', v1));
      const pidFile = join(dir, 'a1.pid');
      const deadline = Date.now() + 30_000;
      while (!(existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'))) {
        if (Date.now() > deadline) throw new Error('a never started');
        await new Promise((r) => setTimeout(r, 50));
      }
      const pgid = Number(readFileSync(pidFile, 'utf8'));
      first.kill('SIGKILL');
      await first.exited;
      for (const t of ['m', 't1', 't2']) tree(t, v2);
      const second = startMaster(join(dir, 'm/dist-build.yml'));
      expect((await second.exited).code).toBe(0);
      expect(second.stderr).toMatch(
        /warning: stopping a on w[12]: a job of an earlier run with another cache key/,
      );
      expect(await groupGone(pgid, 10000)).toBe(true);
    }),
  90_000,
);

test(
  "`logs --follow` of the run's last job, a quick one, prints its output even though the run ends right after",
  () =>
    explained(async () => {
      const cfg = `version: 1
invocations:
  slow: {run: "sleep 2"}
  quick: {run: "echo quick says hi", needs: [slow]}
`;
      const master = startMaster(tree('m', cfg));
      await master.waitFor(/listening on/);
      // Five of them, 50 ms apart: the master looks for the job every 250 ms, so whatever the
      // timing, most of them look only after the run has ended.
      const clients: Proc[] = [];
      for (let i = 0; i < 5; i++) {
        clients.push(startCli(['logs', 'quick', '-f', '--master', sock(), '--certs', certs]));
        await new Promise((r) => setTimeout(r, 50));
      }
      startWorker('w1', tree('t1', cfg));
      startWorker('w2', tree('t2', cfg));
      expect((await master.exited).code).toBe(0);
      for (const logs of clients) {
        const exit = await logs.exited;
        expect(logs.stderr).toBe('');
        expect(logs.stdout).toBe('quick says hi\n');
        expect(exit.code).toBe(0);
      }
    }),
  90_000,
);

test(
  'a second Ctrl-C stops a worker at once and kills its command, which would otherwise run on orphaned',
  () =>
    explained(async () => {
      const cfg = `version: 1
invocations:
  a: {run: "trap '' TERM; echo $$ >> ../pids; echo $DIST_BUILD_WORKER $$ > ../a.run; sleep 60"}
`;
      startMaster(tree('m', cfg));
      const workers: Record<string, Proc> = {
        w1: startWorker('w1', tree('t1', cfg), '--kill-grace', '60s'),
        w2: startWorker('w2', tree('t2', cfg), '--kill-grace', '60s'),
      };
      const [name, pgid] = await startedAs(join(dir, 'a.run'));
      const w = workers[name!]!;
      w.kill('SIGINT');
      // The first one is handled (the command got its SIGTERM, which it ignores).
      await new Promise((r) => setTimeout(r, 500));
      const t0 = Date.now();
      w.kill('SIGINT');
      expect((await w.exited).code).toBe(130);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(await groupGone(Number(pgid), 5000)).toBe(true);
    }),
  90_000,
);

test(
  'SIGHUP (its terminal closed) stops a worker as SIGTERM does: its command is stopped, not left running orphaned',
  () =>
    explained(async () => {
      const cfg = `version: 1
invocations:
  a: {run: "echo $$ >> ../pids; echo $DIST_BUILD_WORKER $$ > ../a.run; sleep 60"}
`;
      startMaster(tree('m', cfg));
      const workers: Record<string, Proc> = {
        w1: startWorker('w1', tree('t1', cfg)),
        w2: startWorker('w2', tree('t2', cfg)),
      };
      const [name, pgid] = await startedAs(join(dir, 'a.run'));
      const w = workers[name!]!;
      w.kill('SIGHUP');
      expect((await w.exited).code).toBe(129);
      expect(await groupGone(Number(pgid), 5000)).toBe(true);
    }),
  90_000,
);

test(
  'Ctrl-C on a master whose only holder of a built artifact is gone: exit 130 and a report naming it cancelled, not a "cannot export" error',
  () =>
    explained(async () => {
      const cfg = `version: 1
invocations:
  a: {run: "mkdir -p a && echo a > a/x", outputs: [a], export: true}
  b: {run: "echo $$ >> ../pids; sleep 60"}
`;
      const master = startMaster(tree('m', cfg));
      const workers: Record<string, Proc> = {
        w1: startWorker('w1', tree('t1', cfg)),
        w2: startWorker('w2', tree('t2', cfg)),
      };
      const [, holder] = await master.waitFor(/a: built on (w\d)/);
      workers[holder!]!.kill('SIGKILL');
      await master.waitFor(new RegExp(`worker ${holder} lost`));
      master.kill('SIGINT');
      const exit = await master.exited;
      expect(master.stderr).not.toMatch(/cannot export a:/);
      expect(exit.code).toBe(130);
      const report = JSON.parse(
        readFileSync(join(dir, 'artifacts/dist-build-report.json'), 'utf8'),
      ) as RunReport;
      expect(report.status).toBe('cancelled');
      expect(report.invocations.find((i) => i.unit === 'a')).toMatchObject({
        status: 'cancelled',
        reason: expect.stringMatching(
          /master interrupted \(SIGINT\).*not exported: no live worker holds it/,
        ),
      });
    }),
  90_000,
);

test(
  'a worker whose service the master cannot dial back is named at once; the run still completes',
  () =>
    explained(async () => {
      const cfg = `version: 1
invocations:
${['a', 'b', 'c', 'd'].map((n) => `  ${n}: {run: "mkdir -p ${n} && echo ${n} > ${n}/x", outputs: [${n}], export: true}`).join('\n')}
`;
      const master = startMaster(tree('m', cfg));
      startWorker('w1', tree('t1', cfg));
      // Its certificate names 127.0.0.1, not 127.0.0.2: the master's TLS check refuses the dial.
      const w2 = startWorker('w2', tree('t2', cfg), '--listen', 'tcp://127.0.0.2:0');
      const exit = await master.exited;
      expect(exit.code).toBe(0);
      expect(master.stderr).toMatch(
        /warning: the master cannot reach worker w2's service at tcp:\/\/127\.0\.0\.2:\d+/,
      );
      for (const n of ['a', 'b', 'c', 'd']) {
        expect(readFileSync(join(dir, `artifacts/${n}/x`), 'utf8')).toBe(`${n}\n`);
      }
      w2.kill('SIGTERM');
    }),
  90_000,
);

test(
  'the only worker holding an artifact cannot be dialled back: it fails at once with the reason in the table, not built again for nothing',
  () =>
    explained(async () => {
      const cfg = `version: 1
invocations:
  a: {run: "echo start >> ../starts-a; mkdir -p a && echo a > a/x", outputs: [a], export: true}
`;
      const master = startCli([
        'master',
        '--listen',
        sock(),
        '--config',
        tree('m', cfg),
        '--workers',
        '1',
        '--out',
        join(dir, 'artifacts'),
        '--certs',
        certs,
        '--heartbeat',
        '500ms',
        '--plain',
      ]);
      // Its certificate names 127.0.0.1, not 127.0.0.2: the master's TLS check refuses the dial.
      const w2 = startWorker('w2', tree('t2', cfg), '--listen', 'tcp://127.0.0.2:0');
      const exit = await master.exited;
      expect(master.stderr).toMatch(
        /a: FAILED on w2: cannot export: the master cannot reach worker w2's service at tcp:\/\/127\.0\.0\.2:\d+ \(.*\): check its --listen \/ --advertise address/,
      );
      expect(exit.code).toBe(1);
      expect(readFileSync(join(dir, 'starts-a'), 'utf8')).toBe('start\n');
      expect(master.stdout).toMatch(/^a +w2 +failed +\S+ +cannot export: /m);
      expect(master.stdout).not.toMatch(/exit 0/);
      expect(master.stdout).toMatch(/1 invocation: 0 built, 0 cached, 1 failed/);
      w2.kill('SIGTERM');
    }),
  90_000,
);

/** `quick` waits for `../go`, so a test can kill slow's worker after slow is built. */
const HANDOFF_CONFIG = `version: 1
invocations:
  slow:
    run: >-
      echo start >> ../starts-slow; echo "slow on $DIST_BUILD_WORKER";
      mkdir -p out && echo done > out/slow.txt
    outputs: [out/slow.txt]
  quick:
    run: >-
      echo $$ >> ../pids; while [ ! -e ../go ]; do sleep 0.1; done;
      mkdir -p quick && echo q > quick/q.txt
    outputs: [quick]
  after:
    run: mkdir -p final && cat out/slow.txt quick/q.txt > final/after.txt
    needs: [slow, quick]
    outputs: [final]
    export: true
`;

test(
  'SIGKILL the only worker holding a built result: a dependent on another worker gets it built again',
  () =>
    explained(async () => {
      const master = startMaster(tree('m', HANDOFF_CONFIG));
      const workers = {
        w1: startWorker('w1', tree('t1', HANDOFF_CONFIG)),
        w2: startWorker('w2', tree('t2', HANDOFF_CONFIG)),
      };
      const [, victim] = await master.waitFor(/slow: built on (w\d)/);
      const survivor = victim === 'w1' ? 'w2' : 'w1';
      workers[victim as 'w1' | 'w2'].kill('SIGKILL');
      await master.waitFor(new RegExp(`worker ${victim} lost`));
      // Now after needs slow's outputs, which only a dead worker held. (When a fetch from the dead
      // worker was already under way, the survivor used to crash: see chunks.test.ts.)
      writeFileSync(join(dir, 'go'), '');
      const exit = await master.exited;
      expect(exit.code).toBe(0);
      expect(workers[survivor].child.exitCode).toBeNull();
      expect(starts()).toBe(2);
      expect(master.output).toMatch(/slow: will run again: after could not get its outputs/);
      const r = report();
      expect(r.invocations.find((i) => i.unit === 'slow')).toMatchObject({
        status: 'built',
        worker: survivor,
      });
      expect(readFileSync(join(dir, 'artifacts/final/after.txt'), 'utf8')).toBe('done\nq\n');
    }),
  90_000,
);

test(
  "a worker killed with SIGKILL leaves its command running: the next worker on its cache dir ends the command's process group",
  () =>
    explained(async () => {
      const config = `version: 1
invocations:
  long:
    run: echo $$ >> ../pids; echo "long on $DIST_BUILD_WORKER $$"; sleep 60
`;
      const master = startMaster(tree('m', config));
      const workers = {
        w1: startWorker('w1', tree('t1', config)),
        w2: startWorker('w2', tree('t2', config)),
      };
      const [, victim, pgid] = (await master.waitFor(/long on (w\d) (\d+)/)) as [
        string,
        'w1' | 'w2',
        string,
      ];
      const alive = () => groupAlive(Number(pgid));
      // The worker keeps its running command's process group in a file of its cache dir.
      const running = join(dir, `cache-${victim}`, 'running');
      const recorded = readdirSync(running)
        .filter((f) => !f.endsWith('.sock')) // the worker's own socket lives there too
        .map((f) => readFileSync(join(running, f), 'utf8'));
      expect(recorded.map((t) => t.trim().split(' ')[0])).toContain(pgid);
      workers[victim].kill('SIGKILL');
      await workers[victim].exited;
      expect(alive()).toBe(true); // nobody stopped it

      const again = startWorker(victim, tree(victim === 'w1' ? 't1' : 't2', config));
      await again.waitFor(new RegExp(`ended process group ${pgid} left by dead worker`));
      for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(alive()).toBe(false);
    }),
  90_000,
);

test(
  'restarting the master mid-run: workers re-register, the running job is adopted, the run completes',
  () =>
    explained(async () => {
      const config = tree('m', POOL_CONFIG);
      const first = startMaster(config);
      startWorker('w1', tree('t1', POOL_CONFIG));
      startWorker('w2', tree('t2', POOL_CONFIG));
      await first.waitFor(/\[slow\] slow on (w\d)/);
      first.kill('SIGKILL');
      await first.exited;

      const second = startMaster(config);
      const exit = await second.exited;
      expect(second.output).toMatch(/worker w1 joined/);
      expect(exit.code).toBe(0);
      // The job that was running is not started again: its result arrives at the new master.
      expect(starts()).toBe(1);
      const r = report();
      expect(r.status).toBe('succeeded');
      expect(r.invocations.find((i) => i.unit === 'slow')!.status).toMatch(/built|cached/);
      expect(readFileSync(join(dir, 'artifacts/final/after.txt'), 'utf8')).toBe('done\nq\n');
    }),
  90_000,
);

test(
  'a command that failed while the master was down: its failure is the result after the restart, not run again',
  () =>
    explained(async () => {
      const cfg = `version: 1
invocations:
  x:
    run: echo start >> ../starts-x; echo "x on $DIST_BUILD_WORKER"; sleep 1; exit 3
  y:
    run: echo y
`;
      const config = tree('m', cfg);
      const first = startMaster(config);
      startWorker('w1', tree('t1', cfg));
      startWorker('w2', tree('t2', cfg));
      await first.waitFor(/\[x\] x on (w\d)/);
      first.kill('SIGKILL');
      await first.exited;
      await new Promise((r) => setTimeout(r, 2500)); // x fails meanwhile
      const second = startMaster(config);
      const exit = await second.exited;
      expect(exit.code).toBe(1);
      expect(second.stderr).toMatch(/x: FAILED on w\d: .*code 3/);
      expect(readFileSync(join(dir, 'starts-x'), 'utf8').trim().split('\n')).toHaveLength(1);
    }),
  90_000,
);

const FAULTY = `version: 1
invocations:
  fail:
    run: echo boom >&2; exit 3
  after-fail:
    run: echo never
    needs: [fail]
  hang:
    run: echo $$ >> ../pids; sleep 60
    timeout: 1
  loud:
    run: head -c 3000000 /dev/zero | tr '\\0' x; echo
  fine:
    run: echo fine > fine.txt
    outputs: [fine.txt]
    export: true
`;

test('a failing, a hanging and a very loud command behave as documented; the rest still runs', async () => {
  const config = tree('repo', FAULTY);
  const out = join(dir, 'artifacts');
  const res = await runCli(['run', '--config', config, '--workers', '2', '--out', out], {
    timeoutMs: 60_000,
  });
  expect(res.code).toBe(1);
  const r = report();
  const by = Object.fromEntries(r.invocations.map((i) => [i.unit, i]));
  expect(by.fail).toMatchObject({ status: 'failed', exitCode: 3 });
  expect(by['after-fail']).toMatchObject({ status: 'skipped', reason: 'needs fail, which failed' });
  expect(by.hang!.status).toBe('failed');
  expect(by.hang!.reason).toMatch(/timed out after 1s/);
  expect(by.loud!.status).toBe('built');
  expect(by.fine!.status).toBe('built');
  expect(readFileSync(join(out, 'fine.txt'), 'utf8')).toBe('fine\n');
  // The failure names the invocation and shows the tail of its log.
  expect(res.stderr).toMatch(
    /fail: FAILED on worker-\d: exited with code 3\n--- last lines of fail ---\n(\[fail\] )?boom/,
  );
  // Megabytes of output are streamed through, prefixed, nothing lost.
  const xs = res.stderr
    .split('\n')
    .filter((l) => l.startsWith('[loud] '))
    .map((l) => l.length - 7);
  expect(xs.reduce((a, b) => a + b, 0)).toBe(3_000_000);
  expect(res.stdout).toMatch(/5 invocations: 2 built, 0 cached, 2 failed, 1 skipped/);
}, 90_000);

test('--fail-fast stops the rest at the first failure', async () => {
  const config = tree(
    'repo',
    `version: 1
invocations:
  fail:
    run: exit 1
  a:
    run: sleep 1
    needs: [fail]
  b:
    run: echo $$ >> ../pids; sleep 20
`,
  );
  const res = await runCli(
    ['run', '--config', config, '--workers', '1', '--out', join(dir, 'artifacts'), '--fail-fast'],
    {
      timeoutMs: 60_000,
    },
  );
  expect(res.code).toBe(1);
  const by = Object.fromEntries(report().invocations.map((i) => [i.unit, i.status]));
  expect(by.fail).toBe('failed');
  expect(['cancelled', 'skipped']).toContain(by.a);
  expect(by.b).toBe('cancelled');
}, 90_000);

test('an artifact this run does not export (failed, skipped) is not left in --out from an earlier run', async () => {
  const good = `version: 1
invocations:
  lib:
    run: mkdir -p out && echo "lib v1" > out/lib.txt
    outputs: [out/lib.txt]
    export: true
  app:
    run: mkdir -p app && echo app > app/app.txt
    needs: [lib]
    outputs: [app]
    export: true
`;
  const config = tree('repo', good);
  const artifacts = join(dir, 'artifacts');
  const run = () =>
    runCli(['run', '--config', config, '--workers', '1', '--out', artifacts], {
      timeoutMs: 60_000,
    });
  expect((await run()).code).toBe(0);
  expect(readFileSync(join(artifacts, 'out/lib.txt'), 'utf8')).toBe('lib v1\n');
  expect(existsSync(join(artifacts, 'app/app.txt'))).toBe(true);
  // lib now fails, so app is skipped: neither is this run's artifact.
  writeFileSync(config, good.replace('echo "lib v1" > out/lib.txt', 'exit 4'));
  const second = await run();
  expect(second.code).toBe(1);
  expect(Object.fromEntries(report().invocations.map((i) => [i.unit, i.status]))).toEqual({
    lib: 'failed',
    app: 'skipped',
  });
  // They used to stay there from the first run, next to a report saying they failed.
  expect(existsSync(join(artifacts, 'out/lib.txt'))).toBe(false);
  expect(existsSync(join(artifacts, 'app'))).toBe(false);
  expect(existsSync(join(artifacts, 'dist-build-report.json'))).toBe(true);
}, 90_000);

test('a command that leaves read-only directories in its output: built again over them, and restored over them', () => {
  // As root, modes stop nothing: the runs then go without the capabilities that override them
  // (still root, so the checkout, node_modules and the CLI stay readable wherever they are; as
  // the owner of the tree, modes stop it as they stop a developer or a CI runner).
  const asUser =
    process.getuid?.() === 0
      ? ['setpriv', '--bounding-set=-dac_override,-dac_read_search', '--']
      : [];
  if (asUser.length && spawnSync('setpriv', ['--version']).status !== 0) return; // no way to drop them
  const config = tree(
    'repo',
    `version: 1
invocations:
  ro:
    run: mkdir -p out/ro/sub && cat src.txt > out/ro/sub/f && chmod 555 out/ro/sub
    inputs: [src.txt]
    outputs: [out/ro]
  use:
    run: cat out/ro/sub/f use.txt
    inputs: [use.txt]
    needs: [ro]
`,
  );
  const repo = join(dir, 'repo');
  const write = (name: string, text: string) => writeFileSync(join(repo, name), text);
  write('src.txt', 'one\n');
  write('use.txt', 'u1\n');
  const run = () => {
    const [cmd, ...args] = [
      ...asUser,
      process.execPath,
      cliPath(),
      'run',
      '-c',
      config,
      '-w',
      '1',
      '--no-output',
      '--out',
      join(dir, 'artifacts'),
    ];
    const r = spawnSync(cmd!, args, { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  };
  try {
    expect(run().code).toBe(0);
    write('src.txt', 'two\n');
    // ro is built again: clearing its output used to fail (EACCES on out/ro/sub/f), every run.
    const second = run();
    expect(second.out).toMatch(/ro +worker-1 +built/);
    expect(second.code).toBe(0);
    // Back to the first result (cached), under a changed dependent: restored over the tree's
    // read-only one (the old one moved aside and removed), not built again.
    write('src.txt', 'one\n');
    write('use.txt', 'u2\n');
    const third = run();
    expect(third.out).toMatch(/ro +worker-1 +cached/);
    expect(third.out).toMatch(/use +worker-1 +built/);
    expect(third.code).toBe(0);
    expect(readFileSync(join(repo, 'out/ro/sub/f'), 'utf8')).toBe('one\n');
    expect(readdirSync(join(repo, '.dist-build/staging'))).toEqual([]);
  } finally {
    spawnSync('chmod', ['-R', 'u+w', dir]);
  }
}, 90_000);

test('a run killed while it exported leaves a staging directory in --out: the next run removes it', async () => {
  const config = tree(
    'repo',
    `version: 1\ninvocations:\n  a: { run: "mkdir -p o && echo a > o/a", outputs: [o], export: true }\n`,
  );
  const artifacts = join(dir, 'artifacts');
  // As a run killed with SIGKILL mid-export leaves it: named by its process, which is gone.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  const stale = join(artifacts, `.dist-build-export-${dead}-Ab12Cd`);
  mkdirSync(join(stale, 'o'), { recursive: true });
  writeFileSync(join(stale, 'o/half-written'), 'x');
  // One of a live process (another run exporting into the same directory) is left alone.
  const live = join(artifacts, `.dist-build-export-${process.pid}-Ef34Gh`);
  mkdirSync(live);
  const r = await runCli(['run', '--config', config, '--workers', '1', '--out', artifacts], {
    timeoutMs: 60_000,
  });
  expect(r.code).toBe(0);
  expect(readFileSync(join(artifacts, 'o/a'), 'utf8')).toBe('a\n');
  expect(readdirSync(artifacts).filter((n) => n.startsWith('.dist-build-export-'))).toEqual([
    `.dist-build-export-${process.pid}-Ef34Gh`,
  ]);
}, 60_000);

test('a run that ends in an error leaves no report of an earlier run in --out', async () => {
  const good = `version: 1\ninvocations:\n  a: { run: "true" }\n`;
  const config = tree('repo', good);
  const artifacts = join(dir, 'artifacts');
  const run = () =>
    runCli(['run', '--config', config, '--workers', '1', '--out', artifacts], {
      timeoutMs: 60_000,
    });
  expect((await run()).code).toBe(0);
  expect(report().status).toBe('succeeded');
  // No worker can take it: the run ends in an error, without a report of its own.
  writeFileSync(config, `${good}  arm: { run: "true", platform: linux/arm64 }\n`);
  const second = await run();
  expect(second.stderr).toMatch(/no worker can take "arm"/);
  expect(second.code).toBe(2);
  // The first run's 'succeeded' report used to stay (and the action's step summary showed it).
  expect(readdirSync(artifacts).filter((n) => n.startsWith('dist-build-report'))).toEqual([]);
}, 60_000);

const CORRUPTIBLE = `version: 1
invocations:
  a:
    run: mkdir -p out && echo "made by a" > out/a.txt
    inputs: [a.src]
    outputs: [out/a.txt]
    export: true
  b:
    run: cat out/a.txt b.src > b.txt
    inputs: [b.src]
    needs: [a]
    outputs: [b.txt]
    export: true
`;

test(
  'a corrupt blob in the cache is never used: the next run detects it and rebuilds',
  () =>
    explained(async () => {
      const config = tree('repo', CORRUPTIBLE);
      const repo = join(dir, 'repo');
      writeFileSync(join(repo, 'a.src'), 'a\n');
      writeFileSync(join(repo, 'b.src'), 'b1\n');
      const out = join(dir, 'artifacts');
      const run = () =>
        runCli(['run', '--config', config, '--workers', '1', '--out', out], { timeoutMs: 60_000 });
      const flip = () => {
        const digest = report().invocations.find((i) => i.unit === 'a')!.outputs[0]!.digest;
        const hex = digest.slice('sha256:'.length);
        const blob = join(repo, '.dist-build/cache/blobs/sha256', hex.slice(0, 2), hex);
        const bytes = readFileSync(blob);
        bytes[bytes.length >> 1] ^= 0xff;
        writeFileSync(blob, bytes);
      };
      expect((await run()).code).toBe(0);

      // The dependency is cached but its blob is corrupt and the tree lost its outputs: b cannot
      // restore them, so a is built again, then b.
      flip();
      rmSync(join(repo, 'out'), { recursive: true, force: true });
      writeFileSync(join(repo, 'b.src'), 'b2\n');
      const second = await run();
      expect(second.code).toBe(0);
      let by = Object.fromEntries(report().invocations.map((i) => [i.unit, i.status]));
      expect(by).toEqual({ a: 'built', b: 'built' });
      expect(
        report()
          .events!.map((e) => e.message)
          .join('\n'),
      ).toMatch(/building a again/);
      expect(readFileSync(join(out, 'b.txt'), 'utf8')).toBe('made by a\nb2\n');

      // Nothing changed, but the exported artifact's blob is corrupt: it is built again, not exported.
      flip();
      const third = await run();
      expect(third.code).toBe(0);
      by = Object.fromEntries(report().invocations.map((i) => [i.unit, i.status]));
      expect(by).toEqual({ a: 'built', b: 'cached' });
      expect(readFileSync(join(out, 'out/a.txt'), 'utf8')).toBe('made by a\n');
    }),
  120_000,
);

async function until(ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ONE = `version: 1
invocations:
  a:
    run: echo run >> ../count-a; mkdir -p out && echo made > out/a.txt
    outputs: [out]
    export: true
`;

test(
  'a cached result that does not hold the declared outputs is built again, with a warning',
  () =>
    explained(async () => {
      const config = tree('repo', ONE);
      const run = () =>
        runCli(['run', '-c', config, '-w', '1', '-o', join(dir, 'artifacts'), '--plain'], {
          timeoutMs: 60_000,
        });
      expect((await run()).code).toBe(0);
      const key = report().invocations[0]!.cacheKey.slice('sha256:'.length);
      const file = join(
        dir,
        'repo/.dist-build/cache/results/sha256',
        key.slice(0, 2),
        `${key}.json`,
      );
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as { outputs: unknown[] };
      manifest.outputs = [];
      writeFileSync(file, JSON.stringify(manifest));
      const second = await run();
      expect(second.code).toBe(0);
      expect(second.stderr).toMatch(
        /warning: the cached result of a on worker-1 holds other outputs than declared/,
      );
      expect(report().invocations[0]!.status).toBe('built');
      expect(readFileSync(join(dir, 'artifacts/out/a.txt'), 'utf8')).toBe('made\n');
    }),
  90_000,
);

test(
  '--out . exports into the config directory and keeps its cache; workers remove their job logs',
  () =>
    explained(async () => {
      const config = tree('repo', ONE);
      const repo = join(dir, 'repo');
      const tmp = join(dir, 'tmp');
      mkdirSync(tmp);
      const run = () =>
        runCli(['run', '-c', config, '-w', '1', '-o', repo, '--plain'], {
          timeoutMs: 60_000,
          env: { TMPDIR: tmp },
        });
      expect((await run()).code).toBe(0);
      // The workers' job logs went with them.
      expect(readdirSync(tmp).filter((n) => n.startsWith('dist-build-jobs'))).toEqual([]);
      const second = await run();
      expect(second.code).toBe(0);
      // It used to remove <out>/.dist-build after exporting: here the cache, history and state.
      expect(second.stdout).toMatch(/1 invocations?: 0 built, 1 cached/);
      expect(readFileSync(join(repo, 'out/a.txt'), 'utf8')).toBe('made\n');
      expect(readdirSync(repo).filter((n) => n.startsWith('.dist-build-export-'))).toEqual([]);
    }),
  90_000,
);

test('outputs that cannot be packed fail at once; the rest runs', async () => {
  const config = tree(
    'repo',
    `version: 1
invocations:
  link:
    run: echo run >> ../count-link; mkdir -p o && ln -sfn /etc o/etc
    outputs: [o]
  fine:
    run: echo fine
  missing:
    run: echo made nothing
    outputs: [nothing]
`,
  );
  const r = await runCli(
    ['run', '-c', config, '-w', '1', '-o', join(dir, 'artifacts'), '--plain'],
    {
      timeoutMs: 60_000,
    },
  );
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(
    /link: FAILED on worker-1: cannot save outputs: unsafe archive entry "o\/etc"/,
  );
  expect(readFileSync(join(dir, 'count-link'), 'utf8')).toBe('run\n');
  expect(r.stdout).toMatch(/fine +worker-1 +built/);
  // The commands exited 0: their exit code is kept (it used to be "failed (no exit code)").
  expect(r.stdout).toMatch(
    /missing +worker-1 +failed \(exit 0\) .*declared output nothing was not produced/,
  );
  expect(r.stdout).toMatch(/link +worker-1 +failed \(exit 0\)/);
  const byUnit = Object.fromEntries(report().invocations.map((i) => [i.unit, i]));
  expect(byUnit.missing!.exitCode).toBe(0);
  expect(byUnit.link!.exitCode).toBe(0);
}, 90_000);

test('a failed export whose output path has a file of an earlier run in place of a parent in --out: the run goes on to its report', async () => {
  // None of its copy can be there to remove: that ended the run with a bare ENOTDIR, no report.
  const config = tree(
    'repo',
    `version: 1
invocations:
  broken:
    run: exit 3
    outputs: [old/b]
    export: true
`,
  );
  const out = join(dir, 'artifacts');
  mkdirSync(out);
  writeFileSync(join(out, 'old'), "an earlier run's artifact\n");
  const r = await runCli(['run', '-c', config, '-w', '1', '-o', out, '--plain'], {
    timeoutMs: 60_000,
  });
  expect(r.code).toBe(1);
  expect(r.stderr).not.toMatch(/ENOTDIR/);
  expect(report().invocations[0]).toMatchObject({ unit: 'broken', status: 'failed', exitCode: 3 });
  expect(readFileSync(join(out, 'old'), 'utf8')).toBe("an earlier run's artifact\n");
}, 90_000);

test('an export that cannot be written into --out (a file of an earlier run in the way) fails with a report, without building it again', async () => {
  // An earlier config exported `gen` (a file); now the outputs are below gen/.
  const config = tree(
    'repo',
    `version: 1
invocations:
  made:
    run: echo made >> ../count-made; mkdir -p gen && echo x > gen/a
    outputs: [gen/a]
    export: true
`,
  );
  const out = join(dir, 'artifacts');
  mkdirSync(out);
  writeFileSync(join(out, 'gen'), "an earlier run's artifact\n");
  const r = await runCli(['run', '-c', config, '-w', '1', '-o', out, '--plain'], {
    timeoutMs: 60_000,
  });
  expect(r.code).toBe(1);
  // It was built again, then the export failed the same way and the run ended with no report.
  expect(r.stderr).not.toMatch(/will run again/);
  expect(r.stderr).toMatch(/made: FAILED on worker-1: cannot export: EEXIST: .*artifacts\/gen'/);
  expect(readFileSync(join(dir, 'count-made'), 'utf8')).toBe('made\n');
  const made = report().invocations[0]!;
  expect(made).toMatchObject({ unit: 'made', status: 'failed', attempts: 1 });
  expect(made.reason).toMatch(/^cannot export: EEXIST/);
  expect(readFileSync(join(out, 'gen'), 'utf8')).toBe("an earlier run's artifact\n");
}, 90_000);

test('an output behind a symlink out of the tree fails at once, is not retried elsewhere, and nothing outside is removed', async () => {
  const config = tree(
    'repo',
    `version: 1
invocations:
  escape:
    run: mkdir -p linkdir/out && echo x > linkdir/out/f
    outputs: [linkdir/out]
`,
  );
  const outside = join(dir, 'elsewhere');
  mkdirSync(join(outside, 'out'), { recursive: true });
  writeFileSync(join(outside, 'out/keep.txt'), 'keep\n');
  symlinkSync(outside, join(dir, 'repo/linkdir'));
  const r = await runCli(
    ['run', '-c', config, '-w', '2', '-o', join(dir, 'artifacts'), '--plain'],
    {
      timeoutMs: 60_000,
    },
  );
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/escape: FAILED .*its parent directory resolves outside the work tree/);
  expect(r.stderr).not.toMatch(/will run again|ran twice/);
  expect(report().invocations.find((i) => i.unit === 'escape')!.attempts).toBe(1);
  expect(readFileSync(join(outside, 'out/keep.txt'), 'utf8')).toBe('keep\n');
}, 90_000);

test(
  'run: a worker stalled past its lease (SIGSTOP) is killed with its command before the job runs again in the shared tree',
  () =>
    explained(async () => {
      const config = tree('repo', STALL_CONFIG);
      const run = startCli([
        'run',
        '-c',
        config,
        '-w',
        '2',
        '-o',
        join(dir, 'artifacts'),
        '--plain',
      ]);
      await stallTheWorkerOfB(
        run,
        dir,
        join(dir, 'repo/.dist-build/cache/running'),
        join(dir, 'artifacts/out/b.txt'),
      );
    }),
  90_000,
);

test('run: with every local worker lost, the run ends at once with its table and report', async () => {
  const config = tree(
    'repo',
    `version: 1
invocations:
  long:
    run: echo $$ >> ../pids; echo $PPID > ../worker; sleep 30
`,
  );
  const run = startCli(['run', '-c', config, '-w', '1', '-o', join(dir, 'artifacts'), '--plain']);
  await until(
    () =>
      existsSync(join(dir, 'worker')) && readFileSync(join(dir, 'worker'), 'utf8').includes('\n'),
  );
  process.kill(Number(readFileSync(join(dir, 'worker'), 'utf8')), 'SIGKILL');
  const started = Date.now();
  const exit = await run.exited;
  expect(exit.code).toBe(1);
  expect(Date.now() - started).toBeLessThan(20_000);
  expect(run.stdout).toMatch(/long +- +cancelled/);
  expect(run.stdout).toMatch(/no worker available/);
  expect(report().status).not.toBe('succeeded');
}, 60_000);

test(
  'an exported artifact of many chunks whose blob is corrupt is built again and exported (the export does not hang)',
  () =>
    explained(async () => {
      // 3 MB: the worker streams it in many messages and finds the corruption only at the end,
      // after most of it went out; the master must get the error and build it again.
      const config = tree(
        'big',
        `version: 1
invocations:
  big:
    run: mkdir -p out && yes dist-build | head -c 3000000 > out/big.bin
    outputs: [out]
    export: true
`,
      );
      const out = join(dir, 'artifacts');
      const run = () =>
        runCli(['run', '--config', config, '--workers', '1', '--out', out], { timeoutMs: 60_000 });
      expect((await run()).code).toBe(0);
      const digest = report().invocations[0]!.outputs[0]!.digest.slice('sha256:'.length);
      const blob = join(dir, 'big/.dist-build/cache/blobs/sha256', digest.slice(0, 2), digest);
      const bytes = readFileSync(blob);
      bytes[bytes.length >> 1] ^= 0xff;
      writeFileSync(blob, bytes);
      rmSync(out, { recursive: true, force: true });

      const second = await run();
      expect(second.code).toBe(0);
      expect(second.stderr).toMatch(
        /cannot export it: .*DATA_LOSS: blob sha256:[0-9a-f]{64} is corrupt/,
      );
      expect(report().invocations[0]).toMatchObject({ unit: 'big', status: 'built' });
      const file = readFileSync(join(out, 'out/big.bin'));
      expect(file.length).toBe(3_000_000);
      expect(file.subarray(0, 11).toString()).toBe('dist-build\n');
    }),
  120_000,
);

test('run keeps results in the store the config names (no --cache-dir)', async () => {
  const config = tree(
    'repo',
    `version: 1
cache:
  stores: [{ type: local, dir: my-cache }]
invocations:
  a:
    run: echo a > a.txt
    outputs: [a.txt]
`,
  );
  const res = await runCli(
    ['run', '--config', config, '--workers', '1', '--out', join(dir, 'artifacts')],
    {
      timeoutMs: 60_000,
    },
  );
  expect(res.code).toBe(0);
  expect(existsSync(join(dir, 'repo/my-cache/results'))).toBe(true);
  expect(existsSync(join(dir, 'repo/.dist-build/cache/results'))).toBe(false);
}, 60_000);

test('a full disk under the cache: the store evicts what was used least recently, or the build goes on uncached', async () => {
  // The cache dir is a 4 MiB tmpfs mounted in a mount namespace of its own, held by a process
  // (killed by PID below: the mount goes with it); the runs enter that namespace (nsenter).
  const cache = join(dir, 'cache');
  const up = join(dir, 'ns-up');
  mkdirSync(cache);
  const holder = spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      `mount -t tmpfs -o size=4m tmpfs '${cache}' && touch '${up}' && exec sleep 600`,
    ],
    { stdio: 'ignore', detached: true },
  );
  const gone = new Promise<void>((r) => holder.once('exit', () => r()));
  try {
    const mounted = await Promise.race([
      until(() => existsSync(up), 10_000).then(() => true),
      gone.then(() => false),
    ]);
    if (!mounted) {
      console.warn('skipped: this machine does not let the test mount a tmpfs (unshare --mount)');
      return;
    }
    const config = tree(
      'repo',
      `version: 1
invocations:
  big:
    run: mkdir -p out && head -c 2500000 /dev/urandom > out/big.bin && cat big.txt >> out/big.bin
    inputs: [big.txt]
    outputs: [out/big.bin]
  use:
    run: mkdir -p use && wc -c < out/big.bin > use/n.txt
    needs: [big]
    outputs: [use]
    export: true
`,
    );
    const repo = join(dir, 'repo');
    const run = (src: string) => {
      writeFileSync(join(repo, 'big.txt'), src);
      const r = spawnSync(
        'nsenter',
        [
          `--target=${holder.pid}`,
          '--mount',
          '--',
          process.execPath,
          cliPath(),
          'run',
          '-c',
          config,
          '-w',
          '1',
          '--no-output',
          '--cache-dir',
          cache,
          '--out',
          join(dir, 'artifacts'),
        ],
        { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' },
      );
      return { code: r.status, out: `${r.stdout}${r.stderr}` };
    };
    const first = run('one\n');
    expect(first.code).toBe(0);
    // 2.5 MB more does not fit beside the first result, which was used a moment ago (and so is
    // kept): built all the same, not cached, and its dependent still finds it in the tree.
    const second = run('two\n');
    expect(second.out).toMatch(/the disk is full, and nothing in this store can be evicted/);
    expect(second.out).toMatch(/built big, not cached: no room in the cache for its outputs/);
    expect(second.out).toMatch(/big +worker-1 +built/);
    expect(second.out).toMatch(/use +worker-1 +built/);
    expect(second.code).toBe(0);
    expect(readFileSync(join(dir, 'artifacts/use/n.txt'), 'utf8').trim()).toBe('2500004');
    // Once the first result has not been used for a while, it makes room for the next one.
    // (The cache is only there inside the namespace.)
    const aged = spawnSync('nsenter', [
      `--target=${holder.pid}`,
      '--mount',
      '--',
      'sh',
      '-c',
      `find '${cache}' -type f -exec touch -d '1 hour ago' {} +`,
    ]);
    expect(aged.status).toBe(0);
    const third = run('three\n');
    expect(third.out).toMatch(
      /the disk is full: evicted the [12] least recently used blob\(s\) \(2\.\d+ MiB\) to make room/,
    );
    expect(third.out).not.toMatch(/not cached/);
    expect(third.code).toBe(0);
    const fourth = run('three\n');
    expect(fourth.out).toMatch(/big +worker-1 +cached/);
    expect(fourth.code).toBe(0);
  } finally {
    killGroup(holder.pid!);
    await gone;
  }
}, 120_000);

test('run NAME... runs those invocations and what they need; the next full run finds them cached', async () => {
  const config = tree(
    'repo',
    `version: 1
invocations:
  base: {run: 'mkdir -p o && echo base > o/base', outputs: [o/base]}
  app: {run: 'mkdir -p a && cat o/base > a/app', needs: [base], outputs: [a], export: true}
  other: {run: 'mkdir -p x && echo other > x/other', outputs: [x], export: true}
`,
  );
  const out = join(dir, 'artifacts');
  const run = (...names: string[]) =>
    runCli(['run', '-c', config, '-w', '2', '-o', out, '--plain', '--no-output', ...names], {
      timeoutMs: 60_000,
    });
  const some = await run('app');
  expect(some.code).toBe(0);
  expect(Object.fromEntries(report().invocations.map((i) => [i.unit, i.status]))).toEqual({
    base: 'built',
    app: 'built',
  });
  expect(report().exports.map((e) => e.unit)).toEqual(['app']);
  expect(some.stdout).toMatch(/2 invocations: 2 built/);
  const all = await run();
  expect(all.code).toBe(0);
  expect(Object.fromEntries(report().invocations.map((i) => [i.unit, i.status]))).toEqual({
    base: 'cached',
    app: 'cached',
    other: 'built',
  });
  // Where each went is kept for the next runs, also for what a partial run left out.
  const plan = JSON.parse(readFileSync(join(dir, 'repo/.dist-build/last-plan.json'), 'utf8')) as {
    assignments: Record<string, string>;
  };
  expect(Object.keys(plan.assignments).sort()).toEqual(['app', 'base', 'other']);
  const bad = await run('ap');
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(
    /no unit or invocation "ap" in the config \(there are: base, app, other\)/,
  );
}, 90_000);

test(
  'a worker that was stopped past its lease says so when it runs again, not that the master stopped answering',
  () =>
    explained(async () => {
      const master = startCli([
        'master',
        '--serve',
        '--listen',
        sock(),
        '--certs',
        certs,
        '--name',
        'master',
        '--heartbeat',
        '300ms',
      ]);
      await master.waitFor(/listening on/);
      const worker = startWorker('w1', tree('t1', POOL_CONFIG));
      await worker.waitFor(/registered with/);
      process.kill(worker.pid, 'SIGSTOP');
      try {
        await new Promise((r) => setTimeout(r, 2500));
      } finally {
        process.kill(worker.pid, 'SIGCONT');
      }
      await worker.waitFor(/re-registered with/);
      expect(worker.stderr).toMatch(
        /this worker did not run for \d+ s \(stopped or starved\), longer than its lease \(.*\); registering again/,
      );
    }),
  60_000,
);
