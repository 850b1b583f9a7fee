import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/errors.js';
import type { ConfigIssue } from '../../src/config/errors.js';

const FILE = '/repo/dist-build.yml';

function issues(text: string): ConfigIssue[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const ISSUE_EXAMPLE = `version: 1
workers: {min: 1, max: 16, max-per-worker: 20}
placement: {balance: 1.15}
invocations:
  lib:
    run: npm run build -w lib
    inputs: [packages/lib/**, package-lock.json]
    outputs: [packages/lib/dist]
  api-image:
    docker: {context: services/api, file: services/api/Dockerfile, target: runtime, platforms: [linux/amd64, linux/arm64], tags: [ghcr.io/org/api:latest]}
    needs: [lib]
    export: true
`;

describe('parseConfig', () => {
  it('loads the example from the design issue with defaults filled in', () => {
    const c = parseConfig(ISSUE_EXAMPLE, FILE);
    expect(c.root).toBe('/repo');
    expect(c.workers).toEqual({ min: 1, max: 16, maxPerWorker: 20 });
    expect(c.placement).toEqual({ balance: 1.15, defaultDuration: 60 });
    const [lib, api] = c.invocations;
    expect(lib).toMatchObject({
      name: 'lib',
      run: 'npm run build -w lib',
      inputs: ['packages/lib/**', 'package-lock.json'],
      outputs: ['packages/lib/dist'],
      needs: [],
      export: false,
      timeout: 3600,
      labels: [],
    });
    expect(api!.docker).toEqual({
      context: 'services/api',
      file: 'services/api/Dockerfile',
      target: 'runtime',
      platforms: ['linux/amd64', 'linux/arm64'],
      tags: ['ghcr.io/org/api:latest'],
      buildArgs: {},
    });
    expect(api!.export).toBe(true);
  });

  it('merges env, converts scalar values to strings and parses durations', () => {
    const c = parseConfig(
      `version: 1
env: {A: one, N: 3}
placement: {default-duration: 2m}
invocations:
  x:
    run: echo
    env: {A: two, B: true}
    timeout: 10m
    estimate: 1.5h
  y: {run: echo, docker: null}
`.replace('  y: {run: echo, docker: null}\n', '  y: {run: echo, timeout: 250ms}\n'),
      FILE,
    );
    expect(c.invocations[0]!.env).toEqual({ A: 'two', N: '3', B: 'true' });
    expect(c.invocations[0]!.timeout).toBe(600);
    expect(c.invocations[0]!.estimate).toBe(5400);
    expect(c.invocations[1]!.timeout).toBe(0.25);
    expect(c.placement.defaultDuration).toBe(120);
  });

  it('defaults the Dockerfile to <context>/Dockerfile and normalizes paths', () => {
    const c = parseConfig(
      `version: 1\ninvocations:\n  img: {docker: {context: ./svc/api/}, inputs: ['./a/../b/**']}\n`,
      FILE,
    );
    expect(c.invocations[0]!.docker!.file).toBe('svc/api/Dockerfile');
    expect(c.invocations[0]!.docker!.context).toBe('svc/api');
    expect(c.invocations[0]!.inputs).toEqual(['b/**']);
  });

  it('names file, line, column, key path and what was expected for schema errors', () => {
    const found = issues(`version: 1
workers: {min: 0, mx: 3}
invocations:
  lib:
    run: 3
    inputz: []
    timeout: 10x
`);
    expect(found.map((i) => `${i.line}:${i.col} ${i.path}`)).toEqual([
      '2:16 workers.min',
      '2:19 workers.mx',
      '5:10 invocations.lib.run',
      '6:5 invocations.lib.inputz',
      '7:14 invocations.lib.timeout',
    ]);
    expect(found[0]!.file).toBe(FILE);
    expect(found[1]!.message).toMatch(
      /unknown key "mx" \(did you mean "max"\?\); expected one of: min, max, max-per-worker/,
    );
    expect(found[2]!.message).toBe('expected string, got number 3');
    expect(found[3]!.message).toMatch(/did you mean "inputs"/);
    expect(found[4]!.message).toMatch(
      /got string "10x"; expected seconds as a number, or a string such as "90s"/,
    );
  });

  it('rejects unknown top-level keys and a wrong version', () => {
    const found = issues('version: 2\ninvocation: {}\n');
    const text = found.map((i) => `${i.path}: ${i.message}`).join('\n');
    expect(text).toMatch(/version: expected 1, got number 2/);
    expect(text).toMatch(/invocation: unknown key "invocation" \(did you mean "invocations"\?\)/);
    expect(text).toMatch(/missing required key "invocations"/);
  });

  it('reports YAML syntax errors and duplicate keys with positions', () => {
    const bad = issues('version: 1\ninvocations:\n  a: {run: x\n');
    expect(bad[0]!.line).toBeGreaterThan(0);
    const dup = issues('version: 1\ninvocations:\n  a: {run: x}\n  a: {run: y}\n');
    expect(dup[0]).toMatchObject({ line: 4, path: 'invocations.a' });
    expect(dup[0]!.message).toBe('duplicate key "a" (first at line 3)');
    const two = issues('---\nversion: 1\ninvocations:\n  a: {run: x}\n---\nversion: 1\n');
    expect(two.map((i) => [i.line, i.col, i.message])).toEqual([
      [5, 1, 'a second YAML document starts here ("---"); expected one document'],
    ]);
  });

  it('reports YAML tags it cannot resolve instead of taking the text', () => {
    const found = issues('version: 1\ninvocations:\n  a: {run: !Ref build, estimate: !!float 5}\n');
    expect(found.map((i) => [i.line, i.col, i.message])).toEqual([
      [3, 12, 'unresolved YAML tag !Ref: dist-build.yml takes plain values'],
      [3, 34, 'unresolved YAML tag !!float: dist-build.yml takes plain values'],
    ]);
    // tags the parser knows are fine
    expect(
      parseConfig('version: 1\ninvocations:\n  a: {run: !!str 5, estimate: !!float 1.5}\n', FILE)
        .invocations[0],
    ).toMatchObject({ run: '5', estimate: 1.5 });
  });

  it('keeps keys as written: 1 and "1" are one name, 007 stays 007', () => {
    const dup = issues('version: 1\ninvocations:\n  1: {run: x}\n  "1": {run: y}\n');
    expect(dup.map((i) => [i.line, i.col, i.message])).toEqual([
      [4, 3, 'duplicate key "1" (first at line 3)'],
    ]);
    const config = parseConfig(
      'version: 1\ninvocations:\n  007: {run: x, needs: ["0x10"]}\n  0x10: {run: y}\n',
      'f.yml',
    );
    expect(config.invocations.map((i) => [i.name, i.needs])).toEqual([
      ['007', ['0x10']],
      ['0x10', []],
    ]);
    // ~ is null to YAML: as a name it is reported at its own line, not as "" at the first key.
    const tilde = issues('version: 1\ninvocations:\n  a: {run: x}\n  ~: {run: y}\n');
    expect(tilde[0]).toMatchObject({ line: 4, col: 3 });
    expect(tilde[0]!.message).toMatch(/invalid invocation name "~"/);
    const list = issues('version: 1\ninvocations:\n  ? [a, b]\n  : {run: y}\n');
    expect(list[0]).toMatchObject({ line: 3, col: 5, path: 'invocations' });
    expect(list[0]!.message).toMatch(/a key must be a plain name/);
  });

  it('keeps env and build-args values as written', () => {
    const config = parseConfig(
      `version: 1
env: {V: 1.10, Z: 007, H: 0x1F, BIG: 12345678901234567890, T: true}
invocations:
  a: {run: x, env: {E: 1e3}}
  b: {docker: {context: ., build-args: {N: 1.50}}}
`,
      'f.yml',
    );
    expect(config.invocations[0]!.env).toEqual({
      V: '1.10',
      Z: '007',
      H: '0x1F',
      BIG: '12345678901234567890',
      T: 'true',
      E: '1e3',
    });
    expect(config.invocations[1]!.docker!.buildArgs).toEqual({ N: '1.50' });
  });

  it('reports aliases it cannot resolve, and alias bombs, at a position', () => {
    const unresolved = issues('version: 1\ninvocations:\n  a: *nope\n');
    expect(unresolved[0]).toMatchObject({ line: 3, col: 6 });
    expect(unresolved[0]!.message).toMatch(/Unresolved alias/);
    const lol = ['version: 1', 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) {
      lol.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    }
    const bomb = issues(`${lol.join('\n')}\ninvocations: {a: {run: x}}\n`);
    expect(bomb[0]!.line).toBeGreaterThan(0);
    expect(bomb[0]!.message).toMatch(/alias/i);
  });

  it('refuses zero durations written as strings, as it does numbers', () => {
    const found = issues(`version: 1
placement: {default-duration: 0s}
invocations:
  a: {run: x, estimate: 0ms, timeout: 0.0h}
  b: {run: x, estimate: 0.0s}
`);
    expect(found.map((i) => [i.line, i.path, i.message])).toEqual([
      [2, 'placement.default-duration', 'expected a duration longer than 0 s'],
      [4, 'invocations.a.estimate', 'expected an estimate longer than 0 s'],
      [4, 'invocations.a.timeout', 'expected a timeout longer than 0 s'],
      [5, 'invocations.b.estimate', 'expected an estimate longer than 0 s'],
    ]);
  });

  it('says that YAML merge keys are not supported, wherever one is', () => {
    const found = issues(`version: 1
env: &env {A: a}
invocations:
  base: &base {run: x, timeout: 10m}
  <<: {other: {run: y}}
  a:
    <<: *base
    env:
      <<: *env
      B: b
`);
    const why = /^YAML merge keys \("<<"\) are not supported: write the keys out/;
    expect(found.map((i) => [i.line, i.col, i.path])).toEqual([
      [5, 3, 'invocations'],
      [7, 5, 'invocations.a'],
      [9, 7, 'invocations.a.env'],
    ]);
    for (const i of found) expect(i.message).toMatch(why);
  });

  it('shows long texts in messages cut short', () => {
    const prose = `This project builds things.\n${'It goes on and on. '.repeat(20)}\n`;
    expect(issues(prose)[0]!.message).toBe(
      'expected a mapping, got string "This project builds things. It goes on and on. It goes on..."',
    );
    const markdown = issues(`# Title\n\n\`\`\`sh\nnpm ci\n\`\`\`\n\n${'Prose, '.repeat(30)}\n`);
    for (const i of markdown) expect(i.message.length).toBeLessThan(140);
  });

  it('reports an empty file', () => {
    expect(issues('')[0]!.message).toMatch(/empty/);
  });

  it('names missing needs targets with a suggestion, and self-needs', () => {
    const found = issues(`version: 1
invocations:
  api-image: {run: x}
  lib: {run: x, needs: [api-imag, nothing-like-it]}
  me: {run: x, needs: [me]}
`);
    expect(found.map((i) => [i.line, i.path, i.message])).toEqual([
      [4, 'invocations.lib.needs[0]', 'unknown invocation "api-imag" (did you mean "api-image"?)'],
      [4, 'invocations.lib.needs[1]', 'unknown invocation "nothing-like-it"'],
      [5, 'invocations.me.needs[0]', '"me" cannot need itself'],
    ]);
  });

  it('names a missing needs target that is also a name every object has (toString)', () => {
    const found = issues(`version: 1
invocations:
  a: {run: x, needs: [toString, constructor]}
`);
    expect(found.map((i) => [i.line, i.path, i.message])).toEqual([
      [3, 'invocations.a.needs[0]', 'unknown invocation "toString"'],
      [3, 'invocations.a.needs[1]', 'unknown invocation "constructor"'],
    ]);
    // ...and such names are ordinary invocation names
    const c = parseConfig(
      'version: 1\ninvocations:\n  constructor: {run: x}\n  b: {run: x, needs: [constructor]}\n',
      FILE,
    );
    expect(c.invocations[1]!.needs).toEqual(['constructor']);
  });

  it('reports needs cycles with the cycle', () => {
    const found = issues(`version: 1
invocations:
  a: {run: x, needs: [c]}
  b: {run: x, needs: [a]}
  c: {run: x, needs: [b]}
  d: {run: x, needs: [a]}
`);
    expect(found).toHaveLength(1);
    expect(found[0]!.message).toBe('needs cycle: a -> c -> b -> a');
    expect(found[0]).toMatchObject({ line: 3, path: 'invocations.a.needs[0]' });
  });

  it('rejects names unsafe for cache keys and file names', () => {
    for (const name of [
      '"../x"',
      '"a b"',
      '".hidden"',
      '"x/y"',
      '"-x"',
      `"${'a'.repeat(65)}"`,
      '"ä"',
    ]) {
      const found = issues(`version: 1\ninvocations:\n  ${name}: {run: x}\n`);
      expect(found[0]!.message).toMatch(/invalid invocation name/);
      expect(found[0]!.line).toBe(3);
    }
    const clash = issues('version: 1\ninvocations:\n  Lib: {run: x}\n  lib: {run: y}\n');
    expect(clash[0]!.message).toMatch(/differs from "Lib" only by case/);
  });

  it('requires exactly one of run and docker', () => {
    expect(issues('version: 1\ninvocations:\n  a: {inputs: [x]}\n')[0]!.message).toMatch(
      /expected one of "run" or "docker"/,
    );
    expect(
      issues('version: 1\ninvocations:\n  a: {run: x, docker: {context: .}}\n')[0]!.message,
    ).toMatch(/cannot both be set/);
  });

  it('rejects paths that leave the config directory', () => {
    const found = issues(`version: 1
invocations:
  a: {run: x, inputs: [../secret, /etc/passwd, ok/**, '!../x'], outputs: [out/../../up]}
`);
    expect(found.map((i) => i.path)).toEqual([
      'invocations.a.inputs[0]',
      'invocations.a.inputs[1]',
      'invocations.a.inputs[3]',
      'invocations.a.outputs[0]',
    ]);
  });

  it("names the output a problem is about, and keeps outputs out of dist-build's own directories", () => {
    const found = issues(`version: 1
cache:
  stores: [{type: local, dir: build/cache}]
invocations:
  a: {run: x, outputs: [out, /etc/passwd, ./, out/./, .dist-build/x, build, dist-build.yml, .git/hooks], timeout: 0s}
  b: {run: "echo a\\0b", env: {OK: x, V: "x\\0y"}}
  c: {docker: {context: ., build-args: {V: "\\0"}}}
env: {G: "\\0"}
`);
    expect(found.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'invocations.a.outputs[1]: "/etc/passwd" must be a relative path inside the config directory (not absolute, no "..", separated by "/")',
      'invocations.a.outputs[2]: an output cannot be the whole config directory',
      'invocations.a.outputs[3]: "out" is listed twice (outputs[0])',
      `invocations.a.outputs[4]: output ".dist-build/x" is in dist-build's own directory (its cache, index and run state)`,
      'invocations.a.outputs[5]: output "build" holds the local store\'s directory "build/cache"',
      'invocations.a.outputs[6]: output "dist-build.yml" is the config file',
      'invocations.a.outputs[7]: output ".git/hooks" is in the repository\'s .git directory',
      'invocations.a.timeout: expected a timeout longer than 0 s',
      'invocations.b.run: a command cannot contain a NUL character',
      'invocations.b.env.V: a value cannot contain a NUL character',
      'invocations.c.docker.build-args.V: a value cannot contain a NUL character',
      'env.G: a value cannot contain a NUL character',
    ]);
  });

  it('refuses durations a timer cannot wait for (over 24 days)', () => {
    const found = issues(`version: 1
invocations:
  a: {run: x, estimate: 1e308}
  b: {run: x, timeout: 600h}
  c: {run: x, timeout: 576h, estimate: 2073600}
`);
    expect(found.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'invocations.a.estimate: invalid duration 1e+308: expected at most 576h (24 days)',
      'invocations.b.timeout: invalid duration "600h": expected at most 576h (24 days)',
    ]);
  });

  it('refuses env entries the worker sets for each command', () => {
    const found = issues(`version: 1
env: {DIST_BUILD_UNIT: x}
invocations:
  a: {run: x, env: {DIST_BUILD_CACHE_KEY: y, DIST_BUILD_OTHER: z}}
`);
    expect(found.map((i) => `${i.line}:${i.col}: ${i.message}`)).toEqual([
      '2:7: DIST_BUILD_UNIT is set by the worker for each command (DIST_BUILD_WORKER, DIST_BUILD_UNIT, DIST_BUILD_CACHE_KEY)',
      '4:21: DIST_BUILD_CACHE_KEY is set by the worker for each command (DIST_BUILD_WORKER, DIST_BUILD_UNIT, DIST_BUILD_CACHE_KEY)',
    ]);
  });

  it("checks outputs against a local store's directory given as an absolute path in the tree", () => {
    const found = issues(`version: 1
cache:
  stores: [{type: local, dir: /repo/build/cache}, {type: local, dir: /elsewhere/cache}]
invocations:
  a: {run: x, outputs: [build]}
`);
    expect(found.map((i) => i.message)).toEqual([
      'output "build" holds the local store\'s directory "build/cache"',
    ]);
  });

  it('rejects input lists that can match nothing: "!" alone, or only exclusions', () => {
    const found = issues(`version: 1
invocations:
  a: {run: x, inputs: [src/**, "!"]}
  b: {run: x, inputs: ["!src/gen/**", "!*.md"]}
  c: {run: x, inputs: ["**", "!*.md"]}
`);
    expect(found.map((i) => [i.line, i.path, i.message])).toEqual([
      [3, 'invocations.a.inputs[1]', 'expected a pattern after "!"'],
      [
        4,
        'invocations.b.inputs',
        'only exclusions: a "!pattern" leaves files out of what the other patterns match, and there are none (add one, such as "**")',
      ],
    ]);
  });

  it('rejects outputs written as patterns, which no build produces', () => {
    const found = issues(`version: 1
invocations:
  a: {run: x, outputs: [out/*.js, "dist/**", "?", "lib/[ab]"]}
`);
    expect(found.map((i) => [i.line, i.path, i.message])).toEqual([
      [
        3,
        'invocations.a.outputs[0]',
        'output "out/*.js" is a pattern; an output is the path of a file or directory (such as "out")',
      ],
      [
        3,
        'invocations.a.outputs[1]',
        'output "dist/**" is a pattern; an output is the path of a file or directory (such as "dist")',
      ],
      [
        3,
        'invocations.a.outputs[2]',
        'output "?" is a pattern; an output is the path of a file or directory',
      ],
    ]);
  });

  it('rejects overlapping outputs of different invocations', () => {
    const found = issues(`version: 1
invocations:
  a: {run: x, outputs: [out/a, shared]}
  b: {run: x, outputs: [out/a/inner]}
  c: {run: x, outputs: [shared]}
`);
    expect(found.map((i) => i.message)).toEqual([
      'output "out/a/inner" overlaps output "out/a" of invocation "a"',
      'output "shared" overlaps output "shared" of invocation "a"',
    ]);
  });

  it('rejects a docker tag of two invocations (each saves the image its tags name)', () => {
    const found = issues(`version: 1
invocations:
  a: {docker: {context: a, tags: [example/a:1, "127.0.0.1:5000/x"]}}
  b: {docker: {context: b, tags: [example/b:1, docker.io/example/a:1]}}
  c: {docker: {context: c, tags: ["127.0.0.1:5000/x:latest"], platforms: [linux/amd64, linux/arm64]}}
  d: {docker: {context: d, tags: [d, d]}}
`);
    expect(found.map((i) => [i.path, i.message])).toEqual([
      [
        'invocations.b.docker.tags[1]',
        'tag "docker.io/example/a:1" is also a tag of invocation "a" (each build saves the image its tags name)',
      ],
      [
        'invocations.c.docker.tags[0]',
        'tag "127.0.0.1:5000/x:latest" is also a tag of invocation "a" (each build saves the image its tags name)',
      ],
    ]);
  });

  it('checks workers.min <= workers.max, platforms and label lists', () => {
    expect(
      issues('version: 1\nworkers: {min: 5, max: 2}\ninvocations: {a: {run: x}}\n')[0]!.message,
    ).toMatch(/larger than max/);
    expect(issues('version: 1\ninvocations: {a: {run: x, platform: amd64}}\n')[0]!.message).toMatch(
      /expected a platform os\/arch/,
    );
    expect(
      issues('version: 1\ninvocations: {a: {docker: {context: .}, platform: linux/amd64}}\n')[0]!
        .message,
    ).toMatch(/docker.platforms/);
    expect(
      issues('version: 1\ninvocations: {a: {run: x, labels: [gpu, gpu]}}\n')[0]!.message,
    ).toMatch(/unique/);
    const labels = issues(
      'version: 1\ninvocations: {a: {run: x, labels: [ok, "gpu,big", "a b"]}}\n',
    );
    expect(labels.map((i) => [i.path, i.message])).toEqual([
      [
        'invocations.a.labels[1]',
        'label "gpu,big" can never match: a worker\'s labels have no spaces or commas (one label per item)',
      ],
      [
        'invocations.a.labels[2]',
        'label "a b" can never match: a worker\'s labels have no spaces or commas (one label per item)',
      ],
    ]);
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dist-build-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file and sets root to its directory', async () => {
    const file = join(dir, 'dist-build.yml');
    writeFileSync(file, ISSUE_EXAMPLE);
    const c = await loadConfig(file);
    expect(c.root).toBe(dir);
    expect(c.file).toBe(file);
  });

  it('refuses a file that is not UTF-8, at the first bad byte', async () => {
    const latin1 = join(dir, 'latin1.yml');
    writeFileSync(
      latin1,
      Buffer.from('version: 1\ninvocations:\n  a: {run: "echo caf\xe9"}\n', 'latin1'),
    );
    await expect(loadConfig(latin1)).rejects.toThrow(
      `${latin1}:3:21: bytes that are not UTF-8: save the file as UTF-8`,
    );
    const utf16 = join(dir, 'utf16.yml');
    writeFileSync(utf16, Buffer.from('\ufeffversion: 1\ninvocations:\n  a: {run: x}\n', 'utf16le'));
    await expect(loadConfig(utf16)).rejects.toThrow(
      `${utf16}:1:1: the file is UTF-16 (or binary), not UTF-8 text: save it as UTF-8`,
    );
    // UTF-8, with or without a byte order mark, and a U+FFFD written on purpose, load
    const ok = join(dir, 'utf8.yml');
    writeFileSync(ok, '\ufeffversion: 1\ninvocations:\n  a: {run: "echo café \ufffd"}\n');
    expect((await loadConfig(ok)).invocations[0]!.run).toBe('echo café \ufffd');
  });

  it('names a missing file', async () => {
    await expect(loadConfig(join(dir, 'nope.yml'))).rejects.toThrow(
      /nope\.yml: cannot read config: file not found/,
    );
  });
});

