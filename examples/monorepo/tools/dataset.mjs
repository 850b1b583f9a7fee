#!/usr/bin/env node
// Generates a synthetic but physically plausible weather data set with the seeded generator of
// @mono/core (compiled, in out/core): hourly temperature, humidity and wind for a year at a
// number of stations.
//
//   node tools/dataset.mjs --core out/core --seed 20240601 --stations 40 --days 365 --out out/dataset
//
// Temperatures follow latitude, elevation, the seasons (reversed in the south) and the time of
// day, plus weather: autoregressive noise shared by the stations of a region, so that nearby
// stations correlate. Writes <out>/readings.csv.gz and <out>/stations.json.
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { cleanDir, fail, fixed, parseArgs, writeFile } from './lib/fsutil.mjs';

const args = parseArgs(process.argv.slice(2), {
  seed: '1',
  stations: '40',
  days: '365',
  regions: '6',
});
if (!args.core || !args.out)
  fail('usage: dataset.mjs --core <out/core> --out <dir> [--seed n] [--stations n] [--days n]');
const { Rng } = await import(pathToFileURL(resolve(args.core, 'random.mjs')).href);

const seed = Number(args.seed);
const nStations = Number(args.stations);
const days = Number(args.days);
const nRegions = Number(args.regions);
const rng = new Rng(seed);

const SYLLABLES = [
  'ka',
  'ri',
  'mo',
  'len',
  'tor',
  'va',
  'sun',
  'el',
  'dra',
  'nik',
  'os',
  'bel',
  'ha',
  'quin',
  'zu',
];
const SUFFIXES = ['ford', 'vik', 'polis', 'grad', 'haven', 'ton', 'mouth', 'field'];
const name = () => {
  const parts = rng.int(2, 4);
  let s = '';
  for (let i = 0; i < parts; i++) s += rng.pick(SYLLABLES);
  return s[0].toUpperCase() + s.slice(1) + rng.pick(SUFFIXES);
};

const regions = Array.from({ length: nRegions }, (_, r) => ({
  id: r,
  lat: rng.int(-55, 70) + rng.next(),
  lon: rng.int(-180, 180) + rng.next(),
}));
const used = new Set();
const stations = Array.from({ length: nStations }, (_, i) => {
  let id;
  do id = name();
  while (used.has(id));
  used.add(id);
  const region = regions[i % nRegions];
  const lat = Math.max(-70, Math.min(78, region.lat + rng.normal(0, 4)));
  const elevation = Math.max(0, Math.round(rng.normal(400, 500)));
  const coastal = rng.next() < 0.4;
  return {
    id: `S${String(i + 1).padStart(3, '0')}`,
    name: id,
    region: region.id,
    lat: Number(lat.toFixed(3)),
    lon: Number((region.lon + rng.normal(0, 4)).toFixed(3)),
    elevation,
    coastal,
    // Climate parameters derived from geography.
    meanC: 28 - 0.42 * Math.abs(lat) - 0.0065 * elevation + rng.normal(0, 1.5),
    seasonalC: (coastal ? 0.5 : 1) * (2 + 0.22 * Math.abs(lat)),
    diurnalC: (coastal ? 3 : 6) + rng.next() * 3,
    humidity: coastal ? 78 : 55 + rng.next() * 15,
    wind: (coastal ? 18 : 10) + rng.next() * 6,
  };
});

// Regional weather: AR(1) anomalies with a persistence of about three days.
const hours = days * 24;
const phi = Math.exp(-1 / 72);
const regionAnomaly = regions.map(() => {
  const series = new Float64Array(hours);
  let x = 0;
  for (let h = 0; h < hours; h++) {
    x = phi * x + Math.sqrt(1 - phi * phi) * rng.normal(0, 3);
    series[h] = x;
  }
  return series;
});

const rows = ['station,day,hour,temp_c,humidity_pct,wind_kmh'];
for (const s of stations) {
  const south = s.lat < 0;
  let local = 0;
  let windState = 0;
  for (let h = 0; h < hours; h++) {
    const day = Math.floor(h / 24);
    const hour = h % 24;
    const season = Math.cos((2 * Math.PI * (day - (south ? 15 : 197))) / 365);
    const diurnal = Math.cos((2 * Math.PI * (hour - 15)) / 24);
    local = 0.9 * local + rng.normal(0, 0.6);
    const temp =
      s.meanC +
      s.seasonalC * season +
      (s.diurnalC / 2) * diurnal +
      regionAnomaly[s.region][h] +
      local;
    const humidity = Math.max(
      5,
      Math.min(100, s.humidity - 2.2 * (s.diurnalC / 2) * diurnal + rng.normal(0, 6)),
    );
    windState = 0.95 * windState + rng.normal(0, 1.2);
    const wind = Math.max(0, s.wind + 1.2 * windState + (hour > 10 && hour < 18 ? 4 : 0));
    rows.push(
      `${s.id},${day + 1},${hour},${fixed(temp, 1)},${fixed(humidity, 0)},${fixed(wind, 1)}`,
    );
  }
}

cleanDir(args.out);
const csv = Buffer.from(`${rows.join('\n')}\n`);
writeFile(join(args.out, 'readings.csv.gz'), gzipSync(csv, { level: 9 }));
const meta = stations.map(({ id, name: n, region, lat, lon, elevation, coastal }) => ({
  id,
  name: n,
  region,
  lat,
  lon,
  elevation,
  coastal,
}));
writeFile(
  join(args.out, 'stations.json'),
  `${JSON.stringify({ seed, days, stations: meta }, null, 2)}\n`,
);
console.log(
  `${rows.length - 1} readings from ${stations.length} stations over ${days} days (${csv.length} bytes of CSV)`,
);
