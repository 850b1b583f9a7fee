/**
 * `.dockerignore` semantics, as `docker build` applies them today (BuildKit):
 *
 *  - reading (moby/patternmatcher `ignorefile.ReadAll`): a UTF-8 BOM on the first line is dropped;
 *    a line whose FIRST character is `#` is a comment (`  # x` is a pattern); lines are trimmed;
 *    blank lines are skipped; a leading `!` marks an exception (re-include) and is trimmed again;
 *    the rest is `filepath.Clean`ed (`./a` -> `a`, `a//b/` -> `a/b`, `a/../b` -> `b`) and one
 *    leading `/` is removed;
 *  - matching (moby/patternmatcher): `*` = any run of non-`/` characters, `?` = one non-`/`
 *    character, `[...]` = character class (`[^...]` negated), `\x` = literal `x`, `**` = any number
 *    of path segments (also zero: `**\/*.md` matches `README.md`), everything else literal and
 *    anchored at the context root (`*.md` matches only top-level files). A pattern that matches a
 *    parent directory matches everything below it. Patterns are applied in order and the last one
 *    that matches decides (so `!` re-includes what an earlier pattern excluded, and a later
 *    pattern can exclude again);
 *  - walking (tonistiigi/fsutil as used by BuildKit): per-pattern match results of the parent
 *    directory are inherited by its children (`MatchesUsingParentResults`), and an excluded
 *    directory is not entered at all when no exception could re-include anything inside it;
 *  - BuildKit reads `<Dockerfile>.dockerignore` next to the Dockerfile (e.g.
 *    `docker/api.Dockerfile.dockerignore`) instead of `<context>/.dockerignore` when it exists.
 *
 * Known deviations: `\d`, `\w`, ... in a pattern mean a literal letter here (Go's regexp would read
 * them as classes); file names that are not valid UTF-8 cannot be represented.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { sortByteOrder } from './inputs.js';

/** One compiled `.dockerignore` line. */
export interface DockerignorePattern {
  /** The cleaned pattern without the leading `!`. */
  readonly pattern: string;
  /** `!pattern`: an exception that re-includes matching paths. */
  readonly exclusion: boolean;
  /** Whether `path` (slash-separated, relative to the context) matches the pattern itself. */
  test(path: string): boolean;
}

/** Per-pattern results for a directory, handed down to its children. */
export type ParentMatchInfo = readonly boolean[];

const UTF8_BOM = '\uFEFF';

/**
 * Go's `path.Clean` (= `filepath.Clean` with `/` separators): removes empty and `.` segments,
 * resolves `..` against preceding segments, keeps leading `..` of relative paths, `""` -> `"."`.
 */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(seg);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}

/**
 * Reads a `.dockerignore` text into its pattern list (exceptions keep their `!` prefix), exactly
 * like moby/patternmatcher `ignorefile.ReadAll`.
 */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, i) => {
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (i === 0 && line.startsWith(UTF8_BOM)) line = line.slice(1);
    if (line.startsWith('#')) return;
    let pattern = goTrimSpace(line);
    if (pattern === '') return;
    const invert = pattern.startsWith('!');
    if (invert) pattern = goTrimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(invert ? '!' + pattern : pattern);
  });
  return patterns;
}

/** Go's `strings.TrimSpace` (ASCII whitespace plus Unicode White_Space). */
function goTrimSpace(s: string): string {
  return s.replace(/^[\s\u0085]+|[\s\u0085]+$/gu, '');
}

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

/** Characters that must be escaped to be literal in a JS `u`-mode regular expression. */
const JS_SYNTAX = new Set([...'^$\\.*+?()[]{}|/']);

class Pattern implements DockerignorePattern {
  readonly matchType: MatchType;
  private readonly regexp: RegExp | undefined;

