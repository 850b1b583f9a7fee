import { isUtf8 } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { basename, dirname, relative, resolve, posix, sep } from 'node:path';
import type { ErrorObject } from 'ajv';
import generatedValidator from './schema-validator.generated.js';
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, visit } from 'yaml';
import type { Document, Node as YamlNode, YAMLMap } from 'yaml';
import { configSchema, PATTERN_TEXT } from './schema.js';
import { ConfigError } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { parseDuration } from './duration.js';
import { parseSize } from './size.js';
import type {
  CacheConfig,
  Config,
  DockerSpec,
  InvocationConfig,
  StoreConfig,
  StoreLocation,
} from './types.js';
import { LABEL, WORKER_ENV } from './types.js';

type Segment = string | number;
type Raw = Record<string, unknown>;

/** The schema's validator, precompiled at build time (scripts/config-validator.mjs). */
const validator = generatedValidator as unknown as {
  (value: unknown): boolean;
  errors?: ErrorObject[] | null;
};

function validateSchema(value: unknown): ErrorObject[] {
  return validator(value) ? [] : (validator.errors ?? []);
}

/** Where a problem is: YAML positions for key paths of one parsed document. */
class Locator {
  private readonly lines = new LineCounter();
  readonly doc: Document.Parsed;
  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, {
      lineCounter: this.lines,
      prettyErrors: false,
      // Duplicates are found by normalizeKeys, in one pass (this check is quadratic: 20,000
      // invocations took 19 s), after `1:` and `"1":` have become the same name.
      uniqueKeys: false,
    });
  }

  pos(offset: number | undefined): { line: number; col: number } {
    if (offset === undefined) return { line: 0, col: 0 };
    return this.lines.linePos(offset);
  }

  /** The value node at `path`, or the deepest existing ancestor. */
  private node(path: Segment[]): YamlNode | undefined {
    for (let n = path.length; n >= 0; n--) {
      const found = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      if (found && typeof found === 'object' && 'range' in (found as object))
        return found as YamlNode;
    }
    return undefined;
  }

  /** Position of the key `key` inside the map at `path` (for unknown keys), else of the map. */
  issueAtKey(path: Segment[], key: string, message: string): ConfigIssue {
    const map = this.node(path);
    if (map && isMap(map)) {
      const pair = (map as YAMLMap).items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key,
      );
      const keyNode = pair?.key as YamlNode | undefined;
      if (keyNode?.range) return this.issue([...path, key], message, keyNode.range[0]);
    }
    return this.issueAt([...path, key], message);
  }

  issueAt(path: Segment[], message: string): ConfigIssue {
    return this.issue(path, message, this.node(path)?.range?.[0]);
  }

  issue(path: Segment[], message: string, offset: number | undefined): ConfigIssue {
    return { file: this.file, ...this.pos(offset), path: formatPath(path), message };
  }

  yamlErrors(): ConfigIssue[] {
    // A tag the parser does not know (`!Ref x`, `!reference`) is only a warning to it, and the
    // value stays plain text: the command would be "x", silently.
    const tags = this.doc.warnings.filter((w) => w.code === 'TAG_RESOLVE_FAILED');
    return [...this.doc.errors, ...tags].map((e) => ({
      file: this.file,
      ...this.pos(e.pos[0]),
      path: '',
      message:
        e.code === 'MULTIPLE_DOCS'
          ? // the parser's text tells a programmer to call parseAllDocuments()
            'a second YAML document starts here ("---"); expected one document'
          : e.code === 'TAG_RESOLVE_FAILED'
            ? `${e.message
                .split('\n')[0]!
                .replace(/^Unresolved tag: (\S+).*$/, 'unresolved YAML tag $1')
                .replace('tag:yaml.org,2002:', '!!')}: dist-build.yml takes plain values`
            : shortenQuotes(e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')),
    }));
  }
}

export function formatPath(path: Segment[]): string {
  return path
    .map((s, i) =>
      typeof s === 'number'
        ? `[${s}]`
        : /^[A-Za-z0-9_-]+$/.test(s)
          ? `${i ? '.' : ''}${s}`
          : `[${JSON.stringify(s)}]`,
    )
    .join('');
}

