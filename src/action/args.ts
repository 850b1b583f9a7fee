// Inputs of the action that hold several command-line arguments.

/**
 * Splits an input into arguments as a shell would for plain words: whitespace separates them,
 * single quotes keep everything, double quotes keep everything but `\\"` and `\\\\`.
 */
export function splitArgs(text: string): string[] {
  const args: string[] = [];
  let word: string | undefined;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (quote === '"' && ch === '\\' && /["\\]/.test(text[i + 1] ?? '')) word += text[++i];
      else word += ch;
    } else if (/\s/.test(ch)) {
      if (word !== undefined) args.push(word);
      word = undefined;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word ??= '';
    } else word = (word ?? '') + ch;
  }
  if (quote) throw new Error(`input "args": a ${quote} quote is not closed: ${text}`);
  if (word !== undefined) args.push(word);
  return args;
}
