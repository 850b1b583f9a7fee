/**
 * `dist-build run --cache-dir` inside the config's tree: the store's own files are nobody's
 * input, so an `inputs: ["**"]` is cached on the second run (they were hashed as inputs, and
 * every run built again: each save changed the key of the next).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunReport } from '../../src/report/types.js';
import { runCli, stopAll } from '../helpers/processes.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-cachedir-'));
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src/a.txt'), 'a');
  writeFileSync(
    join(dir, 'dist-build.yml'),
    `version: 1
invocations:
  all: {run: 'mkdir -p o && cat src/a.txt > o/a', inputs: ["**"], outputs: [o]}
`,
  );
});
afterEach(() => stopAll());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('a --cache-dir in the tree is not an input: the second run is cached', async () => {
  const statuses: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await runCli(
      ['run', '--config', join(dir, 'dist-build.yml'), '--workers', '1'].concat([
        '--cache-dir',
        join(dir, 'cc'),
        '--out',
        join(dir, 'dist-build-out'),
      ]),
      { timeoutMs: 60_000 },
    );
    expect(res.code).toBe(0);
    const report = JSON.parse(
      readFileSync(join(dir, 'dist-build-out', 'dist-build-report.json'), 'utf8'),
    ) as RunReport;
    statuses.push(report.invocations[0]!.status);
  }
  expect(statuses).toEqual(['built', 'cached']);
}, 90_000);
