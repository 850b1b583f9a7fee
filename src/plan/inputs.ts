/**
 * Expansion of an invocation's `inputs` globs into the files whose contents make up its cache key.
 *
 * Pattern language (picomatch, `dot: true`, case-sensitive, `/` separators, relative to the config
 * root):
 *  - `*`, `?`, `[...]`, `{a,b}`, `**` as in picomatch; dotfiles are matched like any other file;
 *  - a pattern that names a directory (literally, `packages/lib`, or through a glob,
 *    `packages/*`) stands for everything below it;
 *  - `!pattern` excludes what it matches from the result of ALL positive patterns (order does not
 *    matter); a negation that matches a directory excludes everything below it;
 *  - a leading `./` and a trailing `/` are ignored; `.` (or an empty pattern) is the whole root;
 *    absolute patterns and patterns that leave the root (`..`) are rejected.
 *
 * Walking starts at each pattern's static prefix (`packages/lib` for `packages/lib/**`), never at
 * the root unless the pattern starts with a glob. Directories named `.git` and `node_modules` are
 * not entered (nor `.git` files) unless the pattern itself has such a path segment; `.dist-build`
 * directories (dist-build's own state) are never entered. Symlinks are not followed: a symlink is
 * an input of its own (its target string is hashed), also when it points to a directory. Sockets,
 * FIFOs and devices are ignored.
 *
 * A positive pattern that matches nothing (before negations are applied) is not an error; it is
 * returned in `unmatched` so callers can warn. Negations that exclude nothing are not reported.
 *
 * The file system is read synchronously: a walk is a burst of cheap metadata calls, and doing them
 * without the promise machinery is several times faster. Directory listings can come from a
 * persistent store (the {@link FileIndex}, which checks each directory's identity with one
 * `lstat` instead of reading it again); see {@link DirCache}.
 */
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import picomatch from 'picomatch';
import type { DirListing, FileIndex } from './file-index.js';
import { readDirListing } from './file-index.js';

export interface ExpandResult {
  /** Matched files and symlinks, relative to the root, `/`-separated, sorted by byte order. */
  files: string[];
  /** Positive patterns (as given) that matched no file. */
  unmatched: string[];
}

export interface ExpandOptions {
  /** Shared directory listing cache, to avoid re-reading directories across many expansions. */
  dirCache?: DirCache;
  /** Root-relative paths (literal, not globs) left out with everything below them. */
  exclude?: readonly string[] | ReadonlySet<string>;
}

/** Directory names skipped unless a pattern names them. */
const SKIPPED_UNLESS_NAMED = ['.git', 'node_modules'];
/** Directory names never entered. */
const ALWAYS_SKIPPED = new Set(['.dist-build']);

/** Where directory listings come from when not read directly: {@link FileIndex.listDir}. */
export type DirListingStore = Pick<FileIndex, 'root' | 'listDir'>;

/**
 * Caches directory listings (by absolute path) for the duration of one key computation. With a
 * `store` (for the same root), listings come from it, so that unchanged directories are not read
 * again across runs.
 */
export class DirCache {
  private readonly map = new Map<string, DirListing>();

  constructor(private readonly store?: DirListingStore) {}

  /** The listing of `rel` (relative to `root`, `''` = the root). */
  read(root: string, rel: string): DirListing {
    const key = root + '\0' + rel;
    let listing = this.map.get(key);
    if (!listing) {
      if (this.store && this.store.root === root) listing = this.store.listDir(rel);
      else listing = readDirListing(rel === '' ? root : join(root, rel));
      this.map.set(key, listing);
    }
    return listing;
  }
}

const TYPE_DIR = 0x64; // 'd'

const SURROGATE = /[\ud800-\udfff]/;

