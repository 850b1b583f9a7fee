import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderHtml, renderMarkdown } from './render.js';
import type { RunReport } from './types.js';

export * from './types.js';
export {
  summaryTable,
  renderMarkdown,
  renderHtml,
  totalsLine,
  countByStatus,
  escapeHtml,
  shownPath,
  cutMarkdown,
} from './render.js';

export const REPORT_FILES = {
  json: 'dist-build-report.json',
  markdown: 'dist-build-report.md',
  html: 'dist-build-report.html',
} as const;

/**
 * Writes dist-build-report.json (pretty), dist-build-report.md and dist-build-report.html into
 * `dir` (created if missing) and returns their paths.
 */
export async function writeReport(
  dir: string,
  report: RunReport,
): Promise<{ json: string; markdown: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const paths = {
    json: join(dir, REPORT_FILES.json),
    markdown: join(dir, REPORT_FILES.markdown),
    html: join(dir, REPORT_FILES.html),
  };
  await Promise.all([
    writeFile(paths.json, JSON.stringify(report, null, 2) + '\n'),
    writeFile(paths.markdown, renderMarkdown(report)),
    writeFile(paths.html, renderHtml(report)),
  ]);
  return paths;
}
