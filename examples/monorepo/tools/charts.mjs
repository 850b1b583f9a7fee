#!/usr/bin/env node
// Draws the SVG charts of the docs from the weather statistics and the prime statistics.
//
//   node tools/charts.mjs --stats out/stats/stats.json --primes out/primes/primes.json --out out/charts
//
// Charts: monthly mean temperatures, the station correlation heat map, the prime counting
// function against x / ln x and the logarithmic integral Li(x) (computed here by numerical
// integration), the distribution of prime gaps, and the last digits of primes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanDir, fail, fixed, parseArgs, writeFile } from './lib/fsutil.mjs';

const args = parseArgs(process.argv.slice(2));
if (!args.stats || !args.primes || !args.out) {
  fail('usage: charts.mjs --stats <stats.json> --primes <primes.json> --out <dir>');
}
const stats = JSON.parse(readFileSync(args.stats, 'utf8'));
const primes = JSON.parse(readFileSync(args.primes, 'utf8'));

const W = 720;
const H = 400;
const M = { left: 70, right: 150, top: 40, bottom: 50 };
const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#17becf',
  '#8c564b',
  '#e377c2',
];
const f1 = (x) => fixed(x, 1);
const superscript = (n) => String(n).replace(/\d/g, (d) => '⁰¹²³⁴⁵⁶⁷⁸⁹'[d]);
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function svg(title, body, width = W, height = H) {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** "Nice" tick values covering [lo, hi]. */
function ticks(lo, hi, count = 6) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/** A line chart with axes, grid and legend. */
function lineChart({
  title,
  xLabels,
  xs,
  series,
  yLabel,
  xFormat = f1,
  yFormat = f1,
  logX = false,
}) {
  const allY = series.flatMap((s) => s.values);
  const [ylo, yhi] = [Math.min(...allY), Math.max(...allY)];
  const yt = ticks(ylo, yhi);
  const y0 = Math.min(yt[0], ylo);
  const y1 = Math.max(yt.at(-1), yhi);
  const tx = (x) => (logX ? Math.log10(x) : x);
  const [x0, x1] = [tx(xs[0]), tx(xs.at(-1))];
  const px = (x) => M.left + ((tx(x) - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const body = [];
  for (const v of yt) {
    body.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${f1(py(v))}" y2="${f1(py(v))}" stroke="#ddd"/>`,
    );
    body.push(
      `<text x="${M.left - 6}" y="${f1(py(v) + 4)}" text-anchor="end">${esc(yFormat(v))}</text>`,
    );
  }
  (xLabels ?? xs.map((x) => [x, xFormat(x)])).forEach(([x, label]) => {
    body.push(
      `<text x="${f1(px(x))}" y="${H - M.bottom + 18}" text-anchor="middle">${esc(label)}</text>`,
    );
  });
  body.push(
    `<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<text transform="translate(16 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  series.forEach((s, k) => {
    const color = PALETTE[k % PALETTE.length];
    const d = s.values
      .map((v, i) => `${i === 0 ? 'M' : 'L'}${f1(px(xs[i]))} ${f1(py(v))}`)
      .join(' ');
    body.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    const ly = M.top + 10 + k * 18;
    body.push(
      `<line x1="${W - M.right + 12}" x2="${W - M.right + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
    );
    body.push(`<text x="${W - M.right + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  return svg(title, body);
}

/** A bar chart; `log` draws bar heights on a log10 scale. */
function barChart({
  title,
  labels,
  values,
  yLabel,
  log = false,
  color = PALETTE[0],
  labelEvery = 1,
}) {
  const t = (v) => (log ? Math.log10(Math.max(v, 1)) : v);
  const top = Math.max(...values.map(t));
  const yt = log ? Array.from({ length: Math.ceil(top) + 1 }, (_, i) => i) : ticks(0, top);
  const ymax = Math.max(top, yt.at(-1));
  const plotW = W - M.left - 30;
  const bw = plotW / values.length;
  const py = (v) => H - M.bottom - (v / ymax) * (H - M.top - M.bottom);
  const body = [];
  for (const v of yt) {
    body.push(
      `<line x1="${M.left}" x2="${W - 30}" y1="${f1(py(v))}" y2="${f1(py(v))}" stroke="#ddd"/>`,
    );
    const label = log ? `10${superscript(v)}` : String(v);
    body.push(`<text x="${M.left - 6}" y="${f1(py(v) + 4)}" text-anchor="end">${label}</text>`);
  }
  values.forEach((v, i) => {
    const x = M.left + i * bw;
    const h = H - M.bottom - py(t(v));
    body.push(
      `<rect x="${f1(x + bw * 0.1)}" y="${f1(py(t(v)))}" width="${f1(bw * 0.8)}" height="${f1(h)}" fill="${color}"><title>${esc(labels[i])}: ${v}</title></rect>`,
    );
    if (i % labelEvery === 0) {
      body.push(
        `<text x="${f1(x + bw / 2)}" y="${H - M.bottom + 18}" text-anchor="middle">${esc(labels[i])}</text>`,
      );
    }
  });
  body.push(
    `<line x1="${M.left}" x2="${W - 30}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`,
  );
  body.push(
    `<text transform="translate(16 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  return svg(title, body);
}

/** Heat map of a correlation matrix, blue (-1) to white (0) to red (+1). */
function heatMap(title, ids, matrix) {
  const n = ids.length;
  const cell = Math.floor(560 / n);
  const ox = 60;
  const oy = 40;
  const color = (r) => {
    const a = Math.min(1, Math.abs(r));
    const c = (v) => Math.round(255 - a * (255 - v));
    return r >= 0 ? `rgb(${c(200)},${c(30)},${c(40)})` : `rgb(${c(30)},${c(80)},${c(200)})`;
  };
  const body = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      body.push(
        `<rect x="${ox + j * cell}" y="${oy + i * cell}" width="${cell}" height="${cell}" fill="${color(matrix[i][j])}"><title>${ids[i]} × ${ids[j]}: ${matrix[i][j]}</title></rect>`,
      );
    }
    if (i % 5 === 0) {
      body.push(
        `<text x="${ox - 4}" y="${oy + i * cell + cell - 2}" text-anchor="end" font-size="10">${ids[i]}</text>`,
      );
    }
  }
  const lx = ox + n * cell + 20;
  for (let k = 0; k <= 10; k++) {
    const r = 1 - k / 5;
    body.push(`<rect x="${lx}" y="${oy + k * 20}" width="20" height="20" fill="${color(r)}"/>`);
    body.push(`<text x="${lx + 26}" y="${oy + k * 20 + 14}">${fixed(r, 1)}</text>`);
  }
  return svg(title, body, lx + 80, oy + n * cell + 20);
}

/** Logarithmic integral Li(x) = ∫ from 2 to x of dt / ln t, by composite Simpson's rule. */
function li(x, steps = 20000) {
  if (x <= 2) return 0;
  // Substitute t = e^u: ∫ e^u / u du from ln 2 to ln x, smooth enough for Simpson's rule.
  const a = Math.log(2);
  const b = Math.log(x);
  const h = (b - a) / steps;
  let s = Math.exp(a) / a + Math.exp(b) / b;
  for (let i = 1; i < steps; i++) {
    const u = a + i * h;
    s += (i % 2 === 1 ? 4 : 2) * (Math.exp(u) / u);
  }
  return (s * h) / 3;
}

cleanDir(args.out);

// 1. Monthly mean temperatures of the warmest, the coldest and six more stations.
const pickIds = [stats.warmest, stats.coldest, ...stats.perStation.map((s) => s.id)]
  .filter((id, i, all) => all.indexOf(id) === i)
  .slice(0, 8);
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
writeFile(
  join(args.out, 'monthly-temperature.svg'),
  lineChart({
    title: 'Monthly mean temperature',
    xs: months.map((_, i) => i + 1),
    xLabels: months.map((m, i) => [i + 1, m]),
    series: pickIds.map((id) => {
      const s = stats.perStation.find((x) => x.id === id);
      return { name: `${s.id} ${s.name}`.slice(0, 20), values: s.monthlyMean };
    }),
    yLabel: '°C',
  }),
);

// 2. Correlation of daily mean temperatures.
writeFile(
  join(args.out, 'correlation.svg'),
  heatMap(
    'Correlation of daily mean temperatures',
    stats.correlation.ids,
    stats.correlation.matrix,
  ),
);

// 3. pi(x) against x / ln x and Li(x).
const curve = primes.piCurve;
const xs = curve.map((p) => p.x);
const liValues = xs.map((x) => li(x));
writeFile(
  join(args.out, 'prime-counting.svg'),
  lineChart({
    title: `Counting primes up to ${primes.limit.toExponential(0).replace(/e\+(\d+)/, (_, e) => `×10${superscript(e)}`)}`,
    xs,
    xLabels: xs.filter((_, i) => i % 20 === 19).map((x) => [x, `${fixed(x / 1e6, 0)}M`]),
    series: [
      { name: 'π(x)', values: curve.map((p) => p.pi) },
      { name: 'x / ln x', values: xs.map((x) => x / Math.log(x)) },
      { name: 'Li(x)', values: liValues },
    ],
    yLabel: 'primes ≤ x',
    yFormat: (v) => `${fixed(v / 1e6, 0)}M`,
  }),
);

// 4. Gaps between consecutive primes (even gaps up to 120).
const gapLabels = [];
const gapValues = [];
for (let g = 2; g <= 120; g += 2) {
  gapLabels.push(String(g));
  gapValues.push(primes.gapCounts[String(g)] ?? 0);
}
writeFile(
  join(args.out, 'prime-gaps.svg'),
  barChart({
    title: 'Gaps between consecutive primes',
    labels: gapLabels,
    values: gapValues,
    yLabel: 'count (log scale)',
    log: true,
    labelEvery: 5,
  }),
);

// 5. Last digits.
const digits = ['1', '3', '7', '9'];
writeFile(
  join(args.out, 'last-digits.svg'),
  barChart({
    title: 'Last digit of primes',
    labels: digits,
    values: digits.map((d) => primes.lastDigits[d]),
    yLabel: 'primes',
    color: PALETTE[2],
  }),
);

const lastLi = liValues.at(-1);
const summary = {
  limit: primes.limit,
  pi: primes.count,
  li: Math.round(lastLi),
  xOverLnX: Math.round(primes.limit / Math.log(primes.limit)),
  liRelativeError: Number(((lastLi - primes.count) / primes.count).toExponential(3)),
};
writeFile(join(args.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
console.log(`drew 5 charts; Li(${primes.limit}) ≈ ${summary.li} vs π = ${primes.count}`);
