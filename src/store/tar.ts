/**
 * The tar format of output blobs, written and read without a streams layer (the packer and the
 * extractor in pack.ts move whole slots of bytes with plain system calls).
 *
 * Writing produces exactly the bytes tar-stream's `pack()` produces for the same headers (the
 * format of blobs stored by earlier versions, so their digests stay the same): POSIX ustar with a
 * name prefix for long ASCII names, and for names or link targets that do not fit (or are not
 * ASCII) a pax `x` header carrying `path`/`linkpath`, followed by a header named `PaxHeader`.
 *
 * Reading is a push parser: `write(chunk)` as bytes arrive, `end()` at the end. It understands
 * ustar and GNU headers, pax `x` headers (`path`, `linkpath`, `size`) and GNU long names
 * (`L`/`K`); it validates header checksums, stops at the first all-zero block, and reports entry
 * types by tar-stream's names (`file`, `directory`, `symlink`, `link`, ...). Deciding what is safe
 * to extract is the caller's job.
 */

/** One entry's header, as written. */
export interface TarWriteHeader {
  /** Root-relative posix name; directories end in `/`. */
  name: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  /** Body bytes (files only). */
  size: number;
  linkname?: string;
}

/** One entry's header, as read. */
export interface TarReadHeader {
  name: string;
  /** tar-stream's type names; `null` for an unknown type flag. */
  type: string | null;
  mode: number;
  size: number;
  linkname: string | null;
}

export const BLOCK = 512;
/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

const TYPEFLAG: Record<TarWriteHeader['type'], number> = { file: 0, symlink: 2, directory: 5 };
const PAX_TYPEFLAG = 72; // 'x' - '0'

/** Padding after a body of `size` bytes. */
export function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

function oct(value: number, digits: number): string {
  const s = value.toString(8);
  if (s.length > digits) return '7'.repeat(digits) + ' ';
  return '0'.repeat(digits - s.length) + s + ' ';
}

function isAscii(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s);
}

/**
 * Writes the ustar header of `h` into `buf` at `pos` (512 bytes, zeroed first) and returns true,
 * or returns false (writing nothing) when the name or link target needs a pax header.
 */
function ustarInto(
  buf: Buffer,
  pos: number,
  name: string,
  typeflag: number,
  mode: number,
  size: number,
  linkname: string | undefined,
): boolean {
  if (!isAscii(name)) return false;
  let prefix = '';
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return false;
    prefix += prefix ? '/' + name.slice(0, i) : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (name.length > 100 || prefix.length > 155) return false;
  if (linkname && Buffer.byteLength(linkname) > 100) return false;
  buf.fill(0, pos, pos + BLOCK);
  buf.write(name, pos, 'latin1');
  buf.write(oct(mode & 0o7777, 6), pos + 100, 'latin1');
  buf.write('000000 ', pos + 108, 'latin1'); // uid
  buf.write('000000 ', pos + 116, 'latin1'); // gid
  if (size.toString(8).length > 11) {
    // base-256 for sizes of 8 GiB and more
    buf[pos + 124] = 0x80;
    let n = size;
    for (let i = 11; i > 0; i--) {
      buf[pos + 124 + i] = n & 0xff;
      n = Math.floor(n / 0x100);
    }
  } else {
    buf.write(oct(size, 11), pos + 124, 'latin1');
  }
  buf.write('00000000000 ', pos + 136, 'latin1'); // mtime 0
  buf[pos + 156] = 48 + typeflag;
  if (linkname) buf.write(linkname, pos + 157, 'utf8');
  buf.write('ustar\u000000', pos + 257, 'latin1');
  buf.write('000000 ', pos + 329, 'latin1'); // devmajor
  buf.write('000000 ', pos + 337, 'latin1'); // devminor
  if (prefix) buf.write(prefix, pos + 345, 'latin1');
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += buf[pos + i]!;
  for (let i = 156; i < BLOCK; i++) sum += buf[pos + i]!;
  buf.write(oct(sum, 6), pos + 148, 'latin1');
  return true;
}

function paxRecord(key: string, value: string): string {
  const str = ` ${key}=${value}\n`;
  const len = Buffer.byteLength(str);
  let digits = String(len).length;
  if (len + digits >= 10 ** digits) digits++;
  return `${len + digits}${str}`;
}

