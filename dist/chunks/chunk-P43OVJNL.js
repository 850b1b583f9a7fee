import { createRequire as __dbCreateRequire } from 'node:module'; const require = __dbCreateRequire(import.meta.url);

// src/config/size.ts
var UNITS = {
  "": 1,
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
  tib: 2 ** 40
};
var SIZE_PATTERN = "^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$";
function parseSize(value) {
  let bytes;
  if (typeof value === "number") bytes = value;
  else {
    const m = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(value.trim());
    const unit = m ? UNITS[m[2].toLowerCase()] : void 0;
    if (!m || unit === void 0) {
      throw new Error(
        `invalid size "${value}": expected bytes or a number with B, KB, MB, GB, TB, KiB, MiB, GiB or TiB`
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
function formatSize(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export {
  SIZE_PATTERN,
  parseSize,
  formatSize
};
