#!/usr/bin/env node
// TypeLite compiler: turns the typed `.tl` sources of a package into plain ES modules (.mjs).
//
//   node tools/compile.mjs --name ui --out out/ui --deps out/core packages/ui/src
//
// It strips type annotations, `type`/`interface` declarations, generics, `as` casts and
// comments; rewrites import specifiers (`./stats` -> `./stats.mjs`, `@mono/core/stats` ->
// `../core/stats.mjs`); checks that every imported name is exported by the package it comes
// from (using the `api.json` of packages compiled before, passed with --deps); checks the
// syntax of every emitted module with `node --check`; and writes `api.json`, the typed
// signatures and doc comments of all exports, which the docs are generated from.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cleanDir, fail, parseArgs, walk, writeFile } from './lib/fsutil.mjs';
import { KEYWORDS, SyntaxErrorAt, isSignificant, tokenize } from './lib/tokenize.mjs';

const TS_MODIFIERS = new Set([
  'public',
  'private',
  'protected',
  'readonly',
  'abstract',
  'override',
]);
const TYPE_OPERATOR_WORDS = new Set(['keyof', 'typeof', 'extends', 'infer', 'is', 'readonly']);
const OPEN = { '(': ')', '[': ']', '{': '}' };

export class CompileError extends Error {}

/**
 * Compiles one TypeLite module. Returns `{ code, exports, imports }`: the JavaScript text, the
 * exported declarations (with their typed signatures and doc comments) and the imports.
 */
