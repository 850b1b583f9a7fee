/**
 * `npm run bench:docker [IMAGES] [SECONDS] [ROUNDS]`: what affinity is worth for docker builds.
 *
 * Two "machines" (a worker process each, with a Docker daemon, work tree and cache of its own,
 * joined to one `dist-build master` over a unix socket) build IMAGES images (default 6). Each
 * Dockerfile has an expensive step that depends only on the image's `deps.txt` (`RUN sleep
 * SECONDS`, default 3: an install or a toolchain build) and a cheap one on its `src.txt`. Per
 * round, with fresh daemons:
 *
 * 1. cold: empty daemons and cache, every image built from scratch;
 * 2. affinity: every `src.txt` changed (so every image is built again, dist-build's cache cannot
 *    help); consistent hashing sends each image back to the worker that built it, whose daemon
 *    has the expensive layer cached;
 * 3. moved: every `src.txt` changed again, and the two workers swap machines (daemon and local
 *    store): each image lands on a machine that never built it, as with a placement that ignores
 *    where caches are (or a fresh runner). This is the baseline.
 * 4. moved, shared store: the same move, on fresh daemons, with the workers' stores layered over
 *    one registry (a docker-registry on loopback): a worker new to an image loads the image of its
 *    previous result from the store and builds with its layers as a cache (`--cache-from`).
 *
 * Whole runs are timed (master start to exit, workers started with it). Prints each round and
 * moved / affinity. Needs Debian's docker.io and busybox-static (as the tests do), as root.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { RunReport } from '../src/report/types.js';
import { dockerAvailable, startDockerd, type DockerDaemon } from '../__tests__/helpers/docker.js';
import { startRegistry, type RegistryProcess } from '../__tests__/helpers/registry.js';

const root = join(dirname(process.argv[1]!), '..');
const cli = join(root, 'dist/cli.js');
const images = Number(process.argv[2] ?? '6');
const seconds = Number(process.argv[3] ?? '3');
const rounds = Number(process.argv[4] ?? '2');

if (!dockerAvailable()) process.exit(1);

function project(at: string, registry?: string): void {
  const invocations = [];
  for (let i = 1; i <= images; i++) {
    const dir = join(at, `img${i}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'deps.txt'), `deps of image ${i}\n`);
    writeFileSync(join(dir, 'src.txt'), `source of image ${i}, version 0\n`);
    writeFileSync(
      join(dir, 'Dockerfile'),
      'FROM busybox:test\nCOPY deps.txt /deps.txt\n' +
        `RUN sleep ${seconds} && cat /deps.txt > /installed\n` +
        'COPY src.txt /src.txt\nRUN cat /installed /src.txt > /app\n',
    );
    invocations.push(
      `  img${i}:\n    estimate: ${seconds}\n    docker:\n      context: img${i}\n      network: host\n      tags: [bench/img${i}:latest]\n`,
    );
  }
  const cache = registry
    ? `cache:\n  stores:\n    - type: local\n    - { type: registry, ref: "${registry}/bench-cache", insecure: true }\n`
    : '';
  writeFileSync(
    join(at, 'dist-build.yml'),
    `version: 1\n${cache}invocations:\n${invocations.join('')}`,
  );
}

function changeSources(trees: string[], version: number): void {
  for (const t of trees)
    for (let i = 1; i <= images; i++)
      writeFileSync(join(t, `img${i}/src.txt`), `source of image ${i}, version ${version}\n`);
}

function start(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd,
    env: { ...process.env, CI: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (output += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (output += t));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, exited, output: () => output };
}

/**
 * One run of the pool. Worker `a` runs on machine `ma` (its daemon and local store), `b` on `mb`:
 * swapped, every image goes to the worker it went to before (placement follows the worker ids),
 * but that is now the machine that did not build it.
 */
