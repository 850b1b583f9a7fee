import { relative, resolve, sep } from 'node:path';

/** A problem in a config file, with where it is and what was expected. */
export interface ConfigIssue {
  file: string;
  /** 1-based; 0 when the position is unknown. */
  line: number;
  col: number;
  /** Key path such as `invocations.lib.inputs[0]`; empty for the document itself. */
  path: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.col}` : i.file;
  return `${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

/**
 * `i` as a GitHub Actions error annotation (`::error file=...,line=...,col=...::...`), the file
 * relative to `root` (the workspace), so that GitHub shows it on that line of the config.
 */
export function issueAnnotation(i: ConfigIssue, root: string): string {
  const data = (v: string) => v.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const prop = (v: string) => data(v).replace(/:/g, '%3A').replace(/,/g, '%2C');
  const file = relative(root, resolve(i.file)).split(sep).join('/');
  const where = [`file=${prop(file)}`, ...(i.line > 0 ? [`line=${i.line}`, `col=${i.col}`] : [])];
  return `::error ${where.join(',')},title=dist-build config::${data(i.path ? `${i.path}: ${i.message}` : i.message)}`;
}

/** Thrown by the loader with every problem found, sorted by position. */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    const sorted = [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
    const n = sorted.length;
    super(
      `${n} problem${n === 1 ? '' : 's'} in ${sorted[0]?.file ?? 'config'}:\n` +
        sorted.map((i) => `  ${formatIssue(i)}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.issues = sorted;
  }
}

/** On GitHub Actions (`GITHUB_ACTIONS=true`), `err`'s problems as annotations, on stdout. */
export function annotate(err: ConfigError): void {
  if (process.env.GITHUB_ACTIONS !== 'true') return;
  const root = process.env.GITHUB_WORKSPACE || process.cwd();
  for (const issue of err.issues) process.stdout.write(`${issueAnnotation(issue, root)}\n`);
}
