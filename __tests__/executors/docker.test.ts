/**
 * The docker executor without a daemon: the script a docker job runs, the unit's outputs, which
 * workers placement gives docker builds to, and how a Docker CLI is chosen (fake `docker`
 * scripts that answer as real clients do). The real builds are in docker.int.test.ts.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseConfig } from '../../src/config/load.js';
import { definitionDigest } from '../../src/cluster/definition.js';
import {
  dockerJobSpec,
  findDocker,
  imagesToLoad,
  pushImage,
  shellQuote,
} from '../../src/executors/docker.js';
import {
  exportedImagePath,
  imageArchivePath,
  isImageArchive,
  unitOutputs,
} from '../../src/plan/units.js';
import { NoEligibleWorkerError, eligible, place } from '../../src/plan/placement.js';
import { expandUnits } from '../../src/plan/units.js';

const CONFIG = `version: 1
invocations:
  api:
    docker:
      context: services/api
      file: services/api/Dockerfile.prod
      target: release
      platforms: [linux/amd64, linux/arm64]
      tags: ["reg.example/api:1", "it's:quoted"]
      network: host
      build-args: { B: "2", A: "x y" }
  tool:
    run: make tool
`;

function config(text = CONFIG) {
  return parseConfig(text, '/work/tree/dist-build.yml');
}

describe('dockerJobSpec', () => {
  const inv = config().invocations.find((i) => i.name === 'api')!;

  test('loads the images it needs, builds with BuildKit, saves the image by its tags', () => {
    const spec = dockerJobSpec(inv, {
      id: 'j1',
      cwd: '/work/tree',
      unit: 'api@linux/arm64',
      platform: 'linux/arm64',
      docker: '/usr/bin/docker',
      load: ['.dist-build/images/base.tar'],
      parentEnv: { DOCKER_HOST: 'unix:///d.sock', SECRET: 'no', PATH: '/bin' },
      cacheFrom: ['reg.example/api:0'],
    });
    expect(spec.cwd).toBe('/work/tree');
    expect(spec.env).toEqual({ DOCKER_HOST: 'unix:///d.sock', DOCKER_BUILDKIT: '1' });
    expect(spec.timeoutSeconds).toBe(3600);
    const lines = spec.command.split('\n');
    expect(lines[0]).toBe('set -e');
    expect(lines).toContain("'/usr/bin/docker' load -i '.dist-build/images/base.tar'");
    const build = lines.find((l) => l.includes("'build'"))!;
    expect(build).toBe(
      "'/usr/bin/docker' 'build' '--progress=plain' '-f' 'services/api/Dockerfile.prod' " +
        "'--target' 'release' '--platform' 'linux/arm64' '--network' 'host' " +
        "'--build-arg' 'A=x y' '--build-arg' 'B=2' '-t' 'reg.example/api:1' '-t' 'it'\\''s:quoted' " +
        "'--build-arg' 'BUILDKIT_INLINE_CACHE=1' '--cache-from' 'reg.example/api:0' " +
        "'--iidfile' '.dist-build/images/api@linux-arm64.iid' 'services/api'",
    );
    expect(lines).toContain(
      "'/usr/bin/docker' save -o '.dist-build/images/api@linux-arm64.tar.partial' 'reg.example/api:1' 'it'\\''s:quoted'",
    );
    expect(lines.at(-2)).toBe(
      "mv -f '.dist-build/images/api@linux-arm64.tar.partial' '.dist-build/images/api@linux-arm64.tar'",
    );
  });

  test('an image without tags is saved by its id; nothing to load, no platform', () => {
    const plain = config('version: 1\ninvocations:\n  img:\n    docker: { context: . }\n')
      .invocations[0]!;
    const spec = dockerJobSpec(plain, {
      id: 'j2',
      cwd: '/r',
      unit: 'img',
      docker: 'docker',
      load: [],
      parentEnv: {},
    });
    expect(spec.command).not.toMatch(/ load /);
    expect(spec.command).not.toMatch(/--platform|--network|--target/);
    expect(spec.command).toContain(
      `'docker' save -o '.dist-build/images/img.tar.partial' "$(cat '.dist-build/images/img.iid')"`,
    );
  });

  test('the script runs in sh as written (quoting survives the shell)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dist-build-docker-sh-'));
    try {
      // A fake docker that prints its arguments one per line, and writes the files it is asked to.
      const fake = join(dir, 'docker');
      writeFileSync(
        fake,
        '#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n' +
          'case "$1" in build) while [ $# -gt 1 ]; do [ "$1" = --iidfile ] && echo sha256:abc > "$2"; shift; done;;\n' +
          'save) echo image > "$3";; esac\n',
      );
      chmodSync(fake, 0o755);
      const spec = dockerJobSpec(inv, {
        id: 'j3',
        cwd: dir,
        unit: 'api@linux/amd64',
        platform: 'linux/amd64',
        docker: fake,
        load: [],
        parentEnv: {},
      });
      const out = execFileSync('/bin/sh', ['-c', spec.command], { cwd: dir, encoding: 'utf8' });
      expect(out).toContain("[it's:quoted]\n");
      expect(out).toContain('[A=x y]\n');
      expect(
        execFileSync('cat', [join(dir, '.dist-build/images/api@linux-amd64.tar')], {
          encoding: 'utf8',
        }),
      ).toBe('image\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an untagged previous image (an id) is named for --cache-from, and the name goes after', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dist-build-docker-sh-'));
    try {
      const plain = config('version: 1\ninvocations:\n  img:\n    docker: { context: . }\n')
        .invocations[0]!;
      const prev = `sha256:${'a'.repeat(64)}`;
      // A fake docker that logs its calls; its build writes BUILT as the image id.
      const fake = join(dir, 'docker');
      writeFileSync(
        fake,
        '#!/bin/sh\necho "$*" >> calls\n' +
          'case "$1" in build) while [ $# -gt 1 ]; do [ "$1" = --iidfile ] && echo "$BUILT" > "$2"; shift; done;;\n' +
          'save) echo image > "$3";; esac\n',
      );
      chmodSync(fake, 0o755);
      const spec = dockerJobSpec(plain, {
        id: 'j4',
        cwd: dir,
        unit: 'img',
        docker: fake,
        load: [],
        parentEnv: {},
        cacheFrom: [prev],
      });
      const name = `dist-build-cache-from:${'a'.repeat(64)}`;
      const calls = (built: string) => {
        rmSync(join(dir, 'calls'), { force: true });
        execFileSync('/bin/sh', ['-c', spec.command], { cwd: dir, env: { BUILT: built } });
        return execFileSync('cat', [join(dir, 'calls')], { encoding: 'utf8' }).split('\n');
      };
      const other = calls(`sha256:${'b'.repeat(64)}`);
      expect(other[0]).toBe(`tag ${prev} ${name}`);
      expect(other[1]).toContain(` --cache-from ${name} `);
      expect(other).not.toContain(expect.stringContaining(`--cache-from ${prev}`));
      expect(other.at(-2)).toBe(`rmi ${name}`);
      // The build made that very image: it stays.
      expect(calls(prev)).not.toContain(`rmi ${name}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('shellQuote', () => {
    expect(shellQuote("a'b c")).toBe(`'a'\\''b c'`);
    expect(
      execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote("$x 'y' \\n")}`], {
        encoding: 'utf8',
      }),
    ).toBe("$x 'y' \\n");
  });

  test('a run: invocation is refused', () => {
    const tool = config().invocations.find((i) => i.name === 'tool')!;
    expect(() =>
      dockerJobSpec(tool, { id: 'x', cwd: '/', unit: 'tool', docker: 'docker', load: [] }),
    ).toThrow(/has no docker: build/);
  });
});

describe('image archives as outputs', () => {
  test("a docker unit's outputs are its declared outputs and its image archive", () => {
    const c = config();
    const api = c.invocations.find((i) => i.name === 'api')!;
    expect(unitOutputs(api, 'api@linux/arm64')).toEqual(['.dist-build/images/api@linux-arm64.tar']);
    const tool = c.invocations.find((i) => i.name === 'tool')!;
    expect(unitOutputs(tool, 'tool')).toEqual([]);
    expect(imageArchivePath('api')).toBe('.dist-build/images/api.tar');
    expect(isImageArchive('.dist-build/images/api.tar')).toBe(true);
    expect(isImageArchive('dist/api.tar')).toBe(false);
    expect(exportedImagePath('.dist-build/images/api@linux-arm64.tar')).toBe(
      'images/api@linux-arm64.tar',
    );
  });

  test('a docker invocation may not declare outputs: a build writes none into the tree', () => {
    expect(() =>
      config('version: 1\ninvocations:\n  img:\n    docker: { context: . }\n    outputs: [dist]\n'),
    ).toThrow(
      /dist-build\.yml:5:\d+: invocations\.img\.outputs: a docker build writes no files into the work tree/,
    );
  });

  test("of a multi-platform dependency, only the image of the build's own platform is loaded", () => {
    const deps = [
      { unit: 'base@linux/amd64', paths: ['.dist-build/images/base@linux-amd64.tar'] },
      { unit: 'base@linux/arm64', paths: ['.dist-build/images/base@linux-arm64.tar'] },
      { unit: 'tools', paths: ['.dist-build/images/tools.tar'] },
      { unit: 'lib', paths: ['out/lib'] },
    ];
    expect(imagesToLoad(deps, 'linux/arm64')).toEqual([
      '.dist-build/images/base@linux-arm64.tar',
      '.dist-build/images/tools.tar',
    ]);
    // No unit of that platform: all of them, as before (the build says what is wrong).
    expect(imagesToLoad(deps, 'linux/s390x')).toEqual([
      '.dist-build/images/base@linux-amd64.tar',
      '.dist-build/images/base@linux-arm64.tar',
      '.dist-build/images/tools.tar',
    ]);
  });

  test('network is part of the definition (workers must agree) only when set', () => {
    const withNet = config().invocations.find((i) => i.name === 'api')!;
    const without = { ...withNet, docker: { ...withNet.docker!, network: undefined } };
    delete without.docker.network;
    expect(definitionDigest(withNet)).not.toBe(definitionDigest(without));
  });

  test('push needs tags, is part of the definition only when set, and not of the cache key', () => {
    expect(() =>
      config('version: 1\ninvocations:\n  img:\n    docker: { context: ., push: true }\n'),
    ).toThrow(/dist-build\.yml:4:\d+: invocations\.img\.docker\.push: push: true needs tags/);
    const text = 'version: 1\ninvocations:\n  img:\n    docker: { context: ., tags: [r/i:1] }\n';
    const plain = config(text).invocations[0]!;
    const pushing = config(text.replace('tags: [r/i:1]', 'tags: [r/i:1], push: true'))
      .invocations[0]!;
    expect(pushing.docker!.push).toBe(true);
    expect(plain.docker!.push).toBeUndefined();
    expect(definitionDigest(pushing)).not.toBe(definitionDigest(plain));
  });

  test('network takes default, host or none', () => {
    expect(() =>
      config('version: 1\ninvocations:\n  img:\n    docker: { context: ., network: bridge }\n'),
    ).toThrow(/network/);
  });
});

describe('placement of docker builds', () => {
  const withDocker = {
    id: 'd1',
    annotations: { os: 'linux', arch: 'amd64', executor: 'command,docker' },
  };
  const commandsOnly = {
    id: 'c1',
    annotations: {
      os: 'linux',
      arch: 'amd64',
      executor: 'command',
      docker: 'none: no docker command on PATH',
    },
  };

  test('docker units need a worker whose executor annotation names docker', () => {
    const units = expandUnits(config());
    expect(units.filter((u) => u.executor === 'docker').map((u) => u.id)).toEqual([
      'api@linux/amd64',
      'api@linux/arm64',
    ]);
    const amd = units.find((u) => u.id === 'api@linux/amd64')!;
    expect(eligible(amd, withDocker)).toBe(true);
    expect(eligible(amd, commandsOnly)).toBe(false);
    // A worker that does not say what it runs (older releases, plan --members) takes anything.
    expect(eligible(amd, { id: 'x' })).toBe(true);
    const tool = units.find((u) => u.id === 'tool')!;
    expect(eligible(tool, commandsOnly)).toBe(true);
  });

  test('a docker build with no docker worker names why each worker has none', () => {
    const items = [
      { id: 'img', affinityKey: 'img', duration: 1, needs: [], labels: [], executor: 'docker' },
      { id: 'cmd', affinityKey: 'cmd', duration: 1, needs: [], labels: [] },
    ];
    expect(() => place({ items, workers: [commandsOnly], balance: 1.1 })).toThrow(
      NoEligibleWorkerError,
    );
    expect(() => place({ items, workers: [commandsOnly], balance: 1.1 })).toThrow(
      'no worker can take "img" (needs any platform, labels [], a worker with docker); workers: c1 (linux/amd64, labels [], executors [command], docker: none: no docker command on PATH)',
    );
    const r = place({ items, workers: [commandsOnly, withDocker], balance: 1.1 });
    expect(r.assignments.img).toBe('d1');
  });
});

describe('findDocker', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dist-build-find-docker-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A fake client: `version` answers like docker's `{{json .}}`; buildx exits `buildx`. */
  function fake(sub: string, client: string, server: string | null, buildx = 1): string {
    const d = join(dir, sub);
    mkdirSync(d, { recursive: true });
    const version = JSON.stringify({
      Client: { Version: client },
      Server: server ? { Version: server, Os: 'linux', Arch: 'amd64' } : null,
    });
    writeFileSync(
      join(d, 'docker'),
      `#!/bin/sh\ncase "$1" in\n` +
        `version) echo '${version}'; ${server ? '' : 'echo "Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?" >&2; exit 1'};;\n` +
        `buildx) exit ${buildx};;\nesac\n`,
    );
    chmodSync(join(d, 'docker'), 0o755);
    return d;
  }

  test('skips a client of 23 or later without buildx, takes the next one on PATH', async () => {
    const newer = fake('newer', '28.2.2', '20.10.24');
    const older = fake('older', '20.10.24', '20.10.24');
    const r = await findDocker({ env: { PATH: `${newer}:${older}` } });
    expect(r.docker).toEqual({
      path: join(older, 'docker'),
      client: '20.10.24',
      server: '20.10.24',
      platform: 'linux/amd64',
    });
    expect(r.problems).toEqual([
      `${join(newer, 'docker')}: client 28.2.2 builds with BuildKit only through the buildx plugin, which it does not have`,
    ]);
  });

  test('a client of 23 or later with buildx is taken', async () => {
    const newer = fake('newer', '28.2.2', '28.2.2', 0);
    expect((await findDocker({ env: { PATH: newer } })).docker?.client).toBe('28.2.2');
  });

  test('no daemon, no docker, an explicit path', async () => {
    const down = fake('down', '20.10.24', null);
    const r = await findDocker({ env: { PATH: down } });
    expect(r.docker).toBeUndefined();
    expect(r.problems).toEqual([
      `${join(down, 'docker')}: cannot reach a Docker daemon (Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?)`,
    ]);
    expect((await findDocker({ env: { PATH: join(dir, 'none') } })).problems).toEqual([
      'no docker command on PATH',
    ]);
    const r2 = await findDocker({ docker: join(dir, 'missing'), env: { PATH: down } });
    expect(r2.problems).toEqual([`${join(dir, 'missing')}: cannot run it (ENOENT)`]);
    const ok = fake('ok', '20.10.24', '20.10.24');
    expect(
      (await findDocker({ docker: join(ok, 'docker'), env: { PATH: down } })).docker?.path,
    ).toBe(join(ok, 'docker'));
  });
});

