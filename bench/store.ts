// Store throughput benchmark: `npm run bench:store` (= node scripts/run-ts.mjs bench/store.ts).
//
// Generates a tree in a temp dir (removed at the end): ~20,000 small files per GiB (1-64 KiB,
// log-uniform, ~30% of the bytes) under out/small/ plus 4 large files under out/large/, random
// (incompressible) contents; the two directories are the declared outputs. Then, in one run:
//   1. local: saveOutputs into a fresh LocalStore + restoreOutputs into a fresh dir, vs
//      `tar -cf` + `tar -xf` of the same tree on the same disk;
//   2. registry: saveOutputs into a RegistryStore on a loopback `docker-registry` (push) and
//      restoreOutputs from it (pull), vs curl: a monolithic upload of ONE blob of the same size
//      (the tar of part 1: POST .../blobs/uploads/, then PUT <location>&digest=... -T file) and
//      a GET of it to /dev/null;
//   3. gha: a GhaStore against the fake of the Actions cache service (protocol v2, in a child
//      process of its own, bench/lib/gha-fake-child.ts, so it does not count in our RSS),
//      save (saveOutputs + putResult + flush) and restore (getResult in a fresh shard +
//      restoreOutputs), vs @actions/cache saveCache/restoreCache of the same tree as one archive
//      (in a child process, bench/lib/gha-baseline-child.ts, timed there: its memory is not ours).
//      The fake keeps archives in memory, so this part uses a smaller tree (--gha-mib, 64) and a
//      fresh fake for every save/restore pair;
//   4. peak RSS of this process (sampled every 20 ms per part, and the kernel's maxRSS; the bench
//      runs with the V8 options of dist-build's worker processes, WORKER_NODE_FLAGS), and the
//      blob bytes written when the same outputs are saved a second time (local: blob count and
//      bytes before/after; registry: RegistryStore.stats().uploadedBytes). The second save reads
//      the tree restored in part 1/2, so it also checks that the restore was exact (same digests).
// Page caches cannot be dropped here: every measurement runs twice (ours and the baseline
// interleaved, which goes first alternating; before each step `sync` and a pause of --settle-ms)
// and the best run counts; the tree is in the page cache for both sides alike.
// Nothing is deleted until every step has been timed: what a step is done with is renamed into
// a trash directory, removed at the end. On ext4 without a journal (this VM's root file system)
// the inode allocator skips inodes freed in the last 60-300 s, checking each one
// (`recently_deleted()` in fs/ext4/ialloc.c), so creating files right after thousands were
// deleted costs 10-30x more system time: deleting the previous run's trees between steps made
// whichever extraction came next take 1 s or 10 s. A probe (200 empty files) before each part
// prints what creating a file costs at that moment; another process deleting many files on the
// same file system shows up there. Without room for the trash (about (8 x runs + 3) x the tree),
// trees are deleted as the bench goes, and the bench says so.
// Options: --size-mib N (default 1024; 256 when the temp dir's filesystem has < 8 GiB free),
// --gha-mib N (64), --runs N (2), --settle-ms N (1000), --keep (keep the temp dir), --only local|registry|gha (one
// part; `--only registry` still makes part 1's tar, untimed, as the curl blob).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { WORKER_NODE_FLAGS, workerNodeFlags } from '../src/cluster/local.js';
import { createGhaStore } from '../src/store/gha.js';
import { LayeredStore } from '../src/store/layered.js';
import { LocalStore } from '../src/store/local.js';
import { blobOpenerFor, restoreOutputs, saveOutputs } from '../src/store/pack.js';
import { RegistryStore } from '../src/store/registry.js';
import { RESULT_FORMAT } from '../src/store/types.js';
import type { OutputEntry, ResultManifest } from '../src/store/types.js';
import { logUniform, mulberry32 } from './lib/prng.js';
import { bundleScript, Child } from './lib/procs.js';
import { REGISTRY_BIN, startRegistry } from '../__tests__/helpers/registry.js';
import type { RegistryProcess } from '../__tests__/helpers/registry.js';

