/**
 * Cache keys: what a unit's result IS, as a content hash of its definition, its input files and the
 * keys of the units it needs. Equal keys mean interchangeable results, on any machine: nothing
 * machine-specific (absolute paths, mtimes, inodes, file order on disk, the affinity key) goes in.
 *
 * Canonical encoding (format `dist-build/key/v1`). The key is
 *
 *     "sha256:" + hex(SHA-256(UTF-8(canonical JSON of the document below)))
 *
 * where canonical JSON has no whitespace, object members sorted by key (byte order), strings
 * escaped as `JSON.stringify` does, and only strings, integers, arrays, objects and null:
 *
 *     {
 *       "format":   "dist-build/key/v1",
 *       "kind":     "run" | "docker",
 *       "run":      <shell command>                                        (run units only)
 *       "docker":   { "context":    <context dir, relative to the root>,   (docker units only)
 *                     "dockerfile": <Dockerfile path relative to the context>,
 *                     "target":     <target stage> | null,
 *                     "buildArgs":  [[name, value], ...] sorted by name,
 *                     "tags":       [reference, ...] sorted, duplicates removed (the image
 *                                   archive is saved by its tags: a load tags the image) },
 *       "platform": <the unit's platform, e.g. "linux/arm64"> | null,
 *       "env":      [[name, value], ...] sorted by name,
 *       "outputs":  [path, ...] sorted, duplicates removed; a docker unit's image archive
 *                   `.dist-build/images/<unit>.tar` among them,
 *       "inputs":   [[path, type, sha256-hex], ...] sorted by path (byte order),
 *                   type "f" = file, "x" = executable file (any x bit), "l" = symlink (the digest
 *                   is of its target path); never a path in or under any invocation's declared
 *                   outputs (what a unit takes from another comes in through `needs`, whose keys
 *                   are in its key; outputs found in the tree are whatever ran last),
 *       "needs":    [[unit id, cache key], ...] sorted by unit id
 *     }
 *
 * Left out on purpose, because they do not change what is built: the invocation name (two
 * identical run definitions may share results; docker ones do not, their archives' paths differ),
 * timeout, estimate, labels, `export`, docker `push` and the affinity key. The full file mode is
 * reduced to the executable bit (umask differs between machines; git keeps only that bit too).
 *
 * Inputs of a docker unit: the build context as BuildKit sends it (see dockerignore.ts) plus the
 * Dockerfile, plus whatever the invocation's own `inputs` globs match. All paths are relative to
 * the config root. A unit without `platform` builds for whatever machine runs it; its key does not
 * say which.
 */
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import type { Config, InvocationConfig } from '../config/types.js';
import {
  DockerignoreMatcher,
  findDockerignore,
  listDockerContext,
  sentOwnFile,
} from './dockerignore.js';
import type { FileDigest } from './file-index.js';
import { FileIndex } from './file-index.js';
import {
  DirCache,
  compareByteOrder,
  expandInputs,
  inputMatcher,
  patternBases,
  sortByteOrder,
} from './inputs.js';
import type { CacheKeyInfo, Unit } from './types.js';
import { unitOutputs } from './units.js';

export const KEY_FORMAT = 'dist-build/key/v1';

export interface UnitCacheKey extends CacheKeyInfo {
  /**
   * What matched nothing (worth a warning): `inputs` patterns of the unit's invocation and, for
   * docker units, a docker context directory or Dockerfile that does not exist (as configured).
   */
  unmatched: string[];
  /**
   * Warnings: input patterns of the unit's invocation that match files under the outputs of an
   * invocation it does not need (see `shadowedInputs`). Computed for whole graphs only.
   */
  shadowed: string[];
  /** The canonical JSON whose SHA-256 is the key (with `ComputeCacheKeysOptions.documents`). */
  document?: string;
}

