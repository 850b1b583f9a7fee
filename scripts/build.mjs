#!/usr/bin/env node
// Bundles each entry point into committed files under dist/ (the CLI split: dist/cli.js plus the
// chunks in dist/chunks/ that only some commands load), and writes what is generated from
// src/config/schema.ts: the JSON Schema and the precompiled validator the bundles include
// (scripts/config-validator.mjs). `--check` builds into a temporary folder instead and fails when
// the result differs from what is committed (CI runs it as `npm run check-dist`).
import { build } from 'esbuild';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleCli, bundleEntry } from './bundle-cli.mjs';
import { VALIDATOR_FILE, validatorSource } from './config-validator.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const out = check ? mkdtempSync(join(tmpdir(), 'dist-build-check-')) : root;

/** Where the CLI's chunks go (see bundleCli). */
const CHUNKS = 'dist/chunks';
const entries = [
  // Split (bundleCli): code reached only through `await import()` (the Actions cache client, the
  // registry store, certificate generation: 3.4 of 5.3 MB) goes into dist/chunks/ and is compiled
  // only by the processes that use it, so every worker and command starts sooner and smaller.
  { out: 'dist/cli.js', shebang: true, split: true },
  { in: 'src/action/main.ts', out: 'dist/action.js' },
  // The library keeps its dependencies external: npm installs them next to it. Certificate
  // generation (@peculiar/x509, ~16 MB) is its own file, loaded by `await import()` only when
  // certificates are generated, as the CLI's bundle never evaluates it before then either.
  { in: 'src/index.ts', out: 'dist/index.js', external: true, lazy: ['x509-gen'] },
  { in: 'src/cluster/x509-gen.ts', out: 'dist/x509-gen.js', external: true },
];

/** Keeps dynamic imports of the named local modules as imports of `./<name>.js` beside the bundle. */
const lazyModules = (names) => ({
  name: 'lazy-modules',
  setup(b) {
    b.onResolve({ filter: /\.js$/ }, (args) => {
      const name = args.path.replace(/^.*\//, '').replace(/\.js$/, '');
      if (args.kind !== 'dynamic-import' || !names.includes(name)) return undefined;
      return { path: `./${name}.js`, external: true };
    });
  },
});

try {
  // The schema is written from its TypeScript source so the two never drift apart.
  const schemaTmp = join(out, 'schema-build');
  mkdirSync(schemaTmp, { recursive: true });
  await build({
    entryPoints: [join(root, 'src/config/schema.ts')],
    outfile: join(schemaTmp, 'schema.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'warning',
  });
  const { configSchema } = await import(pathToFileURL(join(schemaTmp, 'schema.mjs')).href);
  mkdirSync(join(out, 'schema'), { recursive: true });
  writeFileSync(
    join(out, 'schema/dist-build.schema.json'),
    JSON.stringify(configSchema, null, 2) + '\n',
  );
  rmSync(schemaTmp, { recursive: true, force: true });
  // ... and so is its precompiled validator, which the bundles below include.
  mkdirSync(join(out, dirname(VALIDATOR_FILE)), { recursive: true });
  writeFileSync(join(out, VALIDATOR_FILE), validatorSource(configSchema));

  for (const e of entries) {
    if (e.split) {
      await bundleCli(join(out, e.out), {
        chunkDir: relative(dirname(e.out), CHUNKS),
        sourcemap: false,
        legalComments: 'none',
      });
    } else {
      await bundleEntry(join(root, e.in), join(out, e.out), {
        legalComments: 'none',
        ...(e.external ? { packages: 'external' } : {}),
        ...(e.lazy ? { plugins: [lazyModules(e.lazy)] } : {}),
      });
    }
    if (e.shebang) {
      const file = join(out, e.out);
      writeFileSync(file, '#!/usr/bin/env node\n' + readFileSync(file, 'utf8'));
      chmodSync(file, 0o755);
    }
  }

  if (check) {
    const chunks = (dir) =>
      existsSync(join(dir, CHUNKS))
        ? readdirSync(join(dir, CHUNKS)).map((f) => `${CHUNKS}/${f}`)
        : [];
    const files = [
      ...entries.map((e) => e.out),
      ...new Set([...chunks(out), ...chunks(root)]),
      'schema/dist-build.schema.json',
      VALIDATOR_FILE,
    ];
    const stale = files.filter((f) => {
      const committed = join(root, f);
      const fresh = join(out, f);
      return (
        !existsSync(committed) ||
        !existsSync(fresh) ||
        !readFileSync(committed).equals(readFileSync(fresh))
      );
    });
    if (stale.length) {
      console.error(
        `check-dist: these generated files differ from a fresh build: ${stale.join(', ')}`,
      );
      console.error('Run `npm run build` and commit the result.');
      process.exitCode = 1;
    } else {
      console.log(`check-dist: ${files.length} generated files match a fresh build`);
    }
  }
} finally {
  if (check) rmSync(out, { recursive: true, force: true });
}
