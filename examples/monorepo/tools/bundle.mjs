#!/usr/bin/env node
// A small module bundler: follows the imports of an entry ES module and concatenates every
// module it reaches, in dependency order, into one self-contained script.
//
//   node tools/bundle.mjs --entry out/app/main.mjs --root out --out out/bundle --name app
//
// Each module becomes a function whose result is the frozen object of its exports; imports
// become destructuring reads of that object. Writes <name>.cjs (readable), <name>.min.cjs
// (whitespace and comments removed by a token-level minifier) and manifest.json (the
// modules in order, with sizes and SHA-256 digests).
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { cleanDir, fail, parseArgs, writeFile } from './lib/fsutil.mjs';
import { isSignificant, tokenize } from './lib/tokenize.mjs';

/**
 * Rewrites one ES module into the body of a module function. Returns `{ body, deps }` where
 * `deps` are the resolved paths of the imported modules.
 */
export function transformModule(code, file, idOf) {
  const toks = tokenize(code, file);
  const out = [];
  const exported = [];
  const deps = [];
  const sig = (k) => {
    while (k < toks.length && !isSignificant(toks[k])) k++;
    return k;
  };
  let depth = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if (t.type === 'punct' && '([{'.includes(t.value)) depth++;
    if (t.type === 'punct' && ')]}'.includes(t.value)) depth--;
    if (t.type !== 'ident' || depth !== 0) {
      out.push(t.value);
      continue;
    }
    if (t.value === 'import' && !(toks[sig(i + 1)].value === '(')) {
      let end = i;
      while (!(toks[end].type === 'punct' && toks[end].value === ';')) end++;
      const parts = toks.slice(i + 1, end).filter(isSignificant);
      const spec = parts.find((p) => p.type === 'string');
      if (!spec) fail(`${file}: unsupported import`);
      const target = resolve(dirname(file), spec.value.slice(1, -1));
      deps.push(target);
      const id = JSON.stringify(idOf(target));
      const braceOpen = parts.findIndex((p) => p.value === '{');
      if (parts[0].value === '*') {
        out.push(`const ${parts[2].value} = __modules[${id}];`);
      } else if (braceOpen >= 0) {
        const names = [];
        for (let k = braceOpen + 1; parts[k].value !== '}'; k++) {
          if (parts[k].value === ',') continue;
          if (parts[k + 1]?.value === 'as') {
            names.push(`${parts[k].value}: ${parts[k + 2].value}`);
            k += 2;
          } else names.push(parts[k].value);
        }
        out.push(`const { ${names.join(', ')} } = __modules[${id}];`);
      } else {
        fail(`${file}: default imports are not supported`);
      }
      i = end;
    } else if (t.value === 'export') {
      const k = sig(i + 1);
      const next = toks[k];
      if (next.value === '{') {
        let end = k;
        while (toks[end].value !== '}') end++;
        const names = toks.slice(k + 1, end).filter((x) => x.type === 'ident');
        for (let n = 0; n < names.length; n++) {
          if (names[n + 1]?.value === 'as') {
            exported.push(`${names[n + 2].value}: ${names[n].value}`);
            n += 2;
          } else exported.push(names[n].value);
        }
        i = sig(end + 1);
        if (toks[i]?.value !== ';') i--;
        continue;
      }
      let d = k;
      if (toks[d].value === 'async') d = sig(d + 1);
      if (!['function', 'class', 'const', 'let'].includes(toks[d].value)) {
        fail(`${file}:${t.line}: unsupported export '${toks[d].value}'`);
      }
      let n = sig(d + 1);
      if (toks[n].value === '*') n = sig(n + 1);
      exported.push(toks[n].value);
      i = k - 1; // drop `export` and the whitespace after it
    } else {
      out.push(t.value);
    }
  }
  const body = `${out.join('').trim()}\nreturn Object.freeze({ ${exported.join(', ')} });`;
  return { body, deps };
}

/**
 * Removes comments and unneeded whitespace. Line breaks are kept where the source had them (so
 * automatic semicolon insertion behaves the same); spaces are kept only between tokens that
 * would otherwise merge.
 */