/**
 * Writes the header blocks of `h` into `buf` at `pos` if they fit before `end`; returns the bytes
 * written, or 0 when they do not fit (nothing written).
 */
export function writeHeader(buf: Buffer, pos: number, end: number, h: TarWriteHeader): number {
  if (end - pos < BLOCK) return 0;
  const size = h.type === 'file' ? h.size : 0;
  if (ustarInto(buf, pos, h.name, TYPEFLAG[h.type], h.mode, size, h.linkname)) return BLOCK;
  const bytes = paxHeader(h);
  if (end - pos < bytes.length) return 0;
  bytes.copy(buf, pos);
  return bytes.length;
}

/** The header blocks of `h` as a new buffer (pax form when needed). */
export function encodeHeader(h: TarWriteHeader): Buffer {
  const one = Buffer.allocUnsafe(BLOCK);
  return writeHeader(one, 0, BLOCK, h) ? one : paxHeader(h);
}

/** The pax form of `h`'s header blocks (for a name or link target that ustar cannot hold). */
function paxHeader(h: TarWriteHeader): Buffer {
  const flag = TYPEFLAG[h.type];
  const size = h.type === 'file' ? h.size : 0;
  let pax = paxRecord('path', h.name);
  if (h.linkname) pax += paxRecord('linkpath', h.linkname);
  const body = Buffer.from(pax, 'utf8');
  const out = Buffer.alloc(BLOCK + body.length + padding(body.length) + BLOCK);
  // tar-stream names both headers "PaxHeader" ("PaxHeader/" for a directory), link "PaxHeader".
  const placeholder = h.type === 'directory' ? 'PaxHeader/' : 'PaxHeader';
  const link = h.linkname ? 'PaxHeader' : undefined;
  ustarInto(out, 0, 'PaxHeader', PAX_TYPEFLAG, h.mode, body.length, link);
  body.copy(out, BLOCK);
  ustarInto(out, out.length - BLOCK, placeholder, flag, h.mode, size, link);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

const TYPES: Record<number, string> = {
  0: 'file',
  1: 'link',
  2: 'symlink',
  3: 'character-device',
  4: 'block-device',
  5: 'directory',
  6: 'fifo',
  7: 'contiguous-file',
  72: 'pax-header',
  55: 'pax-global-header',
  27: 'gnu-long-link-path',
  28: 'gnu-long-path',
  30: 'gnu-long-path',
};

/** What the parser calls, synchronously; a throw stops the parse (the caller sees it). */
export interface TarHandler {
  /** A new entry (metadata headers already applied). Its body follows through `data`. */
  entry(header: TarReadHeader): void;
  /** Body bytes of the current entry (a view into the input chunk: copy to keep). */
  data(chunk: Buffer): void;
  /** The current entry's body is complete. */
  entryEnd(): void;
}

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

function readString(buf: Buffer, start: number, length: number): string {
  let end = start;
  while (end < start + length && buf[end] !== 0) end++;
  return buf.toString('utf8', start, end);
}

function readOctal(buf: Buffer, start: number, length: number): number {
  if (buf[start]! & 0x80) {
    if (buf[start] !== 0x80) throw new TarFormatError('negative number in a tar header');
    let n = 0;
    for (let i = start + 1; i < start + length; i++) n = n * 256 + buf[i]!;
    return n;
  }
  let i = start;
  const end = start + length;
  while (i < end && (buf[i] === 32 || buf[i] === 0)) i++;
  let n = 0;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === 32 || c === 0) break;
    if (c < 48 || c > 55) throw new TarFormatError('invalid number in a tar header');
    n = n * 8 + (c - 48);
  }
  return n;
}

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = body;
  while (rest.length > 0) {
    const space = rest.indexOf(32);
    if (space <= 0) break;
    const len = Number(rest.toString('latin1', 0, space));
    if (!Number.isInteger(len) || len <= space + 1 || len > rest.length) {
      throw new TarFormatError('invalid pax header record');
    }
    const record = rest.toString('utf8', space + 1, len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    rest = rest.subarray(len);
  }
  return out;
}

/** Largest pax or GNU long-name body accepted (they are held in memory). */
const MAX_META_BYTES = 1024 * 1024;

