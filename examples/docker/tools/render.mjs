// Renders every content/*.md into <out>/<name>.html (a tiny Markdown subset: headings, paragraphs).
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [src, out] = process.argv.slice(2);
const escape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const name of readdirSync(src)
  .filter((n) => n.endsWith('.md'))
  .sort()) {
  const body = readFileSync(join(src, name), 'utf8')
    .split(/\n{2,}/)
    .filter((block) => block.trim())
    .map((block) => {
      const h = /^(#{1,6}) (.*)/.exec(block);
      return h
        ? `<h${h[1].length}>${escape(h[2])}</h${h[1].length}>`
        : `<p>${escape(block.trim())}</p>`;
    })
    .join('\n');
  writeFileSync(join(out, name.replace(/\.md$/, '.html')), `<!doctype html>\n${body}\n`);
  console.log(`rendered ${name}`);
}
