/** Left-aligned text columns (right-aligned where `right[i]`), two spaces apart. */
export function table(rows: string[][], right: boolean[] = []): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) =>
          i === r.length - 1 && !right[i]
            ? c
            : right[i]
              ? c.padStart(widths[i]!)
              : c.padEnd(widths[i]!),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `n thing` or `n things` (or the plural given). */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