export interface ComputeCacheKeysOptions {
  /** An open index to use; the caller saves and closes it. Default: one opened on `cacheDir`. */
  index?: FileIndex;
  /** Directory of the file-digest index (default `<root>/.dist-build/index`). */
  cacheDir?: string;
  /**
   * Root-relative paths no invocation's inputs take, besides the invocations' outputs (`run` and
   * `master` give their `--out` directory when it is inside the root: its report changes every
   * run).
   */
  exclude?: readonly string[];
  /**
   * Keys of units that `units` need but that are not among them (a worker checking one unit's
   * key, given its dependencies' keys by the master).
   */
  needKeys?: ReadonlyMap<string, string>;
  /**
   * The declared outputs left out of every unit's inputs, instead of those of `config`'s
   * invocations: a worker checking a key uses the master's (its own config's other invocations
   * may differ from the master's).
   */
  outputs?: readonly string[];
  /** Keep each key's document (`UnitCacheKey.document`), for `dist-build keys`. */
  documents?: boolean;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json } | RawJson;

/**
 * Already-encoded canonical JSON, spliced in as is. Used for big arrays without objects (such as
 * the input list), whose `JSON.stringify` output already is canonical, to skip the slow path.
 */
class RawJson {
  constructor(readonly text: string) {}
}