describe('env names', () => {
  it('rejects an invalid environment variable name at its key', () => {
    const found = issues('version: 1\ninvocations:\n  a:\n    run: x\n    env: {OK: 1, 1BAD: 2}\n');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ line: 5, col: 18, path: 'invocations.a.env.1BAD' });
    expect(found[0]!.message).toMatch(/invalid name "1BAD": expected an environment variable name/);
  });
});

describe('defaults', () => {
  it('uses balance 1.1, 60 s default duration, workers 1..16 by 20', () => {
    const c = parseConfig('version: 1\ninvocations: {a: {run: x}}\n', FILE);
    expect(c.placement).toEqual({ balance: 1.1, defaultDuration: 60 });
    expect(c.workers).toEqual({ min: 1, max: 16, maxPerWorker: 20 });
  });
});

describe('cache', () => {
  const base = `version: 1
invocations:
  lib: {run: make}
`;

  it('defaults to one local store and no signing', () => {
    expect(parseConfig(base, FILE).cache).toEqual({ stores: [{ type: 'local' }] });
  });

  it('keeps the stores in order with their options, and the sign block', () => {
    const c = parseConfig(
      `${base}cache:
  stores:
    - type: local
      dir: .dist-build/cache
      max-size: 10GiB
    - {type: gha, scope: main}
    - {type: registry, ref: ghcr.io/org/cache}
  sign: {secret-env: MY_SECRET, required: true}
`,
      FILE,
    );
    expect(c.cache).toEqual({
      stores: [
        { type: 'local', dir: '.dist-build/cache', 'max-size': '10GiB' },
        { type: 'gha', scope: 'main' },
        { type: 'registry', ref: 'ghcr.io/org/cache' },
      ],
      sign: { secretEnv: 'MY_SECRET', required: true },
    });
    expect(parseConfig(`${base}cache: {sign: {}}\n`, FILE).cache?.sign).toEqual({
      secretEnv: 'DIST_BUILD_CACHE_SECRET',
      required: false,
    });
  });

  it('rejects an unknown store type, listing the known ones, at file:line:col', () => {
    const found = issues(`${base}cache:\n  stores:\n    - type: locl\n    - type: s3\n`);
    expect(found.map((i) => [i.line, i.col, i.path])).toEqual([
      [6, 13, 'cache.stores[0].type'],
      [7, 13, 'cache.stores[1].type'],
    ]);
    expect(found[0]!.message).toBe(
      'got string "locl" (did you mean "local"?); expected one of: local, gha, registry',
    );
    expect(found[1]!.message).toMatch(/"s3"; expected one of: local, gha, registry/);
    expect(issues(`${base}cache:\n  stores:\n    - dir: x\n`)[0]!.message).toBe(
      'missing required key "type"',
    );
    // No store at all: said in words, not as the schema library's "must NOT have fewer than 1 items".
    const none = issues(`${base}cache:\n  stores: []\n`);
    expect(none.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`)).toEqual([
      '5:11 cache.stores: expected at least 1 entry, got an empty list',
    ]);
  });

  it('rejects a bad size and unknown local options with their positions', () => {
    const found = issues(
      `${base}cache:\n  stores:\n    - {type: local, max-size: 10 parsecs}\n    - {type: local, max-size: 0}\n`,
    );
    expect(found.map((i) => `${i.line}:${i.col} ${i.path}`)).toEqual([
      '6:31 cache.stores[0].max-size',
      '7:31 cache.stores[1].max-size',
    ]);
    expect(found[0]!.message).toMatch(/expected a size: bytes as a number, or a string such as/);
    expect(found[1]!.message).toMatch(/>= 1/);
    const unknown = issues(`${base}cache:\n  stores:\n    - {type: local, max_size: 1GB}\n`);
    expect(unknown.map((i) => `${i.line}:${i.col} ${i.path}`)).toEqual([
      '6:21 cache.stores[0].max_size',
    ]);
    expect(unknown[0]!.message).toMatch(/unknown option "max_size".*did you mean "max-size"/);
    // Other backends check their own options when they are opened.
    expect(parseConfig(`${base}cache: {stores: [{type: gha, whatever: 1}]}\n`, FILE).cache).toEqual(
      { stores: [{ type: 'gha', whatever: 1 }] },
    );
  });

  it('checks the sign block and unknown cache keys', () => {
    const found = issues(`${base}cache:\n  sign: {secret-env: 1BAD, requird: true}\n  store: []\n`);
    expect(found.map((i) => i.path)).toEqual([
      'cache.sign.secret-env',
      'cache.sign.requird',
      'cache.store',
    ]);
  });
});

describe('parseSize', () => {
  it('reads bytes and decimal or binary units', async () => {
    const { parseSize, formatSize } = await import('../../src/config/size.js');
    expect(parseSize(4096)).toBe(4096);
    expect(parseSize('500MB')).toBe(500e6);
    expect(parseSize('10GiB')).toBe(10 * 2 ** 30);
    expect(parseSize('1.5k')).toBe(1500);
    expect(parseSize('2 kib')).toBe(2048);
    expect(() => parseSize('ten')).toThrow(/invalid size/);
    expect(() => parseSize(0)).toThrow(/at least 1 byte/);
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(1536)).toBe('1.50 KiB');
  });
});

describe('the JSON Schema', () => {
  it('is a valid draft-07 schema (the loader skips this check at start-up)', async () => {
    const { configSchema } = await import('../../src/config/schema.js');
    const Ajv = (await import('ajv')).default.default;
    const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, strict: true });
    expect(ajv.validateSchema(configSchema)).toBe(true);
    expect(ajv.errors ?? null).toBeNull();
  });

  it('has a precompiled validator that is current (else: npm run build)', async () => {
    const { configSchema } = await import('../../src/config/schema.js');
    const { VALIDATOR_FILE, validatorSource } = await import('../../scripts/config-validator.mjs');
    const committed = readFileSync(new URL(`../../${VALIDATOR_FILE}`, import.meta.url), 'utf8');
    expect(committed === validatorSource(configSchema)).toBe(true);
  });

  it('gives the same answers and errors as a fresh compile of the schema', async () => {
    const { configSchema } = await import('../../src/config/schema.js');
    const { AJV_OPTIONS } = await import('../../scripts/config-validator.mjs');
    const generated = (await import('../../src/config/schema-validator.generated.js'))
      .default as unknown as { (v: unknown): boolean; errors?: unknown[] | null };
    const Ajv = (await import('ajv')).default.default;
    const fresh = new Ajv(AJV_OPTIONS).compile(configSchema);
    const texts = [
      'version: 1\ninvocations:\n  a: { run: "true" }\n',
      'version: 2\ninvocations: {}\n',
      'version: 1\ninvocations:\n  a: { run: 3, bogus: true, needs: "x" }\n',
      'version: 1\ninvocations:\n  a: { docker: { context: 5 } }\ncache: { stores: [{ type: nope }] }\n',
      ISSUE_EXAMPLE,
    ];
    for (const text of texts) {
      const doc = parseYaml(text) as unknown;
      expect(generated(doc)).toBe(fresh(doc));
      expect(generated.errors ?? null).toEqual(fresh.errors ?? null);
    }
  });
});
