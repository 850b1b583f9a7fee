// A tokenizer for JavaScript and for TypeLite (.tl), the typed JavaScript dialect of the
// packages in this example. Tokens keep their exact source text, so joining every token's
// `value` reproduces the input; the compiler, the linter and the bundler work on these tokens.

// Longest first, so that `>>>=` wins over `>>` and `>`.
const PUNCTUATORS = (
  '>>>= ... === !== **= <<= >>= >>> &&= ||= ??= => == != <= >= && || ?? ?. ++ -- += -= *= /= ' +
  '%= &= |= ^= ** << >>'
).split(' ');

/** Words after which a `/` starts a regular expression rather than a division. */
const REGEX_AFTER_WORDS = new Set(
  'return typeof case do else in of new delete void throw instanceof yield await'.split(' '),
);

/** Reserved words and keywords that never name a value being called or indexed. */
export const KEYWORDS = new Set([
  ...REGEX_AFTER_WORDS,
  ...'break catch class const continue debugger default export extends finally for function if'.split(
    ' ',
  ),
  ...'import let switch try var while with async static'.split(' '),
]);

const isIdStart = (c) => /[A-Za-z_$#]/.test(c);
const isIdPart = (c) => /[A-Za-z0-9_$]/.test(c);

export class SyntaxErrorAt extends Error {
  constructor(message, file, line, col) {
    super(`${file}:${line}:${col}: ${message}`);
    this.line = line;
    this.col = col;
  }
}

/**
 * Splits `src` into tokens `{ type, value, line, col }` where type is one of
 * ws, comment, string, template, regex, number, ident, punct.
 */
export function tokenize(src, file = '<input>') {
  const tokens = [];
  let i = 0;
  let line = 1;
  let col = 1;
  let prevSig = null;

  const error = (msg) => {
    throw new SyntaxErrorAt(msg, file, line, col);
  };

  // Returns the end index of the token starting at `p`.
  const scan = (p, prev) => {
    const c = src[p];
    const next = src[p + 1];
    if (/\s/.test(c)) {
      let q = p;
      while (q < src.length && /\s/.test(src[q])) q++;
      return ['ws', q];
    }
    if (c === '/' && next === '/') {
      let q = p;
      while (q < src.length && src[q] !== '\n') q++;
      return ['comment', q];
    }
    if (c === '/' && next === '*') {
      const q = src.indexOf('*/', p + 2);
      if (q < 0) error('unterminated comment');
      return ['comment', q + 2];
    }
    if (c === '"' || c === "'") {
      let q = p + 1;
      while (q < src.length && src[q] !== c) {
        if (src[q] === '\n') error('unterminated string');
        q += src[q] === '\\' ? 2 : 1;
      }
      if (q >= src.length) error('unterminated string');
      return ['string', q + 1];
    }
    if (c === '`') return ['template', scanTemplate(p)];
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(next ?? ''))) {
      const m =
        /^(0[xX][0-9a-fA-F_]+n?|0[bB][01_]+n?|0[oO][0-7_]+n?|[0-9][0-9_]*n|(?:[0-9][0-9_]*)?\.?[0-9_]*(?:[eE][+-]?[0-9]+)?)/.exec(
          src.slice(p, p + 64),
        );
      return ['number', p + Math.max(1, m[0].length)];
    }
    if (isIdStart(c)) {
      let q = p + 1;
      while (q < src.length && isIdPart(src[q])) q++;
      return ['ident', q];
    }
    if (c === '/' && regexAllowed(prev)) {
      let q = p + 1;
      let inClass = false;
      while (q < src.length) {
        const d = src[q];
        if (d === '\n') error('unterminated regular expression');
        if (d === '\\') q++;
        else if (d === '[') inClass = true;
        else if (d === ']') inClass = false;
        else if (d === '/' && !inClass) break;
        q++;
      }
      q++;
      while (q < src.length && /[a-z]/.test(src[q])) q++;
      return ['regex', q];
    }
    for (const punct of PUNCTUATORS) {
      if (src.startsWith(punct, p)) {
        // `?.` followed by a digit is a conditional operator and a number (`a?.5:b`).
        if (punct === '?.' && /[0-9]/.test(src[p + 2] ?? '')) break;
        return ['punct', p + punct.length];
      }
    }
    return ['punct', p + 1];
  };

  // Template literal starting at the backtick `p`; `${ ... }` parts are scanned as code.
  const scanTemplate = (p) => {
    let q = p + 1;
    while (q < src.length) {
      const d = src[q];
      if (d === '\\') {
        q += 2;
      } else if (d === '`') {
        return q + 1;
      } else if (d === '$' && src[q + 1] === '{') {
        q += 2;
        let depth = 0;
        let prev = { type: 'punct', value: '{' };
        for (;;) {
          if (q >= src.length) error('unterminated template literal');
          const [type, end] = scan(q, prev);
          const value = src.slice(q, end);
          q = end;
          if (type === 'punct' && value === '{') depth++;
          if (type === 'punct' && value === '}') {
            if (depth === 0) break;
            depth--;
          }
          if (type !== 'ws' && type !== 'comment') prev = { type, value };
        }
      } else {
        q++;
      }
    }
    error('unterminated template literal');
  };

  while (i < src.length) {
    const [type, end] = scan(i, prevSig);
    const value = src.slice(i, end);
    tokens.push({ type, value, line, col });
    for (const ch of value) {
      if (ch === '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    if (type !== 'ws' && type !== 'comment') prevSig = { type, value };
    i = end;
  }
  return tokens;
}

function regexAllowed(prev) {
  if (prev === null) return true;
  if (prev.type === 'ident') return REGEX_AFTER_WORDS.has(prev.value);
  if (prev.type === 'punct') return ![')', ']', '}'].includes(prev.value);
  return false;
}

/** True for tokens that carry meaning (not whitespace, not comments). */
export function isSignificant(token) {
  return token.type !== 'ws' && token.type !== 'comment';
}
