#!/usr/bin/env node
// Image processing for the docs gallery: decodes the rendered fractals, makes gamma-correct
// thumbnails (area averaging in linear light), a Sobel edge map of each image, and a contact
// sheet with everything side by side.
//
//   node tools/gallery.mjs --out out/gallery --thumb 320 out/fractal/mandelbrot.png out/fractal-zoom/seahorse.png
//
// Writes <out>/<name>-thumb.png, <out>/<name>-edges.png, <out>/contact-sheet.png and
// <out>/gallery.json (sizes and mean colours of every image).
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cleanDir, fail, parseArgs, writeFile } from './lib/fsutil.mjs';
import { decodePNG, encodePNG } from './lib/png.mjs';

const args = parseArgs(process.argv.slice(2), { thumb: '320' });
if (!args.out || args._.length === 0)
  fail('usage: gallery.mjs --out <dir> [--thumb 320] <image.png>...');
const thumbWidth = Number(args.thumb);

// sRGB <-> linear light, through a lookup table one way and a formula the other.
const TO_LINEAR = new Float64Array(256).map((_, v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});
const toSRGB = (l) => {
  const c = l <= 0.0031308 ? l * 12.92 : 1.055 * l ** (1 / 2.4) - 0.055;
  return Math.max(0, Math.min(255, Math.round(c * 255)));
};

/** Downscales by averaging, in linear light, every source pixel that overlaps a target pixel. */
function resize(img, width) {
  const height = Math.max(1, Math.round((img.height * width) / img.width));
  const out = Buffer.alloc(width * height * 3);
  const fx = img.width / width;
  const fy = img.height / height;
  for (let y = 0; y < height; y++) {
    const sy0 = y * fy;
    const sy1 = sy0 + fy;
    for (let x = 0; x < width; x++) {
      const sx0 = x * fx;
      const sx1 = sx0 + fx;
      const acc = [0, 0, 0];
      let wsum = 0;
      for (let sy = Math.floor(sy0); sy < Math.ceil(sy1); sy++) {
        const wy = Math.min(sy + 1, sy1) - Math.max(sy, sy0);
        for (let sx = Math.floor(sx0); sx < Math.ceil(sx1); sx++) {
          const w = wy * (Math.min(sx + 1, sx1) - Math.max(sx, sx0));
          const o = (sy * img.width + sx) * img.channels;
          for (let c = 0; c < 3; c++) acc[c] += w * TO_LINEAR[img.pixels[o + c]];
          wsum += w;
        }
      }
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = toSRGB(acc[c] / wsum);
    }
  }
  return { width, height, channels: 3, pixels: out };
}

/** Sobel gradient magnitude of the luminance, as a greyscale image (edges bright). */
function edges(img) {
  const { width, height } = img;
  const lum = new Float64Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const o = i * img.channels;
    lum[i] =
      0.2126 * TO_LINEAR[img.pixels[o]] +
      0.7152 * TO_LINEAR[img.pixels[o + 1]] +
      0.0722 * TO_LINEAR[img.pixels[o + 2]];
  }
  const mag = new Float64Array(width * height);
  let max = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const p = (dx, dy) => lum[(y + dy) * width + x + dx];
      const gx = p(1, -1) + 2 * p(1, 0) + p(1, 1) - p(-1, -1) - 2 * p(-1, 0) - p(-1, 1);
      const gy = p(-1, 1) + 2 * p(0, 1) + p(1, 1) - p(-1, -1) - 2 * p(0, -1) - p(1, -1);
      const m = Math.sqrt(gx * gx + gy * gy);
      mag[y * width + x] = m;
      if (m > max) max = m;
    }
  }
  const grey = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const v = toSRGB(max > 0 ? Math.sqrt(mag[i] / max) : 0);
    grey[i * 3] = grey[i * 3 + 1] = grey[i * 3 + 2] = v;
  }
  return { width, height, channels: 3, pixels: grey };
}

/** Places images left to right on a dark background with a margin. */
function contactSheet(images, margin = 12) {
  const height = Math.max(...images.map((i) => i.height)) + 2 * margin;
  const width = images.reduce((w, i) => w + i.width + margin, margin);
  const sheet = Buffer.alloc(width * height * 3, 0x22);
  let x0 = margin;
  for (const img of images) {
    for (let y = 0; y < img.height; y++) {
      img.pixels.copy(
        sheet,
        ((margin + y) * width + x0) * 3,
        y * img.width * 3,
        (y + 1) * img.width * 3,
      );
    }
    x0 += img.width + margin;
  }
  return { width, height, channels: 3, pixels: sheet };
}

const meanColour = (img) => {
  const acc = [0, 0, 0];
  for (let i = 0; i < img.width * img.height; i++)
    for (let c = 0; c < 3; c++) acc[c] += TO_LINEAR[img.pixels[i * img.channels + c]];
  return acc
    .map((a) =>
      toSRGB(a / (img.width * img.height))
        .toString(16)
        .padStart(2, '0'),
    )
    .join('');
};

cleanDir(args.out);
const save = (name, img) => {
  writeFile(join(args.out, name), encodePNG(img.width, img.height, 3, img.pixels));
  return { file: name, width: img.width, height: img.height, mean: `#${meanColour(img)}` };
};
const entries = [];
const tiles = [];
for (const file of args._) {
  const name = basename(file, '.png');
  const img = decodePNG(readFileSync(file));
  const thumb = resize(img, thumbWidth);
  const edge = resize(edges(img), thumbWidth);
  entries.push({
    source: file,
    width: img.width,
    height: img.height,
    thumb: save(`${name}-thumb.png`, thumb),
    edges: save(`${name}-edges.png`, edge),
  });
  tiles.push(thumb, edge);
}
const sheet = save('contact-sheet.png', contactSheet(tiles));
writeFile(
  join(args.out, 'gallery.json'),
  `${JSON.stringify({ images: entries, contactSheet: sheet }, null, 2)}\n`,
);
console.log(`gallery: ${entries.length} images, contact sheet ${sheet.width}x${sheet.height}`);
