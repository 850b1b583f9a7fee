// A writer and a reader for POSIX ustar archives. The writer produces the same bytes for the
// same entries: entries are sorted, and mode, owner, group and modification time are fixed.

const BLOCK = 512;
const RECORD = BLOCK * 20;

function octal(value, width) {
  const s = value.toString(8);
  if (s.length > width - 1)
    throw new Error(`value ${value} does not fit in a ${width}-byte tar field`);
  return s.padStart(width - 1, '0') + '\0';
}

/** Splits a path into ustar `prefix` (<= 155 bytes) and `name` (<= 100 bytes). */
function splitPath(path) {
  if (Buffer.byteLength(path) <= 100) return ['', path];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return [prefix, name];
  }
  throw new Error(`path too long for ustar: ${path}`);
}

function header({ path, type, size, mode, mtime }) {
  const h = Buffer.alloc(BLOCK);
  const [prefix, name] = splitPath(path);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1'); // uid
  h.write(octal(0, 8), 116, 'latin1'); // gid
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(mtime, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1'); // checksum placeholder: eight spaces
  h.write(type, 156, 'latin1');
  h.write('ustar\0' + '00', 257, 'latin1');
  h.write('root', 265, 'latin1');
  h.write('root', 297, 'latin1');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

/**
 * Builds a tar archive from `entries`: `{ path, data?: Buffer, executable?: boolean }`, where an
 * entry without data is a directory. Parent directories are added automatically.
 */
export function createTar(entries, { mtime = 0 } = {}) {
  const all = new Map();
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!all.has(dir)) all.set(dir, { path: dir });
    }
    const key = e.data ? e.path : `${e.path.replace(/\/$/, '')}/`;
    if (all.has(key) && e.data) throw new Error(`duplicate tar entry ${e.path}`);
    all.set(key, { ...e, path: key });
  }
  const chunks = [];
  for (const key of [...all.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const e = all.get(key);
    if (!e.data) {
      chunks.push(header({ path: e.path, type: '5', size: 0, mode: 0o755, mtime }));
      continue;
    }
    chunks.push(
      header({
        path: e.path,
        type: '0',
        size: e.data.length,
        mode: e.executable ? 0o755 : 0o644,
        mtime,
      }),
    );
    chunks.push(e.data);
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
    if (pad) chunks.push(Buffer.alloc(pad));
  }
  chunks.push(Buffer.alloc(2 * BLOCK));
  const size = chunks.reduce((n, c) => n + c.length, 0);
  const tail = (RECORD - (size % RECORD)) % RECORD;
  if (tail) chunks.push(Buffer.alloc(tail));
  return Buffer.concat(chunks);
}

/** Reads a ustar archive into `[{ path, type, mode, mtime, data }]`, verifying checksums. */
export function readTar(buf) {
  const entries = [];
  let pos = 0;
  while (pos + BLOCK <= buf.length) {
    const h = buf.subarray(pos, pos + BLOCK);
    if (h.every((b) => b === 0)) break;
    const str = (start, len) => h.toString('utf8', start, start + len).replace(/\0.*$/s, '');
    const num = (start, len) => parseInt(str(start, len).trim() || '0', 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    if (sum !== num(148, 8)) throw new Error(`bad header checksum at offset ${pos}`);
    if (str(257, 6) !== 'ustar') throw new Error(`not a ustar header at offset ${pos}`);
    const prefix = str(345, 155);
    const path = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
    const size = num(124, 12);
    const data = buf.subarray(pos + BLOCK, pos + BLOCK + size);
    entries.push({ path, type: str(156, 1), mode: num(100, 8), mtime: num(136, 12), data });
    pos += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return entries;
}