/** Sorts strings by the byte order of their UTF-8 encoding (= code point order). */
export function sortByteOrder(list: readonly string[]): string[] {
  // The default sort compares UTF-16 code units, which agrees with UTF-8 byte order unless a
  // string has characters above U+FFFF (surrogates) next to ones in U+E000..U+FFFF.
  if (!list.some((s) => SURROGATE.test(s))) return [...list].sort();
  return list
    .map((s) => ({ s, b: Buffer.from(s, 'utf8') }))
    .sort((x, y) => Buffer.compare(x.b, y.b))
    .map((x) => x.s);
}

/** Compares two strings by the byte order of their UTF-8 encoding. */
export function compareByteOrder(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

interface Compiled {
  /** The pattern as given (reported in `unmatched`). */
  source: string;
  /** Normalized pattern text. */
  pattern: string;
  /** Directory (or path) walking starts at; `''` is the root. */
  base: string;
  isGlob: boolean;
  test: (path: string) => boolean;
  /** Names from {@link SKIPPED_UNLESS_NAMED} this pattern names explicitly. */
  named: Set<string>;
}

/** Normalizes one pattern (without `!`): `./` and trailing `/` dropped, `.` -> `''`. */
function normalizePattern(source: string, p: string): string {
  let s = p;
  while (s.startsWith('./')) s = s.slice(2);
  s = s.replace(/\/+$/, '').replace(/\/{2,}/g, '/');
  if (s === '.') s = '';
  if (s.startsWith('/')) throw new Error(`input pattern "${source}" must be relative to the root`);
  if (s.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new Error(
      `input pattern "${source}" must stay inside the root (no "." or ".." segments)`,
    );
  }
  return s;
}

function compile(source: string, text: string): Compiled {
  const pattern = normalizePattern(source, text);
  const scan = picomatch.scan(pattern, { unescape: true });
  const isGlob = scan.isGlob;
  const base = scan.base;
  const test = pattern === '' ? () => true : picomatch(pattern, { dot: true, windows: false });
  const segments = pattern.split('/');
  const named = new Set(SKIPPED_UNLESS_NAMED.filter((n) => segments.includes(n)));
  return { source, pattern, base, isGlob, test, named };
}

/** `patterns` compiled: positive ones, and negations (`!pattern`) without their `!`. */
function compilePatterns(patterns: readonly string[]): {
  positives: Compiled[];
  negatives: Compiled[];
} {
  const positives: Compiled[] = [];
  const negatives: Compiled[] = [];
  for (const p of patterns) {
    if (p.startsWith('!')) negatives.push(compile(p, p.slice(1)));
    else positives.push(compile(p, p));
  }
  return { positives, negatives };
}

/**
 * Expands `patterns` (relative to `root`) into the sorted list of matching files and symlinks.
 * See the module comment for the pattern rules.
 */
export function expandInputs(
  root: string,
  patterns: readonly string[],
  opts: ExpandOptions = {},
): ExpandResult {
  const dirs = opts.dirCache ?? new DirCache();
  const { positives, negatives } = compilePatterns(patterns);
  const literal: ReadonlySet<string> =
    opts.exclude instanceof Set ? opts.exclude : new Set(opts.exclude ?? []);
  const excluded = (rel: string): boolean => literal.has(rel) || negatives.some((n) => n.test(rel));

  // One positive pattern finds every path once: no need for a set.
  const found: string[] | Set<string> = positives.length === 1 ? [] : new Set<string>();
  const unmatched: string[] = [];
  for (const pat of positives) {
    let hits = 0;
    const hit = Array.isArray(found)
      ? (rel: string): void => {
          found.push(rel);
          hits++;
        }
      : (rel: string): void => {
          found.add(rel);
          hits++;
        };
    const skipDir = (name: string): boolean =>
      ALWAYS_SKIPPED.has(name) || (SKIPPED_UNLESS_NAMED.includes(name) && !pat.named.has(name));
    // A `.git` FILE (worktree / submodule pointer) holds a machine-specific path: skipped too.
    const skipFile = (name: string): boolean => name === '.git' && !pat.named.has(name);

    /** Adds every file below `rel` (a directory). */
    const addAll = (rel: string): void => {
      const { names, types } = dirs.read(root, rel);
      const prefix = rel === '' ? '' : rel + '/';
      for (let i = 0; i < names.length; i++) {
        const name = names[i]!;
        if (types.charCodeAt(i) === TYPE_DIR) {
          if (!skipDir(name)) addAll(prefix + name);
        } else if (!skipFile(name)) hit(prefix + name);
      }
    };
    /** Walks below `rel` (a directory), testing every entry against the pattern. */
    const walk = (rel: string): void => {
      const { names, types } = dirs.read(root, rel);
      const prefix = rel === '' ? '' : rel + '/';
      for (let i = 0; i < names.length; i++) {
        const name = names[i]!;
        const child = prefix + name;
        if (types.charCodeAt(i) === TYPE_DIR) {
          if (skipDir(name)) continue;
          if (pat.test(child)) addAll(child);
          else walk(child);
        } else if (!skipFile(name) && pat.test(child)) {
          hit(child);
        }
      }
    };

    const start = startingPoint(root, pat.base);
    if (start === 'dir') {
      if (!pat.isGlob || pat.pattern === '') addAll(pat.base);
      else if (pat.base !== '' && pat.test(pat.base)) addAll(pat.base);
      else walk(pat.base);
    } else if (start === 'leaf') {
      if (!pat.isGlob || pat.test(pat.base)) hit(pat.base);
    }
    if (hits === 0) unmatched.push(pat.source);
  }

  let files: string[];
  if (negatives.length === 0 && literal.size === 0)
    files = Array.isArray(found) ? found : [...found];
  else {
    files = [];
    for (const f of found) if (!isExcluded(f, excluded)) files.push(f);
  }
  return { files: sortByteOrder(files), unmatched };
}

/**
 * The positive pattern of `patterns` that takes the file `rel` as an input, as `expandInputs`
 * does (a pattern that matches a directory takes everything below it; negations leave out
 * matches and everything below them), or undefined. Directories skipped unless named are not
 * considered (callers test paths that exist outside them).
 */
export function inputMatcher(patterns: readonly string[]): (rel: string) => string | undefined {
  const { positives, negatives } = compilePatterns(patterns);
  const negated = (rel: string): boolean => negatives.some((n) => n.test(rel));
  return (rel) => {
    if (isExcluded(rel, negated)) return undefined;
    return positives.find((p) => isExcluded(rel, p.test))?.source;
  };
}

/** The literal directory each of `patterns`' positive patterns starts at (`''`: the root). */
export function patternBases(patterns: readonly string[]): string[] {
  return compilePatterns(patterns).positives.map((p) => p.base);
}

/** Whether `rel` or one of its parent directories is matched by a negation. */
function isExcluded(rel: string, excluded: (rel: string) => boolean): boolean {
  if (excluded(rel)) return true;
  for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) {
    if (excluded(rel.slice(0, i))) return true;
  }
  return false;
}

/**
 * What is at `base`: a directory to walk, a leaf (file or symlink) or nothing. Every component is
 * checked with `lstat`, so a symlinked directory on the way is never followed (it is a leaf when it
 * is the base itself, and nothing when it is further up).
 */
function startingPoint(root: string, base: string): 'dir' | 'leaf' | 'none' {
  if (base === '') return 'dir';
  const parts = base.split('/');
  let abs = root;
  for (let i = 0; i < parts.length; i++) {
    abs = join(abs, parts[i]!);
    let st;
    try {
      st = lstatSync(abs);
    } catch {
      return 'none';
    }
    const last = i === parts.length - 1;
    if (st.isDirectory()) {
      if (ALWAYS_SKIPPED.has(parts[i]!)) return 'none';
      if (last) return 'dir';
      continue;
    }
    if (!last) return 'none';
    return st.isFile() || st.isSymbolicLink() ? 'leaf' : 'none';
  }
  return 'none';
}