export function minify(code) {
  const toks = tokenize(code);
  const out = [];
  let pendingNewline = false;
  let pendingSpace = false;
  let last = '';
  for (const t of toks) {
    if (t.type === 'ws' || t.type === 'comment') {
      if (t.value.includes('\n') || (t.type === 'comment' && t.value.startsWith('//'))) {
        pendingNewline = last !== '';
      } else pendingSpace = true;
      continue;
    }
    const first = t.value[0];
    const end = last.at(-1) ?? '';
    const word = /[A-Za-z0-9_$#\\]/;
    if (pendingNewline) {
      out.push('\n');
    } else if (
      pendingSpace &&
      ((word.test(end) && word.test(first)) ||
        (end === '+' && first === '+') ||
        (end === '-' && first === '-') ||
        (end === '/' && first === '/') ||
        (end === '.' && /[0-9]/.test(first)) ||
        (t.type === 'regex' && end === '/'))
    ) {
      out.push(' ');
    }
    out.push(t.value);
    last = t.value;
    pendingNewline = false;
    pendingSpace = false;
  }
  return out.join('') + '\n';
}

function main(argv) {
  const args = parseArgs(argv, { name: 'bundle' });
  if (!args.entry || !args.root || !args.out) {
    fail('usage: bundle.mjs --entry <file.mjs> --root <dir> --out <dir> [--name app]');
  }
  const root = resolve(args.root);
  const idOf = (file) =>
    relative(root, file)
      .split(sep)
      .join('/')
      .replace(/\.mjs$/, '');

  // Depth-first walk: a module is emitted after everything it imports.
  const order = [];
  const modules = new Map();
  const visiting = new Set();
  const visit = (file, from) => {
    if (modules.has(file)) return;
    if (visiting.has(file)) fail(`import cycle through ${idOf(file)} (imported by ${idOf(from)})`);
    visiting.add(file);
    let code;
    try {
      code = readFileSync(file, 'utf8');
    } catch {
      fail(
        `cannot read ${relative(process.cwd(), file)} (imported by ${from ? idOf(from) : 'the command line'})`,
      );
    }
    const m = transformModule(code, file, idOf);
    for (const dep of m.deps) visit(dep, file);
    visiting.delete(file);
    modules.set(file, { id: idOf(file), ...m, source: code });
    order.push(file);
  };
  visit(resolve(args.entry), null);

  const header =
    `#!/usr/bin/env node\n` +
    `// ${args.name} — ${order.length} modules bundled by tools/bundle.mjs. Do not edit.\n`;
  const parts = [`${header}'use strict';\n(() => {\nconst __modules = Object.create(null);\n`];
  for (const file of order) {
    const m = modules.get(file);
    parts.push(
      `// ---- ${m.id}\n__modules[${JSON.stringify(m.id)}] = (() => {\n${m.body}\n})();\n`,
    );
  }
  parts.push('})();\n');
  const bundle = parts.join('');
  const minified = header + minify(bundle.slice(header.length));

  cleanDir(args.out);
  const full = join(args.out, `${args.name}.cjs`);
  const min = join(args.out, `${args.name}.min.cjs`);
  writeFile(full, bundle);
  writeFile(min, minified);
  chmodSync(full, 0o755);
  chmodSync(min, 0o755);

  const digest = (s) => createHash('sha256').update(s).digest('hex');
  const manifest = {
    name: args.name,
    entry: idOf(resolve(args.entry)),
    modules: order.map((f) => {
      const m = modules.get(f);
      return { id: m.id, bytes: Buffer.byteLength(m.source), sha256: digest(m.source) };
    }),
    outputs: [full, min].map((f) => {
      const data = readFileSync(f);
      return {
        file: relative(args.out, f),
        bytes: data.length,
        gzipBytes: gzipSync(data, { level: 9 }).length,
        sha256: digest(data),
      };
    }),
  };
  writeFile(join(args.out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const [a, b] = manifest.outputs;
  console.log(
    `bundled ${order.length} modules: ${a.file} ${a.bytes} B, ${b.file} ${b.bytes} B (${b.gzipBytes} B gzipped)`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2));
}
