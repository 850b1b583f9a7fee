/**
 * Pure renderers of a {@link RunReport}: a terminal summary, Markdown (with a mermaid Gantt chart)
 * and a self-contained HTML page (inline CSS and SVG, no scripts, no external assets).
 * Deterministic: no clock reads; chart times are relative to `report.startedAt`.
 */
import { pathBelow } from '../plan/plan.js';
import { count, table } from '../cli/table.js';
import { formatDuration } from '../config/duration.js';
import { formatSize } from '../config/size.js';
import type { InvocationReport, InvocationStatus, RunReport, WorkerReport } from './types.js';

const STATUSES: InvocationStatus[] = ['built', 'cached', 'failed', 'skipped', 'cancelled'];

// ---------------------------------------------------------------------------------------------
// shared helpers

/** Counts per status. */
export function countByStatus(report: RunReport): Record<InvocationStatus, number> {
  const counts = { built: 0, cached: 0, failed: 0, skipped: 0, cancelled: 0 };
  for (const i of report.invocations) counts[i.status]++;
  return counts;
}

const fmtMs = (ms: number): string => formatDuration(Math.max(0, ms) / 1000);
const rel = (report: RunReport, at: number): string => `+${fmtMs(at - report.startedAt)}`;

/** "19 invocations: 3 built, 16 cached, 0 failed in 1.20s on 4 workers" (skipped/cancelled when any). */
export function totalsLine(report: RunReport): string {
  const c = countByStatus(report);
  const extra = (['skipped', 'cancelled'] as const)
    .filter((s) => c[s] > 0)
    .map((s) => `, ${c[s]} ${s}`)
    .join('');
  const left = report.workers.filter((w) => w.left !== undefined).length;
  return (
    `${count(report.invocations.length, 'invocation')}: ${c.built} built, ${c.cached} cached, ` +
    `${c.failed} failed${extra} in ${fmtMs(report.durationMs)} on ${count(report.workers.length, 'worker')}` +
    (left ? ` (${left} left during the run)` : '')
  );
}

/** The interval a built/failed invocation ran in (epoch ms), or null when it has no timing. */
function interval(i: InvocationReport): { start: number; end: number } | null {
  if (i.status !== 'built' && i.status !== 'failed') return null;
  if (i.startedAt === undefined) return null;
  const end = i.endedAt ?? (i.durationMs !== undefined ? i.startedAt + i.durationMs : undefined);
  if (end === undefined) return null;
  return { start: i.startedAt, end: Math.max(end, i.startedAt) };
}

function durationMs(i: InvocationReport): number | undefined {
  if (i.durationMs !== undefined) return i.durationMs;
  const t = interval(i);
  return t ? t.end - t.start : undefined;
}

/**
 * "built", "built (attempt 2)", "failed (exit 2)", "failed (timed out)", "failed (no exit code,
 * attempt 3)".
 */
function resultText(i: InvocationReport): string {
  const details: string[] = [];
  if (i.status === 'failed' && i.exitCode !== undefined)
    details.push(
      i.exitCode !== null
        ? `exit ${i.exitCode}`
        : i.reason?.startsWith('timed out')
          ? 'timed out'
          : 'no exit code',
    );
  if (i.attempts > 1) details.push(`attempt ${i.attempts}`);
  return details.length ? `${i.status} (${details.join(', ')})` : i.status;
}

/** `sha256:0123456789ab` from a full digest. */
function shortDigest(digest: string): string {
  const m = /^([a-z0-9]+:)?([0-9a-f]+)$/i.exec(digest);
  return m ? `${m[1] ?? ''}${m[2]!.slice(0, 12)}` : digest;
}

/** A worker's name in the tables: with why it left, if it left during the run. */
function workerLabel(w: WorkerReport): string {
  return w.left !== undefined ? `${w.id} (left: ${w.left})` : w.id;
}

