const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/**
 * Longest duration taken (24 days, 576h): a Node.js timer cannot wait longer (2^31 - 1 ms; a
 * longer one fires at once), and sums of durations stay finite.
 */
export const MAX_DURATION_S = 576 * 3600;

/** Seconds from a number of seconds or a string like "90s", "10m", "1.5h", "250ms". */
export function parseDuration(value: number | string): number {
  let seconds: number;
  if (typeof value === 'number') seconds = value;
  else {
    const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value);
    if (!m)
      throw new Error(
        `invalid duration "${value}": expected seconds or a number with ms, s, m or h`,
      );
    seconds = Number(m[1]) * UNITS[m[2]!]!;
  }
  if (!(seconds <= MAX_DURATION_S))
    throw new Error(
      `invalid duration ${typeof value === 'number' ? value : `"${value}"`}: expected at most 576h (24 days)`,
    );
  return seconds;
}

/** A short human form: 850ms, 12.3s, 4m05s, 1h02m. */
export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
