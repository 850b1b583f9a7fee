/**
 * `npm run bench:run`: `dist-build run` on a copy of examples/monorepo, cold (empty cache) and then
 * warm (nothing changed, every invocation cached), and after one input changed. Measured as whole
 * commands (process start to exit), in the same run, on the same machine; prints the ratio.
 *
 * Target (issue 3): the warm run is at least 5x faster than the cold one.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';

// scripts/run-ts.mjs runs a bundle elsewhere but leaves this file's path in argv[1].
const root = join(dirname(process.argv[1]!), '..');
const cli = join(root, 'dist/cli.js');
const workers = process.argv[2] ?? '4';
const rounds = Number(process.argv[3] ?? '3');

function run(args: string[]): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, CI: 'true' },
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.on('exit', (code) =>
      code === 0
        ? resolve({ ms: performance.now() - t0, stdout })
        : reject(new Error(`dist-build ${args.join(' ')} exited ${code}\n${stdout}`)),
    );
  });
}

const line = (stdout: string): string => /\d+ invocations: .*/.exec(stdout)?.[0] ?? '?';
const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

const rows: string[][] = [];
for (let r = 1; r <= rounds; r++) {
  const dir = mkdtempSync(join(tmpdir(), 'dist-build-bench-run-'));
  try {
    const src = join(root, 'examples/monorepo');
    cpSync(src, join(dir, 'repo'), {
      recursive: true,
      filter: (p) => !/[/\\](out|\.dist-build)([/\\]|$)/.test(p.slice(src.length)),
    });
    const args = ['run', '--config', join(dir, 'repo/dist-build.yml'), '--out', join(dir, 'out')];
    args.push('--workers', workers, '--no-output');
    const cold = await run(args);
    const warm = await run(args);
    appendFileSync(join(dir, 'repo/tools/gallery.mjs'), '\n// changed\n');
    const one = await run(args);
    rows.push([
      String(r),
      fmt(cold.ms),
      fmt(warm.ms),
      `${(cold.ms / warm.ms).toFixed(1)}x`,
      fmt(one.ms),
      line(warm.stdout),
      line(one.stdout),
    ]);
    console.log(rows.at(-1)!.join(' | '));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(
  `\nexamples/monorepo on ${workers} local workers (dist/cli.js; run \`npm run build\` first)\n`,
);
console.log(
  '| round | cold | warm (nothing changed) | cold / warm | one input changed | warm | changed |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
