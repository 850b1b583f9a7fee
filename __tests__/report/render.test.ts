import { jest } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cutMarkdown,
  REPORT_FORMAT,
  renderHtml,
  renderMarkdown,
  summaryTable,
  writeReport,
  type InvocationReport,
  type RunReport,
} from '../../src/report/index.js';

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5);
const WEIRD = 'a<b>&"c"';

function inv(
  p: Partial<InvocationReport> & Pick<InvocationReport, 'unit' | 'status'>,
): InvocationReport {
  return {
    invocation: p.unit.split('@')[0]!,
    worker: 'w1',
    cacheKey: `sha256:${'ab'.repeat(32)}`,
    attempts: 1,
    outputs: [],
    ...p,
  };
}
const timed = (start: number, end: number) => ({
  startedAt: T0 + start,
  endedAt: T0 + end,
  durationMs: end - start,
});

/** 2 workers; built, cached, failed, skipped and one invocation re-run after a lost worker. */
export const sample: RunReport = {
  format: REPORT_FORMAT,
  config: 'examples/monorepo/dist-build.yml',
  startedAt: T0,
  endedAt: T0 + 4000,
  durationMs: 4000,
  status: 'failed',
  workers: [
    { id: 'w1', annotations: { os: 'linux', arch: 'amd64' }, built: 2, cached: 1, busyMs: 2100 },
    { id: 'w2', annotations: { os: 'linux', arch: 'arm64' }, built: 1, cached: 1, busyMs: 2700 },
  ],
  invocations: [
    inv({ unit: 'lib', status: 'built', exitCode: 0, ...timed(100, 1300), outputs: [] }),
    inv({ unit: WEIRD, status: 'built', exitCode: 0, ...timed(400, 1300) }),
    inv({ unit: 'docs', status: 'cached' }),
    inv({ unit: 'lint', worker: 'w2', status: 'cached' }),
    inv({
      unit: 'app',
      worker: 'w2',
      status: 'built',
      exitCode: 0,
      attempts: 2,
      ...timed(1400, 2900),
      outputs: [{ path: 'dist', digest: `sha256:${'cd'.repeat(32)}`, size: 123456 }],
    }),
    inv({
      unit: 'api-image@linux/arm64',
      worker: 'w2',
      status: 'failed',
      exitCode: 2,
      reason: 'command exited with code 2',
      ...timed(2900, 3900),
    }),
    inv({
      unit: 'e2e',
      worker: null,
      status: 'skipped',
      reason: 'needs api-image@linux/arm64, which failed',
    }),
  ],
  exports: [
    {
      unit: 'app',
      invocation: 'app',
      worker: 'w2',
      outputs: [
        {
          path: 'dist',
          dest: 'out/app',
          digest: `sha256:${'cd'.repeat(32)}`,
          size: 123456,
          files: 12,
        },
      ],
    },
  ],
  events: [
    { at: T0 + 1350, message: 'worker w3 lost' },
    { at: T0 + 1400, message: 'retrying app on w2 (attempt 2)' },
  ],
};

const drawn = sample.invocations.filter((i) => i.status === 'built' || i.status === 'failed');

