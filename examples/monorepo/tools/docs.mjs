#!/usr/bin/env node
// Renders the documentation site: every Markdown page of --src, plus one API reference page per
// compiled package (from the api.json files the compiler writes), into HTML pages with a shared
// layout. Images and charts listed with --assets are copied to <out>/assets/.
//
//   node tools/docs.mjs --src docs --out out/docs \
//     --api out/core/api.json,out/ui/api.json,out/app/api.json \
//     --assets out/charts,out/gallery,out/fractal,out/fractal-zoom
//
// Markdown pages may use three directives, resolved before rendering (paths relative to the
// working directory, i.e. outputs of the invocations this one needs):
//   <!-- include: out/stats/stations.md -->       the file's content
//   <!-- table: out/primes/primes.json#maximalGaps -->  a table from an array of objects
//   {{ out/primes/primes.json#count }}             one value (integers get thousands separators)
// Every local link and image is checked: a dangling one fails the build.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { cleanDir, fail, parseArgs, walk, writeFile } from './lib/fsutil.mjs';
import { escapeHtml, renderInline, renderMarkdown } from './lib/markdown.mjs';

const args = parseArgs(process.argv.slice(2), { title: 'dist-build example monorepo' });
if (!args.src || !args.out)
  fail('usage: docs.mjs --src <dir> --out <dir> [--api a.json,...] [--assets dir,...]');
const list = (v) => (v ? String(v).split(',') : []);

const jsonCache = new Map();
const lookup = (ref) => {
  const [file, path = ''] = ref.split('#');
  if (!existsSync(file)) fail(`directive refers to a missing file: ${file}`);
  if (!jsonCache.has(file)) jsonCache.set(file, JSON.parse(readFileSync(file, 'utf8')));
  let v = jsonCache.get(file);
  for (const key of path.split('.').filter(Boolean)) {
    if (v === null || typeof v !== 'object' || !(key in v)) fail(`no '${path}' in ${file}`);
    v = v[key];
  }
  return v;
};
const formatValue = (v) => {
  const s = String(v);
  return /^\d+$/.test(s) ? s.replace(/\B(?=(\d{3})+(?!\d))/g, ',') : s;
};

function expandDirectives(md, page) {
  return md
    .replace(/<!-- include: (\S+) -->/g, (_, file) => {
      if (!existsSync(file)) fail(`${page}: include of a missing file: ${file}`);
      return readFileSync(file, 'utf8');
    })
    .replace(/<!-- table: (\S+) -->/g, (_, ref) => {
      const rows = lookup(ref);
      if (!Array.isArray(rows) || rows.length === 0)
        fail(`${page}: ${ref} is not a non-empty array`);
      const keys = Object.keys(rows[0]);
      return [
        `| ${keys.join(' | ')} |`,
        `| ${keys.map(() => '---:').join(' | ')} |`,
        ...rows.map((r) => `| ${keys.map((k) => formatValue(r[k])).join(' | ')} |`),
      ].join('\n');
    })
    .replace(/\{\{\s*(\S+?)\s*\}\}/g, (_, ref) => formatValue(lookup(ref)));
}

// Pages: index first, then the other Markdown pages by file name, then the API references.
const pages = [];
const mdFiles = walk(args.src).filter((f) => f.endsWith('.md'));
mdFiles.sort((a, b) => (a === 'index.md' ? -1 : b === 'index.md' ? 1 : a < b ? -1 : 1));
for (const f of mdFiles) {
  const { html, title } = renderMarkdown(
    expandDirectives(readFileSync(join(args.src, f), 'utf8'), f),
  );
  pages.push({ file: f.replace(/\.md$/, '.html'), title: title || f, nav: title || f, html });
}
for (const apiFile of list(args.api)) {
  const api = JSON.parse(readFileSync(apiFile, 'utf8'));
  const body = [`<h1 id="api">API: @mono/${escapeHtml(api.package)}</h1>`];
  body.push(
    `<p>Generated from the TypeLite sources by <code>tools/compile.mjs</code>; ${api.modules.length} modules.</p>`,
  );
  for (const m of api.modules) {
    body.push(`<h2 id="${m.name}">${escapeHtml(`@mono/${api.package}/${m.name}`)}</h2>`);
    body.push(`<p class="source">Source: <code>${escapeHtml(m.source)}</code></p>`);
    for (const e of m.exports.filter((x) => x.kind !== 'alias')) {
      body.push(
        `<h3 id="${m.name}-${e.name}">${escapeHtml(e.name)} <span class="kind">${e.kind}</span></h3>`,
      );
      body.push(`<pre><code class="language-ts">${escapeHtml(e.signature)}</code></pre>`);
      if (e.doc) body.push(renderMarkdown(e.doc).html.trim());
      if (e.members?.length) {
        body.push(
          `<ul class="members">${e.members.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join('')}</ul>`,
        );
      }
    }
  }
  pages.push({
    file: `api-${api.package}.html`,
    title: `API: @mono/${api.package}`,
    nav: `API ${api.package}`,
    html: `${body.join('\n')}\n`,
  });
}

cleanDir(args.out);
mkdirSync(join(args.out, 'assets'));
const assets = [];
for (const dir of list(args.assets)) {
  for (const f of walk(dir).filter((x) => /\.(png|svg)$/.test(x))) {
    const name = basename(f);
    if (assets.includes(name)) fail(`two assets are called ${name}`);
    assets.push(name);
    copyFileSync(join(dir, f), join(args.out, 'assets', name));
  }
}
copyFileSync(join(args.src, 'style.css'), join(args.out, 'style.css'));

const nav = (current) =>
  pages
    .map(
      (p) =>
        `<a href="${p.file}"${p.file === current ? ' aria-current="page"' : ''}>${escapeHtml(p.nav)}</a>`,
    )
    .join('\n');
const contentHash = createHash('sha256')
  .update(pages.map((p) => p.html).join('\0'))
  .digest('hex')
  .slice(0, 12);

const problems = [];
for (const p of pages) {
  const html = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(p.title)} · ${escapeHtml(args.title)}</title>`,
    '<link rel="stylesheet" href="style.css">',
    '<script src="search.js" defer></script>',
    '</head>',
    '<body>',
    `<header><a class="brand" href="index.html">${escapeHtml(args.title)}</a>`,
    '<input id="search" type="search" placeholder="Search the docs" aria-label="Search the docs" hidden>',
    '<ol id="search-results" hidden></ol></header>',
    `<nav>\n${nav(p.file)}\n</nav>`,
    `<main>\n${p.html}</main>`,
    `<footer>${renderInline(`Built by \`tools/docs.mjs\` for the dist-build example · content ${contentHash}`)}</footer>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
  // Check local links and images.
  for (const [, url] of html.matchAll(/(?:href|src)="([^"]+)"/g)) {
    if (/^(https?:|mailto:)/.test(url) || url === 'search.js') continue;
    const [target, fragment] = url.split('#');
    const file = target === '' ? p.file : target;
    const page = pages.find((x) => x.file === file);
    if (page) {
      if (fragment && !page.html.includes(`id="${fragment}"`))
        problems.push(`${p.file}: no #${fragment} in ${file}`);
    } else if (!(
      file === 'style.css' ||
      (file.startsWith('assets/') && assets.includes(file.slice(7)))
    )) {
      problems.push(`${p.file}: broken link to ${url}`);
    }
  }
  writeFile(join(args.out, p.file), html);
}
if (problems.length > 0) fail(`docs have broken links:\n  ${problems.join('\n  ')}`);
console.log(`rendered ${pages.length} pages and copied ${assets.length} assets into ${args.out}`);
