import {
  flushLines,
  LinePrefixer,
  MAX_PARTIAL_LINE,
  prefixLines,
} from '../../src/executors/output.js';
import type { LineState } from '../../src/executors/output.js';
import type { OutputChunk } from '../../src/executors/types.js';

function chunk(data: string | Buffer, stream: OutputChunk['stream'] = 'stdout'): OutputChunk {
  return { offset: 0, stream, data: Buffer.isBuffer(data) ? data : Buffer.from(data) };
}

describe('prefixLines', () => {
  it('prefixes every complete line', () => {
    expect(prefixLines('lib', 'a\nb\n')).toBe('[lib] a\n[lib] b\n');
    expect(prefixLines('lib', '\n')).toBe('[lib] \n');
    expect(prefixLines('lib', '')).toBe('');
  });

  it('without state, ends an unfinished line', () => {
    expect(prefixLines('lib', 'a\npartial')).toBe('[lib] a\n[lib] partial\n');
  });

  it('with state, holds an unfinished line until it is complete', () => {
    const state: LineState = {};
    expect(prefixLines('lib', chunk('he'), state)).toBe('');
    expect(prefixLines('lib', chunk('llo\nwor'), state)).toBe('[lib] hello\n');
    expect(prefixLines('lib', chunk('ld\n'), state)).toBe('[lib] world\n');
    expect(state).toEqual({});
  });

  it('keeps stdout and stderr lines apart', () => {
    const state: LineState = {};
    expect(prefixLines('x', chunk('out-', 'stdout'), state)).toBe('');
    expect(prefixLines('x', chunk('err-', 'stderr'), state)).toBe('');
    expect(prefixLines('x', chunk('1\n', 'stderr'), state)).toBe('[x] err-1\n');
    expect(prefixLines('x', chunk('1\n', 'stdout'), state)).toBe('[x] out-1\n');
  });

  it('does not cut multi-byte characters split across chunks', () => {
    const bytes = Buffer.from('héllo\n');
    const state: LineState = {};
    expect(prefixLines('x', chunk(bytes.subarray(0, 2)), state)).toBe('');
    expect(prefixLines('x', chunk(bytes.subarray(2)), state)).toBe('[x] héllo\n');
  });

  it('flushes what is held, and emits over-long partial lines', () => {
    const state: LineState = {};
    prefixLines('x', chunk('tail-out'), state);
    prefixLines('x', chunk('tail-err', 'stderr'), state);
    expect(flushLines('x', state)).toBe('[x] tail-out\n[x] tail-err\n');
    expect(flushLines('x', state)).toBe('');
    const long = 'y'.repeat(MAX_PARTIAL_LINE + 1);
    expect(prefixLines('x', chunk(long), state)).toBe(`[x] ${long}\n`);
    expect(state).toEqual({});
  });

  it('LinePrefixer keeps the state for you', () => {
    const p = new LinePrefixer('api');
    expect(p.push('a')).toBe('');
    expect(p.push(Buffer.from('b\nc'))).toBe('[api] ab\n');
    expect(p.flush()).toBe('[api] c\n');
  });
});