/** A push parser of tar archives (see the module comment). */
export class TarReader {
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  /** Body bytes left in the current entry (or metadata body), then padding bytes left. */
  private bodyLeft = 0;
  private padLeft = 0;
  private inEntry = false;
  private meta: { kind: 'pax' | 'long-name' | 'long-link'; parts: Buffer[] } | null = null;
  private pending: { name?: string; linkname?: string; size?: number } = {};
  private done = false;

  constructor(private readonly handler: TarHandler) {}

  write(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && !this.done) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, chunk.length - pos);
        const piece = chunk.subarray(pos, pos + n);
        if (this.meta) this.meta.parts.push(Buffer.from(piece));
        else this.handler.data(piece);
        this.bodyLeft -= n;
        pos += n;
        if (this.bodyLeft === 0) this.finishBody();
        continue;
      }
      if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, chunk.length - pos);
        this.padLeft -= n;
        pos += n;
        continue;
      }
      const n = Math.min(BLOCK - this.headerFill, chunk.length - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + n);
      this.headerFill += n;
      pos += n;
      if (this.headerFill === BLOCK) {
        this.headerFill = 0;
        this.onHeader();
      }
    }
  }

  /** The input ended: throws unless the archive was complete. */
  end(): void {
    if (this.done) return;
    if (this.bodyLeft > 0 || this.padLeft > 0 || this.headerFill > 0 || this.meta || this.inEntry) {
      throw new TarFormatError('unexpected end of the tar archive');
    }
    // A tar without the end marker (as some writers make) is complete at an entry boundary.
    this.done = true;
  }

  private onHeader(): void {
    const b = this.header;
    let sum = 8 * 32;
    let zero = true;
    for (let i = 0; i < BLOCK; i++) {
      if (b[i] !== 0) zero = false;
      if (i < 148 || i >= 156) sum += b[i]!;
    }
    if (zero) {
      this.done = true;
      return;
    }
    if (sum !== readOctal(b, 148, 8)) {
      throw new TarFormatError('invalid tar header checksum (not a tar archive, or corrupt)');
    }
    const flag = b[156] === 0 ? 0 : b[156]! - 48;
    let name = readString(b, 0, 100);
    const magic = b.toString('latin1', 257, 263);
    if (magic === 'ustar\u0000' && b[345] !== 0) name = `${readString(b, 345, 155)}/${name}`;
    const size = readOctal(b, 124, 12);
    const type = TYPES[flag] ?? null;
    if (type === 'pax-header' || type === 'gnu-long-path' || type === 'gnu-long-link-path') {
      if (size > MAX_META_BYTES) throw new TarFormatError(`a ${type} of ${size} bytes is too big`);
      const kind =
        type === 'pax-header' ? 'pax' : type === 'gnu-long-path' ? 'long-name' : 'long-link';
      this.meta = { kind, parts: [] };
      this.bodyLeft = size;
      this.padLeft = padding(size);
      if (size === 0) this.finishBody();
      return;
    }
    const header: TarReadHeader = {
      name: this.pending.name ?? name,
      type:
        flag === 0 && name.endsWith('/') && this.pending.name === undefined ? 'directory' : type,
      mode: readOctal(b, 100, 8),
      size: this.pending.size ?? size,
      linkname: this.pending.linkname ?? (b[157] === 0 ? null : readString(b, 157, 100)),
    };
    this.pending = {};
    this.inEntry = true;
    this.handler.entry(header);
    this.bodyLeft = header.size;
    this.padLeft = padding(header.size);
    if (header.size === 0) this.finishBody();
  }

  private finishBody(): void {
    if (this.meta) {
      const body = Buffer.concat(this.meta.parts);
      const { kind } = this.meta;
      this.meta = null;
      if (kind === 'pax') {
        const pax = parsePax(body);
        if (pax.path !== undefined) this.pending.name = pax.path;
        if (pax.linkpath !== undefined) this.pending.linkname = pax.linkpath;
        if (pax.size !== undefined) {
          const size = Number(pax.size);
          if (!Number.isSafeInteger(size) || size < 0) {
            throw new TarFormatError('invalid size in a pax header');
          }
          this.pending.size = size;
        }
      } else {
        const value = readString(body, 0, body.length);
        if (kind === 'long-name') this.pending.name = value;
        else this.pending.linkname = value;
      }
      return;
    }
    this.inEntry = false;
    this.handler.entryEnd();
  }
}
