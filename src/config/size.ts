/** Byte sizes in the config and on the command line: `1048576`, `"500MB"`, `"10GiB"`. */

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** What `parseSize` accepts, as a JSON Schema pattern (strings; numbers are bytes). */
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$';

/**
 * Bytes from a number of bytes or a string such as `"500MB"`, `"10GiB"`, `"1.5G"`, `"4096"`.
 * KB/MB/GB/TB (and K/M/G/T) are powers of 1000, KiB/MiB/GiB/TiB powers of 1024; case does not
 * matter. The result is a whole number of bytes (rounded down), at least 1.
 */
export function parseSize(value: number | string): number {
  let bytes: number;
  if (typeof value === 'number') bytes = value;
  else {
    const m = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(value.trim());
    const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
    if (!m || unit === undefined) {
      throw new Error(
        `invalid size "${value}": expected bytes or a number with B, KB, MB, GB, TB, KiB, MiB, GiB or TiB`,
      );
    }
    bytes = Number(m[1]) * unit;
  }
  bytes = Math.floor(bytes);
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new Error(`invalid size ${JSON.stringify(value)}: expected at least 1 byte`);
  }
  return bytes;
}

/** A short human form in powers of 1024: `512 B`, `1.5 KiB`, `10.0 GiB`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
