#!/usr/bin/env node
// Analyses the weather data set with the statistics library of @mono/core (compiled, in
// out/core).
//
//   node tools/stats.mjs --core out/core --data out/dataset --out out/stats
//
// Writes <out>/stats.json (per-station summaries, monthly means, daily ranges, heat waves, frost
// days, the correlation matrix of daily mean temperatures), <out>/monthly.csv and
// <out>/stations.md (the summary table shown in the docs).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { cleanDir, fail, fixed, parseArgs, writeFile } from './lib/fsutil.mjs';

const args = parseArgs(process.argv.slice(2));
if (!args.core || !args.data || !args.out)
  fail('usage: stats.mjs --core <out/core> --data <out/dataset> --out <dir>');
const core = (m) => import(pathToFileURL(resolve(args.core, `${m}.mjs`)).href);
const { mean, pearson, quantile, summarize } = await core('stats');

const meta = JSON.parse(readFileSync(join(args.data, 'stations.json'), 'utf8'));
const csv = gunzipSync(readFileSync(join(args.data, 'readings.csv.gz'))).toString('utf8');
const hours = meta.days * 24;

// Parse into one column array per station and variable.
const series = new Map(
  meta.stations.map((s) => [
    s.id,
    { temp: new Float64Array(hours), hum: new Float64Array(hours), wind: new Float64Array(hours) },
  ]),
);
let rows = 0;
let pos = csv.indexOf('\n') + 1;
while (pos < csv.length) {
  const end = csv.indexOf('\n', pos);
  const f = csv.slice(pos, end).split(',');
  pos = end + 1;
  const s = series.get(f[0]);
  if (!s) fail(`unknown station ${f[0]} in row ${rows + 2}`);
  const h = (Number(f[1]) - 1) * 24 + Number(f[2]);
  s.temp[h] = Number(f[3]);
  s.hum[h] = Number(f[4]);
  s.wind[h] = Number(f[5]);
  rows++;
}
if (rows !== hours * meta.stations.length)
  fail(`expected ${hours * meta.stations.length} rows, read ${rows}`);

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const round = (x, d = 2) => Number(fixed(x, d));
const stations = [];
const dailyMeans = [];
const monthlyRows = ['station,month,mean_c,min_c,max_c'];
for (const s of meta.stations) {
  const { temp, hum, wind } = series.get(s.id);
  const dailyMax = new Float64Array(meta.days);
  const dailyMin = new Float64Array(meta.days);
  const dailyMean = new Float64Array(meta.days);
  for (let d = 0; d < meta.days; d++) {
    const day = temp.subarray(d * 24, d * 24 + 24);
    dailyMax[d] = Math.max(...day);
    dailyMin[d] = Math.min(...day);
    dailyMean[d] = mean(day);
  }
  dailyMeans.push(dailyMean);
  const monthly = [];
  let start = 0;
  for (let m = 0; m < 12 && start < meta.days; m++) {
    const len = Math.min(MONTH_DAYS[m], meta.days - start);
    const slice = temp.subarray(start * 24, (start + len) * 24);
    const summary = summarize(slice);
    monthly.push(round(summary.mean));
    monthlyRows.push(
      `${s.id},${m + 1},${fixed(summary.mean, 2)},${fixed(summary.min, 1)},${fixed(summary.max, 1)}`,
    );
    start += len;
  }
  // Heat waves: three or more consecutive days whose maximum exceeds the station's 95th
  // percentile of daily maxima.
  const threshold = quantile(dailyMax, 0.95);
  const heatWaves = [];
  let run = 0;
  for (let d = 0; d <= meta.days; d++) {
    if (d < meta.days && dailyMax[d] > threshold) run++;
    else {
      if (run >= 3) heatWaves.push({ startDay: d - run + 1, days: run });
      run = 0;
    }
  }
  const t = summarize(temp);
  const range = new Float64Array(meta.days).map((_, d) => dailyMax[d] - dailyMin[d]);
  stations.push({
    id: s.id,
    name: s.name,
    lat: s.lat,
    elevation: s.elevation,
    coastal: s.coastal,
    temperature: Object.fromEntries(
      Object.entries(t).map(([k, v]) => [k, k === 'count' ? v : round(v)]),
    ),
    monthlyMean: monthly,
    meanDailyRange: round(mean(range)),
    frostDays: dailyMin.filter((x) => x < 0).length,
    heatWaves,
    humidityMean: round(mean(hum), 1),
    windP95: round(quantile(wind, 0.95), 1),
  });
}

// Correlation of daily mean temperatures between every pair of stations.
const n = meta.stations.length;
const correlation = Array.from({ length: n }, () => new Array(n).fill(1));
for (let i = 0; i < n; i++) {
  for (let j = i + 1; j < n; j++) {
    const r = round(pearson(dailyMeans[i], dailyMeans[j]), 3);
    correlation[i][j] = r;
    correlation[j][i] = r;
  }
}

const byMean = [...stations].sort(
  (a, b) => a.temperature.mean - b.temperature.mean || (a.id < b.id ? -1 : 1),
);
const result = {
  seed: meta.seed,
  stations: stations.length,
  readings: rows,
  warmest: byMean.at(-1).id,
  coldest: byMean[0].id,
  perStation: stations,
  correlation: { ids: stations.map((s) => s.id), matrix: correlation },
};

const table = [
  '| Station | Name | Lat | Elev. (m) | Mean °C | Min °C | Max °C | Daily range | Frost days | Heat waves |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...stations.map(
    (s) =>
      `| ${s.id} | ${s.name}${s.coastal ? ' (coast)' : ''} | ${fixed(s.lat, 1)} | ${s.elevation} | ` +
      `${fixed(s.temperature.mean, 1)} | ${fixed(s.temperature.min, 1)} | ${fixed(s.temperature.max, 1)} | ` +
      `${fixed(s.meanDailyRange, 1)} | ${s.frostDays} | ${s.heatWaves.length} |`,
  ),
  '',
];

cleanDir(args.out);
writeFile(join(args.out, 'stats.json'), `${JSON.stringify(result, null, 1)}\n`);
writeFile(join(args.out, 'monthly.csv'), `${monthlyRows.join('\n')}\n`);
writeFile(join(args.out, 'stations.md'), table.join('\n'));
console.log(`analysed ${rows} readings: warmest ${result.warmest}, coldest ${result.coldest}`);