export function compileTypeLite(src, file = '<input>') {
  const toks = tokenize(src, file);
  const out = [];
  const exported = [];
  const imports = [];
  const braces = []; // 'class' | 'block'
  const classApis = []; // member lists of the classes being compiled (null when not exported)
  let memberStart = false;
  let prevSig = null;
  let pendingExport = null;
  let i = 0;

  const isP = (k, v) => toks[k]?.type === 'punct' && toks[k].value === v;
  const isId = (k, v) => toks[k]?.type === 'ident' && (v === undefined || toks[k].value === v);
  const nextSig = (k) => {
    while (k < toks.length && !isSignificant(toks[k])) k++;
    return k;
  };
  const prevSigIndex = (k) => {
    k--;
    while (k >= 0 && !isSignificant(toks[k])) k--;
    return k;
  };
  const error = (k, msg) => {
    const t = toks[Math.min(k, toks.length - 1)];
    throw new CompileError(`${file}:${t.line}:${t.col}: ${msg}`);
  };
  const emitToken = (t) => {
    if (t.type !== 'comment') out.push(t.value);
    else if (t.value.startsWith('/*')) out.push(t.value.includes('\n') ? '\n' : ' ');
  };
  const emitRange = (a, b) => {
    for (let k = a; k < b; k++) emitToken(toks[k]);
    const last = prevSigIndex(b);
    if (last >= a) prevSig = toks[last];
  };
  const text = (a, b) =>
    toks
      .slice(a, b)
      .filter(isSignificant)
      .map((t) => t.value)
      .join(' ')
      .replace(/ (?!\.\.\.)([,;:)\]?.<>]|\()/g, '$1')
      .replace(/(?<=[\w\]>)]) \[/g, '[')
      .replace(/([([.<]) /g, '$1')
      .replace(/\( /g, '(')
      .replace(/,\)/g, ')');
  const docBefore = (k) => {
    k--;
    while (k >= 0 && toks[k].type === 'ws') k--;
    const t = toks[k];
    if (t?.type !== 'comment' || !t.value.startsWith('/**')) return '';
    return t.value
      .slice(3, -2)
      .split('\n')
      .map((l) => l.replace(/^\s*\* ?/, '').trimEnd())
      .join('\n')
      .trim();
  };

  // Index of the bracket closing the one at `k`.
  const matchClose = (k) => {
    const stack = [];
    for (let j = k; j < toks.length; j++) {
      const t = toks[j];
      if (t.type !== 'punct') continue;
      if (OPEN[t.value]) stack.push(OPEN[t.value]);
      else if (t.value === ')' || t.value === ']' || t.value === '}') {
        if (stack.pop() !== t.value) error(j, `unbalanced '${t.value}'`);
        if (stack.length === 0) return j;
      }
    }
    return error(k, `'${toks[k].value}' is never closed`);
  };
  // Index of the `>` closing the generic parameter list that starts at `k`.
  const matchAngle = (k) => {
    let depth = 0;
    for (let j = k; j < toks.length; j++) {
      const v = toks[j].type === 'punct' ? toks[j].value : '';
      if (v === '<') depth++;
      else if (v === '>' || v === '>>' || v === '>>>') depth -= v.length;
      if (depth <= 0 && v.startsWith('>')) return j;
    }
    return error(k, `'<' is never closed`);
  };
  // Skips a type starting at `k`; returns the index of the token that ends it. The type ends at
  // a closing bracket, `;`, `,` or `=` outside brackets, or at a token of `soft` ('{', '=>')
  // that follows a complete type.
  const skipType = (k, soft = []) => {
    let depth = 0;
    let expectOperand = true;
    for (k = nextSig(k); k < toks.length; k = nextSig(k + 1)) {
      const { type, value: v } = toks[k];
      if (type === 'punct') {
        if (depth === 0) {
          if ([')', ']', '}', ';', ',', '='].includes(v)) return k;
          if (!expectOperand && soft.includes(v)) return k;
        }
        if (v === '(' || v === '[' || v === '{' || v === '<') {
          depth++;
          expectOperand = true;
        } else if (v === ')' || v === ']' || v === '}') {
          depth--;
          expectOperand = false;
        } else if (v === '>' || v === '>>' || v === '>>>') {
          depth -= v.length;
          expectOperand = false;
          if (depth < 0) return error(k, `unexpected '${v}' in a type`);
        } else {
          expectOperand = true;
        }
      } else if (type === 'ident') {
        expectOperand = TYPE_OPERATOR_WORDS.has(v);
      } else {
        expectOperand = false;
      }
    }
    return error(k, 'unterminated type');
  };
  // Drops the annotation starting at the `:` (or `as`) at `k`; returns where to continue. The
  // whitespace after the type is kept.
  const dropAnnotation = (k, soft) => {
    const stop = skipType(k + 1, soft);
    return prevSigIndex(stop) + 1;
  };
  // Drops a statement (`type X = ...;`) from `k` up to and including the `;` at depth 0.
  const endOfStatement = (k) => {
    let depth = 0;
    for (let j = k; j < toks.length; j++) {
      const v = toks[j].type === 'punct' ? toks[j].value : '';
      if (v === '(' || v === '[' || v === '{') depth++;
      else if (v === ')' || v === ']' || v === '}') depth--;
      else if (v === ';' && depth === 0) return j;
    }
    return error(k, "missing ';'");
  };

  // Emits a parameter list starting at the `(` at `k` without types; returns the index after `)`.
  const params = (k) => {
    emitRange(k, k + 1);
    let j = k + 1;
    for (;;) {
      let s = nextSig(j);
      emitRange(j, s);
      j = s;
      if (isP(j, ')')) {
        emitRange(j, j + 1);
        return j + 1;
      }
      if (isP(j, '...')) {
        emitRange(j, j + 1);
        j = nextSig(j + 1);
      }
      if (isId(j) && TS_MODIFIERS.has(toks[j].value) && isId(nextSig(j + 1))) {
        error(j, 'parameter properties are not supported; assign the field in the constructor');
      }
      if (isId(j)) {
        emitRange(j, j + 1);
        j++;
      } else if (isP(j, '{') || isP(j, '[')) {
        const end = matchClose(j) + 1;
        emitRange(j, end);
        j = end;
      } else error(j, 'expected a parameter name');
      s = nextSig(j);
      if (isP(s, '?')) j = s + 1;
      s = nextSig(j);
      if (isP(s, ':')) j = dropAnnotation(s);
      s = nextSig(j);
      if (isP(s, '=')) {
        let depth = 0;
        let e = s;
        for (; e < toks.length; e++) {
          const v = toks[e].type === 'punct' ? toks[e].value : '';
          if (OPEN[v]) depth++;
          else if (v === ')' || v === ']' || v === '}') {
            if (depth === 0) break;
            depth--;
          } else if (v === ',' && depth === 0) break;
        }
        emitRange(j, e);
        j = e;
        s = nextSig(j);
      }
      if (isP(s, ',')) {
        emitRange(j, s + 1);
        j = s + 1;
      } else if (!isP(s, ')')) error(s, "expected ',' or ')' in a parameter list");
    }
  };

  const handleFunction = (k) => {
    const start = k;
    let j = nextSig(k + 1);
    if (isP(j, '*')) j = nextSig(j + 1);
    let name = null;
    if (isId(j)) {
      name = toks[j].value;
      j++;
    }
    emitRange(k, j);
    j = nextSig(j);
    if (isP(j, '<')) j = matchAngle(j) + 1;
    j = nextSig(j);
    if (!isP(j, '(')) error(j, "expected '(' after function");
    j = params(j);
    const s = nextSig(j);
    if (isP(s, ':')) j = dropAnnotation(s, ['{']);
    if (pendingExport && name) {
      record({ name, kind: 'function', signature: text(start, nextSig(j)) });
    }
    return j;
  };

  const handleDeclaration = (k) => {
    let j = nextSig(k + 1);
    const first = j;
    if (isId(j)) j++;
    else if (isP(j, '{') || isP(j, '[')) j = matchClose(j) + 1;
    else error(j, 'expected a name');
    emitRange(k, j);
    const s = nextSig(j);
    let end = j;
    if (isP(s, ':')) {
      end = dropAnnotation(s);
      j = end;
    }
    if (pendingExport) {
      if (!isId(first)) error(first, 'exported declarations must bind a single name');
      record({ name: toks[first].value, kind: 'const', signature: text(k, end) });
    }
    return j;
  };

  const handleClass = (k) => {
    let j = nextSig(k + 1);
    let name = null;
    if (isId(j) && toks[j].value !== 'extends') {
      name = toks[j].value;
      j++;
    }
    emitRange(k, j);
    let s = nextSig(j);
    if (isP(s, '<')) j = matchAngle(s) + 1;
    s = nextSig(j);
    if (isId(s, 'extends')) {
      let e = s;
      while (!isP(e, '{') && !isId(e, 'implements')) e++;
      emitRange(j, e);
      j = e;
    }
    if (isId(j, 'implements')) while (!isP(j, '{')) j++;
    s = nextSig(j);
    if (!isP(s, '{')) error(s, "expected '{' after class heading");
    let api = null;
    if (pendingExport && name) {
      api = [];
      record({ name, kind: 'class', signature: text(k, s), members: api });
    }
    emitRange(j, s + 1);
    braces.push('class');
    classApis.push(api);
    memberStart = true;
    return s + 1;
  };

  const classMember = (k) => {
    memberStart = false;
    let j = k;
    let hidden = false;
    const sigStart = [];
    for (;;) {
      const after = nextSig(j + 1);
      const isModifier = !['(', '=', ':', ';', '?', '!'].some((p) => isP(after, p));
      if (isId(j) && TS_MODIFIERS.has(toks[j].value) && isModifier) {
        if (toks[j].value === 'private' || toks[j].value === 'protected') hidden = true;
        j = after;
      } else if (
        isId(j) &&
        ['static', 'async', 'get', 'set'].includes(toks[j].value) &&
        isModifier
      ) {
        sigStart.push(toks[j].value);
        emitRange(j, after);
        j = after;
      } else if (isP(j, '*')) {
        emitRange(j, after);
        j = after;
      } else break;
    }
    const nameAt = j;
    if (isP(j, '[')) j = matchClose(j) + 1;
    else if (isId(j) || toks[j].type === 'string' || toks[j].type === 'number') j++;
    else error(j, 'expected a class member');
    emitRange(nameAt, j);
    const name = toks[nameAt].value;
    if (name.startsWith('#')) hidden = true;
    let s = nextSig(j);
    if (isP(s, '?') || isP(s, '!')) {
      j = s + 1;
      s = nextSig(j);
    }
    if (isP(s, '<')) {
      j = matchAngle(s) + 1;
      s = nextSig(j);
    }
    const api = classApis.at(-1);
    if (isP(s, '(')) {
      emitRange(j, s);
      j = params(s);
      const r = nextSig(j);
      if (isP(r, ':')) j = dropAnnotation(r, ['{']);
      if (api && !hidden) {
        api.push([...sigStart, text(nameAt, nextSig(j))].join(' '));
      }
    } else if (isP(s, ':')) {
      const end = dropAnnotation(s);
      if (api && !hidden) api.push([...sigStart, text(nameAt, end)].join(' '));
      j = end;
    }
    return j;
  };

  const handleImport = (k) => {
    const end = endOfStatement(k);
    const first = nextSig(k + 1);
    if (isId(first, 'type')) return end + 1; // type-only import: nothing at run time
    const names = [];
    let spec = null;
    for (let j = first; j < end; j = nextSig(j + 1)) {
      const t = toks[j];
      if (t.type === 'string') {
        spec = j;
      } else if (t.type === 'ident' && t.value !== 'from' && t.value !== 'as') {
        const prevAs = isId(prevSigIndex(j), 'as');
        if (!prevAs) names.push({ imported: t.value, local: t.value });
        else names.at(-1).local = t.value;
      }
    }
    if (spec === null) error(k, 'import without a module specifier');
    const raw = toks[spec].value.slice(1, -1);
    const resolved = resolveSpecifier(raw, () => error(spec, `cannot import '${raw}'`));
    imports.push({ specifier: raw, names, line: toks[k].line });
    emitRange(k, spec);
    out.push(`'${resolved}'`);
    emitRange(spec + 1, end + 1);
    return end + 1;
  };

  const record = (entry) => {
    exported.push({ ...entry, doc: pendingExport.doc });
    pendingExport = null;
  };

  while (i < toks.length) {
    const t = toks[i];
    if (!isSignificant(t)) {
      emitToken(t);
      i++;
      continue;
    }
    const v = t.value;
    const statementStart =
      prevSig === null || (prevSig.type === 'punct' && [';', '{', '}'].includes(prevSig.value));
    const next = nextSig(i + 1);

    if (t.type === 'ident') {
      if (braces.at(-1) === 'class' && memberStart) {
        i = classMember(i);
        continue;
      }
      if (statementStart && v === 'export') {
        if (isId(next, 'type') || isId(next, 'interface')) {
          pendingExport = { doc: docBefore(i) };
          const stop = isId(next, 'type') ? endOfStatement(next) : matchClose(findBrace(next));
          record({
            name: toks[nextSig(next + 1)].value,
            kind: 'type',
            signature: text(next, stop + 1),
          });
          i = stop + 1;
          continue;
        }
        if (isId(next, 'default')) error(i, 'default exports are not supported');
        if (isP(next, '{')) {
          const close = matchClose(next);
          for (let j = nextSig(next + 1); j < close; j = nextSig(j + 1)) {
            if (!isId(j) || toks[j].value === 'as' || isId(nextSig(j + 1), 'as')) continue;
            pendingExport = { doc: '' };
            record({ name: toks[j].value, kind: 'alias', signature: '' });
          }
          const end = endOfStatement(i);
          emitRange(i, end + 1);
          i = end + 1;
          continue;
        } else {
          pendingExport = { doc: docBefore(i) };
        }
      } else if (
        statementStart &&
        v === 'type' &&
        isId(next) &&
        (isP(nextSig(next + 1), '=') || isP(nextSig(next + 1), '<'))
      ) {
        i = endOfStatement(i) + 1;
        continue;
      } else if (statementStart && v === 'interface' && isId(next)) {
        i = matchClose(findBrace(i)) + 1;
        continue;
      } else if (statementStart && v === 'import' && !isP(next, '(')) {
        i = handleImport(i);
        continue;
      } else if (v === 'function') {
        i = handleFunction(i);
        continue;
      } else if (v === 'class') {
        i = handleClass(i);
        continue;
      } else if (v === 'let' || v === 'const' || v === 'var') {
        i = handleDeclaration(i);
        continue;
      } else if (v === 'as' && isOperand(prevSig)) {
        if (/^[ \t]+$/.test(out.at(-1))) out.pop();
        i = dropAnnotation(i);
        continue;
      } else if (isP(next, '<') && isId(prevSigIndex(i), 'new')) {
        emitRange(i, i + 1);
        i = matchAngle(next) + 1;
        continue;
      }
    } else if (t.type === 'punct') {
      if (v === '(' && !isCallee(prevSig)) {
        const close = matchClose(i);
        const after = nextSig(close + 1);
        let arrow = isP(after, '=>');
        let resume = -1;
        if (!arrow && isP(after, ':')) {
          const stop = skipType(after + 1, ['=>']);
          if (isP(stop, '=>')) {
            arrow = true;
            resume = prevSigIndex(stop) + 1;
          }
        }
        if (arrow) {
          const j = params(i);
          i = resume >= 0 ? resume : j;
          continue;
        }
      } else if (v === '{') {
        braces.push('block');
      } else if (v === '}') {
        if (braces.pop() === 'class') classApis.pop();
        if (braces.at(-1) === 'class') memberStart = true;
      } else if (v === ';' && braces.at(-1) === 'class') {
        memberStart = true;
        emitToken(t);
        prevSig = t;
        i++;
        continue;
      }
    }
    emitToken(t);
    prevSig = t;
    i++;
  }
  if (pendingExport) error(toks.length - 1, "'export' is not followed by a declaration");

  function findBrace(k) {
    while (k < toks.length && !isP(k, '{')) k++;
    return k;
  }

  return { code: tidy(out.join('')), exports: exported, imports };
}

function isOperand(tok) {
  if (tok === null) return false;
  if (tok.type === 'ident') return !KEYWORDS.has(tok.value);
  if (tok.type === 'punct') return tok.value === ')' || tok.value === ']';
  return tok.type !== 'regex';
}

function isCallee(tok) {
  if (tok === null || tok.type === 'punct')
    return tok !== null && (tok.value === ')' || tok.value === ']');
  if (tok.type === 'ident') return !KEYWORDS.has(tok.value);
  return tok.type === 'template';
}

/** Removes trailing spaces, repeated blank lines and leading/trailing blank lines. */
function tidy(code) {
  const lines = [];
  for (const raw of code.split('\n')) {
    const line = raw.trimEnd();
    if (line === '' && (lines.length === 0 || lines.at(-1) === '')) continue;
    lines.push(line);
  }
  while (lines.at(-1) === '') lines.pop();
  return lines.join('\n') + '\n';
}

/** Maps a TypeLite import specifier to the path of the compiled module. */
export function resolveSpecifier(spec, onError) {
  if (spec.startsWith('node:')) return spec;
  if (spec.startsWith('./')) return `${spec}.mjs`;
  const m = /^@mono\/([a-z0-9-]+)\/([a-z0-9-/]+)$/.exec(spec);
  if (m) return `../${m[1]}/${m[2]}.mjs`;
  return onError();
}

function main(argv) {
  const args = parseArgs(argv);
  if (!args.name || !args.out || args._.length === 0) {
    fail('usage: compile.mjs --name <pkg> --out <dir> [--deps dir,dir] <srcdir>...');
  }
  const modules = [];
  for (const dir of args._) {
    for (const rel of walk(dir).filter((f) => f.endsWith('.tl'))) {
      const name = rel.slice(0, -3);
      if (modules.some((m) => m.name === name)) fail(`module '${name}' is defined twice`);
      modules.push({ name, file: join(dir, rel) });
    }
  }
  const deps = new Map();
  for (const dir of args.deps ? String(args.deps).split(',') : []) {
    deps.set(basename(dir), JSON.parse(readFileSync(join(dir, 'api.json'), 'utf8')));
  }

  const compiled = [];
  for (const m of modules) {
    try {
      compiled.push({ ...m, ...compileTypeLite(readFileSync(m.file, 'utf8'), m.file) });
    } catch (e) {
      if (e instanceof CompileError || e instanceof SyntaxErrorAt) fail(e.message);
      throw e;
    }
  }
  const api = {
    package: args.name,
    modules: compiled.map((m) => ({ name: m.name, source: m.file, exports: m.exports })),
  };
  deps.set(args.name, api);

  // Link check: every imported name must be exported by the module it is imported from.
  const problems = [];
  for (const m of compiled) {
    for (const imp of m.imports) {
      if (imp.specifier.startsWith('node:')) continue;
      const [, pkg, mod] = imp.specifier.startsWith('./')
        ? [null, args.name, imp.specifier.slice(2)]
        : /^@mono\/([^/]+)\/(.+)$/.exec(imp.specifier);
      const target = deps.get(pkg)?.modules.find((x) => x.name === mod);
      if (!target) {
        problems.push(
          `${m.file}:${imp.line}: '${imp.specifier}' is not a known module (compiled dependencies: ${[...deps.keys()].join(', ')})`,
        );
        continue;
      }
      for (const { imported } of imp.names) {
        if (!target.exports.some((e) => e.name === imported && e.kind !== 'type')) {
          problems.push(
            `${m.file}:${imp.line}: '${imported}' is not exported by '${imp.specifier}'`,
          );
        }
      }
    }
  }
  if (problems.length > 0) fail(`link check failed:\n  ${problems.join('\n  ')}`);

  cleanDir(args.out);
  for (const m of compiled) {
    const file = join(args.out, `${m.name}.mjs`);
    writeFile(file, `// Generated by tools/compile.mjs from ${m.file}. Do not edit.\n${m.code}`);
    const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' });
    if (check.status !== 0) fail(`emitted invalid JavaScript for ${m.file}:\n${check.stderr}`);
  }
  writeFile(join(args.out, 'api.json'), `${JSON.stringify(api, null, 2)}\n`);
  const count = compiled.reduce((n, m) => n + m.exports.length, 0);
  console.log(
    `compiled ${compiled.length} modules of @mono/${args.name} (${count} exports) into ${args.out}`,
  );
  if (!existsSync(join(args.out, 'api.json'))) fail('api.json was not written');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2));
}
