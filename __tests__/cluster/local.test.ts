import { spawnSync } from 'node:child_process';
import { spawn } from 'node:child_process';
import {
  LocalWorkers,
  WORKER_NODE_FLAGS,
  childGroups,
  selfCommand,
  workerNodeFlags,
} from '../../src/cluster/local.js';

test('worker processes get the V8 options the user did not give', () => {
  expect(WORKER_NODE_FLAGS).toContain('--max-semi-space-size=4');
  expect(workerNodeFlags([], '')).toEqual(WORKER_NODE_FLAGS);
  expect(workerNodeFlags(['--enable-source-maps'], '--no-warnings')).toEqual(WORKER_NODE_FLAGS);
  // Given on the command line, in NODE_OPTIONS, or spelled with underscores: the user's value wins.
  expect(workerNodeFlags(['--max-semi-space-size=16'], '')).toEqual([]);
  expect(workerNodeFlags([], '--inspect  --max-semi-space-size=8')).toEqual([]);
  expect(workerNodeFlags([], '--max_semi_space_size=8')).toEqual([]);
});

test('selfCommand runs this node with its options, the worker options and this script', () => {
  const cmd = selfCommand();
  expect(cmd[0]).toBe(process.execPath);
  expect(cmd.at(-1)).toBe(process.argv[1]);
  for (const f of workerNodeFlags()) expect(cmd).toContain(f);
});

test('node accepts the worker options and they cap the young generation', () => {
  const probe =
    "const v8 = require('node:v8'); const s = v8.getHeapStatistics(); " +
    'const keep = []; for (let i = 0; i < 2e6; i++) { keep.push({ i }); if (keep.length > 1e5) keep.length = 0; } ' +
    "process.stdout.write(String(v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space').space_size))";
  const run = (flags: readonly string[]) => {
    const r = spawnSync(process.execPath, [...flags, '-e', probe], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    expect(r.stderr).toBe('');
    return Number(r.stdout);
  };
  const capped = run(WORKER_NODE_FLAGS);
  expect(capped).toBeGreaterThan(0);
  expect(capped).toBeLessThanOrEqual(2 * 4 * 1024 ** 2);
});

test("childGroups finds the process groups a process's children lead (a worker's commands)", async () => {
  const child = spawn('/bin/sh', ['-c', 'sleep 5'], { detached: true, stdio: 'ignore' });
  const other = spawn('/bin/sh', ['-c', 'sleep 5'], { stdio: 'ignore' }); // in our group
  try {
    await new Promise((r) => setTimeout(r, 200));
    const groups = childGroups(process.pid);
    expect(groups).toContain(child.pid);
    expect(groups).not.toContain(other.pid);
  } finally {
    process.kill(-child.pid!, 'SIGKILL');
    other.kill('SIGKILL');
  }
});

test('stop() says which workers it had to kill after the grace (still flushing their stores)', async () => {
  // Worker 1 takes longer than the grace to leave (an Actions cache upload), worker 2 leaves.
  const script =
    "process.on('SIGTERM', () => { if (!process.argv.includes('slow')) process.exit(0); });" +
    "setInterval(() => {}, 1000); process.stderr.write('ready\\n');";
  let ready = 0;
  let allReady!: () => void;
  const started = new Promise<void>((r) => (allReady = r));
  const workers = new LocalWorkers({
    command: [process.execPath, '-e', script],
    count: 2,
    args: (i) => (i === 1 ? ['slow'] : []),
    onLine: (_, line) => {
      if (line === 'ready' && ++ready === 2) allReady();
    },
  });
  workers.start();
  await started;
  expect(await workers.stop(300)).toEqual([1]);
  expect(await workers.stop(300)).toEqual([]);
});
