import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endJobsLeftBy } from '../../src/cluster/worker.js';
import { processAlive, processStartTime } from '../../src/store/fsutil.js';

// The `running/` files of a worker killed with SIGKILL: `<pgid> <leader's start time>`.

let dir: string;
let group: ChildProcess | undefined;
/** A pid no process has now (a child that has exited). */
let deadWorker: number;

beforeAll(() => {
  deadWorker = spawnSync('true').pid!;
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-orphans-'));
  mkdirSync(join(dir, 'running'));
  // A command in a process group of its own, as the command executor starts them.
  group = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
});
afterEach(() => {
  if (group?.pid && processAlive(group.pid)) process.kill(-group.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const exited = (p: ChildProcess) =>
  new Promise<NodeJS.Signals | null>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) resolve(p.signalCode);
    else p.once('exit', (_code, signal) => resolve(signal));
  });

const record = (content: string) =>
  writeFileSync(join(dir, 'running', `${deadWorker}.0.0`), content.padEnd(40));

it('reads a process start time from /proc', () => {
  const started = processStartTime(group!.pid!);
  expect(started).toMatch(/^\d+$/);
  expect(processStartTime(process.pid)).not.toBe(started);
  expect(processStartTime(deadWorker)).toBeUndefined();
});

it("ends the group a dead worker's file names when its leader is the one recorded", async () => {
  const pid = group!.pid!;
  record(`${pid} ${processStartTime(pid)}`);
  expect(endJobsLeftBy(dir, deadWorker)).toEqual([pid]);
  expect(await exited(group!)).toBe('SIGKILL');
});

it('leaves alone a process that now has the pid of a recorded group leader', async () => {
  const pid = group!.pid!;
  // Recorded for an earlier process with this pid (another start time): that group is over.
  record(`${pid} 1`);
  expect(endJobsLeftBy(dir, deadWorker)).toEqual([]);
  expect(processAlive(pid)).toBe(true);
  expect(group!.exitCode).toBeNull();
});

it('ends a group recorded without a start time (files of earlier releases)', async () => {
  const pid = group!.pid!;
  record(String(pid));
  expect(endJobsLeftBy(dir, deadWorker)).toEqual([pid]);
  expect(await exited(group!)).toBe('SIGKILL');
});
