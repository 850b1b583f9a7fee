// A small Markdown renderer: ATX headings (with ids), paragraphs, emphasis, code spans, fenced
// code blocks, links, images, ordered and unordered lists (nested by indentation), block
// quotes, GitHub-style tables, horizontal rules and raw HTML lines. Output is deterministic.

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s) {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A URL fragment for a heading: lower case, letters and digits joined by '-'. */
export function slug(text) {
  return (
    text
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/<[^>]+>/g, '')
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'section'
  );
}

/** Renders inline Markdown (code spans first, so their content is left alone). */
export function renderInline(text) {
  const parts = text.split(/(`+[^`]*?`+)/);
  return parts
    .map((part, i) => {
      if (i % 2 === 1) return `<code>${escapeHtml(part.replace(/^`+|`+$/g, ''))}</code>`;
      let s = escapeHtml(part);
      s = s.replace(
        /!\[([^\]]*)\]\(([^)\s]+)\)/g,
        (_, alt, src) => `<img src="${src}" alt="${alt}" loading="lazy">`,
      );
      s = s.replace(
        /\[([^\]]+)\]\(([^)\s]+)\)/g,
        (_, label, href) => `<a href="${href}">${label}</a>`,
      );
      s = s.replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
      s = s.replace(/(^|[^\w*])\*([^*\s][^*]*?)\*(?!\w)/g, '$1<em>$2</em>');
      s = s.replace(/(^|[^\w])_([^_\s][^_]*?)_(?!\w)/g, '$1<em>$2</em>');
      return s;
    })
    .join('');
}

/**
 * Renders a Markdown document. Returns `{ html, title, headings }` where `title` is the first
 * level-1 heading and `headings` lists every heading `{ level, text, id }`.
 */
export function renderMarkdown(src) {
  const lines = src.replace(/\r\n/g, '\n').split('\n');
  const out = [];
  const headings = [];
  const ids = new Map();
  let i = 0;

  const uniqueId = (text) => {
    const base = slug(text);
    const n = ids.get(base) ?? 0;
    ids.set(base, n + 1);
    return n === 0 ? base : `${base}-${n}`;
  };
  const isBlank = (l) => l.trim() === '';
  const listItem = (l) => /^(\s*)([-*]|\d{1,9}\.)\s+(.*)$/.exec(l);
  // As in CommonMark, only a list starting at 1 may interrupt a paragraph.
  const startsBlock = (l) => /^(#{1,6}\s|```|>|\s*([-*]|1\.)\s|<|---+\s*$|\|)/.test(l);

  const renderList = (start) => {
    const first = listItem(lines[start]);
    const indent = first[1].length;
    const ordered = /\d/.test(first[2]);
    const items = [];
    let k = start;
    while (k < lines.length) {
      const m = listItem(lines[k]);
      if (m && m[1].length === indent) {
        items.push({ text: [m[3]], children: [] });
        k++;
      } else if (m && m[1].length > indent) {
        const [html, next] = renderList(k);
        items.at(-1).children.push(html);
        k = next;
      } else if (!m && !isBlank(lines[k]) && /^\s+/.test(lines[k]) && items.length > 0) {
        items.at(-1).text.push(lines[k].trim());
        k++;
      } else break;
    }
    const tag = ordered ? 'ol' : 'ul';
    const body = items
      .map((it) => `<li>${renderInline(it.text.join(' '))}${it.children.join('')}</li>`)
      .join('\n');
    return [`<${tag}>\n${body}\n</${tag}>`, k];
  };

  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const level = heading[1].length;
      const text = heading[2];
      const id = uniqueId(text);
      headings.push({ level, text, id });
      out.push(`<h${level} id="${id}">${renderInline(text)}</h${level}>`);
      i++;
      continue;
    }
    const fence = /^```\s*([\w-]*)\s*$/.exec(line);
    if (fence) {
      const code = [];
      i++;
      while (i < lines.length && !/^```\s*$/.test(lines[i])) code.push(lines[i++]);
      i++;
      const cls = fence[1] ? ` class="language-${fence[1]}"` : '';
      out.push(`<pre><code${cls}>${escapeHtml(code.join('\n'))}</code></pre>`);
      continue;
    }
    if (/^---+\s*$/.test(line)) {
      out.push('<hr>');
      i++;
      continue;
    }
    if (line.startsWith('>')) {
      const quoted = [];
      while (i < lines.length && lines[i].startsWith('>'))
        quoted.push(lines[i++].replace(/^>\s?/, ''));
      out.push(`<blockquote>\n${renderMarkdown(quoted.join('\n')).html}</blockquote>`);
      continue;
    }
    if (listItem(line)) {
      const [html, next] = renderList(i);
      out.push(html);
      i = next;
      continue;
    }
    if (line.startsWith('|') && i + 1 < lines.length && /^\|[\s:|-]+\|\s*$/.test(lines[i + 1])) {
      const cells = (l) =>
        l
          .trim()
          .replace(/^\||\|$/g, '')
          .split('|')
          .map((c) => c.trim());
      const head = cells(line);
      const aligns = cells(lines[i + 1]).map((c) =>
        c.endsWith(':') ? (c.startsWith(':') ? 'center' : 'right') : '',
      );
      const attr = (k) => (aligns[k] ? ` style="text-align:${aligns[k]}"` : '');
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].startsWith('|')) rows.push(cells(lines[i++]));
      out.push(
        [
          '<table>',
          `<thead><tr>${head.map((h, k) => `<th${attr(k)}>${renderInline(h)}</th>`).join('')}</tr></thead>`,
          '<tbody>',
          ...rows.map(
            (r) => `<tr>${r.map((c, k) => `<td${attr(k)}>${renderInline(c)}</td>`).join('')}</tr>`,
          ),
          '</tbody>',
          '</table>',
        ].join('\n'),
      );
      continue;
    }
    if (line.startsWith('<')) {
      out.push(line);
      i++;
      continue;
    }
    const para = [line.trim()];
    i++;
    while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines[i]))
      para.push(lines[i++].trim());
    out.push(`<p>${renderInline(para.join(' '))}</p>`);
  }
  const title = headings.find((h) => h.level === 1)?.text ?? '';
  return { html: `${out.join('\n')}\n`, title, headings };
}
