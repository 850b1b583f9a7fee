/**
 * `dist-build keys`: each unit's cache key (what its result is) and affinity key (where it goes),
 * computed as `run` computes them, and what a cache key is made of (`--explain`), so that a key
 * that differs between two trees, or since an earlier time, can be explained (`--diff`): which
 * input files, env entries, command or dependencies changed.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { formatSize } from '../../config/size.js';
import { computeCacheKeys, keyWarnings } from '../../plan/keys.js';
import { outExclusion } from '../../plan/plan.js';
import { expandUnits, selectUnits } from '../../plan/units.js';
import type { Unit } from '../../plan/types.js';
import { DEFAULT_CONFIG } from '../defaults.js';
import { UsageError } from '../errors.js';
import { count, table } from '../table.js';

export const KEYS_FORMAT = 'dist-build/keys/v1';

/** A key document (see src/plan/keys.ts), as parsed back from its canonical JSON. */
interface KeyDocument {
  [field: string]: unknown;
  env?: [string, string][];
  inputs?: [string, string, string][];
  needs?: [string, string][];
}

export interface KeysJson {
  format: typeof KEYS_FORMAT;
  config: string;
  units: Record<
    string,
    {
      invocation: string;
      cacheKey: string;
      affinityKey: string;
      files: number;
      bytes: number;
      key: KeyDocument;
    }
  >;
}

interface KeysFlags {
  config: string;
  out: string;
  cacheDir?: string;
  json?: boolean;
  explain?: boolean;
  diff?: string;
}

/** Lines listed per kind of change before "and N more". */
const LIST_AT_MOST = 20;

export function registerKeys(program: Command): void {
  program
    .command('keys')
    .description(
      "Print each invocation unit's cache key (what its result is) and affinity key (where it goes), as run computes them; with --explain or --diff, what a cache key is made of.",
    )
    .argument('[units...]', 'unit ids or invocation names (default: all)')
    .option('-c, --config <file>', 'the dist-build.yml', DEFAULT_CONFIG)
    .option(
      '-o, --out <dir>',
      "the --out of the runs: left out of every invocation's inputs, as run does",
      'dist-build-out',
    )
    .option('--cache-dir <dir>', "the runs' --cache-dir: left out of the inputs, as run does")
    .option(
      '--json',
      'print one JSON object: each unit with its keys and its cache key document (for --diff)',
    )
    .option(
      '--explain',
      "print each unit's cache key document: command, env, outputs, needs, and every input file with its digest",
    )
    .option(
      '--diff <file>',
      'compare with the --json output of another tree or an earlier time, and name what changed in each unit whose cache key differs (exit 1 when one does)',
    )
    .addHelpText(
      'after',
      `
Examples:
  $ dist-build keys
  $ dist-build keys web --explain
  $ dist-build keys --json > /tmp/keys.json   # on one machine (or before a change)
  $ dist-build keys --diff /tmp/keys.json     # on another: which files make the keys differ`,
    )
    .action(async (names: string[], flags: KeysFlags) => {
      if ([flags.json, flags.explain, flags.diff !== undefined].filter(Boolean).length > 1)
        throw new UsageError('give only one of --json, --explain and --diff');
      const before = flags.diff === undefined ? undefined : await readKeysJson(flags.diff);
      const config = await loadConfig(flags.config);
      const all = expandUnits(config);
      let units: Unit[];
      try {
        units = selectUnits(all, names, false);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const keys = await computeCacheKeys(config, all, {
        exclude: [
          ...outExclusion(config.root, flags.out),
          ...(flags.cacheDir !== undefined ? outExclusion(config.root, flags.cacheDir) : []),
        ],
        documents: true,
      });
      const chosen = new Set(units.map((u) => u.id));
      for (const m of keyWarnings(units, new Map([...keys].filter(([id]) => chosen.has(id)))))
        process.stderr.write(`dist-build: warning: ${m}\n`);
      const now: KeysJson = { format: KEYS_FORMAT, config: flags.config, units: {} };
      for (const u of units) {
        const k = keys.get(u.id)!;
        now.units[u.id] = {
          invocation: u.invocation,
          cacheKey: k.cacheKey,
          affinityKey: u.affinityKey,
          files: k.files,
          bytes: k.bytes,
          key: JSON.parse(k.document!) as KeyDocument,
        };
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(now, null, 2)}\n`);
      } else if (flags.explain) {
        process.stdout.write(units.map((u) => explain(u.id, now.units[u.id]!)).join('\n'));
      } else if (before) {
        // A keys file saved in the tree (`keys --json > keys.json`, as one does) is an input of
        // every unit whose patterns match it (`**`): it alone makes their keys differ.
        const rel = outExclusion(config.root, before.file)[0];
        const holders = units.filter((u) =>
          now.units[u.id]!.key.inputs?.some(([path]) => path === rel),
        );
        if (holders.length > 0)
          process.stderr.write(
            `dist-build: warning: ${before.file} is an input of ${holders.map((u) => u.id).join(', ')} (their inputs match it): it changes their cache keys (and a run's); keep keys files out of the tree (such as > /tmp/keys.json)\n`,
          );
        const { text, differ } = diffKeys(before.json, now, names.length > 0, before.file);
        process.stdout.write(text);
        if (differ) process.exitCode = 1;
      } else {
        const rows = [['UNIT', 'CACHE KEY', 'AFFINITY KEY', 'FILES', 'SIZE']];
        for (const u of units) {
          const e = now.units[u.id]!;
          rows.push([u.id, short(e.cacheKey), e.affinityKey, String(e.files), formatSize(e.bytes)]);
        }
        process.stdout.write(`${table(rows, [false, false, false, true, true])}\n`);
      }
    });
}