function pointerToPath(pointer: string, value: unknown): Segment[] {
  if (!pointer) return [];
  const out: Segment[] = [];
  let cur: unknown = value;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const key: Segment = Array.isArray(cur) && /^\d+$/.test(seg) ? Number(seg) : seg;
    out.push(key);
    cur =
      cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[String(key)] : undefined;
  }
  return out;
}

/** A text quoted (JSON), cut to 60 characters: a message shows what it is, not all of it. */
function quoteShort(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

/** The quoted texts (JSON) in a parser's message, each cut short (`quoteShort`). */
function shortenQuotes(message: string): string {
  return message.replace(/"(?:[^"\\]|\\.)*"/g, (q) => {
    try {
      return quoteShort(JSON.parse(q) as string);
    } catch {
      return q;
    }
  });
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${quoteShort(v)}`;
  return `${typeof v} ${String(v)}`;
}

function schemaAt(path: Segment[]): Record<string, unknown> | undefined {
  let s: Record<string, unknown> | undefined = configSchema as unknown as Record<string, unknown>;
  for (const seg of path) {
    if (!s) return undefined;
    const props = s.properties as Record<string, Record<string, unknown>> | undefined;
    if (typeof seg === 'number') s = s.items as Record<string, unknown> | undefined;
    else if (props && seg in props) s = props[seg];
    else
      s =
        typeof s.additionalProperties === 'object'
          ? (s.additionalProperties as Record<string, unknown>)
          : undefined;
  }
  return s;
}

function describeSchemaError(
  e: ErrorObject,
  value: unknown,
  loc: Locator,
  data: unknown,
): ConfigIssue {
  const path = pointerToPath(e.instancePath, data);
  const p = e.params as Record<string, unknown>;
  if (e.propertyName !== undefined) {
    // An error inside `propertyNames`: the key itself is wrong.
    const what =
      e.keyword === 'pattern'
        ? `: expected ${PATTERN_TEXT[String(p.pattern)] ?? String(p.pattern)}`
        : '';
    return loc.issueAtKey(path, e.propertyName, `invalid name "${e.propertyName}"${what}`);
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const known = Object.keys((schemaAt(path)?.properties as object) ?? {});
      const hint = known.length ? `; expected one of: ${known.join(', ')}` : '';
      return loc.issueAtKey(path, key, `unknown key "${key}"${didYouMean(key, known)}${hint}`);
    }
    case 'required':
      return loc.issueAt(path, `missing required key "${String(p.missingProperty)}"`);
    case 'type': {
      const types = (Array.isArray(p.type) ? p.type : String(p.type).split(',')).map((t) =>
        t === 'object' ? 'a mapping' : t === 'array' ? 'a list' : String(t),
      );
      const expected =
        types.length > 1 ? `${types.slice(0, -1).join(', ')} or ${types.at(-1)}` : types[0];
      return loc.issueAt(path, `expected ${expected}, got ${typeName(value)}`);
    }
    case 'minLength':
      return loc.issueAt(path, 'expected a non-empty string');
    case 'const':
      return loc.issueAt(
        path,
        `expected ${JSON.stringify(p.allowedValue)}, got ${typeName(value)}`,
      );
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map(String);
      const hint = typeof value === 'string' ? didYouMean(value, allowed) : '';
      return loc.issueAt(
        path,
        `got ${typeName(value)}${hint}; expected one of: ${allowed.join(', ')}`,
      );
    }
    case 'pattern': {
      const what = PATTERN_TEXT[String(p.pattern)] ?? `a string matching ${String(p.pattern)}`;
      return loc.issueAt(path, `got ${typeName(value)}; expected ${what}`);
    }
    case 'uniqueItems':
      return loc.issueAt(
        path,
        `items must be unique (items ${String(p.j)} and ${String(p.i)} are equal)`,
      );
    case 'minProperties':
      return loc.issueAt(path, 'expected at least one entry');
    case 'minItems': {
      const n = (value as unknown[]).length;
      const limit = Number(p.limit);
      return loc.issueAt(
        path,
        `expected at least ${limit} ${limit === 1 ? 'entry' : 'entries'}, got ${n === 0 ? 'an empty list' : n}`,
      );
    }
    default:
      return loc.issueAt(
        path,
        `${e.message ?? 'invalid'}${value === undefined ? '' : `, got ${typeName(value)}`}`,
      );
  }
}

/** Names are used in cache keys, file names and matrix ids, so they are kept plain. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

function didYouMean(word: string, options: string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const o of options) {
    const d = levenshtein(word, o);
    if (d < bestD) [best, bestD] = [o, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3))
    ? ` (did you mean "${best}"?)`
    : '';
}

/** A path relative to the root that stays inside it, normalized; undefined when it escapes. */
function cleanRelative(p: string): string | undefined {
  if (p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.includes('\\')) return undefined;
  const n = posix.normalize(p).replace(/\/+$/, '');
  if (n === '..' || n.startsWith('../')) return undefined;
  return n === '' ? '.' : n;
}

function toEnv(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((raw as Raw | undefined) ?? {})) out[k] = String(v);
  return out;
}

/** Finds `needs` cycles; each is returned once as the list of names along it (first = last). */
function findCycles(needs: Map<string, string[]>): string[][] {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (n: string): void => {
    state.set(n, 1);
    stack.push(n);
    for (const m of needs.get(n) ?? []) {
      if (!needs.has(m) || m === n) continue; // unknown targets and self-needs are reported apart
      if (state.get(m) === 1) cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of needs.keys()) if (!state.has(n)) visit(n);
  return cycles;
}

/**
 * Map keys as written. YAML reads `1:` and `007:` as numbers and `~:` as null, which would become
 * the names "1", "7" and "" (and `1:` and `"1":` one invocation, silently): every scalar key
 * becomes its source text, a key that is a list or mapping is a problem, and duplicate keys are
 * found here, after that. Returns the problems.
 */
function normalizeKeys(loc: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  visit(loc.doc, {
    Map(_, map, ancestors) {
      const path = keyPath(ancestors, map);
      /** Where each key was first (its offset), by name. */
      const seen = new Map<string, number | undefined>();
      for (const pair of map.items) {
        const key = pair.key as YamlNode | null;
        if (!isScalar(key)) {
          const at = (key as YamlNode | null)?.range?.[0] ?? map.range?.[0];
          issues.push(
            loc.issue(path, 'a key must be a plain name, not a list, mapping or alias', at),
          );
          continue;
        }
        if (key.type === 'PLAIN' && key.value === '<<') {
          // YAML 1.1's merge key: without this, "unknown key" or "invalid name" with no word of why.
          issues.push(
            loc.issue(
              path,
              'YAML merge keys ("<<") are not supported: write the keys out (an alias such as *name can stand for a whole value)',
              key.range?.[0],
            ),
          );
          continue;
        }
        if (typeof key.value !== 'string') key.value = key.source ?? String(key.value);
        const name = key.value as string;
        if (!seen.has(name)) {
          seen.set(name, key.range?.[0]);
          continue;
        }
        const first = loc.pos(seen.get(name)).line;
        issues.push(
          loc.issue(
            [...path, name],
            `duplicate key "${name}" (first at line ${first})`,
            key.range?.[0],
          ),
        );
      }
    },
  });
  return issues;
}

/** The key path of `node` from the visitor's ancestors (Document, maps, pairs, sequences). */
function keyPath(ancestors: readonly unknown[], node: unknown): Segment[] {
  const path: Segment[] = [];
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const a = chain[i];
    const next = chain[i + 1];
    if (isPair(a) && isScalar(a.key)) path.push(String(a.key.value));
    else if (isSeq(a)) path.push(a.items.indexOf(next as never));
  }
  return path;
}

/**
 * Environment values as written: `V: 1.10`, `Z: 007` or `H: 0x1F` are numbers to YAML (1.1, 7,
 * 31) but text to a command, so an env or build-args value keeps its source text.
 */
function keepEnvSource(loc: Locator): void {
  const entry = (map: unknown, key: string): unknown =>
    isMap(map) ? map.items.find((p) => isScalar(p.key) && p.key.value === key)?.value : undefined;
  const maps = [entry(loc.doc.contents, 'env')];
  const invocations = entry(loc.doc.contents, 'invocations');
  if (isMap(invocations)) {
    for (const { value } of invocations.items) {
      maps.push(entry(value, 'env'), entry(entry(value, 'docker'), 'build-args'));
    }
  }
  for (const map of maps) {
    if (!isMap(map)) continue;
    for (const { value: v } of map.items) {
      if (isScalar(v) && typeof v.value === 'number' && v.source !== undefined) v.value = v.source;
    }
  }
}

/** The document as plain data; an alias that cannot be resolved (or too many) is a problem. */
function toData(loc: Locator): unknown {
  try {
    return loc.doc.toJS({ maxAliasCount: 1000 }) as unknown;
  } catch (err) {
    let at: number | undefined;
    visit(loc.doc, {
      Alias(_, alias) {
        at = alias.range?.[0];
        return visit.BREAK;
      },
    });
    throw new ConfigError([loc.issue([], (err as Error).message, at)]);
  }
}

/** Parses and validates config text; throws ConfigError listing every problem. */
export function parseConfig(text: string, file: string, display: string = file): Config {
  const loc = new Locator(display, text);
  const yamlIssues = loc.yamlErrors();
  if (yamlIssues.length) throw new ConfigError(yamlIssues);
  const keyIssues = normalizeKeys(loc);
  if (keyIssues.length) throw new ConfigError(keyIssues);
  keepEnvSource(loc);
  const data = toData(loc);
  if (data === null || data === undefined) {
    throw new ConfigError([
      {
        file: display,
        line: 1,
        col: 1,
        path: '',
        message: 'the file is empty; expected a mapping with version and invocations',
      },
    ]);
  }
  const schemaErrors = validateSchema(data);
  if (schemaErrors.length) {
    const seen = new Set<string>();
    const issues: ConfigIssue[] = [];
    // A `propertyNames` error only repeats the inner error that names the key.
    for (const e of schemaErrors.filter((x) => x.keyword !== 'propertyNames')) {
      const value = pointerToPath(e.instancePath, data).reduce<unknown>(
        (v, s) => (v && typeof v === 'object' ? (v as Raw)[String(s)] : undefined),
        data,
      );
      const issue = describeSchemaError(e, value, loc, data);
      const id = `${issue.path}|${issue.message}`;
      if (seen.has(id)) continue;
      seen.add(id);
      issues.push(issue);
    }
    throw new ConfigError(issues);
  }
  return buildConfig(data as Raw, resolve(file), loc);
}

/** An image reference as Docker reads it: `api` is `docker.io/library/api:latest`. */
function tagReference(tag: string): string {
  let ref = tag.replace(/^docker\.io\//, '').replace(/^library\//, '');
  if (!ref.includes('@') && !ref.slice(ref.lastIndexOf('/') + 1).includes(':')) ref += ':latest';
  return ref;
}

function buildConfig(raw: Raw, file: string, loc: Locator): Config {
  const issues: ConfigIssue[] = [];
  const workersRaw = (raw.workers as Raw | undefined) ?? {};
  const placementRaw = (raw.placement as Raw | undefined) ?? {};
  const workers = {
    min: (workersRaw.min as number | undefined) ?? 1,
    max: (workersRaw.max as number | undefined) ?? 16,
    maxPerWorker: (workersRaw['max-per-worker'] as number | undefined) ?? 20,
  };
  if (workers.min > workers.max) {
    issues.push(
      loc.issueAt(['workers', 'min'], `min (${workers.min}) is larger than max (${workers.max})`),
    );
  }
  /** No process takes a NUL in its environment (the run failed: "string without null bytes"). */
  const checkNul = (path: Segment[], map: unknown): void => {
    for (const [k, v] of Object.entries((map as Raw | undefined) ?? {})) {
      if (typeof v === 'string' && v.includes('\0'))
        issues.push(loc.issueAt([...path, k], 'a value cannot contain a NUL character'));
      // The worker sets these for the command: a value given here would be replaced, silently.
      if (path.at(-1) === 'env' && WORKER_ENV.includes(k))
        issues.push(
          loc.issueAtKey(
            [...path],
            k,
            `${k} is set by the worker for each command (${WORKER_ENV.join(', ')})`,
          ),
        );
    }
  };
  checkNul(['env'], raw.env);
  const globalEnv = toEnv(raw.env);
  const rawInvocations = raw.invocations as Record<string, Raw>;
  const names = Object.keys(rawInvocations);
  const lower = new Map<string, string>();
  const invocations: InvocationConfig[] = [];

  const duration = (path: Segment[], v: unknown): number | undefined => {
    if (v === undefined) return undefined;
    try {
      return parseDuration(v as number | string);
    } catch (err) {
      issues.push(loc.issueAt(path, (err as Error).message));
      return undefined;
    }
  };
  /** A path normalized, or undefined (and a problem at `at`) when it may not be used. */
  const relPath = (at: Segment[], p: string): string | undefined => {
    const clean = cleanRelative(p);
    if (clean === undefined) {
      issues.push(
        loc.issueAt(
          at,
          `"${p}" must be a relative path inside the config directory (not absolute, no "..", separated by "/")`,
        ),
      );
    }
    return clean;
  };
  /** The paths of a list, normalized, each with its index in the list (bad ones left out). */
  const indexedPaths = (
    path: Segment[],
    list: unknown,
    allowNegation: boolean,
  ): { path: string; index: number }[] =>
    ((list as string[] | undefined) ?? []).flatMap((p, index) => {
      const neg = allowNegation && p.startsWith('!');
      const clean = relPath([...path, index], neg ? p.slice(1) : p);
      return clean === undefined ? [] : [{ path: neg ? `!${clean}` : clean, index }];
    });
  const relPaths = (path: Segment[], list: unknown, allowNegation: boolean): string[] =>
    indexedPaths(path, list, allowNegation).map((p) => p.path);
  /** Where each output was written: [invocation, output path, its index in the list]. */
  const outputAt: [string, string, number][] = [];
  /** Each docker tag: [invocation, tag, its index in the list]. */
  const tagAt: [string, string, number][] = [];

  for (const name of names) {
    const r = rawInvocations[name]!;
    const at = (...rest: Segment[]): Segment[] => ['invocations', name, ...rest];
    if (!NAME_PATTERN.test(name)) {
      issues.push(
        loc.issueAtKey(
          ['invocations'],
          name,
          `invalid invocation name "${name}": expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
        ),
      );
    }
    const other = lower.get(name.toLowerCase());
    if (other !== undefined) {
      issues.push(
        loc.issueAtKey(
          ['invocations'],
          name,
          `invocation name "${name}" differs from "${other}" only by case (names become file names)`,
        ),
      );
    }
    lower.set(name.toLowerCase(), name);

    if ((r.run === undefined) === (r.docker === undefined)) {
      issues.push(
        loc.issueAt(
          at(),
          r.run === undefined
            ? 'expected one of "run" or "docker"'
            : '"run" and "docker" cannot both be set',
        ),
      );
    }
    let docker: DockerSpec | undefined;
    if (r.docker) {
      const d = r.docker as Raw;
      const context = relPath(at('docker', 'context'), d.context as string);
      const dockerfile =
        d.file === undefined ? undefined : relPath(at('docker', 'file'), d.file as string);
      if (context !== undefined) {
        docker = {
          context,
          file: dockerfile ?? posix.join(context, 'Dockerfile'),
          platforms: (d.platforms as string[] | undefined) ?? [],
          tags: (d.tags as string[] | undefined) ?? [],
          buildArgs: toEnv(d['build-args']),
          ...(d.target === undefined ? {} : { target: d.target as string }),
          ...(d.network === undefined ? {} : { network: d.network as string }),
          ...(d.push === true ? { push: true } : {}),
        };
        docker.tags.forEach((t, i) => tagAt.push([name, t, i]));
        if (d.push === true && !((d.tags as string[] | undefined) ?? []).length)
          issues.push(
            loc.issueAt(
              at('docker', 'push'),
              'push: true needs tags (the references the image is pushed to)',
            ),
          );
      }
      if (r.platform !== undefined) {
        issues.push(
          loc.issueAt(
            at('platform'),
            'docker invocations take their platforms from docker.platforms',
          ),
        );
      }
      // A build writes nothing into the tree: such an output would never be produced.
      if (Array.isArray(r.outputs) && r.outputs.length)
        issues.push(
          loc.issueAt(
            at('outputs'),
            'a docker build writes no files into the work tree: its result is its image (saved as .dist-build/images/<unit>.tar, exported as images/<unit>.tar); files from it come out through a run invocation that needs it',
          ),
        );
    }
    const needs = (r.needs as string[] | undefined) ?? [];
    needs.forEach((n, i) => {
      if (n === name) issues.push(loc.issueAt(at('needs', i), `"${name}" cannot need itself`));
      else if (!Object.hasOwn(rawInvocations, n)) {
        issues.push(
          loc.issueAt(at('needs', i), `unknown invocation "${n}"${didYouMean(n, names)}`),
        );
      }
    });
    const outputs = indexedPaths(at('outputs'), r.outputs, false);
    const listed = new Map<string, number>();
    for (const o of outputs) {
      if (/[*?]/.test(o.path)) {
        // Taken literally, it is never produced: the run would fail after the build.
        const parts = o.path.split('/');
        const dir = parts
          .slice(
            0,
            parts.findIndex((s) => /[*?]/.test(s)),
          )
          .join('/');
        issues.push(
          loc.issueAt(
            at('outputs', o.index),
            `output "${o.path}" is a pattern; an output is the path of a file or directory${dir ? ` (such as "${dir}")` : ''}`,
          ),
        );
        continue;
      }
      if (listed.has(o.path)) {
        issues.push(
          loc.issueAt(
            at('outputs', o.index),
            `"${o.path}" is listed twice (outputs[${listed.get(o.path)}])`,
          ),
        );
      } else listed.set(o.path, o.index);
      outputAt.push([name, o.path, o.index]);
    }
    const rawInputs = (r.inputs as string[] | undefined) ?? [];
    rawInputs.forEach((p, i) => {
      // "!" alone is "!." to the matcher: it would leave out every file, silently.
      if (p === '!') issues.push(loc.issueAt(at('inputs', i), 'expected a pattern after "!"'));
    });
    if (rawInputs.length > 0 && rawInputs.every((p) => p.startsWith('!') && p !== '!')) {
      issues.push(
        loc.issueAt(
          at('inputs'),
          'only exclusions: a "!pattern" leaves files out of what the other patterns match, and there are none (add one, such as "**")',
        ),
      );
    }
    const inv: InvocationConfig = {
      name,
      inputs: relPaths(at('inputs'), r.inputs, true),
      outputs: [...listed.keys()],
      needs,
      export: (r.export as boolean | undefined) ?? false,
      env: { ...globalEnv, ...toEnv(r.env) },
      labels: (r.labels as string[] | undefined) ?? [],
      timeout: duration(at('timeout'), r.timeout) ?? 3600,
    };
    inv.labels.forEach((label, i) => {
      if (!LABEL.test(label)) {
        issues.push(
          loc.issueAt(
            at('labels', i),
            `label ${JSON.stringify(label)} can never match: a worker's labels have no spaces or commas (one label per item)`,
          ),
        );
      }
    });
    checkNul(at('env'), r.env);
    checkNul(at('docker', 'build-args'), (r.docker as Raw | undefined)?.['build-args']);
    if (r.run !== undefined) {
      inv.run = r.run as string;
      if (inv.run.includes('\0')) {
        issues.push(loc.issueAt(at('run'), 'a command cannot contain a NUL character'));
      }
    }
    if (inv.timeout === 0) {
      issues.push(loc.issueAt(at('timeout'), 'expected a timeout longer than 0 s'));
    }
    if (docker) inv.docker = docker;
    if (r.platform !== undefined) inv.platform = r.platform as string;
    const estimate = duration(at('estimate'), r.estimate);
    // `estimate: 0` is refused by the schema; "0s" must be too (a unit of no length takes no
    // room on any worker, and the ones placed after it lose their balance).
    if (estimate === 0) {
      issues.push(loc.issueAt(at('estimate'), 'expected an estimate longer than 0 s'));
    }
    if (estimate !== undefined) inv.estimate = estimate;
    invocations.push(inv);
  }

  // Two invocations writing the same place would make a result ambiguous. Each output is checked
  // against the earlier ones (earlier invocations' first): the same path or one of its parent
  // directories (`exact`), or a path below it (`below`), each looked up by path, not pairwise.
  const exact = new Map<string, { name: string; path: string }>();
  const below = new Map<string, { name: string; path: string }>();
  for (const [name, path, index] of outputAt) {
    const parts = path.split('/');
    let clash: { name: string; path: string } | undefined;
    for (let k = 1; k <= parts.length && !clash; k++) {
      const e = exact.get(parts.slice(0, k).join('/'));
      if (e && e.name !== name) clash = e;
    }
    const under = below.get(path);
    if (!clash && under && under.name !== name) clash = under;
    if (clash) {
      issues.push(
        loc.issueAt(
          ['invocations', name, 'outputs', index],
          `output "${path}" overlaps output "${clash.path}" of invocation "${clash.name}"`,
        ),
      );
    }
    if (!exact.has(path)) exact.set(path, { name, path });
    for (let k = 1; k < parts.length; k++) {
      const parent = parts.slice(0, k).join('/');
      if (!below.has(parent)) below.set(parent, { name, path });
    }
  }

  // Each docker build saves its image by its tags: two builds tagging the same reference (in the
  // one daemon `dist-build run` workers share) would each save whichever image was tagged last.
  const tagged = new Map<string, string>();
  for (const [name, tag, index] of tagAt) {
    const ref = tagReference(tag);
    const other = tagged.get(ref);
    if (other !== undefined && other !== name)
      issues.push(
        loc.issueAt(
          ['invocations', name, 'docker', 'tags', index],
          `tag "${tag}" is also a tag of invocation "${other}" (each build saves the image its tags name)`,
        ),
      );
    else tagged.set(ref, name);
  }

  const cycles = findCycles(new Map(invocations.map((i) => [i.name, i.needs])));
  for (const cycle of cycles) {
    const [from, to] = [cycle[0]!, cycle[1]!];
    const index = rawInvocations[from]!.needs
      ? (rawInvocations[from]!.needs as string[]).indexOf(to)
      : 0;
    issues.push(
      loc.issueAt(['invocations', from, 'needs', index], `needs cycle: ${cycle.join(' -> ')}`),
    );
  }

  const cache = buildCache(raw.cache as Raw | undefined, loc, issues);

  // Outputs are replaced when restored, and packed when saved: none may be, hold or sit in
  // dist-build's own directory or a local store's.
  const own = [
    { path: '.dist-build', what: "dist-build's own directory (its cache, index and run state)" },
    { path: basename(file), what: 'the config file' },
    { path: '.git', what: "the repository's .git directory" },
    ...cache.stores.flatMap((store) => {
      // As the store resolves it: relative to the config directory, or absolute inside it.
      const dir =
        typeof store.dir === 'string'
          ? cleanRelative(
              relative(dirname(file), resolve(dirname(file), store.dir))
                .split(sep)
                .join('/'),
            )
          : undefined;
      return dir && dir !== '.'
        ? [{ path: dir, what: `the local store's directory "${dir}"` }]
        : [];
    }),
  ];
  for (const [name, path, index] of outputAt) {
    if (path === '.') {
      issues.push(
        loc.issueAt(
          ['invocations', name, 'outputs', index],
          'an output cannot be the whole config directory',
        ),
      );
      continue;
    }
    const clash = own.find(
      (o) => path === o.path || path.startsWith(`${o.path}/`) || o.path.startsWith(`${path}/`),
    );
    if (clash) {
      issues.push(
        loc.issueAt(
          ['invocations', name, 'outputs', index],
          `output "${path}" ${path === clash.path ? 'is' : path.startsWith(`${clash.path}/`) ? 'is in' : 'holds'} ${clash.what}`,
        ),
      );
    }
  }

  const defaultDuration =
    duration(['placement', 'default-duration'], placementRaw['default-duration']) ?? 60;
  if (defaultDuration === 0) {
    issues.push(
      loc.issueAt(['placement', 'default-duration'], 'expected a duration longer than 0 s'),
    );
  }

  if (issues.length) throw new ConfigError(issues);
  return {
    file,
    root: dirname(file),
    version: 1,
    workers,
    placement: { balance: (placementRaw.balance as number | undefined) ?? 1.1, defaultDuration },
    env: globalEnv,
    invocations,
    cache,
  };
}