describe('pushImage', () => {
  test("the CLI's last lines make the message, without blank ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dist-build-push-'));
    try {
      // As docker push to a registry that is down: stdout ends with a newline, then stderr.
      writeFileSync(
        join(dir, 'docker'),
        '#!/bin/sh\n[ "$1" = load ] && exit 0\necho "The push refers to repository [127.0.0.1:9/a]"\n' +
          `echo 'Get "http://127.0.0.1:9/v2/": connection refused' >&2; exit 1\n`,
      );
      chmodSync(join(dir, 'docker'), 0o755);
      const docker = { path: join(dir, 'docker'), client: '20.10', server: '20.10', platform: '' };
      await expect(
        pushImage(docker, join(dir, 'a.tar'), ['127.0.0.1:9/a:1'], { env: {}, timeoutMs: 10_000 }),
      ).rejects.toThrow(
        new Error(
          'docker push 127.0.0.1:9/a:1: The push refers to repository [127.0.0.1:9/a] / Get "http://127.0.0.1:9/v2/": connection refused',
        ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a tag that cannot be pushed names the tags pushed before it (the report lists none)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dist-build-push-'));
    try {
      const digest = `sha256:${'d'.repeat(64)}`;
      // A fake client: pushes to 127.0.0.1:9 fail as a registry that is down does.
      writeFileSync(
        join(dir, 'docker'),
        '#!/bin/sh\ncase "$1" in\nload) echo "Loaded image: x";;\n' +
          'push) case "$2" in 127.0.0.1:9/*) echo "The push refers to repository [127.0.0.1:9/a]"; ' +
          `echo 'Get "http://127.0.0.1:9/v2/": connection refused' >&2; exit 1;;\n` +
          `*) echo "1: digest: ${digest} size: 528";; esac;;\nesac\n`,
      );
      chmodSync(join(dir, 'docker'), 0o755);
      const docker = { path: join(dir, 'docker'), client: '20.10', server: '20.10', platform: '' };
      const push = (tags: string[]) =>
        pushImage(docker, join(dir, 'a.tar'), tags, { env: {}, timeoutMs: 10_000 });
      expect(await push(['reg.example/a:1'])).toEqual([{ ref: 'reg.example/a:1', digest }]);
      await expect(push(['reg.example/a:1', '127.0.0.1:9/a:1'])).rejects.toThrow(
        new RegExp(
          `^docker push 127\\.0\\.0\\.1:9/a:1: .*connection refused \\(pushed before it: reg\\.example/a:1 ${digest}\\)$`,
        ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