async function readKeysJson(file: string): Promise<{ file: string; json: KeysJson }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--diff ${file}: cannot read it (${(err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--diff ${file}: not JSON (${(err as Error).message})`);
  }
  const j = json as Partial<KeysJson> | null;
  if (j?.format !== KEYS_FORMAT || typeof j.units !== 'object' || j.units === null)
    throw new UsageError(
      `--diff ${file}: expected the output of \`dist-build keys --json\` (format "${KEYS_FORMAT}")`,
    );
  for (const [id, u] of Object.entries(j.units as Record<string, unknown>)) {
    const problem = unitProblem(u);
    if (problem) throw new UsageError(`--diff ${file}: units.${id}: ${problem}`);
  }
  return { file, json: j as KeysJson };
}

/** What is wrong with a unit of a `keys --json` output, if anything (an edited or truncated file). */
function unitProblem(u: unknown): string | undefined {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  const tuples = (v: unknown, n: number) =>
    v === undefined ||
    (Array.isArray(v) &&
      v.every((t) => Array.isArray(t) && t.length === n && t.every((x) => typeof x === 'string')));
  if (!isObject(u)) return 'expected an object';
  if (typeof u.cacheKey !== 'string') return 'expected a "cacheKey" string';
  if (!isObject(u.key)) return 'expected a "key" object (the key document)';
  if (!tuples(u.key.inputs, 3)) return 'key.inputs: expected [path, type, digest] lists';
  if (!tuples(u.key.env, 2)) return 'key.env: expected [name, value] lists';
  if (!tuples(u.key.needs, 2)) return 'key.needs: expected [unit, cache key] lists';
  return undefined;
}

const short = (key: string): string => key.slice(0, 19);

function explain(id: string, e: KeysJson['units'][string]): string {
  const doc = e.key;
  const lines = [
    `${id}: cache key ${e.cacheKey}`,
    `  affinity key  ${e.affinityKey} (where it goes; not part of the cache key)`,
  ];
  for (const [field, value] of Object.entries(doc)) {
    if (field === 'env' || field === 'inputs' || field === 'needs') continue;
    lines.push(`  ${field.padEnd(13)} ${JSON.stringify(value)}`);
  }
  for (const [name, value] of doc.env ?? []) lines.push(`  env           ${name}=${value}`);
  for (const [unit, key] of doc.needs ?? []) lines.push(`  needs         ${unit} ${key}`);
  lines.push(`  inputs        ${count(e.files, 'file')}, ${formatSize(e.bytes)}`);
  for (const [path, type, digest] of doc.inputs ?? [])
    lines.push(`    ${type} ${digest.slice(0, 12)} ${shown(path)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * What changed between two `keys --json` outputs, unit by unit; `differ` when a cache key
 * differs or a unit is only in one of them (only the units asked for when `some`).
 */
export function diffKeys(
  before: KeysJson,
  now: KeysJson,
  some: boolean,
  file: string,
): { text: string; differ: boolean } {
  const out: string[] = [];
  let same = 0;
  let changed = 0;
  const ids = Object.keys(now.units);
  for (const id of ids) {
    const a = before.units[id];
    const b = now.units[id]!;
    if (!a) {
      out.push(`${id}: not in ${file}`);
      changed++;
      continue;
    }
    if (a.cacheKey === b.cacheKey) {
      same++;
      continue;
    }
    changed++;
    out.push(`${id}: cache key ${short(a.cacheKey)} -> ${short(b.cacheKey)}`);
    out.push(...docChanges(a.key ?? {}, b.key).map((l) => `  ${l}`));
  }
  const gone = some ? [] : Object.keys(before.units).filter((id) => !(id in now.units));
  for (const id of gone) out.push(`${id}: only in ${file}`);
  changed += gone.length;
  out.push(
    `${count(ids.length + gone.length, 'unit')}: ${same} with the same cache key, ${changed} ${changed === 1 ? 'differs' : 'differ'}`,
  );
  return { text: `${out.join('\n')}\n`, differ: changed > 0 };
}

function docChanges(a: KeyDocument, b: KeyDocument): string[] {
  const lines: string[] = [];
  const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  for (const f of fields) {
    if (f === 'env' || f === 'inputs' || f === 'needs') continue;
    const [x, y] = [JSON.stringify(a[f] ?? null), JSON.stringify(b[f] ?? null)];
    if (x !== y) lines.push(`${f}: ${clip(x)} -> ${clip(y)}`);
  }
  const env = pairsDiff(a.env ?? [], b.env ?? []);
  for (const name of env.changed) lines.push(`env ${name}: changed`);
  for (const name of env.added) lines.push(`env ${name}: added`);
  for (const name of env.removed) lines.push(`env ${name}: removed`);
  const needs = pairsDiff(a.needs ?? [], b.needs ?? []);
  if (needs.changed.length)
    lines.push(`needs, whose cache keys changed (see them): ${needs.changed.join(', ')}`);
  for (const unit of needs.added) lines.push(`needs ${unit}: added`);
  for (const unit of needs.removed) lines.push(`needs ${unit}: removed`);
  const files = pairsDiff(
    (a.inputs ?? []).map(([p, t, d]) => [p, `${t} ${d}`]),
    (b.inputs ?? []).map(([p, t, d]) => [p, `${t} ${d}`]),
  );
  for (const [what, list] of [
    ['changed', files.changed],
    ['added', files.added],
    ['removed', files.removed],
  ] as const) {
    for (const p of list.slice(0, LIST_AT_MOST)) lines.push(`input ${what}: ${shown(p)}`);
    if (list.length > LIST_AT_MOST)
      lines.push(`input ${what}: ... and ${list.length - LIST_AT_MOST} more`);
  }
  if (lines.length === 0) lines.push('(the key documents are the same: another key format?)');
  return lines;
}

function pairsDiff(
  a: readonly (readonly [string, string])[],
  b: readonly (readonly [string, string])[],
): { changed: string[]; added: string[]; removed: string[] } {
  const before = new Map(a.map(([k, v]) => [k, v]));
  const after = new Map(b.map(([k, v]) => [k, v]));
  const changed: string[] = [];
  const added: string[] = [];
  for (const [k, v] of after) {
    if (!before.has(k)) added.push(k);
    else if (before.get(k) !== v) changed.push(k);
  }
  const removed = [...before.keys()].filter((k) => !after.has(k));
  return { changed, added, removed };
}

/** A path as one line: quoted (JSON) when it has a line break or another control character. */
function shown(path: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(path) ? JSON.stringify(path) : path;
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
