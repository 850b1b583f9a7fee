/**
 * A local worker stalled past its lease (SIGSTOP) in the middle of a job, as `dist-build run`
 * (whole, or one share of a plan) must handle it: the run kills the worker with its command
 * before the job runs again in the shared tree, so the artifact is one attempt's alone.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Proc } from './processes.js';

/**
 * The config's invocations: `b` writes 20 lines naming its worker, one every 0.2 s (and its
 * shell's pid and worker's pid into `../b-workers`); `c` keeps another worker busy.
 */
export const STALL_CONFIG = `version: 1
invocations:
  b:
    run: >-
      echo $$ $PPID >> ../b-workers; rm -rf out; mkdir -p out;
      for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20;
      do echo "$DIST_BUILD_WORKER $i" >> out/b.txt; sleep 0.2; done
    outputs: [out/b.txt]
    export: true
  c:
    run: sleep 1
`;

async function until(what: string, ok: () => boolean, run: Proc): Promise<void> {
  const started = Date.now();
  while (!ok()) {
    if (Date.now() - started > 30_000) throw new Error(`${what} never came:\n${run.output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Stops the worker running `b` of `run` (a run of STALL_CONFIG in a tree under `dir`) once it has
 * recorded b's process group in `running` (its cache dir's `running`), then checks the run:
 * exit 0 after a lease expiry, that worker and its command gone, and `exported` (b.txt in the
 * run's --out) 20 lines from one worker.
 */
export async function stallTheWorkerOfB(
  run: Proc,
  dir: string,
  running: string,
  exported: string,
): Promise<void> {
  const workers = join(dir, 'b-workers');
  await until('b', () => existsSync(workers) && readFileSync(workers, 'utf8').includes('\n'), run);
  const [shell, stalled] = readFileSync(workers, 'utf8').trim().split(' ').map(Number);
  // Once the worker has recorded the command's process group (as it does when it spawns it).
  await until(
    "b's process group record",
    () =>
      existsSync(running) &&
      readdirSync(running).some(
        (n) =>
          n.startsWith(`${stalled}.`) &&
          readFileSync(join(running, n), 'utf8').trim().split(' ')[0] === String(shell),
      ),
    run,
  );
  process.kill(stalled!, 'SIGSTOP');
  const exit = await run.exited;
  expect({ code: exit.code, out: run.output.slice(-2000) }).toMatchObject({ code: 0 });
  expect(run.stderr).toMatch(/lease expired/);
  // The stalled worker and its command were killed, not left to write into the retry's outputs.
  expect(
    existsSync(`/proc/${stalled}`) &&
      !readFileSync(`/proc/${stalled}/stat`, 'utf8').includes(') Z'),
  ).toBe(false);
  const lines = readFileSync(exported, 'utf8').trim().split('\n');
  expect(lines).toHaveLength(20);
  expect(new Set(lines.map((l) => l.split(' ')[0])).size).toBe(1);
}
