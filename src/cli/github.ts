/**
 * GitHub Actions workflow commands the CLI prints when it runs in a workflow
 * (`GITHUB_ACTIONS=true`): annotations, shown on the run's page and on the config's lines.
 */
import { relative, resolve, sep } from 'node:path';
import type { ConfigError, ConfigIssue } from '../config/errors.js';

export function onGithubActions(): boolean {
  return process.env.GITHUB_ACTIONS === 'true';
}

const data = (v: string) => v.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const prop = (v: string) => data(v).replace(/:/g, '%3A').replace(/,/g, '%2C');

/** `::<name> key=value,...::<message>`, escaped as GitHub reads workflow commands. */
export function workflowCommand(
  name: string,
  message: string,
  props: Record<string, string | number> = {},
): string {
  const list = Object.entries(props).map(([k, v]) => `${k}=${prop(String(v))}`);
  return `::${name}${list.length ? ` ${list.join(',')}` : ''}::${data(message)}`;
}

/**
 * `i` as a GitHub Actions error annotation (`::error file=...,line=...,col=...::...`), the file
 * relative to `root` (the workspace), so that GitHub shows it on that line of the config.
 */
export function issueAnnotation(i: ConfigIssue, root: string): string {
  const file = relative(root, resolve(i.file)).split(sep).join('/');
  return workflowCommand('error', i.path ? `${i.path}: ${i.message}` : i.message, {
    file,
    ...(i.line > 0 ? { line: i.line, col: i.col } : {}),
    title: 'dist-build config',
  });
}

/** On GitHub Actions, `err`'s problems as annotations, on stdout. */
export function annotate(err: ConfigError): void {
  if (!onGithubActions()) return;
  const root = process.env.GITHUB_WORKSPACE || process.cwd();
  for (const issue of err.issues) process.stdout.write(`${issueAnnotation(issue, root)}\n`);
}