/** Canonical JSON: no whitespace, object keys sorted by byte order (see the module comment). */
export function canonicalJson(value: Json): string {
  if (value instanceof RawJson) return value.text;
  if (value === null || typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value))
      throw new Error(`canonical JSON takes integers only: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const keys = Object.keys(value).sort(compareByteOrder);
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(value[k]!)).join(',') + '}';
}

/** `[name, value]` pairs sorted by name (byte order). */
function sortedPairs(record: Record<string, string>): [string, string][] {
  return Object.keys(record)
    .sort(compareByteOrder)
    .map((k) => [k, record[k]!]);
}

/**
 * Paths that are nobody's input: every invocation's outputs (an `inputs: ["**"]` would otherwise
 * take what ran last, its own outputs or another's, and the key would change once they exist;
 * a worker checking the key in its tree, where other jobs write, would see other files than the
 * master did), the config's own store directories in the tree (`storeDirs`) and `extra`
 * (`run`'s `--out` and `--cache-dir`). Literal paths: an output name is no glob.
 */
function excludedPaths(
  config: Config,
  extra: readonly string[] = [],
  outputs: readonly string[] = declaredOutputs(config),
): Set<string> {
  return new Set([...outputs, ...storeDirs(config), ...extra]);
}

/**
 * The directories of the config's stores (a local store's or a gha shard's `dir`, relative to
 * the config directory as the stores resolve it) that lie in the tree, root-relative: every
 * result saved changes them, so an `inputs: ["**"]` that took them would never be cached. The
 * default ones are in `.dist-build`, which no walk enters.
 */
export function storeDirs(config: Config): string[] {
  const dirs: string[] = [];
  for (const store of config.cache?.stores ?? []) {
    if (store.type !== 'local' && store.type !== 'gha') continue;
    if (typeof store.dir !== 'string' || store.dir === '') continue;
    const rel = relative(config.root, resolve(config.root, store.dir));
    if (rel && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel))
      dirs.push(rel.split(sep).join('/'));
  }
  return dirs;
}

/**
 * The warnings of computed keys, each once: input patterns that match no file, and those that
 * match files under the outputs of an invocation not needed (`UnitCacheKey.shadowed`).
 */
export function keyWarnings(
  units: readonly Unit[],
  keys: ReadonlyMap<string, UnitCacheKey>,
): string[] {
  const messages = new Set<string>();
  for (const u of units) {
    const info = keys.get(u.id);
    for (const p of info?.unmatched ?? []) {
      messages.add(`invocations.${u.invocation}: "${p}" matches no file`);
    }
    for (const m of info?.shadowed ?? []) messages.add(m);
  }
  return [...messages];
}

/** Every invocation's declared outputs (what `computeCacheKeys` leaves out of all inputs). */
export function declaredOutputs(config: Config): string[] {
  return [...new Set(config.invocations.flatMap((i) => i.outputs))];
}

/**
 * Checks `shadowedInputs` makes at most (pairs of an invocation and another's output, and
 * pattern tests): it is a warning, and a config of thousands of invocations is not worth more.
 */
const SHADOW_TESTS = 200_000;

/**
 * Invocation name -> warnings about its input patterns that match files (as the tree is now)
 * under the outputs of an invocation it does not need, directly or through its needs. Those files
 * are nobody's input (see `excludedPaths`), so a change to them does not change its key: it reads
 * them (generated code, say) without saying so with `needs`, and its cached result would be
 * taken after they change.
 */
function shadowedInputs(config: Config, dirCache: DirCache): Map<string, string[]> {
  const invocations = new Map(config.invocations.map((i) => [i.name, i]));
  const closures = new Map<string, Set<string>>();
  const needed = (name: string): Set<string> => {
    let all = closures.get(name);
    if (all) return all;
    all = new Set();
    closures.set(name, all);
    for (const n of invocations.get(name)?.needs ?? []) {
      all.add(n);
      for (const m of needed(n)) all.add(m);
    }
    return all;
  };
  const filesUnder = new Map<string, string[]>();
  const under = (out: string): string[] => {
    let files = filesUnder.get(out);
    if (!files) filesUnder.set(out, (files = expandInputs(config.root, [out], { dirCache }).files));
    return files;
  };
  const warnings = new Map<string, string[]>();
  let budget = SHADOW_TESTS;
  for (const inv of config.invocations) {
    if (inv.docker) {
      let own: string | null = null;
      try {
        own = sentOwnFile(config.root, inv.docker);
      } catch {
        // unreadable, or an invalid pattern: the key computation says so
      }
      if (own)
        warnings.set(inv.name, [
          `invocations.${inv.name}.docker.context: "${normRel(inv.docker.context)}" holds ` +
            `.dist-build, dist-build's own directory (cache, run state, the run's keys), and no ` +
            `.dockerignore leaves it out: Docker sends it (${own}, for one), so a ` +
            'COPY of the whole context puts it in the image, and the cache key does not cover ' +
            'it (add .dist-build to .dockerignore)',
        ]);
    }
    if (inv.inputs.length === 0 && !inv.docker) continue;
    // A docker build's context is an input too: what of it Docker sends (`.dockerignore`).
    const context = inv.docker ? normRel(inv.docker.context) : undefined;
    const bases = [
      ...patternBases(inv.inputs),
      ...(context ? [context === '.' ? '' : context] : []),
    ];
    const reaches = (out: string) =>
      bases.some(
        (b) => b === '' || b === out || out.startsWith(`${b}/`) || b.startsWith(`${out}/`),
      );
    let match: ((rel: string) => string | undefined) | undefined;
    let sent: ((rel: string) => boolean) | undefined;
    for (const other of config.invocations) {
      if (other === inv || needed(inv.name).has(other.name)) continue;
      for (const out of other.outputs) {
        if (--budget < 0) return warnings;
        if (!reaches(out)) continue;
        match ??= inputMatcher(inv.inputs);
        sent ??= context ? contextSends(config.root, inv.docker!) : () => false;
        for (const file of under(out)) {
          if (--budget < 0) return warnings;
          const pattern = match(file);
          if (pattern === undefined && !sent(file)) continue;
          const list = warnings.get(inv.name) ?? [];
          list.push(
            (pattern !== undefined
              ? `invocations.${inv.name}.inputs: "${pattern}" matches ${file}`
              : `invocations.${inv.name}.docker.context: "${context}" holds ${file}`) +
              `, an output of ${other.name}, which ${inv.name} does not need: no invocation's ` +
              `outputs are inputs, so changing it would not rebuild ${inv.name} (add needs: ` +
              `[${other.name}], or ${pattern !== undefined ? 'narrow the pattern' : 'leave it out with .dockerignore'})`,
          );
          warnings.set(inv.name, list);
          break;
        }
      }
    }
  }
  return warnings;
}