const args = process.argv.slice(2);
const opt = (name: string): number | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : undefined;
};
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const KEEP = args.includes('--keep');
const SETTLE_MS = opt('settle-ms') ?? 1000;
const RUNS = opt('runs') ?? 2;
const ONLY = (() => {
  const i = args.indexOf('--only');
  if (i < 0) return undefined;
  const part = args[i + 1];
  if (part !== 'local' && part !== 'registry' && part !== 'gha') {
    throw new Error(`--only takes local, registry or gha (got ${String(part)})`);
  }
  return part;
})();
const runs = (part: 'local' | 'registry' | 'gha'): boolean => ONLY === undefined || ONLY === part;
const OUTPUTS = ['out/small', 'out/large'];

// The stores run in dist-build's worker processes, which start with WORKER_NODE_FLAGS; so does
// this bench: without them it runs itself again with them (the RSS figure is a worker's).
const missingFlags = workerNodeFlags();
if (missingFlags.length > 0) {
  const self = fileURLToPath(import.meta.url);
  const again = spawnSync(
    process.execPath,
    [...process.execArgv, ...missingFlags, self, ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  process.exit(again.status ?? 1);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dist-build-bench-store-'));
const freeBytes = (() => {
  const s = fs.statfsSync(tmp);
  return s.bavail * s.bsize;
})();
const SIZE_MIB = opt('size-mib') ?? (freeBytes < 8 * GiB ? 256 : 1024);
const GHA_MIB = Math.min(opt('gha-mib') ?? 64, SIZE_MIB);

/** Room for every step's trees until the end (see the header): then nothing is deleted before. */
const DEFER_DELETES = freeBytes > ((8 * (opt('runs') ?? 2) + 3) * SIZE_MIB + 4096) * MiB;
let trashed = 0;

const cleanup = (): void => {
  if (!KEEP) fs.rmSync(tmp, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

// ---------------------------------------------------------------------------------------------
// Helpers

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;
const rate = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const fmtRate = (r: number): string => `${r.toFixed(0).padStart(5)} MB/s`;
const fmtMs = (t: number): string => `${t.toFixed(0).padStart(6)} ms`;
const best = (xs: number[]): number => Math.min(...xs);

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

function run(cmd: string, argv: string[]): string {
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Run `i` of a measurement: the baseline first on even runs, ours first on odd ones. */
async function inTurn(i: number, baseline: () => Promise<void>, ours: () => Promise<void>) {
  if (i % 2 === 0) {
    await baseline();
    await ours();
  } else {
    await ours();
    await baseline();
  }
}

/** `sync` (untimed) so one measurement's dirty pages are not written back during the next. */
function sync(): void {
  spawnSync('sync', [], { stdio: 'ignore' });
}

/** `sync`, then a pause (untimed): lets the file system finish what earlier steps left behind. */
async function settle(): Promise<void> {
  sync();
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  sync();
}

/** A result manifest for the bench's outputs, keyed by the sha256 of `tag`. */
function benchManifest(tag: string, outputs: OutputEntry[]): ResultManifest {
  return {
    format: RESULT_FORMAT,
    cacheKey: `sha256:${createHash('sha256').update(tag).digest('hex')}`,
    unit: 'bench',
    invocation: 'bench',
    exitCode: 0,
    durationMs: 0,
    worker: tag,
    createdAt: new Date().toISOString(),
    outputs,
  };
}

/** Deletes `p` now. */
function rm(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

/** Done with `p`: into the trash (deleted at the end) when there is room, else deleted now. */
function discard(p: string): void {
  if (!DEFER_DELETES) return rm(p);
  if (!fs.existsSync(p)) return;
  const trash = path.join(tmp, 'trash');
  fs.mkdirSync(trash, { recursive: true });
  fs.renameSync(p, path.join(trash, String(trashed++)));
}

/** Microseconds per empty file created in a fresh directory now (kept: see `discard`). */
function creationProbe(): number {
  const dir = path.join(tmp, `probe-${trashed}`);
  fs.mkdirSync(dir);
  const n = 200;
  const start = performance.now();
  for (let i = 0; i < n; i++) fs.closeSync(fs.openSync(path.join(dir, `f${i}`), 'wx'));
  const us = ((performance.now() - start) * 1000) / n;
  discard(dir);
  return us;
}

function probeLine(): void {
  const us = creationProbe();
  console.log(
    `  creating a file here costs ${us.toFixed(0)} us now` +
      (us > 100 ? ' (slow: many files were deleted on this file system in the last minutes)' : ''),
  );
}

/** RSS sampling, peak per phase (the event loop is blocked during sync child processes, which
 * do not count towards this process's RSS anyway). */
const peaks = new Map<string, number>();
let phase = 'start';
const sample = (): void => {
  const rss = process.memoryUsage.rss();
  if (rss > (peaks.get(phase) ?? 0)) peaks.set(phase, rss);
};
const sampler = setInterval(sample, 20);
sampler.unref();
function enter(name: string): void {
  sample();
  phase = name;
  sample();
}
/** The kernel's peak RSS of this process so far (bytes). */
const maxRss = (): number => process.resourceUsage().maxRSS * 1024;

// ---------------------------------------------------------------------------------------------
// Tree

interface Tree {
  root: string;
  files: number;
  bytes: number;
}

/** out/small/dNNN/fNNNNN.bin (1-64 KiB) and out/large/big-N.bin, random contents. */
function generateTree(root: string, sizeMiB: number, seed: number): Tree {
  const total = sizeMiB * MiB;
  const rng = mulberry32(seed);
  const smallCount = Math.max(100, Math.round((20_000 * sizeMiB) / 1024));
  const sizes: number[] = [];
  let smallBytes = 0;
  for (let i = 0; i < smallCount; i++) {
    const s = Math.round(logUniform(rng, 1024, 64 * 1024));
    sizes.push(s);
    smallBytes += s;
  }
  const buf = Buffer.allocUnsafe(4 * MiB);
  let files = 0;
  let bytes = 0;
  for (let i = 0; i < smallCount; i++) {
    const dir = path.join(root, 'out/small', `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) fs.mkdirSync(dir, { recursive: true });
    const body = buf.subarray(0, sizes[i]);
    randomFillSync(body);
    fs.writeFileSync(path.join(dir, `f${String(i).padStart(5, '0')}.bin`), body);
    files++;
    bytes += body.length;
  }
  fs.mkdirSync(path.join(root, 'out/large'), { recursive: true });
  const largeEach = Math.max(0, Math.floor((total - smallBytes) / 4));
  for (let i = 0; i < 4; i++) {
    const fd = fs.openSync(path.join(root, 'out/large', `big-${i}.bin`), 'w');
    for (let left = largeEach; left > 0;) {
      const chunk = buf.subarray(0, Math.min(buf.length, left));
      randomFillSync(chunk);
      fs.writeSync(fd, chunk);
      left -= chunk.length;
    }
    fs.closeSync(fd);
    files++;
    bytes += largeEach;
  }
  return { root, files, bytes };
}

// ---------------------------------------------------------------------------------------------
// Summary

interface Row {
  what: string;
  figure: string;
  target: string;
  met: boolean | null;
}
const rows: Row[] = [];
const ratioRow = (what: string, ratio: number, min: number | null, detail: string): void => {
  rows.push({
    what,
    figure: `${ratio.toFixed(2)}x (${detail})`,
    target: min === null ? '(report)' : `>= ${min}x`,
    met: min === null ? null : ratio >= min,
  });
};

/** A summary row: our throughput (`ours` = [bytes, ms]) over the baseline's, with both rates. */
function throughputRow(
  what: string,
  ours: [number, number],
  base: [number, number],
  min: number | null,
): void {
  const [a, b] = [rate(...ours), rate(...base)];
  ratioRow(what, a / b, min, `${fmtRate(a).trim()} vs ${fmtRate(b).trim()}`);
}

/** A line of a part's rates: the baseline's, then ours. */
function rateLine(baseName: string, baseRate: number, ourName: string, ourRate: number): void {
  console.log(
    `  ${baseName.padEnd(18)}${fmtRate(baseRate)}   ${ourName.padEnd(15)}${fmtRate(ourRate)}`,
  );
}

function printSummary(): void {
  const w0 = Math.max(...rows.map((r) => r.what.length));
  const w1 = Math.max(...rows.map((r) => r.figure.length));
  const w2 = Math.max(...rows.map((r) => r.target.length));
  console.log("\nsummary (ratios: our throughput / the baseline's, best runs; higher is better)");
  for (const r of rows) {
    const met = r.met === null ? '-' : r.met ? 'met' : 'NOT met';
    console.log(`  ${r.what.padEnd(w0)}  ${r.figure.padEnd(w1)}  ${r.target.padEnd(w2)}  ${met}`);
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Local store vs tar

interface LocalPart {
  /** The tar of the tree (part 2's curl blob). */
  tarFile: string;
  /** The store and the restored tree of the last run (part 4). */
  store: LocalStore;
  restored: string;
  entries: OutputEntry[];
}

async function localPart(tree: Tree): Promise<LocalPart> {
  enter('local');
  console.log(`\n1. local store vs tar (best of ${RUNS}, page cache warm for both)`);
  probeLine();
  const tarFile = path.join(tmp, 'tree.tar');
  const t = {
    tarC: [] as number[],
    tarX: [] as number[],
    save: [] as number[],
    rest: [] as number[],
  };
  let last: { store: LocalStore; restored: string; entries: OutputEntry[] } | undefined;
  let lastX: string | undefined;
  for (let i = 0; i < RUNS; i++) {
    // The previous run's trees go to the trash (see the header), so both sides start from the
    // same state; which side goes first alternates.
    if (lastX) discard(lastX);
    if (last) {
      discard(last.store.dir);
      discard(last.restored);
    }
    discard(tarFile);
    const x = path.join(tmp, `tar-x-${i}`);
    const restored = path.join(tmp, `local-restored-${i}`);
    fs.mkdirSync(x);
    fs.mkdirSync(restored);
    const store = await LocalStore.open(path.join(tmp, `local-store-${i}`));
    let entries: OutputEntry[] = [];
    const tarSide = async () => {
      await settle();
      t.tarC.push(await time(() => run('tar', ['-cf', tarFile, '-C', tree.root, 'out'])));
      await settle();
      t.tarX.push(await time(() => run('tar', ['-xf', tarFile, '-C', x])));
    };
    const ourSide = async () => {
      await settle();
      t.save.push(await time(async () => (entries = await saveOutputs(store, tree.root, OUTPUTS))));
      await settle();
      t.rest.push(await time(() => restoreOutputs(blobOpenerFor(store), restored, entries)));
    };
    await inTurn(i, tarSide, ourSide);
    last = { store, restored, entries };
    lastX = x;
    console.log(
      `  run ${i + 1}: tar -cf ${fmtMs(t.tarC[i]!)}, tar -xf ${fmtMs(t.tarX[i]!)}, ` +
        `save ${fmtMs(t.save[i]!)}, restore ${fmtMs(t.rest[i]!)}`,
    );
  }
  if (lastX) discard(lastX);
  const B = tree.bytes;
  const [tarC, tarX, save, rest] = [best(t.tarC), best(t.tarX), best(t.save), best(t.rest)];
  rateLine('tar -cf', rate(B, tarC), 'saveOutputs', rate(B, save));
  rateLine('tar -xf', rate(B, tarX), 'restoreOutputs', rate(B, rest));
  rateLine('tar -cf + -xf', rate(B, tarC + tarX), 'save + restore', rate(B, save + rest));
  throughputRow('local save vs tar -cf', [B, save], [B, tarC], 0.7);
  throughputRow('local restore vs tar -xf', [B, rest], [B, tarX], 0.7);
  throughputRow('local save+restore vs tar', [B, save + rest], [B, tarC + tarX], 0.7);
  return { tarFile, ...last! };
}

// ---------------------------------------------------------------------------------------------
// 2. Registry store vs curl

interface RegistryPart {
  store: RegistryStore;
  restored: string;
  entries: OutputEntry[];
}

/** Monolithic upload of `file` with curl (POST, then PUT ?digest= -T file); the timed part. */
function curlUpload(reg: RegistryProcess, repo: string, file: string, digest: string): void {
  const head = run('curl', [
    '-sS',
    '-f',
    '-X',
    'POST',
    '-D',
    '-',
    '-o',
    '/dev/null',
    `${reg.url}/v2/${repo}/blobs/uploads/`,
  ]);
  const loc = /^location:\s*(\S+)/im.exec(head)?.[1];
  if (!loc) throw new Error(`no upload location in:\n${head}`);
  const url = new URL(loc, reg.url);
  url.searchParams.set('digest', digest);
  const code = run('curl', [
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-X',
    'PUT',
    '-H',
    'Content-Type: application/octet-stream',
    '-T',
    file,
    url.href,
  ]);
  if (code !== '201') throw new Error(`curl PUT answered ${code}`);
}

/** `curl GET | tar -x` into `dir`: what standard tools take for the whole of a pull. */
function curlExtract(reg: RegistryProcess, repo: string, digest: string, dir: string): void {
  const url = `${reg.url}/v2/${repo}/blobs/${digest}`;
  run('sh', ['-c', 'curl -sS -f -L "$1" | tar -xf - -C "$2"', 'sh', url, dir]);
}

/** A curl GET of the blob to `dest` (default /dev/null). */
function curlDownload(
  reg: RegistryProcess,
  repo: string,
  digest: string,
  size: number,
  dest = '/dev/null',
): void {
  const out = run('curl', [
    '-sS',
    '-f',
    '-L',
    '-o',
    dest,
    '-w',
    '%{size_download}',
    `${reg.url}/v2/${repo}/blobs/${digest}`,
  ]);
  if (Number(out) !== size) throw new Error(`curl GET got ${out} bytes, expected ${size}`);
}

async function registryPart(tree: Tree, tarFile: string): Promise<RegistryPart | null> {
  enter('registry');
  console.log(
    `\n2. registry store vs curl (loopback docker-registry, started by __tests__/helpers/registry.ts; best of ${RUNS})`,
  );
  probeLine();
  if (!fs.existsSync(REGISTRY_BIN)) {
    console.log('  skipped: docker-registry not installed');
    rows.push({
      what: 'registry',
      figure: 'skipped: docker-registry not installed',
      target: '',
      met: null,
    });
    return null;
  }
  const tarSize = fs.statSync(tarFile).size;
  const tarDigest = `sha256:${run('sha256sum', [tarFile]).split(' ')[0]}`;
  const reg = await startRegistry({ parent: tmp });
  console.log(
    `  docker-registry pid ${reg.pid} on ${reg.host}; curl blob: the tar of part 1 (${mb(tarSize)})`,
  );
  try {
    const t = {
      push: [] as number[],
      fetch: [] as number[],
      pull: [] as number[],
      up: [] as number[],
      down: [] as number[],
      downFile: [] as number[],
      downX: [] as number[],
    };
    let last: RegistryPart | undefined;
    for (let i = 0; i < RUNS; i++) {
      // A fresh repository per run: a blob already linked to it would not be uploaded again.
      const curlRepo = `bench/curl-${i}`;
      if (last) discard(last.restored);
      const curlSide = async () => {
        await settle();
        t.up.push(await time(() => curlUpload(reg, curlRepo, tarFile, tarDigest)));
        await settle();
        t.down.push(await time(() => curlDownload(reg, curlRepo, tarDigest, tarSize)));
        const file = path.join(tmp, `curl-get-${i}.tar`);
        await settle();
        t.downFile.push(await time(() => curlDownload(reg, curlRepo, tarDigest, tarSize, file)));
        discard(file);
        // What standard tools take for the whole of a pull: download and extract.
        const x = path.join(tmp, `curl-x-${i}`);
        fs.mkdirSync(x);
        await settle();
        t.downX.push(await time(() => curlExtract(reg, curlRepo, tarDigest, x)));
        discard(x);
      };
      const store = new RegistryStore({ ref: `${reg.host}/bench/ours-${i}` });
      const restored = path.join(tmp, `registry-restored-${i}`);
      let entries: OutputEntry[] = [];
      const ourSide = async () => {
        await settle();
        t.push.push(
          await time(async () => (entries = await saveOutputs(store, tree.root, OUTPUTS))),
        );
        // A hit in a layered store (local first, then this registry): the result's blobs are
        // fetched into the local layer (GET, verified on the way in, written to its directory).
        const manifest = benchManifest(`registry-${i}`, entries);
        await store.putResult(manifest);
        const layerDir = path.join(tmp, `registry-local-layer-${i}`);
        const layered = new LayeredStore([await LocalStore.open(layerDir), store]);
        await settle();
        t.fetch.push(await time(() => layered.getResult(manifest.cacheKey)));
        const fetched = await layered.layers[0]!.hasBlobs(entries.map((e) => e.digest));
        if (fetched.size !== new Set(entries.map((e) => e.digest)).size) {
          throw new Error('the local layer did not get the blobs of the registry hit');
        }
        discard(layerDir);
        fs.mkdirSync(restored);
        await settle();
        t.pull.push(await time(() => restoreOutputs(blobOpenerFor(store), restored, entries)));
      };
      await inTurn(i, curlSide, ourSide);
      last = { store, restored, entries };
      console.log(
        `  run ${i + 1}: curl up ${fmtMs(t.up[i]!)}, curl down ${fmtMs(t.down[i]!)}, ` +
          `to a file ${fmtMs(t.downFile[i]!)}, curl | tar -x ${fmtMs(t.downX[i]!)}, ` +
          `push ${fmtMs(t.push[i]!)}, fetch ${fmtMs(t.fetch[i]!)}, pull ${fmtMs(t.pull[i]!)} ` +
          `(${mb(store.stats().uploadedBytes)} uploaded, ${store.stats().requests} requests)`,
      );
    }
    const B = tree.bytes;
    const [push, fetch, pull] = [best(t.push), best(t.fetch), best(t.pull)];
    const [up, down, downFile, downX] = [best(t.up), best(t.down), best(t.downFile), best(t.downX)];
    rateLine('curl upload', rate(tarSize, up), 'push (save)', rate(B, push));
    rateLine('curl GET', rate(tarSize, down), 'pull (restore)', rate(B, pull));
    rateLine('curl GET -o file', rate(tarSize, downFile), 'fetch (layer)', rate(B, fetch));
    // Throughput ratios (the curl blob is the tar: a few % bigger than the file bytes).
    const row = (what: string, oursMs: number, baseMs: number, min: number | null) =>
      throughputRow(what, [B, oursMs], [tarSize, baseMs], min);
    row('registry push vs curl upload', push, up, 0.6);
    row('registry pull vs curl GET', pull, down, 0.6);
    row('registry pull vs curl GET | tar -x', pull, downX, null);
    row('registry push+pull vs curl', push + pull, up + down, 0.6);
    row('registry fetch into local layer vs curl GET -o', fetch, downFile, 0.6);
    row('registry push+fetch vs curl PUT+GET -o', push + fetch, up + downFile, 0.6);

    // 4b. The same outputs again (from the restored tree): nothing to upload.
    enter('registry-resave');
    const { store, restored, entries } = last!;
    const before = store.stats().uploadedBytes;
    const again = await saveOutputs(store, restored, OUTPUTS);
    const uploaded = store.stats().uploadedBytes - before;
    if (again.some((e, k) => e.digest !== entries[k]!.digest)) {
      throw new Error('the tree pulled from the registry packs to other digests than the original');
    }
    rows.push({
      what: 'registry 2nd save: blob bytes uploaded',
      figure: `${uploaded} B`,
      target: '0 B',
      met: uploaded === 0,
    });
    return last!;
  } finally {
    await reg.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 3. GhaStore vs @actions/cache

/** The fake Actions cache service in a child process (bench/lib/gha-fake-child.ts), so the RSS
 * measured here is ours alone. Stopped by PID. */
async function startFake(): Promise<{ env: Record<string, string>; close: () => Promise<void> }> {
  fakeScript ??= await bundleScript('bench/lib/gha-fake-child.ts');
  const child = new Child('actions-cache fake', process.execPath, [fakeScript]);
  try {
    const [, json] = await child.waitForLine(/^ENV (.*)$/, 30_000);
    return { env: JSON.parse(json!) as Record<string, string>, close: () => child.stop() };
  } catch (err) {
    await child.stop();
    throw err;
  }
}
let fakeScript: string | undefined;
let baselineScript: string | undefined;

async function ghaPart(): Promise<void> {
  enter('gha');
  const root = path.join(tmp, 'gha-tree');
  const tree = generateTree(root, GHA_MIB, 7);
  console.log(
    `\n3. gha store vs @actions/cache (fake service in a child process, protocol v2; ${tree.files} files, ` +
      `${mb(tree.bytes)}: the fake keeps every archive in memory; best of ${RUNS})`,
  );
  const t = {
    save: [] as number[],
    rest: [] as number[],
    bSave: [] as number[],
    bRest: [] as number[],
  };
  probeLine();
  const warnings: string[] = [];
  for (let i = 0; i < RUNS; i++) {
    // ours: a fresh fake, slot and shard per run (a run must not find the previous one's entry)
    {
      const server = await startFake();
      try {
        const env = { ...server.env };
        const ctx = (slot: string) => ({
          root: tmp,
          slot,
          onWarning: (m: string) => warnings.push(m),
          env,
        });
        const a = createGhaStore({ dir: path.join(tmp, `gha-shard-a-${i}`) }, ctx(`bench-${i}`));
        const cacheKey = benchManifest(`gha-${i}`, []).cacheKey;
        sync();
        t.save.push(
          await time(async () => {
            const manifest = benchManifest(`gha-${i}`, await saveOutputs(a, root, OUTPUTS));
            await a.putResult(manifest);
            await a.flush();
          }),
        );
        if (a.stats().savedEntries !== 1)
          throw new Error(`gha save failed: ${warnings.join('; ')}`);
        const b = createGhaStore({ dir: path.join(tmp, `gha-shard-b-${i}`) }, ctx(`bench-${i}`));
        const restored = path.join(tmp, `gha-restored-${i}`);
        fs.mkdirSync(restored);
        sync();
        t.rest.push(
          await time(async () => {
            const m = await b.getResult(cacheKey);
            if (!m) throw new Error(`gha restore missed: ${warnings.join('; ')}`);
            await restoreOutputs(blobOpenerFor(b), restored, m.outputs);
          }),
        );
        for (const d of [`gha-shard-a-${i}`, `gha-shard-b-${i}`, `gha-restored-${i}`])
          discard(path.join(tmp, d));
      } finally {
        await server.close();
      }
    }
    // baseline: one archive of the same tree, straight through @actions/cache, in a process of
    // its own (bench/lib/gha-baseline-child.ts), so its memory is not counted as ours
    {
      const server = await startFake();
      try {
        const runnerTemp = path.join(tmp, `gha-runner-temp-${i}`);
        const ws = path.join(tmp, `gha-baseline-restored-${i}`);
        fs.mkdirSync(runnerTemp);
        fs.mkdirSync(ws);
        baselineScript ??= await bundleScript('bench/lib/gha-baseline-child.ts');
        sync();
        const child = new Child('@actions/cache baseline', process.execPath, [
          baselineScript,
          JSON.stringify({
            env: server.env,
            root,
            workspace: ws,
            runnerTemp,
            key: `bench-baseline-${i}`,
          }),
        ]);
        try {
          const [, json] = await child.waitForLine(/^RESULT (.*)$/, 300_000);
          const r = JSON.parse(json!) as { saveMs: number; restoreMs: number };
          t.bSave.push(r.saveMs);
          t.bRest.push(r.restoreMs);
        } finally {
          await child.stop();
        }
        if (!fs.existsSync(path.join(ws, 'out/large/big-0.bin'))) {
          throw new Error('baseline restoreCache did not restore into the fresh workspace');
        }
        discard(ws);
        discard(runnerTemp);
      } finally {
        await server.close();
      }
    }
    console.log(
      `  run ${i + 1}: ours save ${fmtMs(t.save[i]!)}, restore ${fmtMs(t.rest[i]!)}; ` +
        `@actions/cache save ${fmtMs(t.bSave[i]!)}, restore ${fmtMs(t.bRest[i]!)}`,
    );
  }
  if (warnings.length > 0) console.log(`  warnings: ${warnings.join('; ')}`);
  const [save, rest, bSave, bRest] = [best(t.save), best(t.rest), best(t.bSave), best(t.bRest)];
  const d = (a: number, b: number) => `${a.toFixed(0)} ms vs ${b.toFixed(0)} ms`;
  ratioRow(`gha save vs saveCache (${mb(tree.bytes)})`, bSave / save, null, d(save, bSave));
  ratioRow(`gha restore vs restoreCache (${mb(tree.bytes)})`, bRest / rest, null, d(rest, bRest));
  ratioRow(
    `gha save+restore vs @actions/cache`,
    (bSave + bRest) / (save + rest),
    null,
    d(save + rest, bSave + bRest),
  );
  discard(root);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const [l1, l5, l15] = os.loadavg();
  console.log(
    `node ${process.version}, ${os.availableParallelism()} cores, ${os.cpus()[0]?.model}; ` +
      `load average at start ${l1!.toFixed(2)} ${l5!.toFixed(2)} ${l15!.toFixed(2)}; ` +
      `node options ${process.execArgv.join(' ') || '(none)'} (workers: ${WORKER_NODE_FLAGS.join(' ')})`,
  );
  const bigTree = runs('local') || runs('registry');
  console.log(
    `temp dir ${tmp} (${(freeBytes / GiB).toFixed(1)} GiB free)` +
      (bigTree ? `; tree ${SIZE_MIB} MiB` : '') +
      (bigTree && opt('size-mib') === undefined && freeBytes < 8 * GiB
        ? ' (< 8 GiB free: smaller default)'
        : '') +
      (DEFER_DELETES
        ? '; nothing is deleted before the end'
        : '; not enough room to keep every tree until the end: deleting as it goes, which slows ' +
          'creating files on some file systems (see the header of bench/store.ts)'),
  );
  // Parts 1-2 share the big tree (part 3 makes its own, smaller one).
  if (bigTree) {
    enter('generate');
    const genMs = performance.now();
    const tree = generateTree(path.join(tmp, 'tree'), SIZE_MIB, 42);
    console.log(
      `tree: ${tree.files} files, ${mb(tree.bytes)} (${OUTPUTS.join(', ')}), generated in ${fmtMs(performance.now() - genMs).trim()}`,
    );

    let tarFile = path.join(tmp, 'tree.tar');
    if (runs('local')) {
      const local = await localPart(tree);
      tarFile = local.tarFile;

      // 4a. The same outputs again into the local store (from the restored tree).
      enter('local-resave');
      const before = await local.store.stats();
      const again = await saveOutputs(local.store, local.restored, OUTPUTS);
      const after = await local.store.stats();
      if (again.some((e, k) => e.digest !== local.entries[k]!.digest)) {
        throw new Error('the restored tree packs to other digests than the original');
      }
      rows.push({
        what: 'local 2nd save: new blobs / bytes',
        figure: `${after.blobs - before.blobs} blobs / ${after.bytes - before.bytes} B`,
        target: '0 / 0 B',
        met: after.blobs === before.blobs && after.bytes === before.bytes,
      });
      discard(local.store.dir);
      discard(local.restored);
    } else if (runs('registry')) {
      // Part 2's curl blob, untimed.
      run('tar', ['-cf', tarFile, '-C', tree.root, 'out']);
    }

    if (runs('registry')) {
      const reg = await registryPart(tree, tarFile);
      if (reg) discard(reg.restored);
    }
    discard(tarFile);
  }
  const rss12 = Math.max(
    peaks.get('local') ?? 0,
    peaks.get('local-resave') ?? 0,
    peaks.get('registry') ?? 0,
    peaks.get('registry-resave') ?? 0,
  );
  const maxRss12 = maxRss();

  if (runs('gha')) await ghaPart();
  enter('end');
  const rss3 = peaks.get('gha') ?? 0;
  const maxRss123 = maxRss();

  console.log(
    "\n4. peak RSS (sampled every 20 ms per part; maxRSS is the kernel's, whole process)",
  );
  for (const [name, v] of peaks) console.log(`  ${name.padEnd(16)} ${mb(v).padStart(7)}`);
  console.log(`  maxRSS after part 2 ${mb(maxRss12)}, after part 3 ${mb(maxRss123)}`);
  if (runs('local') || runs('registry')) {
    rows.push({
      what: 'peak RSS, parts 1-2 (sampled / maxRSS)',
      figure: `${mb(rss12)} / ${mb(maxRss12)}`,
      target: '< 200 MB',
      met: maxRss12 < 200e6,
    });
  }
  if (runs('gha')) {
    rows.push({
      what: 'peak RSS, parts 1-3',
      figure: `${mb(Math.max(rss12, rss3))} / ${mb(maxRss123)}`,
      target: '< 200 MB',
      met: maxRss123 < 200e6,
    });
  }
  // The registry's second-save row was added in part 2; keep the table in part order.
  const order = (r: Row) =>
    r.what.startsWith('peak')
      ? 2
      : r.what.includes('2nd save')
        ? 3
        : r.what.startsWith('gha')
          ? 1
          : 0;
  rows.sort((a, b) => order(a) - order(b));
  printSummary();
  console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    clearInterval(sampler);
    cleanup();
  });
