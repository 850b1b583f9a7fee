import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writevAllSync } from '../../src/store/fsutil.js';

describe('writevAllSync', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dist-build-fsutil-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes every chunk in order, skipping empty ones, over several calls', () => {
    const file = join(dir, 'out');
    const fd = openSync(file, 'wx');
    const chunks = [
      Buffer.from('ab'),
      Buffer.alloc(0),
      new Uint8Array([99]),
      Buffer.alloc(3 << 20, 'z'),
    ];
    try {
      writevAllSync(fd, chunks);
      writevAllSync(fd, []);
      writevAllSync(fd, [Buffer.from('!')]);
    } finally {
      closeSync(fd);
    }
    const got = readFileSync(file);
    expect(got.length).toBe(2 + 1 + (3 << 20) + 1);
    expect(got.subarray(0, 4).toString()).toBe('abcz');
    expect(got.subarray(-2).toString()).toBe('z!');
  });
});
