const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/** Seconds from a number of seconds or a string like "90s", "10m", "1.5h", "250ms". */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') return value;
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value);
  if (!m)
    throw new Error(`invalid duration "${value}": expected seconds or a number with ms, s, m or h`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** A short human form: 850ms, 12.3s, 4m05s, 1h02m. */
export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
