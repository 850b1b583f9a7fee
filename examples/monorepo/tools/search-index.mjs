#!/usr/bin/env node
// Builds the full-text search index of the docs site: one document per section (a heading and
// the text up to the next heading), words stemmed, BM25 weights precomputed, plus a trigram
// index of the vocabulary for typo-tolerant lookups. Also writes the browser script that
// queries it, and runs a few queries as a self-check.
//
//   node tools/search-index.mjs --site out/docs --out out/search
//
// Writes <out>/search-index.json, <out>/search.js and <out>/queries.txt.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { byCodeUnit, cleanDir, fail, parseArgs, walk, writeFile } from './lib/fsutil.mjs';

const args = parseArgs(process.argv.slice(2));
if (!args.site || !args.out) fail('usage: search-index.mjs --site <dir> --out <dir>');

const STOP = new Set(
  'a an and are as at be by for from has have in is it its of on or that the their this to was were which with'.split(
    ' ',
  ),
);
const K1 = 1.2;
const B = 0.75;

// The analysis below is shared, as source text, with the browser script.
const ANALYZE = String.raw`
function stem(w) {
  if (w.length > 5 && w.endsWith('ies')) return w.slice(0, -3) + 'y';
  for (const suffix of ['ations', 'ation', 'ings', 'ing', 'edly', 'ed', 'ly', 'es', 's']) {
    if (w.length - suffix.length >= 3 && w.endsWith(suffix) && !w.endsWith('ss')) return w.slice(0, -suffix.length);
  }
  return w;
}
function analyze(text, stop) {
  const words = text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().match(/[a-z0-9]+/g) || [];
  return words.filter((w) => !stop.has(w)).map(stem);
}
function trigrams(term) {
  const t = '^' + term + '$';
  const out = [];
  for (let i = 0; i + 3 <= t.length; i++) out.push(t.slice(i, i + 3));
  return out;
}
`;
const { analyze, trigrams } = new Function(`${ANALYZE}; return { analyze, trigrams };`)();