describe('summaryTable', () => {
  const out = summaryTable(sample);
  const lines = out.split('\n');

  test('lists every invocation with its result and duration', () => {
    expect(lines[0]).toMatch(/^INVOCATION\s+WORKER\s+RESULT\s+DURATION\s+NOTE$/);
    const expected: [string, RegExp][] = [
      ['lib', /^lib\s+w1\s+built\s+1\.20s$/],
      [WEIRD, /^a<b>&"c"\s+w1\s+built\s+900ms$/],
      ['docs', /^docs\s+w1\s+cached\s+-$/],
      ['lint', /^lint\s+w2\s+cached\s+-$/],
      ['app', /^app\s+w2\s+built \(attempt 2\)\s+1\.50s$/],
      ['api-image', /^api-image@linux\/arm64\s+w2\s+failed \(exit 2\)\s+1\.00s\s+command exited/],
      ['e2e', /^e2e\s+-\s+skipped\s+-\s+needs api-image/],
    ];
    for (const [name, re] of expected) {
      expect([name, lines.find((l) => re.test(l))]).toEqual([name, expect.any(String)]);
    }
  });

  test('a line per export and the totals line', () => {
    expect(out).toMatch(
      /^export\s+app\s+w2\s+dist -> out\/app\s+12 entries\s+120\.6 KiB\s+sha256:cdcdcdcdcdcd$/m,
    );
    expect(lines.filter(Boolean).at(-1)).toBe(
      '7 invocations: 3 built, 2 cached, 1 failed, 1 skipped in 4.00s on 2 workers',
    );
  });

  test('workers that left during the run are counted, and say so', () => {
    const withLost: RunReport = {
      ...sample,
      workers: [
        ...sample.workers,
        { id: 'w3', annotations: {}, built: 0, cached: 0, busyMs: 0, left: 'lease expired' },
      ],
    };
    expect(summaryTable(withLost).trimEnd().split('\n').at(-1)).toBe(
      '7 invocations: 3 built, 2 cached, 1 failed, 1 skipped in 4.00s on 3 workers (1 left during the run)',
    );
    expect(renderMarkdown(withLost)).toContain('| w3 (left: lease expired) |');
    expect(renderHtml(withLost)).toContain('w3 (left: lease expired)');
  });

  test('a failure without an exit code says why when it timed out', () => {
    const report: RunReport = {
      ...sample,
      invocations: [
        inv({ unit: 'slow', status: 'failed', exitCode: null, reason: 'timed out after 5s' }),
        inv({ unit: 'gone', status: 'failed', exitCode: null, reason: 'killed by SIGKILL' }),
      ],
    };
    const table = summaryTable(report);
    expect(table).toMatch(/slow +w1 +failed \(timed out\)/);
    expect(table).toMatch(/gone +w1 +failed \(no exit code\)/);
  });

  test('colour only adds escape codes, columns stay aligned', () => {
    const colored = summaryTable(sample, { color: true });
    // eslint-disable-next-line no-control-regex
    expect(colored.replace(/\x1b\[[0-9;]*m/g, '')).toBe(out);
    expect(colored).toContain('\x1b[31mfailed (exit 2)\x1b[0m');
  });
});

describe('renderMarkdown', () => {
  const md = renderMarkdown(sample);

  test('title, totals, table and exports with digests', () => {
    expect(md).toMatch(/^# dist-build run failed\n/);
    expect(md).toContain(
      '7 invocations: 3 built, 2 cached, 1 failed, 1 skipped in 4.00s on 2 workers',
    );
    for (const i of sample.invocations) expect(md).toContain(i.status);
    expect(md).toContain('a\\<b\\>\\&"c"'); // escaped for markdown
    expect(md).toContain(`\`sha256:${'cd'.repeat(32)}\``);
    expect(md).toContain('- +1.35s: worker w3 lost');
  });

  test('a mermaid gantt with one bar per built/failed invocation under its worker', () => {
    const block = /```mermaid\n([\s\S]*?)\n```/.exec(md)?.[1];
    expect(block).toBeDefined();
    const g = block!.split('\n').map((l) => l.trim());
    expect(g[0]).toBe('gantt');
    expect(g).toContain('dateFormat x');
    expect(g.some((l) => l.startsWith('axisFormat '))).toBe(true);
    let section = '';
    const bars: Record<string, string> = {};
    for (const l of g) {
      if (l.startsWith('section ')) section = l.slice(8);
      else if (section && l.includes(':')) {
        const [name, data] = l.split(' :');
        bars[name!.replace(/ \(.*\)$/, '')] = `${section} ${data}`;
      }
    }
    expect(Object.keys(bars)).toHaveLength(drawn.length);
    expect(bars).toEqual({
      lib: 'w1 t0, 100, 1300',
      [WEIRD]: 'w1 t1, 400, 1300',
      app: 'w2 active, t2, 1400, 2900',
      'api-image@linux/arm64': 'w2 crit, t3, 2900, 3900',
    });
    expect(md).toMatch(
      /Not drawn[^\n]*\n\n- w1: docs \(cached\)\n- w2: lint \(cached\)\n- \(no worker\): e2e \(skipped\)/,
    );
  });
});

describe('the mermaid axis', () => {
  const long = (ms: number): RunReport => ({
    ...sample,
    endedAt: T0 + ms,
    durationMs: ms,
    events: [],
    invocations: [inv({ unit: 'slow', status: 'built', ...timed(1000, ms - 1000) })],
  });
  const chart = (r: RunReport): string =>
    /```mermaid\n([\s\S]*?)\n```/.exec(renderMarkdown(r))![1]!;

  test('a run of hours is drawn at its real times: the axis is clock time in any time zone', () => {
    // Drawn from the epoch, "%H:%M" showed the viewer's UTC offset: a run starting at 01:00 in Paris.
    const g = chart(long(2 * 3_600_000));
    expect(g).toContain('axisFormat %H:%M\n');
    expect(g).toContain(`slow :t0, ${T0 + 1000}, ${T0 + 2 * 3_600_000 - 1000}`);
  });

  test('minutes too (half-hour time zones); seconds are drawn from the start', () => {
    expect(chart(long(5 * 60_000))).toContain('axisFormat %H:%M:%S\n');
    expect(chart(long(5 * 60_000))).toContain(`slow :t0, ${T0 + 1000}, `);
    expect(chart(long(30_000))).toContain('axisFormat %Ss\n');
    expect(chart(long(30_000))).toContain('slow :t0, 1000, 29000');
  });
});

describe('renderMarkdown of a run of many invocations', () => {
  const many = (n: number): RunReport => ({
    ...sample,
    status: 'succeeded',
    events: [],
    invocations: Array.from({ length: n }, (_, k) =>
      inv({
        unit: `package-${String(k).padStart(4, '0')}-with-a-fairly-long-descriptive-name-for-testing`,
        status: 'built',
        ...timed(k, k + 20),
      }),
    ),
  });

  test("a timeline over mermaid's 50,000 characters is not a chart that fails to draw: a note", () => {
    const md = renderMarkdown(many(700));
    expect(md).not.toContain('```mermaid');
    expect(md).toContain(
      'The timeline has 700 bars, more than a mermaid chart draws (50,000 characters of text): see the HTML report, dist-build-report.html.',
    );
    expect(md).toContain('| package-0699-with-a-fairly-long-descriptive-name-for-testing | w1 |');
  });

  test('below the limit, the chart is there', () => {
    const md = renderMarkdown(many(300));
    const block = /```mermaid\n([\s\S]*?)\n```/.exec(md)?.[1];
    expect(block!.length).toBeLessThan(50_000);
    expect(block!.match(/ :t\d+, /g)).toHaveLength(300);
  });
});

describe('cutMarkdown (the step summary of GitHub Actions holds at most 1 MiB)', () => {
  const MiB = 1024 * 1024;
  const root = 'root-of-everything-with-a-long-name-so-that-the-reasons-are-long-too';
  const big: RunReport = {
    ...sample,
    events: [],
    invocations: [
      inv({
        unit: root,
        status: 'failed',
        exitCode: 1,
        reason: 'exited with code 1',
        ...timed(0, 5),
      }),
      ...Array.from({ length: 5000 }, (_, k) =>
        inv({
          unit: `package-${String(k).padStart(4, '0')}-with-a-fairly-long-descriptive-name`,
          worker: null,
          status: 'skipped' as const,
          reason: `needs ${root}, which failed`,
        }),
      ),
    ],
  };

  test('a report over the limit is cut at a line, with the note, and its code blocks closed', () => {
    const md = renderMarkdown(big);
    expect(Buffer.byteLength(md)).toBeGreaterThan(MiB);
    const cut = cutMarkdown(md, MiB - 1024, 'NOTE: cut');
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(MiB - 1024);
    expect(cut.startsWith('# dist-build run failed\n')).toBe(true);
    expect(cut.endsWith('\n\nNOTE: cut\n')).toBe(true);
    expect(md.startsWith(cut.slice(0, -'\n\nNOTE: cut\n'.length))).toBe(true);
    // Cut inside a code block: it is closed before the note.
    const fenced = cutMarkdown('a\n\n```mermaid\n' + 'x\n'.repeat(100) + '```\n', 60, 'N');
    expect(fenced).toMatch(/^a\n\n```mermaid\n(x\n)+```\n\nN\n$/);
    expect(Buffer.byteLength(fenced)).toBeLessThanOrEqual(60);
  });

  test('a report within the limit is as it was', () => {
    const md = renderMarkdown(sample);
    expect(cutMarkdown(md, MiB, 'NOTE')).toBe(md);
  });
});

describe('renderHtml', () => {
  const html = renderHtml(sample);

  test('one self-contained document with one svg', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<svg[\s>]/g)).toHaveLength(1);
    expect(html.match(/<\/svg>/g)).toHaveLength(1);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\ssrc=|\shref=|url\(/i);
    expect(html.match(/https?:\/\/[^"]*/g)).toEqual(['http://www.w3.org/2000/svg']);
  });

  test('tags are balanced', () => {
    const voids = new Set(['meta', 'br', 'hr', 'img', 'input', 'link']);
    const stack: string[] = [];
    for (const m of html.matchAll(/<(\/?)([a-zA-Z][\w-]*)[^>]*?(\/?)>/g)) {
      const [, close, name, selfClose] = m;
      if (voids.has(name!.toLowerCase()) || selfClose) continue;
      if (close) expect(stack.pop()).toBe(name);
      else stack.push(name!);
    }
    expect(stack).toEqual([]);
  });

  test('one bar per built/failed invocation, coloured by status', () => {
    const bars = html.match(/<g class="bar [^"]*"/g) ?? [];
    expect(bars).toHaveLength(drawn.length);
    expect(bars.filter((b) => b.includes(' failed'))).toHaveLength(1);
    expect(bars.filter((b) => b.includes(' retried'))).toHaveLength(1);
    expect(html).toContain('<title>app — built (attempt 2) on w2');
    expect(html.match(/<g class="event">/g)).toHaveLength(2);
    expect(html).toMatch(/<text x="[\d.]+" y="[\d.]+" text-anchor="middle">4s<\/text>/);
  });

  test('all text is escaped', () => {
    expect(html).not.toContain(WEIRD);
    expect(html).not.toContain('<b>');
    expect(html).toContain('a&lt;b&gt;&amp;&quot;c&quot;');
    const evil: RunReport = {
      ...sample,
      config: '</style><script>x</script>',
      events: [{ at: T0, message: '<img src=x>' }],
      workers: [{ ...sample.workers[0]!, id: '<w1>', annotations: { '"k"': "'v'" } }],
    };
    const e = renderHtml(evil);
    expect(e).not.toMatch(/<script|<img|<w1>|"k"|'v'/);
  });
});

test('renderers are deterministic and do not read the clock', () => {
  const now = jest.spyOn(Date, 'now').mockImplementation(() => {
    throw new Error('Date.now called');
  });
  try {
    expect(renderHtml(sample)).toBe(renderHtml(structuredClone(sample)));
    expect(renderMarkdown(sample)).toBe(renderMarkdown(structuredClone(sample)));
    expect(summaryTable(sample)).toBe(summaryTable(structuredClone(sample)));
  } finally {
    now.mockRestore();
  }
});

test('an empty run renders', () => {
  const empty: RunReport = { ...sample, workers: [], invocations: [], exports: [], events: [] };
  expect(summaryTable(empty)).toContain(
    '0 invocations: 0 built, 0 cached, 0 failed in 4.00s on 0 workers',
  );
  expect(renderMarkdown(empty)).toContain('Nothing was built.');
  expect(renderHtml(empty).match(/<svg[\s>]/g)).toHaveLength(1);
});

describe('writeReport', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'dist-build-report-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('writes JSON, Markdown and HTML into a new directory', async () => {
    const target = join(dir, 'nested', 'report');
    const paths = await writeReport(target, sample);
    expect(paths).toEqual({
      json: join(target, 'dist-build-report.json'),
      markdown: join(target, 'dist-build-report.md'),
      html: join(target, 'dist-build-report.html'),
    });
    const json = readFileSync(paths.json, 'utf8');
    expect(json).toContain('\n  "format": "dist-build/report/v1"');
    expect(JSON.parse(json)).toEqual(sample);
    expect(readFileSync(paths.markdown, 'utf8')).toBe(renderMarkdown(sample));
    expect(readFileSync(paths.html, 'utf8')).toBe(renderHtml(sample));
  });
});

describe('pushed images', () => {
  const pushes = [
    {
      unit: 'api-image',
      invocation: 'api-image',
      worker: 'w2',
      images: [{ ref: `reg.example/${WEIRD}:1`, digest: `sha256:${'ef'.repeat(32)}` }],
    },
  ];
  const withPushes: RunReport = { ...sample, pushes };

  test('the terminal table, Markdown and HTML name each reference pushed, its worker and digest', () => {
    expect(summaryTable(withPushes, { color: false })).toMatch(
      /push +api-image +w2 +reg\.example\/a<b>&"c":1 .*sha256:efefefefefef/,
    );
    expect(renderMarkdown(withPushes)).toContain(
      `## Images pushed\n\n| Invocation | Worker | Reference | Digest |\n| --- | --- | --- | --- |\n| api-image | w2 | \`reg.example/a<b>&"c":1\` | \`sha256:${'ef'.repeat(32)}\` |`,
    );
    const html = renderHtml(withPushes);
    expect(html).toContain('<h2>Images pushed</h2>');
    expect(html).toContain('<code>reg.example/a&lt;b&gt;&amp;&quot;c&quot;:1</code>');
    // A report without pushes has no such section.
    expect(renderMarkdown(sample)).not.toContain('Images pushed');
  });
});
