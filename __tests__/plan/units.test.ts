import { parseConfig } from '../../src/config/load.js';
import { expandUnits, selectUnits, workerCount } from '../../src/plan/units.js';

const config = (body: string, workers = '') =>
  parseConfig(`version: 1\n${workers}invocations:\n${body}`, '/repo/dist-build.yml');

describe('expandUnits', () => {
  it('makes one unit per invocation with the name as affinity key', () => {
    const units = expandUnits(
      config('  lib: {run: x}\n  app: {run: y, needs: [lib], labels: [big]}\n'),
    );
    expect(units).toEqual([
      { id: 'lib', invocation: 'lib', affinityKey: 'lib', needs: [], labels: [] },
      { id: 'app', invocation: 'app', affinityKey: 'app', needs: ['lib'], labels: ['big'] },
    ]);
  });

  it('fans a multi-platform docker invocation out into platform units keyed name@platform', () => {
    const units = expandUnits(
      config(`  lib: {run: x}
  base: {docker: {context: base, platforms: [linux/amd64, linux/arm64]}}
  api: {docker: {context: api, platforms: [linux/amd64, linux/arm64]}, needs: [lib, base]}
  one: {docker: {context: one, platforms: [linux/arm64]}, needs: [base]}
  tool: {run: z, platform: linux/riscv64, needs: [base]}
`),
    );
    const byId = Object.fromEntries(units.map((u) => [u.id, u]));
    expect(Object.keys(byId)).toEqual([
      'lib',
      'base@linux/amd64',
      'base@linux/arm64',
      'api@linux/amd64',
      'api@linux/arm64',
      'one',
      'tool',
    ]);
    expect(byId['api@linux/arm64']).toMatchObject({
      invocation: 'api',
      platform: 'linux/arm64',
      affinityKey: 'api@linux/arm64',
      needs: ['lib', 'base@linux/arm64'],
    });
    // A single-platform build keeps its name as id but is keyed (and constrained) by platform.
    expect(byId.one).toMatchObject({
      platform: 'linux/arm64',
      affinityKey: 'one@linux/arm64',
      needs: ['base@linux/arm64'],
    });
    // No matching platform in the dependency: it needs every platform unit.
    expect(byId.tool!.needs).toEqual(['base@linux/amd64', 'base@linux/arm64']);
  });
});

describe('workerCount', () => {
  it('is clamp(ceil(n / max-per-worker), min, max)', () => {
    const c = config('  a: {run: x}\n', 'workers: {min: 2, max: 5, max-per-worker: 10}\n');
    expect(workerCount(c, 1)).toBe(2);
    expect(workerCount(c, 21)).toBe(3);
    expect(workerCount(c, 30)).toBe(3);
    expect(workerCount(c, 31)).toBe(4);
    expect(workerCount(c, 1000)).toBe(5);
  });
});

describe('selectUnits', () => {
  const all = expandUnits(
    config(`  lib: {run: x}
  base: {docker: {context: base, platforms: [linux/amd64, linux/arm64]}}
  api: {docker: {context: api, platforms: [linux/amd64, linux/arm64]}, needs: [lib, base]}
  docs: {run: d}
`),
  );
  const ids = (names: string[], withNeeds: boolean) =>
    selectUnits(all, names, withNeeds).map((u) => u.id);

  it('takes invocation names (all their units) and unit ids, in config order', () => {
    expect(ids(['docs', 'base'], false)).toEqual(['base@linux/amd64', 'base@linux/arm64', 'docs']);
    expect(ids(['api@linux/arm64'], false)).toEqual(['api@linux/arm64']);
    expect(ids([], false)).toEqual(all.map((u) => u.id));
  });

  it('with needs, also what they need, directly or not', () => {
    expect(ids(['api@linux/arm64'], true)).toEqual(['lib', 'base@linux/arm64', 'api@linux/arm64']);
  });

  it('names what it does not know, with what there is', () => {
    expect(() => ids(['lib', 'nope'], true)).toThrow(
      'no unit or invocation "nope" in the config (there are: lib, base@linux/amd64, base@linux/arm64, api@linux/amd64, api@linux/arm64, docs)',
    );
  });
});