  constructor(
    readonly pattern: string,
    readonly exclusion: boolean,
  ) {
    const { type, source } = compile(pattern);
    this.matchType = type;
    if (type === 'regexp') {
      try {
        this.regexp = new RegExp(source, 'u');
      } catch (err) {
        throw new Error(`invalid .dockerignore pattern "${pattern}": ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  }

  test(path: string): boolean {
    const p = this.pattern;
    switch (this.matchType) {
      case 'exact':
        return path === p;
      case 'prefix':
        return path.startsWith(p.slice(0, -2)); // strip the trailing `**`
      case 'suffix': {
        const suffix = p.slice(2); // strip the leading `**`
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith('/') && path === suffix.slice(1); // `**/foo` matches `foo`
      }
      case 'regexp':
        return this.regexp!.test(path);
    }
  }
}

/**
 * moby/patternmatcher `Pattern.compile`, emitting a JS regular expression (with the same match-type
 * shortcuts: a literal pattern is compared as a string, `foo/**` as a prefix, `**\/foo` as a
 * suffix). Malformed patterns are rejected like Go's `filepath.Match` rejects them (unterminated or
 * empty `[...]`, unescaped `-`/`]` as a range end, trailing `\`).
 */
function compile(pattern: string): { type: MatchType; source: string } {
  const chars = [...pattern];
  const bad = (why: string): Error =>
    new Error(`invalid .dockerignore pattern "${pattern}": ${why}`);
  let re = '^';
  let type: MatchType = 'exact';
  for (let i = 0, iter = 0; i < chars.length; iter++) {
    const ch = chars[i++]!;
    if (ch === '*') {
      if (chars[i] === '*') {
        i++;
        if (chars[i] === '/') i++; // treat `**/` as `**`
        if (i >= chars.length) {
          // `**` at the end: accept everything (like .gitignore)
          if (type === 'exact') type = 'prefix';
          else {
            re += '.*';
            type = 'regexp';
          }
        } else {
          re += '(?:.*/)?';
          type = 'regexp';
        }
        if (iter === 0) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if (ch === '\\') {
      const next = chars[i++];
      if (next === undefined) throw bad('trailing backslash');
      re += escapeLiteral(next);
      type = 'regexp';
    } else if (ch === '[') {
      // A class as Go's filepath.Match reads it: `[`, optional `^`, then at least one `lo` or
      // `lo-hi` (each possibly `\`-escaped, `-` and `]` only escaped), then `]`.
      let cls = '[';
      if (chars[i] === '^') {
        cls += '^';
        i++;
      }
      let ranges = 0;
      const endpoint = (): string => {
        let c = chars[i];
        if (c === undefined || c === '-' || c === ']') throw bad('malformed character class');
        if (c === '\\') {
          c = chars[++i];
          if (c === undefined) throw bad('malformed character class');
        }
        i++;
        return escapeInClass(c);
      };
      for (;;) {
        if (chars[i] === ']' && ranges > 0) {
          i++;
          break;
        }
        cls += endpoint();
        if (chars[i] === '-') {
          i++;
          cls += '-' + endpoint();
        }
        ranges++;
      }
      re += cls + ']';
      type = 'regexp';
    } else {
      // `.+()|{}$` are escaped by moby; `^` and a stray `]` reach Go's regexp unescaped, where
      // `^` is an anchor (never matches mid-path) and `]` a literal.
      re += ch === '^' ? '^' : escapeLiteral(ch);
    }
  }
  if (type === 'regexp') re += '$';
  return { type, source: re };
}

function escapeInClass(ch: string): string {
  return '\\]-^['.includes(ch) ? '\\' + ch : ch;
}

function escapeLiteral(ch: string): string {
  return JS_SYNTAX.has(ch) ? '\\' + ch : ch;
}

/** moby/patternmatcher `PatternMatcher` over a parsed `.dockerignore`. */
export class DockerignoreMatcher {
  readonly patterns: readonly DockerignorePattern[];
  /** True when at least one pattern is an exception (`!`). */
  readonly exclusions: boolean;
  /** True when every exception is a plain path (after dropping a trailing `/**` or `/*`). */
  private readonly onlyPrefixExceptions: boolean;

  /** `patterns` as returned by {@link parseDockerignore}; throws on an invalid pattern. */
  constructor(patterns: readonly string[]) {
    const list: Pattern[] = [];
    for (const raw of patterns) {
      let p = goTrimSpace(raw);
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
      }
      list.push(new Pattern(p, exclusion));
    }
    this.patterns = list;
    this.exclusions = list.some((p) => p.exclusion);
    this.onlyPrefixExceptions = list.every(
      (p) => !p.exclusion || !/[*[\]?^\\]/.test(withoutTrailingGlob(p.pattern)),
    );
  }

  /** Parses and compiles a `.dockerignore` text. */
  static fromText(text: string): DockerignoreMatcher {
    return new DockerignoreMatcher(parseDockerignore(text));
  }

  /**
   * Whether `path` (slash-separated, relative to the context) is excluded, evaluating every parent
   * directory as well (moby `MatchesOrParentMatches`). For a walk, prefer
   * {@link matchesUsingParentResults}, which is what BuildKit does.
   */
  matches(path: string): boolean {
    const file = cleanPath(path);
    if (file === '.') return false;
    const parent = posix.dirname(file);
    const parentDirs = parent === '.' ? [] : parent.split('/');
    let matched = false;
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue;
      let match = pattern.test(file);
      for (let i = 0; !match && i < parentDirs.length; i++) {
        match = pattern.test(parentDirs.slice(0, i + 1).join('/'));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * moby `MatchesUsingParentResults`: like {@link matches}, but a pattern that matched the parent
   * directory (`parent`, from the parent's own call) counts as matching without re-testing, and a
   * pattern skipped for the parent is only tested against `path` itself. Without `parent`, parent
   * directories are tested as in {@link matches}.
   */
  matchesUsingParentResults(
    path: string,
    parent?: ParentMatchInfo,
  ): { excluded: boolean; info: ParentMatchInfo } {
    const file = cleanPath(path);
    const info: boolean[] = new Array<boolean>(this.patterns.length).fill(false);
    let matched = false;
    this.patterns.forEach((pattern, i) => {
      let match = parent !== undefined && parent.length > 0 ? parent[i]! : false;
      if (!match) {
        if (pattern.exclusion !== matched) return;
        match = pattern.test(file);
        if (!match && (parent === undefined || parent.length === 0)) {
          const dir = posix.dirname(file);
          if (dir !== '.') {
            const parts = dir.split('/');
            for (let k = 0; !match && k < parts.length; k++) {
              match = pattern.test(parts.slice(0, k + 1).join('/'));
            }
          }
        }
      }
      info[i] = match;
      if (match) matched = !pattern.exclusion;
    });
    return { excluded: matched, info };
  }

  /**
   * fsutil's shortcut: an excluded directory is entered only if an exception might re-include
   * something below it (any exception with wildcards, or one whose path lies under `dir`).
   */
  mustEnterExcludedDir(dir: string): boolean {
    if (!this.onlyPrefixExceptions) return true;
    if (!this.exclusions) return false;
    const dirSlash = dir + '/';
    return this.patterns.some(
      (p) => p.exclusion && (withoutTrailingGlob(p.pattern) + '/').startsWith(dirSlash),
    );
  }
}

function withoutTrailingGlob(p: string): string {
  let s = p;
  if (s.endsWith('/**')) s = s.slice(0, -3);
  if (s.endsWith('/*')) s = s.slice(0, -2);
  return s;
}

/** Whether `path` is excluded by the `.dockerignore` `text` (convenience for one-off checks). */
export function isDockerignored(text: string, path: string): boolean {
  return DockerignoreMatcher.fromText(text).matches(path);
}

/**
 * The ignore file BuildKit uses for a build: `<Dockerfile>.dockerignore` next to the Dockerfile if
 * it exists, else `<context>/.dockerignore`, else none. Paths are relative to `root`.
 */
export function findDockerignore(root: string, context: string, dockerfile: string): string | null {
  const candidates = [dockerfile + '.dockerignore', posix.join(context, '.dockerignore')];
  for (const c of candidates) {
    try {
      if (statSync(join(root, c)).isFile()) return posix.normalize(c);
    } catch {
      // not there
    }
  }
  return null;
}

/**
 * A file of dist-build's own directory (`.dist-build`: its cache, index and run state) that Docker
 * would send with a build's context (relative to `root`), or null: none there, or `.dockerignore`
 * leaves it out. `listDockerContext`, and so the cache key, skips that directory; BuildKit does
 * not, and `COPY . .` puts it in the image.
 */
export function sentOwnFile(root: string, spec: { context: string; file: string }): string | null {
  const context = posix.normalize(spec.context);
  const prefix = context === '.' ? '' : context + '/';
  if (!statSync(join(root, prefix + '.dist-build'), { throwIfNoEntry: false })?.isDirectory())
    return null;
  const ignoreFile = findDockerignore(root, context, posix.normalize(spec.file));
  const matcher = ignoreFile
    ? DockerignoreMatcher.fromText(readFileSync(join(root, ignoreFile), 'utf8'))
    : undefined;
  // As `listDockerContext` walks: the first file or symlink found that is not excluded.
  const first = (rel: string, parentInfo: ParentMatchInfo | undefined): string | null => {
    for (const entry of readdirSync(join(root, prefix + rel), { withFileTypes: true })) {
      const child = `${rel}/${entry.name}`;
      const r = matcher?.matchesUsingParentResults(child, parentInfo);
      if (entry.isDirectory()) {
        if (r?.excluded && !matcher!.mustEnterExcludedDir(child)) continue;
        const found = first(child, r?.info);
        if (found) return found;
      } else if (!r?.excluded && (entry.isFile() || entry.isSymbolicLink())) return prefix + child;
    }
    return null;
  };
  const top = matcher?.matchesUsingParentResults('.dist-build');
  if (top?.excluded && !matcher!.mustEnterExcludedDir('.dist-build')) return null;
  return first('.dist-build', top?.info);
}

export interface DockerContextOptions {
  /** Directory names never descended into (default: `.dist-build`, dist-build's own cache). */
  skipDirs?: readonly string[];
  /**
   * Root-relative paths left out with everything below them: invocations' outputs and stores
   * (which come in through `needs`, or not at all, as for `inputs`). A context or Dockerfile in
   * one of them is not `missing` either: before the run that makes it, it does not exist.
   */
  exclude?: ReadonlySet<string>;
}

/** Whether `rel` or one of its parent directories is in `exclude`. */
function underExcluded(rel: string, exclude: ReadonlySet<string> | undefined): boolean {
  if (!exclude?.size) return false;
  for (let i = rel.length; i > 0; i = rel.lastIndexOf('/', i - 1))
    if (exclude.has(rel.slice(0, i))) return true;
  return false;
}

export interface DockerContextFiles {
  /**
   * Files and symlinks sent to the builder plus the Dockerfile, relative to `root`, slash
   * separated, sorted by byte order. Directories are not listed (empty directories are ignored).
   */
  files: string[];
  /** The ignore file that was applied (relative to `root`), if any. */
  ignoreFile: string | null;
  /** The context directory and/or Dockerfile (as given) when they do not exist. */
  missing: string[];
}

/**
 * Lists the build context of a docker invocation as BuildKit would send it: every regular file and
 * symlink (not followed) under `root/context` that the applicable `.dockerignore` does not exclude,
 * plus the Dockerfile itself even when it is ignored or outside the context. Sockets, FIFOs and
 * devices are left out, and so are `.dist-build` directories (dist-build's own state, which
 * changes on every run; Docker would send them unless ignored). A missing context directory or
 * Dockerfile is not an error here (the build itself will fail): it is reported in `missing` and
 * contributes no files.
 */
export function listDockerContext(
  root: string,
  spec: { context: string; file: string },
  opts: DockerContextOptions = {},
): DockerContextFiles {
  const skip = new Set(opts.skipDirs ?? ['.dist-build']);
  const context = posix.normalize(spec.context);
  const dockerfile = posix.normalize(spec.file);
  const ctxAbs = join(root, context);
  const missing: string[] = [];
  const exclude = opts.exclude;
  const contextOut = context !== '.' && underExcluded(context, exclude);
  const contextOk =
    !contextOut && (statSync(ctxAbs, { throwIfNoEntry: false })?.isDirectory() ?? false);
  if (!contextOk && !contextOut) missing.push(spec.context);
  const dockerfileOut = underExcluded(dockerfile, exclude);
  const dockerfileOk =
    !dockerfileOut &&
    (statSync(join(root, dockerfile), { throwIfNoEntry: false })?.isFile() ?? false);
  if (!dockerfileOk && !dockerfileOut) missing.push(spec.file);

  const ignoreFile = findDockerignore(root, context, dockerfile);
  const matcher = ignoreFile
    ? DockerignoreMatcher.fromText(readFileSync(join(root, ignoreFile), 'utf8'))
    : undefined;
  const prefix = context === '.' ? '' : context + '/';
  const out: string[] = [];

  const walk = (relDir: string, parentInfo: ParentMatchInfo | undefined): void => {
    const abs = relDir === '' ? ctxAbs : join(ctxAbs, relDir);
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const rel = relDir === '' ? entry.name : relDir + '/' + entry.name;
      const isDir = entry.isDirectory();
      if (isDir && skip.has(entry.name)) continue;
      if (exclude?.has(prefix + rel)) continue;
      let info: ParentMatchInfo | undefined;
      let excluded = false;
      if (matcher) {
        const r = matcher.matchesUsingParentResults(rel, parentInfo);
        info = r.info;
        excluded = r.excluded;
        if (excluded && isDir && !matcher.mustEnterExcludedDir(rel)) continue;
      }
      if (isDir) walk(rel, info);
      else if (!excluded && (entry.isFile() || entry.isSymbolicLink())) out.push(prefix + rel);
    }
  };
  if (contextOk) walk('', undefined);

  if (dockerfileOk && !out.includes(dockerfile)) out.push(dockerfile);
  return { files: sortByteOrder(out), ignoreFile, missing };
}
