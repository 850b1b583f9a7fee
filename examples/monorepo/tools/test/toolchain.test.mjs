// Tests of the toolchain itself: the tokenizer, the TypeLite compiler and the minifier.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { minify } from '../bundle.mjs';
import { compileTypeLite, resolveSpecifier } from '../compile.mjs';
import { tokenize } from '../lib/tokenize.mjs';
import { lintSource } from '../lint.mjs';

const js = (src) => compileTypeLite(src).code;
/** Compiles a TypeLite function body and runs it. */
const run = (src) => new Function(js(src))();

describe('tokenize', () => {
  it('reproduces its input exactly', () => {
    for (const file of [
      'packages/core/src/primes.tl',
      'packages/ui/src/table.tl',
      'tools/compile.mjs',
    ]) {
      const src = readFileSync(file, 'utf8');
      assert.equal(
        tokenize(src)
          .map((t) => t.value)
          .join(''),
        src,
      );
    }
  });

  it('tells regular expressions from divisions', () => {
    const types = (src) =>
      tokenize(src)
        .filter((t) => t.type !== 'ws')
        .map((t) => t.type);
    assert.deepEqual(types('a / b / c'), ['ident', 'punct', 'ident', 'punct', 'ident']);
    assert.deepEqual(types('x = /a[/]b/g'), ['ident', 'punct', 'regex']);
    assert.deepEqual(types('return /x/.test(s)').slice(0, 2), ['ident', 'regex']);
  });

  it('keeps template literals with nested braces whole', () => {
    const t = tokenize('`a ${ {b: 1}.b } c` + 1');
    assert.equal(t[0].type, 'template');
    assert.equal(t[0].value, '`a ${ {b: 1}.b } c`');
  });

  it('reports unterminated strings with a position', () => {
    assert.throws(() => tokenize("let s = 'oops\n", 'x.tl'), /x\.tl:1:9: unterminated string/);
  });
});

describe('compileTypeLite', () => {
  it('strips parameter, return and variable annotations', () => {
    assert.equal(
      js(
        'function f(a: number, b?: string, ...c: number[]): Map<string, number[]> { let x: number = 1; }',
      ),
      'function f(a, b, ...c) { let x = 1; }\n',
    );
  });

  it('strips type aliases, interfaces, generics and casts', () => {
    const src = [
      'type Pair<T> = [T, T];',
      'interface Point { x: number; y: { z: string } }',
      'function id<T>(v: T): T { return v as T; }',
      'const m = new Map<string, number>();',
      'return [id, (m as any).size, "a: b" as string];',
    ].join('\n');
    const out = js(src);
    assert.doesNotMatch(out, /Pair|interface|<T>|as any/);
    const [f, size, s] = new Function(out)();
    assert.equal(f(4), 4);
    assert.equal(size, 0);
    assert.equal(s, 'a: b');
  });

  it('handles arrow functions and keeps ternaries and object literals', () => {
    const result = run(`
      const add = (a: number, b: number = 2): number => a + b;
      const pick = ({ x, y }: { x: number; y: number }): number => x * y;
      const o = { k: 1, l: true ? 'yes' : 'no' };
      return [add(1), pick({ x: 2, y: 3 }), o.l, (o.k) ? 'k' : 'none'];`);
    assert.deepEqual(result, [3, 6, 'yes', 'k']);
  });

  it('strips class field types and modifiers', () => {
    const result = run(`
      class Counter<T> {
        private count: number = 0;
        readonly step: number;
        static made: number = 0;
        constructor(step: number) { this.step = step; Counter.made++; }
        add(times: number): number { this.count += this.step * times; return this.count; }
        get value(): number { return this.count; }
      }
      const c = new Counter(3);
      c.add(2);
      return [c.value, Counter.made];`);
    assert.deepEqual(result, [6, 1]);
  });

  it('removes comments but not comment-like text in strings', () => {
    const out = js(
      "const a = '// not a comment'; // a comment\n/* block */ const b = `/* ${a} */`;",
    );
    assert.equal(out, "const a = '// not a comment';\n  const b = `/* ${a} */`;\n");
  });

  it('describes exports with their types and doc comments', () => {
    const r = compileTypeLite(
      '/** Doubles. */\nexport function twice(x: number): number { return 2 * x; }\nexport const N: number = 3;\nexport type Id = string;',
    );
    assert.deepEqual(
      r.exports.map((e) => [e.name, e.kind, e.signature, e.doc]),
      [
        ['twice', 'function', 'function twice(x: number): number', 'Doubles.'],
        ['N', 'const', 'const N: number', ''],
        ['Id', 'type', 'type Id = string;', ''],
      ],
    );
  });

  it('rewrites import specifiers', () => {
    const r = compileTypeLite(
      "import { a, b as c } from '@mono/core/stats';\nimport { d } from './util';",
    );
    assert.match(r.code, /from '\.\.\/core\/stats\.mjs'/);
    assert.match(r.code, /from '\.\/util\.mjs'/);
    assert.deepEqual(r.imports[0].names, [
      { imported: 'a', local: 'a' },
      { imported: 'b', local: 'c' },
    ]);
    assert.equal(
      resolveSpecifier('left-pad', () => 'refused'),
      'refused',
    );
  });

  it('rejects what it cannot compile', () => {
    assert.throws(() => compileTypeLite('export default 1;'), /default exports are not supported/);
    assert.throws(
      () => compileTypeLite('class A { constructor(private x: number) {} }'),
      /parameter properties/,
    );
    assert.throws(() => compileTypeLite('function f(a: number { }'), /unterminated type/);
  });
});

describe('minify', () => {
  it('keeps the behaviour of the code it shrinks', () => {
    const src = `
      // sum of squares
      const a = 1, b = - -2;
      let i = 0;
      i++
      const r = /a b/.test('a b') ? 'x  y' : "no";
      return [a + +b, a - -b, i, r, typeof a, \`t \${a}  \${b}\`];
    `;
    const small = minify(src);
    assert.ok(small.length < src.length * 0.7);
    assert.doesNotMatch(small, /sum of squares/);
    assert.deepEqual(new Function(small)(), new Function(src)());
  });

  it('keeps every compiled module working', () => {
    const src = js(readFileSync('packages/core/src/math.tl', 'utf8').replace(/^export /gm, ''));
    const body = `${src}\nreturn [gcd(84, 36), powMod(3, 200, 1000007), isqrt(99)];`;
    assert.deepEqual(new Function(minify(body))(), new Function(body)());
  });
});

describe('lint', () => {
  const rules = (src, options) =>
    lintSource(src, 'x.tl', options).map((p) => `${p.line}:${p.rule}`);

  it('accepts clean code', () => {
    const src =
      "import { a } from './a';\n\n/** Doc. */\nexport function f(): number {\n  return a;\n}\n";
    assert.deepEqual(rules(src), []);
  });

  it('finds each kind of problem', () => {
    const src = [
      "import { a, b } from './a';",
      'export function f() {',
      '  var x = 1; ',
      '  if (x == a) return 2;',
      '  console.log(x);',
      '}',
      `// ${'x'.repeat(120)}`,
    ].join('\n');
    assert.deepEqual(rules(src).sort(), [
      '1:unused-import',
      '2:doc-comment',
      '3:no-trailing-ws',
      '3:no-var',
      '4:curly',
      '4:eqeqeq',
      '5:no-console',
      '7:max-len',
    ]);
    assert.ok(!rules('console.log(1);\n', { allowConsole: true }).includes('1:no-console'));
  });
});