/** Worker ids in report order, then workers only named by invocations (sorted). */
function laneIds(report: RunReport): string[] {
  const ids = report.workers.map((w) => w.id);
  const seen = new Set(ids);
  const extra = new Set<string>();
  for (const i of report.invocations) {
    const w = i.worker ?? NO_WORKER;
    if (!seen.has(w) && interval(i)) extra.add(w);
  }
  return [...ids, ...[...extra].sort()];
}
const NO_WORKER = '(no worker)';

interface Bar {
  inv: InvocationReport;
  start: number; // ms relative to report.startedAt
  end: number;
}

/** Built/failed invocations with timing, per lane, ordered by start. */
function barsByLane(report: RunReport): Map<string, Bar[]> {
  const lanes = new Map<string, Bar[]>(laneIds(report).map((id) => [id, []]));
  for (const inv of report.invocations) {
    const t = interval(inv);
    if (!t) continue;
    lanes.get(inv.worker ?? NO_WORKER)!.push({
      inv,
      start: t.start - report.startedAt,
      end: t.end - report.startedAt,
    });
  }
  for (const bars of lanes.values()) bars.sort((a, b) => a.start - b.start || a.end - b.end);
  return lanes;
}

// ---------------------------------------------------------------------------------------------
// terminal

const ANSI: Record<InvocationStatus, string> = {
  built: '\x1b[32m',
  cached: '\x1b[2m',
  failed: '\x1b[31m',
  skipped: '\x1b[33m',
  cancelled: '\x1b[33m',
};
const RESET = '\x1b[0m';

/**
 * Terminal table (INVOCATION, WORKER, RESULT, DURATION, NOTE when any invocation has a reason),
 * a line per exported output, and the totals line. `color` adds ANSI colours to the result column.
 */
export function summaryTable(report: RunReport, opts: { color?: boolean } = {}): string {
  const withNote = report.invocations.some((i) => i.reason);
  const header = ['INVOCATION', 'WORKER', 'RESULT', 'DURATION', ...(withNote ? ['NOTE'] : [])];
  const rows = [
    header,
    ...report.invocations.map((i) => {
      const d = durationMs(i);
      return [
        i.unit,
        i.worker ?? '-',
        resultText(i),
        d === undefined ? '-' : fmtMs(d),
        ...(withNote ? [oneLine(i.reason ?? '')] : []),
      ];
    }),
  ];
  let lines = table(rows, [false, false, false, true, false]).split('\n');
  if (opts.color) {
    // Colour after layout so escape codes do not count towards column widths.
    const at =
      Math.max(...rows.map((r) => r[0]!.length)) +
      2 +
      Math.max(...rows.map((r) => r[1]!.length)) +
      2;
    lines = lines.map((line, n) => {
      if (n === 0) return `\x1b[1m${line}${RESET}`;
      const cell = rows[n]![2]!;
      if (line.slice(at, at + cell.length) !== cell) return line;
      const code = ANSI[report.invocations[n - 1]!.status];
      return line.slice(0, at) + code + cell + RESET + line.slice(at + cell.length);
    });
  }
  const out = [lines.join('\n')];
  const exportRows: string[][] = [];
  for (const e of report.exports) {
    if (e.outputs.length === 0) exportRows.push(['export', e.unit, e.worker, '(no outputs)']);
    for (const o of e.outputs)
      exportRows.push([
        'export',
        e.unit,
        e.worker,
        `${o.path} -> ${shownPath(o.dest)}`,
        count(o.files, 'entry', 'entries'),
        formatSize(o.size),
        shortDigest(o.digest),
      ]);
  }
  for (const p of report.pushes ?? [])
    for (const i of p.images)
      exportRows.push([
        'push',
        p.unit,
        p.worker,
        i.ref,
        '',
        '',
        i.digest ? shortDigest(i.digest) : '',
      ]);
  if (exportRows.length) out.push(table(exportRows, [false, false, false, false, true, true]));
  out.push(totalsLine(report));
  return out.join('\n\n') + '\n';
}

const oneLine = (s: string): string => s.replace(/\s*[\r\n]+\s*/g, ' ').trim();

