import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import {
  encodeHeader,
  END_OF_ARCHIVE,
  padding,
  TarFormatError,
  TarReader,
  writeHeader,
} from '../../src/store/tar.js';
import type { TarReadHeader, TarWriteHeader } from '../../src/store/tar.js';

const FIXED = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };

/** What tar-stream's pack() writes for these entries (the format of earlier blobs). */
async function tarStream(entries: { h: TarWriteHeader; body?: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  const collected = (async () => {
    const parts: Buffer[] = [];
    for await (const chunk of pack as AsyncIterable<unknown>) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  })();
  for (const { h, body } of entries) {
    await new Promise<void>((resolve, reject) => {
      const header = { ...FIXED, name: h.name, type: h.type, mode: h.mode, linkname: h.linkname };
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) pack.entry({ ...header, size: body.length }, body, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  return collected;
}

function ours(entries: { h: TarWriteHeader; body?: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const { h, body } of entries) {
    parts.push(encodeHeader(h));
    if (body) parts.push(body, Buffer.alloc(padding(body.length)));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

interface Seen {
  header: TarReadHeader;
  body: Buffer;
}

function read(archive: Buffer, step = archive.length): Seen[] {
  const seen: Seen[] = [];
  let parts: Buffer[] = [];
  const reader = new TarReader({
    entry: (header) => {
      seen.push({ header, body: Buffer.alloc(0) });
      parts = [];
    },
    data: (chunk) => parts.push(Buffer.from(chunk)),
    entryEnd: () => {
      seen[seen.length - 1]!.body = Buffer.concat(parts);
    },
  });
  for (let i = 0; i < archive.length; i += step) reader.write(archive.subarray(i, i + step));
  reader.end();
  return seen;
}

const file = (name: string, body: string, mode = 0o644) => ({
  h: { name, type: 'file' as const, mode, size: Buffer.byteLength(body) },
  body: Buffer.from(body),
});

const ENTRIES: { h: TarWriteHeader; body?: Buffer }[] = [
  { h: { name: 'out/', type: 'directory' as const, mode: 0o755, size: 0 } },
  file('out/a.txt', 'hello'),
  file('out/run.sh', '#!/bin/sh\n', 0o755),
  file(`out/${'d/'.repeat(60)}prefixed.txt`, 'ustar prefix'),
  file(`out/${'x'.repeat(120)}`, 'no slash to split at: pax'),
  file('out/ünïcödé.txt', 'non-ASCII: pax'),
  { h: { name: `out/${'deep/'.repeat(40)}`, type: 'directory' as const, mode: 0o755, size: 0 } },
  { h: { name: 'out/link', type: 'symlink' as const, mode: 0o755, size: 0, linkname: 'a.txt' } },
  {
    h: {
      name: 'out/long-link',
      type: 'symlink' as const,
      mode: 0o755,
      size: 0,
      linkname: `${'t'.repeat(120)}`,
    },
  },
  file('out/block.bin', 'b'.repeat(512)),
  file('out/empty', ''),
];

describe('tar writer', () => {
  it('writes exactly what tar-stream writes (so earlier blobs keep their digests)', async () => {
    expect(ours(ENTRIES).equals(await tarStream(ENTRIES))).toBe(true);
  });

  it('writes in place when the header fits, and not at all when it does not', () => {
    const buf = Buffer.alloc(2048, 0xff);
    const h: TarWriteHeader = { name: 'out/x', type: 'file', mode: 0o644, size: 3 };
    expect(writeHeader(buf, 512, 1024, h)).toBe(512);
    expect(buf.subarray(512, 1024).equals(encodeHeader(h))).toBe(true);
    expect(writeHeader(buf, 1024, 1500, h)).toBe(0);
    const pax: TarWriteHeader = { ...h, name: `out/${'y'.repeat(200)}` };
    const size = encodeHeader(pax).length;
    expect(size).toBeGreaterThan(512);
    expect(writeHeader(buf, 0, size - 1, pax)).toBe(0);
    expect(writeHeader(buf, 0, size, pax)).toBe(size);
  });
});

describe('tar reader', () => {
  it('reads back every entry, whatever the chunk boundaries', () => {
    const archive = ours(ENTRIES);
    const expected = ENTRIES.map((e) => ({
      name: e.h.name,
      type: e.h.type,
      linkname: e.h.linkname ?? null,
      body: e.body?.toString() ?? '',
    }));
    for (const step of [archive.length, 4096, 511, 7, 1]) {
      const got = read(archive, step).map((s) => ({
        name: s.header.name,
        type: s.header.type,
        linkname: s.header.linkname,
        body: s.body.toString(),
      }));
      expect(got).toEqual(expected);
    }
  });

  it('reads GNU tar archives, long names included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dist-build-tar-'));
    try {
      const long = `${'n'.repeat(150)}.txt`;
      mkdirSync(join(dir, 'src/out'), { recursive: true });
      writeFileSync(join(dir, 'src/out', long), 'gnu long name');
      for (const format of ['gnu', 'pax']) {
        execFileSync('tar', [
          `--format=${format}`,
          '-cf',
          join(dir, `${format}.tar`),
          '-C',
          join(dir, 'src'),
          'out',
        ]);
        const seen = read(readFileSync(join(dir, `${format}.tar`)));
        const f = seen.find((s) => s.header.name === `out/${long}`);
        expect(f?.header.type).toBe('file');
        expect(f?.body.toString()).toBe('gnu long name');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a truncated archive and a bad checksum', () => {
    const archive = ours(ENTRIES);
    expect(() => read(archive.subarray(0, 512 + 100))).toThrow(TarFormatError);
    expect(() => read(archive.subarray(0, 700))).toThrow(/unexpected end/);
    const bad = Buffer.from(archive);
    bad[5] ^= 1;
    expect(() => read(bad)).toThrow(/checksum/);
  });

  it('stops at the end-of-archive marker', () => {
    const archive = Buffer.concat([ours([file('out/a', 'a')]), Buffer.from('trailing garbage')]);
    expect(read(archive).map((s) => s.header.name)).toEqual(['out/a']);
  });

  it('reports an unknown type flag as type null', () => {
    const h = encodeHeader({ name: 'out/x', type: 'file', mode: 0o644, size: 0 });
    h[156] = 'Z'.charCodeAt(0);
    // fix the checksum
    h.fill(32, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const seen = read(Buffer.concat([h, END_OF_ARCHIVE]));
    expect(seen[0]!.header.type).toBeNull();
  });
});

describe('compareUtf8', () => {
  it('orders names as their UTF-8 bytes, astral characters included', async () => {
    const { compareUtf8 } = await import('../../src/store/pack.js');
    const names = [
      'out/a',
      'out/a-b',
      'out/a/',
      'out/Z',
      'out/é',
      'out/\uffef',
      'out/\u{1f600}',
      'out/\ue000x',
      'out/\u{10ffff}',
      'out/',
      'out',
      'out/a/b',
    ];
    const bytes = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...names].sort(compareUtf8)).toEqual(bytes);
  });
});