/** The files a unit's key covers (relative to the root, sorted) and its unmatched patterns. */
function unitFiles(
  config: Config,
  inv: InvocationConfig,
  dirCache: DirCache,
  exclude: ReadonlySet<string>,
): { files: string[]; unmatched: string[] } {
  const globs = expandInputs(config.root, inv.inputs, { dirCache, exclude });
  if (!inv.docker) return globs;
  // Other invocations' outputs in the context come in through `needs`, as for `inputs`.
  const ctx = listDockerContext(config.root, inv.docker, { exclude });
  const all = new Set([...ctx.files, ...globs.files]);
  return { files: sortByteOrder([...all]), unmatched: [...ctx.missing, ...globs.unmatched] };
}

/**
 * Whether Docker sends a file (root-relative) of the tree as part of a build's context: it is in
 * the context directory and the build's `.dockerignore` does not exclude it.
 */
function contextSends(
  root: string,
  spec: { context: string; file: string },
): (rel: string) => boolean {
  const context = normRel(spec.context);
  const prefix = context === '.' ? '' : `${context}/`;
  let matcher: DockerignoreMatcher | undefined;
  try {
    const ignore = findDockerignore(root, context, normRel(spec.file));
    if (ignore) matcher = DockerignoreMatcher.fromText(readFileSync(join(root, ignore), 'utf8'));
  } catch {
    // unreadable, or an invalid pattern: the key computation says so
    return () => false;
  }
  return (rel) => rel.startsWith(prefix) && !matcher?.matches(rel.slice(prefix.length));
}

/** Unit ids in dependency order (needs first; otherwise in the given order). Throws on cycles. */
export function dependencyOrder(
  units: readonly Unit[],
  /** Units needed that are not in `units` (their keys are known): not an error. */
  outside?: ReadonlyMap<string, unknown>,
): Unit[] {
  const byId = new Map<string, Unit>();
  for (const u of units) {
    if (byId.has(u.id)) throw new Error(`unit "${u.id}" is listed twice`);
    byId.set(u.id, u);
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const order: Unit[] = [];
  const visit = (u: Unit, path: string[]): void => {
    const s = state.get(u.id);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(u.id)), u.id];
      throw new Error(`needs cycle: ${cycle.join(' -> ')}`);
    }
    state.set(u.id, 'visiting');
    for (const n of u.needs) {
      const dep = byId.get(n);
      if (!dep && outside?.has(n)) continue;
      if (!dep) throw new Error(`unit "${u.id}" needs unknown unit "${n}"`);
      visit(dep, [...path, u.id]);
    }
    state.set(u.id, 'done');
    order.push(u);
  };
  for (const u of units) visit(u, []);
  return order;
}

/** The canonical key document of one unit (see the module comment). */
function keyDocument(
  inv: InvocationConfig,
  unit: Unit,
  inputs: readonly FileDigest[],
  needs: [string, string][],
): Json {
  const doc: { [key: string]: Json } = {
    format: KEY_FORMAT,
    kind: inv.docker ? 'docker' : 'run',
    platform: unit.platform ?? null,
    env: sortedPairs(inv.env),
    // With a docker unit's image archive, whose path names the unit (`unitOutputs`).
    outputs: sortByteOrder([...new Set(unitOutputs(inv, unit.id))]),
    // arrays of strings only: JSON.stringify output is canonical
    inputs: new RawJson(
      JSON.stringify(
        inputs.map((f) => [
          f.path,
          f.kind === 'symlink' ? 'l' : f.executable ? 'x' : 'f',
          f.digest,
        ]),
      ),
    ),
    needs,
  };
  if (inv.docker) {
    const d = inv.docker;
    const context = normRel(d.context);
    doc.docker = {
      context,
      dockerfile: relativePosix(context, normRel(d.file)),
      target: d.target ?? null,
      buildArgs: sortedPairs(d.buildArgs),
      // The image archive is saved by its tags (`docker load` tags the image with them).
      tags: sortByteOrder([...new Set(d.tags)]),
    };
  } else {
    doc.run = inv.run ?? '';
  }
  return doc;
}

/** A root-relative path in one spelling: `./a/b/` -> `a/b`, `` -> `.`. */
function normRel(p: string): string {
  return posix.normalize(p).replace(/\/+$/, '') || '.';
}