// ---------------------------------------------------------------------------------------------
// markdown

/** Backslash-escapes characters Markdown (and inline HTML) would interpret; safe in table cells. */
function md(s: string): string {
  return oneLine(s).replace(/[\\`*_[\]<>|&~]/g, (c) => `\\${c}`);
}

/** A code span, or escaped text when the value contains backticks. */
function mdCode(s: string): string {
  return s && !/[`|\r\n]/.test(s) ? `\`${s}\`` : md(s);
}

/** Text usable in a mermaid gantt task name, section or title (no `:`, `;`, `#`, newlines). */
function mermaidText(s: string): string {
  const t = oneLine(s).replace(/:/g, '∶').replace(/;/g, ',').replace(/#/g, '＃').replace(/`/g, "'");
  // A line starting with a keyword would be read as that statement.
  return /^(section|title|dateFormat|axisFormat|tickInterval|excludes|includes|todayMarker|weekday|weekend|click|accTitle|accDescr|inclusiveEndDates|topAxis|displayMode)\b/i.test(
    t,
  )
    ? `▸ ${t}`
    : t || '-';
}

/**
 * The mermaid axis: d3 time format, and the epoch ms the bars' times (ms since the run start) are
 * drawn from. Mermaid formats the axis in the viewer's time zone: times since the epoch read as
 * hours (`%H`) showed the viewer's UTC offset (a run starting at "01:00" in Paris), and as minutes
 * were off by 30 in half-hour zones. Under a minute they are seconds since the start (offsets
 * are whole minutes); longer runs are drawn at their real times, so that the axis is clock time.
 */
function mermaidAxis(report: RunReport, spanMs: number): { format: string; base: number } {
  if (spanMs < 10_000) return { format: '%S.%L', base: 0 };
  if (spanMs < 60_000) return { format: '%Ss', base: 0 };
  return { format: spanMs < 3_600_000 ? '%H:%M:%S' : '%H:%M', base: report.startedAt };
}

/** Mermaid's default `maxTextSize`: a longer diagram is not drawn. */
const MERMAID_MAX_TEXT = 50_000;
/** The HTML report, written next to the Markdown one (see `REPORT_FILES`). */
const REPORT_HTML = 'dist-build-report.html';

function mdTable(header: string[], rows: string[][], right: boolean[] = []): string {
  const sep = header.map((_, i) => (right[i] ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** Markdown: title, totals, invocation table, workers, exports, mermaid gantt chart, events. */
export function renderMarkdown(report: RunReport): string {
  const out: string[] = [];
  out.push(`# dist-build run ${report.status}`);
  out.push(
    `Config ${mdCode(report.config)}, started ${new Date(report.startedAt).toISOString()}, ` +
      `took ${fmtMs(report.durationMs)}.`,
  );
  out.push(`**${md(totalsLine(report))}**`);

  out.push('## Invocations');
  if (report.invocations.length === 0) out.push('No invocations.');
  else
    out.push(
      mdTable(
        ['Invocation', 'Worker', 'Result', 'Duration', 'Cache key', 'Note'],
        report.invocations.map((i) => {
          const d = durationMs(i);
          const result = md(resultText(i));
          return [
            md(i.unit),
            i.worker === null ? '-' : md(i.worker),
            i.status === 'failed' ? `**${result}**` : result,
            d === undefined ? '-' : fmtMs(d),
            mdCode(shortDigest(i.cacheKey)),
            md(i.reason ?? ''),
          ];
        }),
        [false, false, false, true],
      ),
    );

  if (report.workers.length) {
    out.push('## Workers');
    out.push(
      mdTable(
        ['Worker', 'Annotations', 'Built', 'Cached', 'Busy'],
        report.workers.map((w) => [
          md(workerLabel(w)),
          md(
            Object.entries(w.annotations)
              .map(([k, v]) => `${k}=${v}`)
              .join(', '),
          ),
          String(w.built),
          String(w.cached),
          fmtMs(w.busyMs),
        ]),
        [false, false, true, true, true],
      ),
    );
  }

  if (report.exports.length) {
    out.push('## Exports');
    out.push(
      mdTable(
        ['Invocation', 'Worker', 'Path', 'Destination', 'Entries', 'Size', 'Digest'],
        report.exports.flatMap((e) =>
          e.outputs.map((o) => [
            md(e.unit),
            md(e.worker),
            mdCode(o.path),
            mdCode(o.dest),
            String(o.files),
            formatSize(o.size),
            mdCode(o.digest),
          ]),
        ),
        [false, false, false, false, true, true],
      ),
    );
  }

  if (report.pushes?.length) {
    out.push('## Images pushed');
    out.push(
      mdTable(
        ['Invocation', 'Worker', 'Reference', 'Digest'],
        report.pushes.flatMap((p) =>
          p.images.map((i) => [md(p.unit), md(p.worker), mdCode(i.ref), mdCode(i.digest)]),
        ),
        [false, false, false, false],
      ),
    );
  }

  out.push('## Timeline');
  const lanes = barsByLane(report);
  const drawn = [...lanes.values()].reduce((n, b) => n + b.length, 0);
  if (drawn === 0) out.push('Nothing was built.');
  else {
    const span = Math.max(report.durationMs, ...[...lanes.values()].flat().map((b) => b.end));
    const axis = mermaidAxis(report, span);
    const g = [
      '```mermaid',
      'gantt',
      `    title ${mermaidText(`${report.config} (${report.status}, ${fmtMs(report.durationMs)})`)}`,
      '    dateFormat x',
      `    axisFormat ${axis.format}`,
      '    todayMarker off',
    ];
    let n = 0;
    for (const [worker, bars] of lanes) {
      if (!bars.length) continue;
      g.push(`    section ${mermaidText(worker)}`);
      for (const b of bars) {
        const tags: string[] = [];
        const notes: string[] = [];
        if (b.inv.status === 'failed') {
          tags.push('crit');
          notes.push('failed');
        }
        if (b.inv.attempts > 1) {
          tags.push('active');
          notes.push(`attempt ${b.inv.attempts}`);
        }
        const label = notes.length ? `${b.inv.unit} (${notes.join(', ')})` : b.inv.unit;
        // Mermaid draws zero-length tasks invisibly: give every bar at least 1 ms.
        const end = Math.max(b.end, b.start + 1);
        const times = [axis.base + b.start, axis.base + end];
        g.push(`    ${mermaidText(label)} :${[...tags, `t${n++}`, ...times].join(', ')}`);
      }
    }
    const diagram = g.slice(1).join('\n');
    g.push('```');
    // Mermaid refuses a larger diagram ("Maximum text size in diagram exceeded", on GitHub too):
    // a run of many hundred invocations showed that error instead of its timeline.
    if (diagram.length <= MERMAID_MAX_TEXT) out.push(g.join('\n'));
    else
      out.push(
        `The timeline has ${count(drawn, 'bar')}, more than a mermaid chart draws ` +
          `(${MERMAID_MAX_TEXT.toLocaleString('en')} characters of text): see the HTML report, ${REPORT_HTML}.`,
      );
  }
  const notDrawn = report.invocations.filter((i) => !interval(i));
  if (notDrawn.length) {
    const byWorker = new Map<string, string[]>();
    for (const i of notDrawn) {
      const key = i.worker ?? NO_WORKER;
      byWorker.set(key, [...(byWorker.get(key) ?? []), `${md(i.unit)} (${i.status})`]);
    }
    out.push(
      'Not drawn (cached, skipped, cancelled or without timing):\n\n' +
        [...byWorker].map(([w, names]) => `- ${md(w)}: ${names.join(', ')}`).join('\n'),
    );
  }

  if (report.events?.length) {
    out.push('## Events');
    out.push(
      [...report.events]
        .sort((a, b) => a.at - b.at)
        .map((e) => `- ${rel(report, e.at)}: ${md(e.message)}`)
        .join('\n'),
    );
  }
  return out.join('\n\n') + '\n';
}

/**
 * `markdown` cut at a line so that it and a closing note take at most `maxBytes` (UTF-8), a code
 * block left open closed; as is when it fits. For GitHub's step summary, which refuses (drops,
 * with an error annotation) one over 1 MiB.
 */
export function cutMarkdown(markdown: string, maxBytes: number, note: string): string {
  if (Buffer.byteLength(markdown) <= maxBytes) return markdown;
  const tail = `\n\n${note}\n`;
  const room = maxBytes - Buffer.byteLength(tail) - 4; // 4: a closing fence
  const lines = markdown.split('\n');
  const kept: string[] = [];
  let bytes = 0;
  for (const line of lines) {
    const n = Buffer.byteLength(line) + 1;
    if (bytes + n > room) break;
    kept.push(line);
    bytes += n;
  }
  const fences = kept.filter((l) => l.startsWith('```')).length;
  return kept.join('\n').trimEnd() + (fences % 2 ? '\n```' : '') + tail;
}

// ---------------------------------------------------------------------------------------------
// html

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );
}
const h = escapeHtml;

/** Tick step (ms) giving at most ~10 ticks over `span`. */
function tickStep(span: number): number {
  const steps = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000,
    300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 21_600_000, 43_200_000,
  ];
  return steps.find((s) => span / s <= 10) ?? 86_400_000;
}

function tickLabel(t: number, step: number): string {
  if (step < 1000) return `${Number((t / 1000).toFixed(3))}s`;
  if (t < 120_000 || step < 60_000) return `${t / 1000}s`;
  const m = Math.floor(t / 60_000);
  const s = Math.round((t % 60_000) / 1000);
  if (m < 60) return s ? `${m}m${String(s).padStart(2, '0')}s` : `${m}m`;
  const rm = m % 60;
  return `${Math.floor(m / 60)}h${rm ? String(rm).padStart(2, '0') + 'm' : ''}`;
}

/** `text` cut with an ellipsis to fit `px` at ~6.4 px per character, or '' when too narrow. */
function fit(text: string, px: number): string {
  const max = Math.floor(px / 6.4);
  if (text.length <= max) return text;
  return max >= 4 ? `${text.slice(0, max - 1)}…` : '';
}

const num = (v: number): string => String(Math.round(v * 10) / 10);

function ganttSvg(report: RunReport): string {
  const lanes = barsByLane(report);
  const all = [...lanes.values()].flat();
  const span = Math.max(1, report.durationMs, ...all.map((b) => b.end));
  const W = 1100;
  const LEFT = 170;
  const RIGHT = 24;
  const TOP = 10;
  const ROW = 22;
  const BAR = 16;
  const PAD = 6;
  const AXIS = 28;
  const plotW = W - LEFT - RIGHT;
  const x = (t: number): number => LEFT + (Math.min(Math.max(t, 0), span) / span) * plotW;
  const cached = new Map<string, number>();
  for (const i of report.invocations)
    if (i.status === 'cached')
      cached.set(i.worker ?? NO_WORKER, (cached.get(i.worker ?? NO_WORKER) ?? 0) + 1);

  const parts: string[] = []; // lane backgrounds and names
  const barParts: string[] = []; // drawn above the grid
  let y = TOP;
  let laneNo = 0;
  for (const [worker, bars] of lanes) {
    // Pack concurrent invocations of one worker into sub-rows.
    const rowEnds: number[] = [];
    const placed = bars.map((b) => {
      let r = rowEnds.findIndex((end) => end <= b.start);
      if (r < 0) r = rowEnds.push(0) - 1;
      rowEnds[r] = Math.max(b.end, b.start + 1);
      return { b, r };
    });
    const laneH = Math.max(2, rowEnds.length) * ROW + 2 * PAD;
    const built = bars.filter((b) => b.inv.status === 'built').length;
    const failed = bars.length - built;
    const sub = [
      `${built} built`,
      `${cached.get(worker) ?? 0} cached`,
      ...(failed ? [`${failed} failed`] : []),
    ].join(' · ');
    parts.push(
      `<rect class="lane-bg${laneNo++ % 2 ? ' odd' : ''}" x="0" y="${y}" width="${W}" height="${laneH}"/>`,
      `<text class="lane-name" x="10" y="${y + PAD + 13}"><title>${h(worker)}</title>${h(fit(worker, LEFT - 20) || '…')}</text>`,
      `<text class="lane-sub" x="10" y="${y + PAD + 29}">${h(sub)}</text>`,
    );
    for (const { b, r } of placed) {
      const bx = x(b.start);
      const bw = Math.max(2, x(b.end) - bx);
      const by = y + PAD + r * ROW + (ROW - BAR) / 2;
      const i = b.inv;
      const cls = `bar ${i.status}${i.attempts > 1 ? ' retried' : ''}`;
      const tip = [
        `${i.unit} — ${resultText(i)} on ${worker}`,
        `${rel(report, report.startedAt + b.start)} → ${rel(report, report.startedAt + b.end)} (${fmtMs(durationMs(i) ?? b.end - b.start)})`,
        ...(i.invocation !== i.unit ? [`invocation ${i.invocation}`] : []),
        `cache key ${i.cacheKey}`,
        ...(i.reason ? [i.reason] : []),
      ].join('\n');
      const label = fit(i.unit, bw - 8);
      barParts.push(
        `<g class="${cls}"><title>${h(tip)}</title>` +
          `<rect x="${num(bx)}" y="${num(by)}" width="${num(bw)}" height="${BAR}" rx="3"/>` +
          (label ? `<text x="${num(bx + 4)}" y="${num(by + 12)}">${h(label)}</text>` : '') +
          `</g>`,
      );
    }
    y += laneH;
  }
  if (lanes.size === 0) {
    parts.push(`<text class="empty" x="${LEFT}" y="${y + 24}">No workers.</text>`);
    y += 40;
  }
  const plotBottom = y;

  // Time axis and grid.
  const step = tickStep(span);
  const axis: string[] = [`<g class="axis">`];
  axis.push(`<line x1="${LEFT}" y1="${plotBottom}" x2="${LEFT + plotW}" y2="${plotBottom}"/>`);
  for (let t = 0; t <= span + 1e-9; t += step) {
    const tx = num(x(t));
    axis.push(
      `<line class="grid" x1="${tx}" y1="${TOP}" x2="${tx}" y2="${plotBottom}"/>`,
      `<line x1="${tx}" y1="${plotBottom}" x2="${tx}" y2="${plotBottom + 5}"/>`,
      `<text x="${tx}" y="${plotBottom + 18}" text-anchor="middle">${h(tickLabel(t, step))}</text>`,
    );
  }
  axis.push(`</g>`);

  // Events as vertical markers.
  const events = (report.events ?? []).map((e) => {
    const ex = num(x(e.at - report.startedAt));
    return (
      `<g class="event"><title>${h(`${rel(report, e.at)}: ${e.message}`)}</title>` +
      `<line x1="${ex}" y1="${TOP}" x2="${ex}" y2="${plotBottom}"/>` +
      `<path d="M${ex} ${TOP} l-4 -6 h8 z"/></g>`
    );
  });

  const H = plotBottom + AXIS;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="gantt" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="Timeline of the run, one lane per worker">\n` +
    [...parts, ...axis, ...barParts, ...events].join('\n') +
    '\n</svg>'
  );
}

const CSS = `
:root { --built: #2da44e; --cached: #8c959f; --failed: #cf222e; --skipped: #bf8700; --cancelled: #6e7781;
  --fg: #1f2328; --muted: #656d76; --border: #d0d7de; --bg: #fff; --lane: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1140px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; display: flex; align-items: center; gap: 10px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--border); }
.meta { color: var(--muted); margin: 0 0 16px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.pill { display: inline-block; border-radius: 999px; padding: 1px 10px; font-size: 13px; font-weight: 600; color: #fff; background: var(--cancelled); }
.pill.succeeded { background: var(--built); } .pill.failed { background: var(--failed); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; padding: 0; list-style: none; }
.cards li { border: 1px solid var(--border); border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.cards strong { display: block; font-size: 22px; }
.cards span { color: var(--muted); font-size: 12px; }
.cards .failed strong { color: var(--failed); } .cards .built strong { color: var(--built); }
.totals { font-weight: 600; }
.chart { overflow-x: auto; border: 1px solid var(--border); border-radius: 6px; }
svg.gantt { display: block; max-width: 100%; height: auto; font-family: inherit; }
.lane-bg { fill: var(--bg); } .lane-bg.odd { fill: var(--lane); }
.lane-name { font-size: 13px; font-weight: 600; fill: var(--fg); }
.lane-sub { font-size: 11px; fill: var(--muted); }
.bar rect { stroke: rgba(0,0,0,.25); stroke-width: 1; }
.bar.built rect { fill: var(--built); } .bar.failed rect { fill: var(--failed); }
.bar.retried rect { stroke: var(--skipped); stroke-width: 2; stroke-dasharray: 4 2; }
.bar text { font-size: 11px; fill: #fff; pointer-events: none; }
.axis line { stroke: var(--muted); } .axis line.grid { stroke: var(--border); stroke-dasharray: 2 3; }
.axis text { font-size: 11px; fill: var(--muted); }
.event line { stroke: #8250df; stroke-width: 1.5; stroke-dasharray: 5 3; } .event path { fill: #8250df; }
.legend { display: flex; gap: 16px; flex-wrap: wrap; color: var(--muted); font-size: 12px; margin: 8px 0 0; padding: 0; list-style: none; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 5px; vertical-align: -2px; }
.legend .built { background: var(--built); } .legend .failed { background: var(--failed); }
.legend .retried { border: 2px dashed var(--skipped); } .legend .event { width: 2px; background: #8250df; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--border); vertical-align: top; }
th { background: var(--lane); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
.status { display: inline-block; border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.status.built { background: var(--built); } .status.cached { background: var(--cached); }
.status.failed { background: var(--failed); } .status.skipped { background: var(--skipped); }
.status.cancelled { background: var(--cancelled); }
.muted { color: var(--muted); }
ul.events { padding-left: 20px; } ul.events code { color: var(--muted); }
`;

function htmlTable(header: string[], rows: string[][], numeric: boolean[] = []): string {
  const cls = (i: number): string => (numeric[i] ? ' class="num"' : '');
  return (
    `<table>\n<thead><tr>${header.map((c, i) => `<th${cls(i)}>${h(c)}</th>`).join('')}</tr></thead>\n<tbody>\n` +
    rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${c}</td>`).join('')}</tr>`).join('\n') +
    `\n</tbody>\n</table>`
  );
}

/** One self-contained HTML page (inline CSS and SVG, no scripts). All text is escaped. */
export function renderHtml(report: RunReport): string {
  const c = countByStatus(report);
  const body: string[] = [];
  body.push(
    `<h1>dist-build run <span class="pill ${h(report.status)}">${h(report.status)}</span></h1>`,
    `<p class="meta">Config <code>${h(report.config)}</code> · started ${h(new Date(report.startedAt).toISOString())} · took ${h(fmtMs(report.durationMs))}</p>`,
    `<ul class="cards">` +
      STATUSES.map((s) => `<li class="${s}"><strong>${c[s]}</strong><span>${s}</span></li>`).join(
        '',
      ) +
      `<li><strong>${h(fmtMs(report.durationMs))}</strong><span>duration</span></li>` +
      `<li><strong>${report.workers.length}</strong><span>workers</span></li></ul>`,
    `<p class="totals">${h(totalsLine(report))}</p>`,
  );

  body.push(
    `<h2>Timeline</h2>`,
    `<div class="chart">\n${ganttSvg(report)}\n</div>`,
    `<ul class="legend"><li><i class="built"></i>built</li><li><i class="failed"></i>failed</li>` +
      `<li><i class="retried"></i>re-run after a lost worker</li><li><i class="event"></i>event</li>` +
      `<li>cached, skipped and cancelled invocations are not drawn</li></ul>`,
  );

  body.push(`<h2>Invocations</h2>`);
  body.push(
    report.invocations.length === 0
      ? `<p class="muted">No invocations.</p>`
      : htmlTable(
          ['Invocation', 'Worker', 'Result', 'Duration', 'Started', 'Cache key', 'Note'],
          report.invocations.map((i) => {
            const d = durationMs(i);
            const t = interval(i);
            const details = resultText(i).slice(i.status.length).trim();
            return [
              h(i.unit) +
                (i.invocation !== i.unit ? ` <span class="muted">(${h(i.invocation)})</span>` : ''),
              i.worker === null ? '<span class="muted">-</span>' : h(i.worker),
              `<span class="status ${i.status}">${i.status}</span>` +
                (details ? ` <span class="muted">${h(details)}</span>` : ''),
              d === undefined ? '-' : h(fmtMs(d)),
              t ? h(rel(report, t.start)) : '-',
              `<code title="${h(i.cacheKey)}">${h(shortDigest(i.cacheKey))}</code>`,
              h(i.reason ?? ''),
            ];
          }),
          [false, false, false, true, true],
        ),
  );

  if (report.workers.length) {
    body.push(`<h2>Workers</h2>`);
    body.push(
      htmlTable(
        ['Worker', 'Annotations', 'Built', 'Cached', 'Busy', 'Utilisation'],
        report.workers.map((w) => [
          h(workerLabel(w)),
          Object.entries(w.annotations)
            .map(([k, v]) => `<code>${h(k)}=${h(v)}</code>`)
            .join(' '),
          String(w.built),
          String(w.cached),
          h(fmtMs(w.busyMs)),
          report.durationMs > 0 ? `${Math.round((100 * w.busyMs) / report.durationMs)}%` : '-',
        ]),
        [false, false, true, true, true, true],
      ),
    );
  }

  if (report.exports.length) {
    body.push(`<h2>Exports</h2>`);
    body.push(
      htmlTable(
        ['Invocation', 'Worker', 'Path', 'Destination', 'Entries', 'Size', 'Digest'],
        report.exports.flatMap((e) =>
          e.outputs.map((o) => [
            h(e.unit),
            h(e.worker),
            `<code>${h(o.path)}</code>`,
            `<code>${h(o.dest)}</code>`,
            String(o.files),
            h(formatSize(o.size)),
            `<code>${h(o.digest)}</code>`,
          ]),
        ),
        [false, false, false, false, true, true],
      ),
    );
  }

  if (report.pushes?.length) {
    body.push(`<h2>Images pushed</h2>`);
    body.push(
      htmlTable(
        ['Invocation', 'Worker', 'Reference', 'Digest'],
        report.pushes.flatMap((p) =>
          p.images.map((i) => [
            h(p.unit),
            h(p.worker),
            `<code>${h(i.ref)}</code>`,
            `<code>${h(i.digest)}</code>`,
          ]),
        ),
        [false, false, false, false],
      ),
    );
  }

  if (report.events?.length) {
    body.push(`<h2>Events</h2>`);
    body.push(
      `<ul class="events">\n` +
        [...report.events]
          .sort((a, b) => a.at - b.at)
          .map((e) => `<li><code>${h(rel(report, e.at))}</code> ${h(e.message)}</li>`)
          .join('\n') +
        `\n</ul>`,
    );
  }

  return (
    `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
    `<title>dist-build run ${h(report.status)}: ${h(report.config)}</title>\n` +
    `<style>${CSS}</style>\n</head>\n<body>\n<main>\n${body.join('\n')}\n</main>\n</body>\n</html>\n`
  );
}

/** `path` relative to the current directory when it is below it (shorter to read), else as is. */
export function shownPath(path: string): string {
  return pathBelow(process.cwd(), path) ?? path;
}
