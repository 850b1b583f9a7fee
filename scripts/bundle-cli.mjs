// Bundles for tests and benchmarks: the CLI under test (src/cli/bin.ts, every dependency
// included), split into an entry file and chunks as scripts/build.mjs bundles dist/cli.js, for
// those that run it as a process; and TypeScript entry points with their dependencies external
// (scripts/run-ts.mjs, benchmark child processes).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest package.json named dist-build above this file (which may be
 * bundled into node_modules/.cache by scripts/run-ts.mjs), else the working directory. */
export function repoRoot() {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      if (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === 'dist-build') {
        return dir;
      }
    } catch {
      // not here
    }
    dir = dirname(dir);
  }
  return process.cwd();
}

const root = repoRoot();

// CommonJS dependencies bundled into an ESM file still call require() for Node built-ins.
export const REQUIRE_BANNER =
  "import { createRequire as __dbCreateRequire } from 'node:module'; const require = __dbCreateRequire(import.meta.url);";

/** The esbuild options every bundle here shares: Node 20, ESM, dependencies included. */
const NODE_BUNDLE = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  logLevel: 'warning',
  loader: { '.proto': 'text' },
  banner: { js: REQUIRE_BANNER },
};

/**
 * Bundles the CLI (src/cli/bin.ts, every dependency included) into `outfile` and, split off from
 * it, the code reached only through `await import()` into chunks in `chunkDir` beside it (emptied
 * first: chunks are named by their content). scripts/build.mjs makes dist/cli.js with it, tests
 * and benchmarks their own copy, so both load the same chunks. `outfile` must end in `.mjs` when
 * it lives outside the package (no "type": "module" there).
 */
export async function bundleCli(
  outfile,
  {
    chunkDir = `${basename(outfile, extname(outfile))}-chunks`,
    // A linked map (cli.js.map beside it), read only under --enable-source-maps: an inline map
    // would make every worker process hold the 15 MB comment (250 MB RSS instead of 75 MB), and
    // forking commands from a bigger process is slower.
    sourcemap = 'linked',
    legalComments,
  } = {},
) {
  const ext = extname(outfile);
  rmSync(join(dirname(outfile), chunkDir), { recursive: true, force: true });
  await build({
    entryPoints: { [basename(outfile, ext)]: join(root, 'src/cli/bin.ts') },
    outdir: dirname(outfile),
    outExtension: { '.js': ext || '.js' },
    splitting: true,
    chunkNames: `${chunkDir}/[name]-[hash]`,
    ...NODE_BUNDLE,
    sourcemap,
    ...(legalComments ? { legalComments } : {}),
  });
}

/**
 * Bundles one entry point (an absolute path) with every dependency included, as dist/action.js
 * is built; `extra` adds or overrides esbuild options.
 */
export async function bundleEntry(file, outfile, extra = {}) {
  await build({ entryPoints: [file], outfile, ...NODE_BUNDLE, ...extra });
}

/**
 * Bundles the TypeScript entry point `file` (an absolute path; dependencies stay external) into
 * node_modules/.cache/dist-build-run, where the dependencies resolve, and returns the bundle's
 * path. Named after the entry's full path too: work trees that share one node_modules (git
 * worktree with a symlink) must not overwrite each other's bundle while both run.
 */
export async function bundleScript(file, { sourcemap = false } = {}) {
  const tag = createHash('sha256').update(file).digest('hex').slice(0, 8);
  const outfile = join(
    root,
    'node_modules/.cache/dist-build-run',
    `${basename(file).replace(/\.ts$/, '')}-${tag}.mjs`,
  );
  // Dependencies stay external (they resolve from node_modules), so no require() banner.
  await bundleEntry(file, outfile, { packages: 'external', sourcemap, banner: {} });
  return outfile;
}