/** Options of the built-in `local` store; other backends check their own options when opened. */
const LOCAL_STORE_OPTIONS = ['type', 'dir', 'max-size'];

/** The `cache` block (already schema-checked): defaults, and the local store's options. */
function buildCache(raw: Raw | undefined, loc: Locator, issues: ConfigIssue[]): CacheConfig {
  const stores = ((raw?.stores as StoreConfig[] | undefined) ?? [{ type: 'local' }]).map((s) => ({
    ...s,
  }));
  stores.forEach((store, i) => {
    if (store.type !== 'local') return;
    const at: Segment[] = ['cache', 'stores', i];
    for (const key of Object.keys(store)) {
      if (!LOCAL_STORE_OPTIONS.includes(key)) {
        issues.push(
          loc.issueAtKey(
            at,
            key,
            `unknown option "${key}" of a local store${didYouMean(key, LOCAL_STORE_OPTIONS)}; expected one of: ${LOCAL_STORE_OPTIONS.join(', ')}`,
          ),
        );
      }
    }
    if (store['max-size'] !== undefined) {
      try {
        parseSize(store['max-size'] as number | string);
      } catch (err) {
        issues.push(loc.issueAt([...at, 'max-size'], (err as Error).message));
      }
    }
  });
  const cache: CacheConfig = { stores };
  const locations: StoreLocation[] = (raw?.stores ? stores : []).map((store, i) => {
    const at: Segment[] = ['cache', 'stores', i];
    const { line, col } = loc.issueAt(at, '');
    const options = Object.fromEntries(
      Object.keys(store).map((key) => {
        const p = loc.issueAtKey(at, key, '');
        return [key, { line: p.line, col: p.col }];
      }),
    );
    return { file: loc.file, line, col, options };
  });
  Object.defineProperty(cache, 'locations', { value: locations, enumerable: false });
  const sign = raw?.sign as Raw | undefined;
  if (sign) {
    cache.sign = {
      secretEnv: (sign['secret-env'] as string | undefined) ?? 'DIST_BUILD_CACHE_SECRET',
      required: (sign.required as boolean | undefined) ?? false,
    };
  }
  return cache;
}