const decode = (s) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
const textOf = (html) =>
  decode(html.replace(/<[^>]+>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim();

// Documents: the sections of every page.
const docs = [];
for (const file of walk(args.site).filter((f) => f.endsWith('.html'))) {
  const html = readFileSync(join(args.site, file), 'utf8');
  const main = /<main>([\s\S]*)<\/main>/.exec(html)?.[1];
  if (!main) fail(`${file} has no <main>`);
  const pageTitle = textOf(/<h1[^>]*>([\s\S]*?)<\/h1>/.exec(main)?.[1] ?? file);
  const parts = main.split(/(?=<h[1-3] id=")/);
  for (const part of parts) {
    const m = /^<h([1-3]) id="([^"]+)">([\s\S]*?)<\/h\1>/.exec(part);
    if (!m) continue;
    const heading = textOf(m[3]);
    const body = textOf(part.slice(m[0].length));
    docs.push({
      url: m[1] === '1' ? file : `${file}#${m[2]}`,
      title: m[1] === '1' ? heading : `${pageTitle} › ${heading}`,
      snippet: body.length > 160 ? `${body.slice(0, 157)}…` : body,
      terms: analyze(`${heading} ${heading} ${body}`, STOP), // headings count double
    });
  }
}
if (docs.length === 0) fail('no sections found');

// Inverted index with term frequencies.
const postings = new Map();
docs.forEach((d, i) => {
  const tf = new Map();
  for (const t of d.terms) tf.set(t, (tf.get(t) ?? 0) + 1);
  for (const [t, n] of tf) {
    if (!postings.has(t)) postings.set(t, []);
    postings.get(t).push([i, n]);
  }
});
const avgdl = docs.reduce((s, d) => s + d.terms.length, 0) / docs.length;
const vocabulary = [...postings.keys()].sort(byCodeUnit);

// BM25 weight of every (term, document) pair, rounded to keep the file small and stable.
const index = {};
for (const term of vocabulary) {
  const list = postings.get(term);
  const idf = Math.log(1 + (docs.length - list.length + 0.5) / (list.length + 0.5));
  index[term] = list.map(([i, n]) => {
    const dl = docs[i].terms.length;
    const w = (idf * n * (K1 + 1)) / (n + K1 * (1 - B + (B * dl) / avgdl));
    return [i, Math.round(w * 1000) / 1000];
  });
}
const grams = {};
vocabulary.forEach((term, id) => {
  for (const g of trigrams(term)) (grams[g] ??= []).push(id);
});
const sortedGrams = Object.fromEntries(
  Object.keys(grams)
    .sort(byCodeUnit)
    .map((g) => [g, grams[g]]),
);

const data = {
  version: 1,
  docs: docs.map(({ url, title, snippet }) => ({ url, title, snippet })),
  vocabulary,
  index,
  trigrams: sortedGrams,
  stop: [...STOP].sort(byCodeUnit),
};

/** Scores documents for a query; unknown words fall back to the most similar known words. */
function search(db, query, limit = 5) {
  const stop = new Set(db.stop);
  const scores = new Map();
  for (const word of analyze(query, stop)) {
    let terms = db.index[word] ? [word] : [];
    if (terms.length === 0) {
      const counts = new Map();
      for (const g of trigrams(word))
        for (const id of db.trigrams[g] ?? []) counts.set(id, (counts.get(id) ?? 0) + 1);
      const best = [...counts.entries()]
        .map(([id, c]) => [
          db.vocabulary[id],
          c / (trigrams(word).length + trigrams(db.vocabulary[id]).length - c),
        ])
        .filter(([, sim]) => sim >= 0.4)
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, 2);
      terms = best.map(([t]) => t);
    }
    for (const t of terms)
      for (const [doc, w] of db.index[t]) scores.set(doc, (scores.get(doc) ?? 0) + w);
  }
  return [...scores.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, limit)
    .map(([doc, score]) => ({ ...db.docs[doc], score: Math.round(score * 1000) / 1000 }));
}

const client = `// Search for the docs site, generated by tools/search-index.mjs. Do not edit.
'use strict';
(() => {
${ANALYZE.trim()}
const analyze_ = analyze;
${search.toString().replace('analyze(', 'analyze_(')}
let db = null;
async function load() {
  db ??= await (await fetch('search-index.json')).json();
  return db;
}
document.addEventListener('DOMContentLoaded', () => {
  const input = document.getElementById('search');
  const list = document.getElementById('search-results');
  if (!input || !list) return;
  input.hidden = false;
  input.addEventListener('input', async () => {
    const q = input.value.trim();
    list.replaceChildren();
    list.hidden = q.length < 2;
    if (list.hidden) return;
    for (const hit of search(await load(), q, 8)) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = hit.url;
      a.textContent = hit.title;
      const p = document.createElement('div');
      p.textContent = hit.snippet;
      li.append(a, p);
      list.append(li);
    }
  });
});
})();
`;

// Self-check: a few queries whose best hit is known, including one with a typo.
const checks = [
  ['prime gaps', 'primes.html#gaps'],
  ['mandelbrot area', 'gallery.html#the-whole-set'],
  ['heat waves frost', 'weather.html#stations'],
  ['corelation', 'weather.html#correlation'],
  ['sparkline', 'api-ui.html#chart-sparkline'],
];
const report = [];
const wrong = [];
for (const [q, expected] of checks) {
  const hits = search(data, q);
  report.push(`query: ${q}`, ...hits.map((h) => `  ${h.score.toFixed(3)}  ${h.url}`), '');
  if (hits[0]?.url !== expected)
    wrong.push(`'${q}' found ${hits[0]?.url ?? 'nothing'}, expected ${expected}`);
}

cleanDir(args.out);
writeFile(join(args.out, 'search-index.json'), JSON.stringify(data));
writeFile(join(args.out, 'search.js'), client);
writeFile(join(args.out, 'queries.txt'), report.join('\n'));
if (wrong.length > 0) fail(`search self-check failed:\n  ${wrong.join('\n  ')}`);
console.log(
  `indexed ${docs.length} sections, ${vocabulary.length} terms; ${checks.length} self-check queries passed`,
);
