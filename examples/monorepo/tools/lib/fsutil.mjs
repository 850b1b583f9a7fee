// Small file-system helpers shared by the tools. Every listing is sorted by code unit so that
// outputs never depend on the order in which the file system returns directory entries.
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

/** Compares strings by UTF-16 code unit (locale-independent). */
export function byCodeUnit(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Removes `dir` and creates it again, empty. Tools call this on their own output dir only. */
export function cleanDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}

/** Writes a file, creating parent directories. */
export function writeFile(file, data) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
}

/** Lists every file under `dir` (recursively) as sorted paths relative to `dir`, using '/'. */
export function walk(dir) {
  const files = [];
  const visit = (d) => {
    for (const name of readdirSync(d).sort(byCodeUnit)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) visit(full);
      else files.push(relative(dir, full).split(sep).join('/'));
    }
  };
  visit(dir);
  return files.sort(byCodeUnit);
}

/** Parses `--name value` and `--flag` arguments into an object; the rest go to `_`. */
export function parseArgs(argv, defaults = {}) {
  const args = { ...defaults, _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      args._.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) {
      args[a.slice(2, eq)] = a.slice(eq + 1);
    } else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
      args[a.slice(2)] = argv[++i];
    } else {
      args[a.slice(2)] = true;
    }
  }
  return args;
}

/** Formats a number with a fixed number of decimals and no locale influence. */
export function fixed(n, digits = 2) {
  const s = n.toFixed(digits);
  return s === `-${(0).toFixed(digits)}` ? (0).toFixed(digits) : s;
}

/** Prints a message to stderr and exits with status 1. */
export function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}
