import { jest } from '@jest/globals';
import { GROUP_LIMIT, Progress, type ProgressOptions } from '../../src/cli/progress.js';
import { useColor } from '../../src/cli/drive.js';

/** A Progress writing into a string (plain mode: not a TTY). */
function progress(opts: Partial<ProgressOptions> = {}) {
  const out = { text: '', write: (t: string) => ((out.text += t), true) };
  const p = new Progress({
    out: out as unknown as ProgressOptions['out'],
    total: 2,
    plain: true,
    ...opts,
  });
  return { p, out };
}

const chunk = (text: string, stream = 'stdout') => ({
  offset: 0,
  stream,
  data: Buffer.from(text),
});

describe('Progress (plain)', () => {
  it("grouped: each job's output is one block, printed when the job and its output have ended", () => {
    const { p, out } = progress({ logOrder: 'grouped' });
    p.event({ type: 'started', unit: 'a', worker: 'w1', attempt: 1 });
    p.event({ type: 'started', unit: 'b', worker: 'w2', attempt: 1 });
    p.output('a', chunk('a1\n'));
    p.output('b', chunk('b1\n'));
    p.output('a', chunk('a2\n', 'stderr'));
    p.output('b', chunk('b2 without newline'));
    expect(out.text).toBe(''); // nothing yet: both still running
    p.event({ type: 'built', unit: 'b', worker: 'w2', durationMs: 1500 });
    expect(out.text).toBe(''); // b's output stream is not over yet
    p.outputEnd('b');
    p.outputEnd('a');
    p.event({ type: 'built', unit: 'a', worker: 'w1', durationMs: 20 });
    expect(out.text).toBe(
      '[b] b1\n[b] b2 without newline\ndist-build: b: built on w2 in 1.50s\n' +
        '[a] a1\n[a] a2\ndist-build: a: built on w1 in 20ms\n',
    );
    p.stop();
  });

  it('grouped on GitHub Actions: blocks are ::group:: sections titled with how the job ended; no tail for a failure', () => {
    const { p, out } = progress({ logOrder: 'grouped', groupMarkers: true });
    p.event({ type: 'started', unit: 'a', worker: 'w1', attempt: 1 });
    p.output('a', chunk('oops\n', 'stderr'));
    p.outputEnd('a');
    p.event({
      type: 'failed',
      unit: 'a',
      worker: 'w1',
      reason: 'exited with code 3',
      tail: 'oops',
    });
    // A job that printed nothing has no block, only its line.
    p.event({ type: 'started', unit: 'b', worker: 'w1', attempt: 1 });
    p.outputEnd('b');
    p.event({ type: 'built', unit: 'b', worker: 'w1', durationMs: 1000 });
    expect(out.text).toBe(
      '::group::a (FAILED on w1)\n[a] oops\n::endgroup::\n' +
        'dist-build: a: FAILED on w1: exited with code 3\n' +
        'dist-build: b: built on w1 in 1.00s\n',
    );
  });

  it('grouped: a job that prints more than GROUP_LIMIT goes out in parts, each a whole block (groups never nest)', () => {
    const { p, out } = progress({ logOrder: 'grouped', groupMarkers: true });
    p.event({ type: 'started', unit: 'big', worker: 'w1', attempt: 1 });
    p.event({ type: 'started', unit: 'small', worker: 'w2', attempt: 1 });
    const line = 'x'.repeat(1023) + '\n';
    for (let i = 0; i <= GROUP_LIMIT / 1024; i++) p.output('big', chunk(line));
    expect(out.text.startsWith('::group::big (running, part 1)\n[big] xxx')).toBe(true);
    expect(out.text.endsWith('::endgroup::\n')).toBe(true);
    // Another job ending meanwhile prints its own block outside the big one.
    p.output('small', chunk('s\n'));
    p.outputEnd('small');
    p.event({ type: 'built', unit: 'small', worker: 'w2', durationMs: 5 });
    expect(
      out.text.endsWith(
        '::endgroup::\n::group::small (built on w2 in 10ms)\n[small] s\n::endgroup::\ndist-build: small: built on w2 in 10ms\n',
      ),
    ).toBe(true);
    p.output('big', chunk('late\n'));
    p.outputEnd('big');
    p.event({ type: 'built', unit: 'big', worker: 'w1', durationMs: 5 });
    // The rest of the output (what was held after part 1, and the late line) is part 2.
    expect(out.text).toMatch(/::group::big \(part 2, built on w1 in 10ms\)\n\[big\] x+\n/);
    expect(
      out.text.endsWith('[big] late\n::endgroup::\ndist-build: big: built on w1 in 10ms\n'),
    ).toBe(true);
    expect(out.text.match(/::group::/g)!.length).toBe(out.text.match(/::endgroup::/g)!.length);
  });

  it("grouped: a retried job: the first attempt's block, then the attempt line; late output of the first attempt stays out of the second's block", () => {
    const { p, out } = progress({ logOrder: 'grouped', groupMarkers: true });
    p.event({ type: 'started', unit: 'a', worker: 'w1', attempt: 1 });
    p.output('a', chunk('first\n'), 1);
    p.event({ type: 'retry', unit: 'a', worker: 'w1', reason: 'worker w1 lost' });
    p.event({ type: 'started', unit: 'a', worker: 'w2', attempt: 2 });
    p.outputEnd('a', 1); // the lost attempt's stream ends late: not the new attempt's end
    p.output('a', chunk('stray\n'), 1);
    p.output('a', chunk('second\n'), 2);
    p.event({ type: 'built', unit: 'a', worker: 'w2', durationMs: 1000 });
    expect(out.text).toBe(
      '::group::a (on w1, will run again)\n[a] first\n::endgroup::\n' +
        'dist-build: a: will run again: worker w1 lost\n' +
        'dist-build: a: attempt 2 on w2\n' +
        '[a] stray\n',
    );
    p.outputEnd('a', 2);
    expect(
      out.text.endsWith(
        '::group::a (built on w2 in 1.00s)\n[a] second\n::endgroup::\ndist-build: a: built on w2 in 1.00s\n',
      ),
    ).toBe(true);
  });

  it('grouped: a unit its worker found in the cache after all ends like a job, as cached', () => {
    const { p, out } = progress({ logOrder: 'grouped' });
    p.event({ type: 'cached', unit: 'a', worker: 'w1' });
    p.event({ type: 'started', unit: 'b', worker: 'w2', attempt: 1 });
    p.output('b', chunk('b1\n'));
    p.outputEnd('b');
    p.event({ type: 'cached', unit: 'b', worker: 'w2' });
    expect(out.text).toBe(
      'dist-build: a: cached (held by w1)\n[b] b1\ndist-build: b: cached (held by w2)\n',
    );
    p.stop();
  });

  it('grouped: what is still held when the run stops is printed', () => {
    const { p, out } = progress({ logOrder: 'grouped' });
    p.event({ type: 'started', unit: 'a', worker: 'w1', attempt: 1 });
    p.output('a', chunk('partial'));
    p.event({ type: 'built', unit: 'a', worker: 'w1', durationMs: 10 });
    p.stop(); // the output stream never said it was over
    expect(out.text).toBe('[a] partial\ndist-build: a: built on w1 in 10ms\n');
  });

  it('stream: lines as they come, interleaved; a failure shows the tail of its log', () => {
    const { p, out } = progress({ logOrder: 'stream' });
    p.event({ type: 'started', unit: 'a', worker: 'w1', attempt: 1 });
    p.event({ type: 'started', unit: 'b', worker: 'w2', attempt: 1 });
    p.output('a', chunk('a1\n'));
    p.output('b', chunk('b1\n'));
    p.event({ type: 'failed', unit: 'a', worker: 'w1', reason: 'exited with code 1', tail: 'a1' });
    p.outputEnd('a');
    expect(out.text).toBe(
      '[a] a1\n[b] b1\ndist-build: a: FAILED on w1: exited with code 1\n--- last lines of a ---\na1\n---\n',
    );
  });

  it('a dependent skipped because a job failed is printed after that failure, which waits for its output', () => {
    const { p, out } = progress({ logOrder: 'stream' });
    p.event({ type: 'started', unit: 'a', worker: 'w1', attempt: 1 });
    p.event({ type: 'failed', unit: 'a', worker: 'w1', reason: 'exited with code 1' });
    p.event({ type: 'skipped', unit: 'b', reason: 'a failed' });
    p.output('a', chunk('oops\n'));
    p.outputEnd('a');
    expect(out.text).toBe(
      '[a] oops\ndist-build: a: FAILED on w1: exited with code 1\ndist-build: b: skipped: a failed\n',
    );
    p.stop();
  });

  it("stream: a job's end line comes after the last of its output, which may arrive after the result", () => {
    const { p, out } = progress({ logOrder: 'stream' });
    p.event({ type: 'started', unit: 'a', worker: 'w1', attempt: 1 });
    p.event({ type: 'started', unit: 'b', worker: 'w2', attempt: 1 });
    p.output('a', chunk('a1\n'));
    p.event({ type: 'built', unit: 'a', worker: 'w1', durationMs: 20 });
    p.output('b', chunk('b1\n'));
    p.output('a', chunk('a2 without newline'));
    p.outputEnd('a');
    expect(out.text).toBe(
      '[a] a1\n[b] b1\n[a] a2 without newline\ndist-build: a: built on w1 in 20ms\n',
    );
    p.stop();
  });

  it('a job whose output keeps coming long after its result (a huge log): its end line still waits for the last of it, in both orders', () => {
    jest.useFakeTimers();
    try {
      for (const logOrder of ['stream', 'grouped'] as const) {
        const { p, out } = progress({ logOrder, groupMarkers: logOrder === 'grouped' });
        p.event({ type: 'started', unit: 'a', worker: 'w1', attempt: 1 });
        p.output('a', chunk('a1\n'));
        p.event({ type: 'built', unit: 'a', worker: 'w1', durationMs: 20 });
        // Each chunk comes well within the wait, the last long after the result.
        for (let i = 2; i <= 4; i++) {
          jest.advanceTimersByTime(6_000);
          p.output('a', chunk(`a${i} `));
          p.output('a', chunk('cont\n'));
        }
        jest.advanceTimersByTime(6_000);
        p.outputEnd('a');
        expect(out.text).toBe(
          (logOrder === 'grouped' ? '::group::a (built on w1 in 20ms)\n' : '') +
            '[a] a1\n[a] a2 cont\n[a] a3 cont\n[a] a4 cont\n' +
            (logOrder === 'grouped' ? '::endgroup::\n' : '') +
            'dist-build: a: built on w1 in 20ms\n',
        );
        p.stop();
      }
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('Progress (terminal)', () => {
  it('keeps the live block within the terminal height: busy workers first, the rest counted', () => {
    const ci = process.env.CI;
    delete process.env.CI;
    const out = {
      text: '',
      isTTY: true,
      columns: 80,
      rows: 6,
      write: (t: string) => ((out.text += t), true),
    };
    let p: Progress;
    try {
      p = new Progress({ out: out as unknown as ProgressOptions['out'], total: 12 });
    } finally {
      if (ci !== undefined) process.env.CI = ci;
    }
    expect(p.live).toBe(true);
    for (let i = 1; i <= 12; i++)
      p.event({ type: 'worker-joined', worker: `w${String(i).padStart(2, '0')}` });
    p.event({ type: 'started', unit: 'a', worker: 'w07', attempt: 1 });
    p.event({ type: 'started', unit: 'b', worker: 'w11', attempt: 1 });
    p.print('note');
    // A 13-line block in 6 rows could not be moved up over: every redraw scrolled more of it away.
    const block = out.text.split('note\n')[1]!.split('\n').filter(Boolean);
    expect(block).toHaveLength(5);
    expect(block[0]).toBe('[0/12] 0 built, 0 cached');
    // The busy ones, then idle ones while there is room; in worker order (lines do not jump).
    expect(block[1]).toMatch(/^ {2}w01 +idle$/);
    expect(block[2]).toMatch(/^ {2}w07 +a \d/);
    expect(block[3]).toMatch(/^ {2}w11 +b \d/);
    expect(block[4]).toBe('  ... 9 more workers (9 idle)');
    p.stop();
  });

  it('keeps every line of the live block within a narrow terminal (a wrapped line was left behind)', () => {
    const ci = process.env.CI;
    delete process.env.CI;
    const out = {
      text: '',
      isTTY: true,
      columns: 30,
      rows: 10,
      write: (t: string) => ((out.text += t), true),
    };
    let p: Progress;
    try {
      p = new Progress({ out: out as unknown as ProgressOptions['out'], total: 1234 });
    } finally {
      if (ci !== undefined) process.env.CI = ci;
    }
    p.event({ type: 'worker-joined', worker: 'worker-1' });
    p.event({
      type: 'started',
      unit: 'fractal-zoom-with-a-long-name',
      worker: 'worker-1',
      attempt: 1,
    });
    p.event({ type: 'failed', unit: 'x', worker: null, reason: 'exited with code 1' });
    p.event({ type: 'skipped', unit: 'y', reason: 'needs x' });
    p.print('note');
    const block = out.text.split('note\n')[1]!.split('\n').filter(Boolean);
    expect(block).toHaveLength(2);
    expect(block[0]).toBe('[2/1234] 0 built, 0 cached, 1');
    expect(block[1]).toMatch(/^ {2}worker-1 +fractal-zoom-/);
    for (const line of block) expect(line.length).toBeLessThanOrEqual(29);
    p.stop();
  });

  it('lists workers in natural order: worker-2 before worker-10', () => {
    const ci = process.env.CI;
    delete process.env.CI;
    const out = {
      text: '',
      isTTY: true,
      columns: 80,
      rows: 40,
      write: (t: string) => ((out.text += t), true),
    };
    let p: Progress;
    try {
      p = new Progress({ out: out as unknown as ProgressOptions['out'], total: 1 });
    } finally {
      if (ci !== undefined) process.env.CI = ci;
    }
    for (const i of [10, 2, 1]) p.event({ type: 'worker-joined', worker: `worker-${i}` });
    p.print('note');
    const block = out.text.split('note\n')[1]!.split('\n').filter(Boolean);
    expect(block.slice(1).map((l) => l.trim().split(/\s+/)[0])).toEqual([
      'worker-1',
      'worker-2',
      'worker-10',
    ]);
    p.stop();
  });
});

describe('useColor', () => {
  it('colours a terminal, not a pipe, not CI, never with NO_COLOR set', () => {
    expect(useColor({ isTTY: true }, {})).toBe(true);
    expect(useColor({ isTTY: false }, {})).toBe(false);
    expect(useColor({ isTTY: true }, { CI: 'true' })).toBe(false);
    expect(useColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(useColor({ isTTY: true }, { NO_COLOR: '' })).toBe(true); // set but empty: no effect
  });
});
