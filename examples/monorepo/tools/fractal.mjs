#!/usr/bin/env node
// Renders a view of the Mandelbrot set as a PNG, with smooth (continuous escape time)
// colouring and supersampling.
//
//   node tools/fractal.mjs --width 960 --height 640 --center -0.75,0 --span 3.5 \
//     --max-iter 600 --ss 3 --out out/fractal
//
// `--span` is the width of the view in the complex plane. The palette comes from --palette or
// the FRACTAL_PALETTE environment variable (fire, ice or forest). Writes <out>/<name>.png and
// <out>/<name>.json: the parameters and what was measured, including an estimate of the area
// of the set from the fraction of samples that never escaped.
import { join } from 'node:path';
import { cleanDir, fail, fixed, parseArgs, writeFile } from './lib/fsutil.mjs';
import { encodePNG } from './lib/png.mjs';

const args = parseArgs(process.argv.slice(2), {
  width: '960',
  height: '640',
  center: '-0.75,0',
  span: '3.5',
  'max-iter': '500',
  ss: '2',
  name: 'mandelbrot',
  palette: process.env.FRACTAL_PALETTE ?? 'fire',
});
if (!args.out)
  fail(
    'usage: fractal.mjs --out <dir> [--width --height --center x,y --span --max-iter --ss --name]',
  );
const width = Number(args.width);
const height = Number(args.height);
const [cx, cy] = String(args.center).split(',').map(Number);
const span = Number(args.span);
const maxIter = Number(args['max-iter']);
const ss = Number(args.ss);

// Cosine gradients (a + b * cos(2π (c t + d))), one per palette.
const PALETTES = {
  fire: { a: [0.5, 0.5, 0.5], b: [0.5, 0.5, 0.5], c: [1, 1, 1], d: [0.0, 0.1, 0.2] },
  ice: { a: [0.5, 0.5, 0.5], b: [0.5, 0.5, 0.5], c: [1, 1, 1], d: [0.3, 0.2, 0.2] },
  forest: { a: [0.5, 0.5, 0.5], b: [0.5, 0.5, 0.5], c: [1, 1, 0.5], d: [0.8, 0.9, 0.3] },
};
const palette = PALETTES[args.palette];
if (!palette) fail(`unknown palette '${args.palette}' (${Object.keys(PALETTES).join(', ')})`);
const colour = (t, ch) =>
  palette.a[ch] + palette.b[ch] * Math.cos(2 * Math.PI * (palette.c[ch] * t + palette.d[ch]));

const pixel = span / width; // size of one pixel in the complex plane
const x0 = cx - (width / 2) * pixel;
const y0 = cy + (height / 2) * pixel;
const rgb = Buffer.alloc(width * height * 3);
const LOG2 = Math.log(2);
let inside = 0;
let escapedIterations = 0;
let escaped = 0;
const samples = width * height * ss * ss;

for (let py = 0; py < height; py++) {
  for (let px = 0; px < width; px++) {
    let r = 0;
    let g = 0;
    let b = 0;
    for (let sy = 0; sy < ss; sy++) {
      for (let sx = 0; sx < ss; sx++) {
        const re = x0 + (px + (sx + 0.5) / ss) * pixel;
        const im = y0 - (py + (sy + 0.5) / ss) * pixel;
        let zr = 0;
        let zi = 0;
        let zr2 = 0;
        let zi2 = 0;
        let i = 0;
        while (i < maxIter && zr2 + zi2 <= 256) {
          zi = 2 * zr * zi + im;
          zr = zr2 - zi2 + re;
          zr2 = zr * zr;
          zi2 = zi * zi;
          i++;
        }
        if (i === maxIter) {
          inside++;
          continue; // black
        }
        escaped++;
        escapedIterations += i;
        // Continuous escape time: i + 1 - log2(log |z|).
        const mu = i + 1 - Math.log(Math.log(zr2 + zi2) / 2) / LOG2;
        const t = Math.sqrt(mu) / 6;
        r += colour(t, 0);
        g += colour(t, 1);
        b += colour(t, 2);
      }
    }
    const o = (py * width + px) * 3;
    const n = ss * ss;
    rgb[o] = Math.round((r / n) * 255);
    rgb[o + 1] = Math.round((g / n) * 255);
    rgb[o + 2] = Math.round((b / n) * 255);
  }
}

const png = encodePNG(width, height, 3, rgb);
const info = {
  name: args.name,
  width,
  height,
  center: [cx, cy],
  span,
  maxIter,
  supersampling: ss,
  palette: args.palette,
  samples,
  insideFraction: Number((inside / samples).toFixed(6)),
  meanEscapeIterations: Number((escapedIterations / Math.max(1, escaped)).toFixed(3)),
  // Each sample stands for (pixel / ss)^2 of the plane.
  areaEstimate: Number((inside * (pixel / ss) ** 2).toFixed(6)),
  pngBytes: png.length,
};
cleanDir(args.out);
writeFile(join(args.out, `${args.name}.png`), png);
writeFile(join(args.out, `${args.name}.json`), `${JSON.stringify(info, null, 2)}\n`);
console.log(
  `${args.name}: ${width}x${height}, ${samples} samples, ${fixed(info.insideFraction * 100, 2)}% inside, ` +
    `area ≈ ${info.areaEstimate}, ${png.length} bytes`,
);