async function runPool(
  dir: string,
  trees: { m: string; a: string; b: string },
  ma: Machine,
  mb: Machine,
): Promise<{ ms: number; report: RunReport }> {
  const sock = `unix://${join(dir, 'master.sock')}`;
  const out = join(dir, 'out');
  const t0 = performance.now();
  const master = start(
    ['master', '--listen', sock, '--workers', '2', '--out', out, '--plain', '--wait', '60s'],
    trees.m,
  );
  const worker = (id: string, tree: string, m: Machine) =>
    start(
      ['worker', '--join', sock, '--id', id, '--cache-dir', join(dir, `cache-${m.name}`)],
      tree,
      m.daemon.env,
    );
  const workers = [worker('a', trees.a, ma), worker('b', trees.b, mb)];
  const code = await master.exited;
  const ms = performance.now() - t0;
  for (const w of workers) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
  if (code !== 0) throw new Error(`master exited ${code}:\n${master.output().slice(-3000)}`);
  const report = JSON.parse(readFileSync(join(out, 'dist-build-report.json'), 'utf8')) as RunReport;
  return { ms, report };
}

/** A machine: a daemon and a local store (`cache-<name>`). */
interface Machine {
  name: string;
  daemon: DockerDaemon;
}

const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const where = (r: RunReport): Record<string, string> =>
  Object.fromEntries(r.invocations.map((i) => [i.unit, i.worker ?? '-']));

console.log(
  `${images} images, an expensive step of ${seconds} s each, 2 workers with a daemon each; ${rounds} round(s)`,
);
const rows: string[][] = [];

/** Fresh daemons, a master tree and two worker trees (copies); `registry`: a shared store. */
async function setUp(dir: string, registry?: RegistryProcess) {
  const daemons = [await startDockerd(), await startDockerd()] as [DockerDaemon, DockerDaemon];
  await Promise.all(daemons.map((d) => d.importBusybox()));
  const machines = daemons.map((daemon, i) => ({ name: 'AB'[i]!, daemon })) as [Machine, Machine];
  const m = join(dir, 'm');
  project(m, registry?.host);
  const trees = { m, a: join(dir, 'a'), b: join(dir, 'b') };
  cpSync(m, trees.a, { recursive: true });
  cpSync(m, trees.b, { recursive: true });
  return { daemons, machines, trees, all: [trees.m, trees.a, trees.b] };
}

const built = (r: RunReport) => r.invocations.filter((i) => i.status === 'built').length;

for (let round = 1; round <= rounds; round++) {
  const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'dist-build-bench-docker-')));
  const daemons: DockerDaemon[] = [];
  let registry: RegistryProcess | undefined;
  try {
    const one = await setUp(dirs[0]!);
    daemons.push(...one.daemons);
    const [ma, mb] = one.machines;
    const cold = await runPool(dirs[0]!, one.trees, ma, mb);
    changeSources(one.all, 1);
    const affinity = await runPool(dirs[0]!, one.trees, ma, mb);
    const kept = Object.entries(where(affinity.report)).filter(
      ([u, w]) => where(cold.report)[u] === w,
    ).length;
    changeSources(one.all, 2);
    const moved = await runPool(dirs[0]!, one.trees, mb, ma);

    registry = await startRegistry();
    const two = await setUp(dirs[1]!, registry);
    daemons.push(...two.daemons);
    const [mc, md] = two.machines;
    await runPool(dirs[1]!, two.trees, mc, md);
    changeSources(two.all, 1);
    const shared = await runPool(dirs[1]!, two.trees, md, mc);
    rows.push([
      String(round),
      fmt(cold.ms),
      `${fmt(affinity.ms)} (${kept}/${images} on the same worker)`,
      fmt(moved.ms),
      fmt(shared.ms),
      `${(moved.ms / affinity.ms).toFixed(1)}x`,
      `${(moved.ms / shared.ms).toFixed(1)}x`,
      `${built(cold.report)}/${built(affinity.report)}/${built(moved.report)}/${built(shared.report)}`,
    ]);
    console.log(`round ${round}: ${rows.at(-1)!.join(' | ')}`);
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
    await registry?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

const header = [
  'round',
  'cold',
  'affinity (sources changed)',
  'moved (baseline)',
  'moved, shared store',
  'moved / affinity',
  'moved / moved with store',
  'built',
];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const show = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(`\n${show(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
for (const r of rows) console.log(show(r));
