// The baseline of bench:store's gha part in a process of its own: @actions/cache's saveCache of a
// tree as one archive, then restoreCache into a fresh workspace, against the fake service. Its
// memory (the archive upload buffers blocks) is then not counted as the bench's, which measures
// our stores' RSS. Argument: JSON {env, root, workspace, runnerTemp, key}. Prints
// `RESULT {"saveMs":..,"restoreMs":..}` on stderr, or `ERROR <message>` and exits 1.
// @actions/cache logs on stdout, which the parent ignores.
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import * as cache from '@actions/cache';

interface Args {
  env: Record<string, string>;
  root: string;
  workspace: string;
  runnerTemp: string;
  key: string;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
try {
  Object.assign(process.env, args.env, { RUNNER_TEMP: args.runnerTemp });
  const paths = [join(args.root, 'out')];
  process.env.GITHUB_WORKSPACE = args.root;
  let t = performance.now();
  const id = await cache.saveCache(paths, args.key);
  const saveMs = performance.now() - t;
  if (id === -1) throw new Error('saveCache failed');
  process.env.GITHUB_WORKSPACE = args.workspace;
  t = performance.now();
  const hit = await cache.restoreCache(paths, args.key);
  const restoreMs = performance.now() - t;
  if (hit !== args.key) throw new Error('restoreCache missed');
  process.stderr.write(`RESULT ${JSON.stringify({ saveMs, restoreMs })}\n`);
} catch (err) {
  process.stderr.write(`ERROR ${(err as Error).message}\n`);
  process.exitCode = 1;
}