/** `to` relative to `from`, both normalized, relative to the root with `/` separators. */
function relativePosix(from: string, to: string): string {
  const a = from === '.' || from === '' ? [] : from.split('/');
  const b = to.split('/');
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => '..'), ...b.slice(i)].join('/');
}

/**
 * Computes the cache key of every unit (unit id -> key info). Units are processed in dependency
 * order; every input file is hashed once (through the persistent {@link FileIndex}) even when
 * several units share it. Throws on unknown invocations or needs and on cycles; an input pattern
 * that matches nothing, a missing docker context or Dockerfile are only reported in `unmatched`.
 */
export async function computeCacheKeys(
  config: Config,
  units: Unit[],
  opts: ComputeCacheKeysOptions = {},
): Promise<Map<string, UnitCacheKey>> {
  const invocations = new Map(config.invocations.map((i) => [i.name, i]));
  const order = dependencyOrder(units, opts.needKeys);
  for (const u of order) {
    if (!invocations.has(u.invocation)) {
      throw new Error(`unit "${u.id}" belongs to unknown invocation "${u.invocation}"`);
    }
  }
  const filesByInvocation = new Map<string, { files: string[]; unmatched: string[] }>();
  let shadowed = new Map<string, string[]>();
  let list: string[] = [];
  let got: FileDigest[] = [];
  // Units without input files (no patterns, no docker context) need no index: a worker checks
  // the key of each job, and a no-op's check should cost nothing.
  const withFiles = order.some((u) => {
    const inv = invocations.get(u.invocation)!;
    return inv.inputs.length > 0 || inv.docker !== undefined;
  });
  if (!withFiles) {
    for (const u of order) filesByInvocation.set(u.invocation, { files: list, unmatched: [] });
  }
  // open() never rejects (a bad index is a cold one)
  const index = !withFiles
    ? undefined
    : (opts.index ?? (await FileIndex.open(config.root, { cacheDir: opts.cacheDir })));
  if (index) {
    try {
      // Check every stored directory at once (in parallel where possible); then the walk takes
      // listings from the index for unchanged directories.
      await index.verify();
      const dirCache = new DirCache(index);
      const exclude = excludedPaths(config, opts.exclude, opts.outputs);
      for (const u of order) {
        const inv = invocations.get(u.invocation)!;
        if (!filesByInvocation.has(inv.name)) {
          filesByInvocation.set(inv.name, unitFiles(config, inv, dirCache, exclude));
        }
      }
      // Its own listings: output directories change every run, the index need not keep them.
      if (!opts.needKeys) shadowed = shadowedInputs(config, new DirCache());
      const lists = [...filesByInvocation.values()];
      if (lists.length === 1) list = lists[0]!.files;
      else {
        const allPaths = new Set<string>();
        for (const { files } of lists) for (const f of files) allPaths.add(f);
        list = [...allPaths];
      }
      got = await index.getMany(list);
      if (!opts.index) await index.save();
    } finally {
      if (!opts.index) await index.close();
    }
  }

  let digests: Map<string, FileDigest> | undefined;
  const result = new Map<string, UnitCacheKey>();
  for (const u of order) {
    const inv = invocations.get(u.invocation)!;
    const { files, unmatched } = filesByInvocation.get(inv.name)!;
    let inputs = got;
    if (files !== list) {
      digests ??= new Map(list.map((p, i) => [p, got[i]!]));
      inputs = files.map((f) => digests!.get(f)!);
    }
    const needs: [string, string][] = [...new Set(u.needs)]
      .sort(compareByteOrder)
      .map((id) => [id, result.get(id)?.cacheKey ?? opts.needKeys!.get(id)!]);
    const doc = canonicalJson(keyDocument(inv, u, inputs, needs));
    const cacheKey = 'sha256:' + crypto.createHash('sha256').update(doc, 'utf8').digest('hex');
    result.set(u.id, {
      cacheKey,
      files: inputs.length,
      bytes: inputs.reduce((n, f) => n + f.size, 0),
      unmatched: [...unmatched],
      shadowed: shadowed.get(inv.name) ?? [],
      ...(opts.documents ? { document: doc } : {}),
    });
  }
  return result;
}