/**
 * The file's text. UTF-16 (what Windows PowerShell 5 writes with `>`) and bytes that are not
 * UTF-8 (a Latin-1 file) are problems: decoded anyway, the first gave "expected a mapping, got
 * string" with the whole file in it, the second silently put U+FFFD into commands and env values.
 */
export function decodeConfig(bytes: Buffer, display: string): string {
  const problem = (line: number, col: number, message: string): ConfigError =>
    new ConfigError([{ file: display, line, col, path: '', message }]);
  const bom = bytes.subarray(0, 2).toString('hex');
  if (bom === 'fffe' || bom === 'feff' || bytes.includes(0)) {
    throw problem(1, 1, 'the file is UTF-16 (or binary), not UTF-8 text: save it as UTF-8');
  }
  if (isUtf8(bytes)) return bytes.toString('utf8');
  // A newline byte is never part of a longer UTF-8 sequence: find the line, then the column.
  let line = 1;
  let start = 0;
  let end = bytes.indexOf(0x0a);
  for (;;) {
    if (end === -1) end = bytes.length;
    if (!isUtf8(bytes.subarray(start, end)) || end === bytes.length) break;
    [line, start, end] = [line + 1, end + 1, bytes.indexOf(0x0a, end + 1)];
  }
  const col = bytes.subarray(start, end).toString('utf8').indexOf('\uFFFD') + 1;
  throw problem(line, Math.max(col, 1), 'bytes that are not UTF-8: save the file as UTF-8');
}

/** Reads, parses and validates a dist-build.yml file. */
export async function loadConfig(path: string): Promise<Config> {
  const file = resolve(path);
  let text: string;
  try {
    text = decodeConfig(await readFile(file), path);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EISDIR'
          ? 'is a directory'
          : (err as Error).message;
    throw new ConfigError([
      { file: path, line: 0, col: 0, path: '', message: `cannot read config: ${why}` },
    ]);
  }
  return parseConfig(text, file, path);
}
