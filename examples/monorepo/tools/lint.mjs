#!/usr/bin/env node
// Linter for TypeLite sources. Checks every `.tl` file under the given directories and writes
// the findings to <out>/report.txt; exits with status 1 when there is any.
//
//   node tools/lint.mjs --out out/lint packages/core/src packages/ui/src packages/app/src
//
// Rules:
//   no-var           `var` is not allowed; use `let` or `const`
//   eqeqeq           `==` and `!=` are not allowed; use `===` and `!==`
//   doc-comment      exported functions, classes and constants need a /** doc comment */
//   max-len          lines are at most 110 columns
//   no-trailing-ws   no whitespace at the end of a line
//   no-tabs          indentation uses spaces
//   unused-import    every imported name is used
//   no-console       only the app package may write to the console
//   curly            `if`/`else`/`for`/`while` bodies are blocks
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cleanDir, fail, parseArgs, walk, writeFile } from './lib/fsutil.mjs';
import { isSignificant, tokenize } from './lib/tokenize.mjs';

const MAX_LEN = 110;

export function lintSource(src, file, { allowConsole = false } = {}) {
  const problems = [];
  const report = (line, col, rule, message) => problems.push({ file, line, col, rule, message });

  src.split('\n').forEach((text, i) => {
    if (Array.from(text).length > MAX_LEN)
      report(i + 1, MAX_LEN + 1, 'max-len', `line is longer than ${MAX_LEN} columns`);
    if (/[ \t]+$/.test(text))
      report(i + 1, text.trimEnd().length + 1, 'no-trailing-ws', 'trailing whitespace');
    if (/^\s*\t/.test(text)) report(i + 1, 1, 'no-tabs', 'tab used for indentation');
  });

  const all = tokenize(src, file);
  const toks = all.filter(isSignificant);
  const imported = [];
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k];
    const prev = toks[k - 1];
    const next = toks[k + 1];
    if (t.type === 'ident' && t.value === 'var')
      report(t.line, t.col, 'no-var', "use 'let' or 'const' instead of 'var'");
    if (t.type === 'punct' && (t.value === '==' || t.value === '!=')) {
      report(t.line, t.col, 'eqeqeq', `use '${t.value}=' instead of '${t.value}'`);
    }
    if (!allowConsole && t.value === 'console' && next?.value === '.') {
      report(t.line, t.col, 'no-console', 'libraries must not write to the console');
    }
    if (t.type === 'ident' && ['if', 'for', 'while'].includes(t.value) && prev?.value !== '.') {
      // Find the closing parenthesis of the condition; the body must start with `{`.
      let depth = 0;
      let j = k + 1;
      for (; j < toks.length; j++) {
        if (toks[j].value === '(') depth++;
        if (toks[j].value === ')' && --depth === 0) break;
      }
      if (toks[j + 1] && toks[j + 1].value !== '{')
        report(t.line, t.col, 'curly', `'${t.value}' body must be a block`);
    }
    if (t.type === 'ident' && t.value === 'else' && next && !['{', 'if'].includes(next.value)) {
      report(t.line, t.col, 'curly', "'else' body must be a block");
    }
    if (t.type === 'ident' && t.value === 'export' && prev?.value !== '.' && next) {
      const kind = next.value === 'async' ? toks[k + 2]?.value : next.value;
      if (['function', 'class', 'const', 'let'].includes(kind)) {
        const at = all.indexOf(t);
        let j = at - 1;
        while (j >= 0 && all[j].type === 'ws') j--;
        if (!(all[j]?.type === 'comment' && all[j].value.startsWith('/**'))) {
          const name = toks[k + (next.value === 'async' ? 3 : 2)]?.value;
          report(
            t.line,
            t.col,
            'doc-comment',
            `exported ${kind} '${name}' needs a /** doc comment */`,
          );
        }
      }
    }
    if (t.type === 'ident' && t.value === 'import' && next?.value === '{') {
      for (let j = k + 2; toks[j] && toks[j].value !== '}'; j++) {
        if (toks[j].type !== 'ident' || toks[j].value === 'as' || toks[j + 1]?.value === 'as')
          continue;
        imported.push(toks[j]);
      }
    }
  }
  for (const name of imported) {
    const uses = toks.filter((t) => t.type === 'ident' && t.value === name.value).length;
    const inTemplates = all.filter(
      (t) => t.type === 'template' && new RegExp(`\\b${name.value}\\b`).test(t.value),
    ).length;
    if (uses + inTemplates <= 1)
      report(name.line, name.col, 'unused-import', `'${name.value}' is imported but never used`);
  }
  return problems.sort((a, b) => a.line - b.line || a.col - b.col);
}

function main(argv) {
  const args = parseArgs(argv);
  if (!args.out || args._.length === 0) fail('usage: lint.mjs --out <dir> <srcdir>...');
  const files = args._.flatMap((dir) =>
    walk(dir)
      .filter((f) => f.endsWith('.tl'))
      .map((f) => join(dir, f)),
  );
  const problems = files.flatMap((file) =>
    lintSource(readFileSync(file, 'utf8'), file, {
      allowConsole: file.startsWith('packages/app/'),
    }),
  );
  const lines = problems.map((p) => `${p.file}:${p.line}:${p.col}  ${p.rule}  ${p.message}`);
  const summary = `${files.length} files checked, ${problems.length} problem${problems.length === 1 ? '' : 's'}`;
  cleanDir(args.out);
  writeFile(join(args.out, 'report.txt'), [...lines, summary, ''].join('\n'));
  if (problems.length > 0) {
    process.stderr.write(`${lines.join('\n')}\n${summary}\n`);
    process.exit(1);
  }
  console.log(summary);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2));
}
