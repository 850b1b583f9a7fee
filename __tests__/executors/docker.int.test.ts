/**
 * The docker executor with real Docker daemons (Debian's docker.io, dockerd 20.10 + BuildKit):
 * `dist-build run` builds images, finds them cached, rebuilds what changed and exports a
 * loadable archive; in a pool, a worker whose daemon never built a base image gets it from the
 * worker that did (through the cache) and builds FROM it; a worker without Docker says why.
 */
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunReport } from '../../src/report/types.js';
import {
  dockerAvailable,
  startDockerd,
  stopAllDockerd,
  type DockerDaemon,
} from '../helpers/docker.js';
import { explained, runCli, startCli, stopAll } from '../helpers/processes.js';
import { startRegistry, stopAllRegistries } from '../helpers/registry.js';

const available = dockerAvailable();
const maybe = available ? describe : describe.skip;

const CONFIG = `version: 1
invocations:
  base:
    docker:
      context: base
      tags: [dist-build-test/base:1]
  app:
    needs: [base]
    export: true
    docker:
      context: app
      network: host
      tags: [dist-build-test/app:1]
      build-args:
        GREETING: hello
  notes:
    run: mkdir -p out && echo notes > out/notes.txt
    outputs: [out]
    export: true
`;

let dir: string;
let root: string;

/** A tree whose base image is FROM busybox:test (imported into each daemon by the test). */
function makeTree(at: string): string {
  mkdirSync(join(at, 'base'), { recursive: true });
  mkdirSync(join(at, 'app'), { recursive: true });
  writeFileSync(join(at, 'dist-build.yml'), CONFIG);
  writeFileSync(join(at, 'base/Dockerfile'), 'FROM busybox:test\nCOPY motd /etc/motd\n');
  writeFileSync(join(at, 'base/motd'), 'base image\n');
  writeFileSync(
    join(at, 'app/Dockerfile'),
    'FROM dist-build-test/base:1\nARG GREETING\nCOPY hello.txt /hello.txt\n' +
      'RUN cat /etc/motd /hello.txt > /copy.txt && echo "$GREETING" >> /copy.txt\n',
  );
  writeFileSync(join(at, 'app/hello.txt'), 'hi\n');
  return at;
}

function report(out: string): RunReport {
  return JSON.parse(readFileSync(join(out, 'dist-build-report.json'), 'utf8')) as RunReport;
}

/** /copy.txt of a container of the app image, run on daemon `d` (what its RUN step wrote). */
async function copyTxt(d: DockerDaemon): Promise<string> {
  const args = ['run', '--rm', '--network', 'none', 'dist-build-test/app:1', 'cat', '/copy.txt'];
  return (await d.docker(args)).stdout;
}

/**
 * app with an expensive step that depends on its deps.txt only (hello.txt comes after it): `run`
 * runs the tree on daemon `d`, exporting into `out`; `moved` changes hello.txt and runs it on a
 * fresh daemon (another machine, the same tree and cache), checks that app was built there with
 * the expensive step cached, and hands the run's output and that daemon to `check`.
 */
function appWithDeps(out: string) {
  writeFileSync(
    join(root, 'app/Dockerfile'),
    'FROM dist-build-test/base:1\nCOPY deps.txt /deps.txt\n' +
      'RUN echo installing && cat /deps.txt > /installed\n' +
      'COPY hello.txt /hello.txt\nRUN cat /installed /hello.txt > /copy.txt\n',
  );
  writeFileSync(join(root, 'app/deps.txt'), 'deps\n');
  const run = (d: DockerDaemon) =>
    runCli(['run', '--workers', '1', '--out', out, '--plain'], { cwd: root, env: d.env });
  const moved = async (check: (text: string, other: DockerDaemon) => Promise<void>) => {
    const other = await startDockerd();
    try {
      await other.importBusybox();
      writeFileSync(join(root, 'app/hello.txt'), 'moved\n');
      const r = await run(other);
      expect(r.code).toBe(0);
      expect(statuses(report(out)).app).toBe('built');
      const text = r.stdout + r.stderr;
      const step = /\[app\] #(\d+) \[\d\/\d\] RUN echo installing/.exec(text);
      expect(step).not.toBeNull();
      expect(text).toMatch(new RegExp(`\\[app\\] #${step![1]} CACHED`));
      await check(text, other);
    } finally {
      await other.stop();
    }
  };
  return { run, moved };
}

const statuses = (r: RunReport): Record<string, string> =>
  Object.fromEntries(r.invocations.map((i) => [i.unit, i.status]));

maybe('docker executor (real dockerd)', () => {
  let daemon: DockerDaemon;

  beforeAll(async () => {
    daemon = await startDockerd();
    await daemon.importBusybox();
  }, 60_000);

  afterAll(async () => {
    await stopAll();
    await stopAllDockerd();
    await stopAllRegistries();
  }, 60_000);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dist-build-docker-'));
    root = makeTree(join(dir, 'tree'));
  });

  afterEach(async () => {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('run builds the images, then finds them cached, rebuilds what changed, exports an archive docker loads', async () => {
    const out = join(dir, 'out');
    const run = () =>
      runCli(['run', '--workers', '2', '--out', out, '--plain'], { cwd: root, env: daemon.env });

    const first = await run();
    expect(first.code).toBe(0);
    expect(statuses(report(out))).toEqual({ base: 'built', app: 'built', notes: 'built' });
    // The build ran in BuildKit with the build arg, FROM the base image built by the run.
    const appId = await daemon.imageId('dist-build-test/app:1');
    expect(appId).toMatch(/^sha256:/);
    expect(await copyTxt(daemon)).toBe('base image\nhi\nhello\n');

    // The export: images/app.tar in --out, loadable into another daemon (another machine).
    const archive = join(out, 'images/app.tar');
    const other = await startDockerd();
    try {
      const loaded = await other.docker(['load', '-i', archive]);
      expect(loaded.stdout).toMatch(/Loaded image: dist-build-test\/app:1/);
      expect(await other.imageId('dist-build-test/app:1')).toBe(appId);
    } finally {
      await other.stop();
    }

    // Nothing changed: every invocation cached, no build.
    await daemon.docker(['image', 'rm', 'dist-build-test/app:1']);
    const second = await run();
    expect(second.code).toBe(0);
    expect(statuses(report(out))).toEqual({ base: 'cached', app: 'cached', notes: 'cached' });
    expect(await daemon.imageId('dist-build-test/app:1')).toBeNull();

    // One input of app changed: app alone is built again, FROM the cached base.
    writeFileSync(join(root, 'app/hello.txt'), 'changed\n');
    const third = await run();
    expect(third.code).toBe(0);
    expect(statuses(report(out))).toEqual({ base: 'cached', app: 'built', notes: 'cached' });
    expect(await copyTxt(daemon)).toBe('base image\nchanged\nhello\n');
  }, 240_000);

  test('examples/docker: renders, builds two images FROM scratch, then finds all three cached', async () => {
    const example = join(dir, 'example');
    cpSync(fileURLToPath(new URL('../../examples/docker', import.meta.url)), example, {
      recursive: true,
    });
    const out = join(dir, 'out');
    const run = () => runCli(['run', '--out', out, '--plain'], { cwd: example, env: daemon.env });
    const first = await run();
    expect(first.code).toBe(0);
    const built = { site: 'built', 'site-image': 'built', 'release-image': 'built' };
    expect(statuses(report(out))).toEqual(built);
    expect(await daemon.imageId('dist-build-example/release:latest')).toMatch(/^sha256:/);
    const second = await run();
    expect(second.code).toBe(0);
    expect(statuses(report(out))).toEqual({
      site: 'cached',
      'site-image': 'cached',
      'release-image': 'cached',
    });
    // The archive the example's own comment loads is one the run exported.
    const yml = readFileSync(join(example, 'dist-build.yml'), 'utf8');
    const named = /docker load -i \/tmp\/docker-out\/(\S+)/.exec(yml)![1]!;
    const loaded = await daemon.docker(['load', '-i', join(out, named)]);
    expect(loaded.stderr).toBe('');
    expect(loaded.stdout).toMatch(/dist-build-example\/release:latest/);
  }, 120_000);

  test("push: every run pushes the image it built or found cached, so the tag names this run's image", async () => {
    const registry = await startRegistry();
    const ref = `${registry.host}/dist-build-test/app:1`;
    writeFileSync(
      join(root, 'dist-build.yml'),
      CONFIG.replace('tags: [dist-build-test/app:1]', `tags: ["${ref}"]\n      push: true`),
    );
    const out = join(dir, 'out');
    const run = async () => {
      const r = await runCli(['run', '--workers', '1', '--out', out, '--plain'], {
        cwd: root,
        env: daemon.env,
      });
      if (r.code !== 0) throw new Error(`exit ${r.code}:\n${(r.stdout + r.stderr).slice(-3000)}`);
      return { r, report: report(out) };
    };
    /** The manifest digest the registry has under the tag. */
    const tagged = async () => {
      const res = await fetch(`${registry.url}/v2/dist-build-test/app/manifests/1`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      return res.headers.get('docker-content-digest');
    };

    const first = await run();
    const pushed = first.report.pushes!.find((p) => p.unit === 'app')!;
    expect(pushed.images.map((i) => i.ref)).toEqual([ref]);
    const d1 = pushed.images[0]!.digest;
    expect(d1).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await tagged()).toBe(d1);
    expect(first.r.stderr).toContain(`app: pushed ${ref} (${d1}) from worker-1`);
    expect(readFileSync(join(out, 'dist-build-report.md'), 'utf8')).toContain(`\`${ref}\``);

    // Another input: another image under the tag.
    writeFileSync(join(root, 'app/hello.txt'), 'changed\n');
    const second = await run();
    expect(statuses(second.report).app).toBe('built');
    const d2 = second.report.pushes!.find((p) => p.unit === 'app')!.images[0]!.digest;
    expect(d2).not.toBe(d1);
    expect(await tagged()).toBe(d2);

    // Back to the first input: cached, not built, yet pushed again (from the archive: the
    // daemon no longer has the image), so the tag is the first image again.
    writeFileSync(join(root, 'app/hello.txt'), 'hi\n');
    await daemon.docker(['image', 'rm', '-f', ref]);
    const third = await run();
    expect(statuses(third.report).app).toBe('cached');
    expect(await tagged()).toBe(d1);
    await registry.stop();
  }, 240_000);

  test('push: a registry that cannot be reached fails the invocation, not the build, with the reason', async () => {
    writeFileSync(
      join(root, 'dist-build.yml'),
      CONFIG.replace(
        'tags: [dist-build-test/app:1]',
        'tags: ["127.0.0.1:9/dist-build-test/app:1"]\n      push: true',
      ),
    );
    const out = join(dir, 'out');
    const r = await runCli(['run', '--workers', '1', '--out', out, '--plain'], {
      cwd: root,
      env: daemon.env,
    });
    expect(r.code).toBe(1);
    const app = report(out).invocations.find((i) => i.unit === 'app')!;
    expect(app.status).toBe('failed');
    expect(app.reason).toMatch(
      /^cannot push: docker push 127\.0\.0\.1:9\/dist-build-test\/app:1: .*connection refused/,
    );
    expect(statuses(report(out)).base).toBe('built');
  }, 120_000);

  test('push: Ctrl-C while it pushes stops the push: the run ends at once, the image not pushed', async () => {
    // A registry that accepts connections and never answers: the push hangs.
    const sockets = new Set<Socket>();
    const hang = createServer((c) => {
      sockets.add(c);
      c.on('close', () => sockets.delete(c));
    });
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const { port } = hang.address() as AddressInfo;
    try {
      writeFileSync(
        join(root, 'dist-build.yml'),
        CONFIG.replace(
          'tags: [dist-build-test/app:1]',
          `tags: ["127.0.0.1:${port}/dist-build-test/app:1"]\n      push: true`,
        ),
      );
      const out = join(dir, 'out');
      const run = startCli(['run', '--workers', '1', '--out', out, '--plain'], {
        cwd: root,
        env: daemon.env,
      });
      await run.waitFor(/app: built on worker-1/, 90_000);
      for (let i = 0; i < 200 && sockets.size === 0; i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(sockets.size).toBeGreaterThan(0);
      // To the CLI alone, as a cancelled workflow's runner (and the action) sends it.
      const t0 = Date.now();
      process.kill(run.pid, 'SIGINT');
      expect((await run.exited).code).toBe(130);
      expect(Date.now() - t0).toBeLessThan(10_000);
      const app = report(out).invocations.find((i) => i.unit === 'app')!;
      expect(app.status).toBe('cancelled');
      expect(app.reason).toBe('interrupted (SIGINT); not pushed');
      expect(report(out).pushes).toBeUndefined();
    } finally {
      for (const c of sockets) c.destroy();
      hang.close();
    }
  }, 180_000);

  test('push: --fail-fast after the image was built: not pushed, and the report says so', async () => {
    writeFileSync(
      join(root, 'dist-build.yml'),
      CONFIG.replace(
        'tags: [dist-build-test/app:1]',
        'tags: ["127.0.0.1:9/dist-build-test/app:1"]\n      push: true',
      ).replace('run: mkdir -p out && echo notes > out/notes.txt', 'needs: [app]\n    run: exit 3'),
    );
    const out = join(dir, 'out');
    const r = await runCli(['run', '--workers', '1', '--out', out, '--plain', '--fail-fast'], {
      cwd: root,
      env: daemon.env,
    });
    expect(r.code).toBe(1);
    const app = report(out).invocations.find((i) => i.unit === 'app')!;
    expect(app.status).toBe('cancelled');
    expect(app.reason).toBe('--fail-fast: notes failed; not pushed');
    expect(statuses(report(out)).notes).toBe('failed');
  }, 120_000);

  test("a daemon that never built an image takes its layers from the unit's previous image in the cache", async () => {
    // The expensive step depends on deps.txt only; hello.txt changes between the runs.
    const out = join(dir, 'out');
    const { run, moved } = appWithDeps(out);
    expect((await run(daemon)).code).toBe(0);
    // The history as a hand-written one may be: keys without durations (they are still used).
    const historyFile = join(root, '.dist-build/history.json');
    const { keys } = JSON.parse(readFileSync(historyFile, 'utf8')) as { keys: unknown };
    writeFileSync(historyFile, JSON.stringify({ keys }));
    // Another machine: a fresh daemon, the same tree and cache (as a shared store would give).
    await moved(async (text, other) => {
      expect(text).toMatch(/\[app\] #\d+ importing cache manifest from dist-build-test\/app:1/);
      expect(await copyTxt(other)).toBe('deps\nmoved\n');
    });
  }, 180_000);

  test('an image without tags that moves takes its layers too (named for the build, not looked up on Docker Hub)', async () => {
    writeFileSync(
      join(root, 'dist-build.yml'),
      CONFIG.replace('      tags: [dist-build-test/app:1]\n', ''),
    );
    const out = join(dir, 'out');
    const { run, moved } = appWithDeps(out);
    expect((await run(daemon)).code).toBe(0);
    await moved(async (text, other) => {
      expect(text).toMatch(/\[app\] #\d+ importing cache manifest from dist-build-cache-from:/);
      expect(text).not.toMatch(/registry-1\.docker\.io/);
      // The name was for the build only.
      const images = await other.docker(['images', '--format', '{{.Repository}}']);
      expect(images.stdout).not.toContain('dist-build-cache-from');
    });
  }, 180_000);

  test('a previous image that cannot be had is a warning the run shows, and a build without it', async () => {
    const out = join(dir, 'out');
    const run = () =>
      runCli(['run', '--workers', '1', '--out', out, '--plain'], { cwd: root, env: daemon.env });
    expect((await run()).code).toBe(0);
    // The daemon no longer has the image; its previous result's archive is corrupt in the store.
    await daemon.docker(['image', 'rm', '-f', 'dist-build-test/app:1']);
    const cache = join(root, '.dist-build/cache');
    const history = JSON.parse(readFileSync(join(root, '.dist-build/history.json'), 'utf8')) as {
      keys: Record<string, string>;
    };
    const key = history.keys.app!.slice('sha256:'.length);
    const result = JSON.parse(
      readFileSync(join(cache, 'results/sha256', key.slice(0, 2), `${key}.json`), 'utf8'),
    ) as { outputs: { digest: string }[] };
    const blob = result.outputs[0]!.digest.slice('sha256:'.length);
    const file = join(cache, 'blobs/sha256', blob.slice(0, 2), blob);
    chmodSync(file, 0o644);
    writeFileSync(file, 'not an image');
    writeFileSync(join(root, 'app/hello.txt'), 'changed\n');
    const r = await run();
    expect(r.code).toBe(0);
    expect(statuses(report(out)).app).toBe('built');
    expect(r.stderr).toMatch(
      /warning: worker-1: app: no cached layers from its previous image: blob sha256:[0-9a-f]{64} is corrupt/,
    );
  }, 120_000);

  test('a failed docker build fails its invocation with the build log, and the rest still runs', async () => {
    writeFileSync(join(root, 'app/Dockerfile'), 'FROM dist-build-test/base:1\nRUN exit 7\n');
    const out = join(dir, 'out');
    const r = await runCli(['run', '--workers', '1', '--out', out, '--plain'], {
      cwd: root,
      env: daemon.env,
    });
    expect(r.code).toBe(1);
    expect(statuses(report(out))).toEqual({ base: 'built', app: 'failed', notes: 'built' });
    expect(r.stdout + r.stderr).toMatch(/RUN exit 7/);
  }, 120_000);

  test('a docker build past its timeout is stopped: timed out, the CLI gone, the run over', async () => {
    writeFileSync(
      join(root, 'dist-build.yml'),
      CONFIG.replace('  app:\n    needs: [base]', '  app:\n    timeout: 3s\n    needs: [base]'),
    );
    writeFileSync(
      join(root, 'app/Dockerfile'),
      'FROM dist-build-test/base:1\nRUN echo started && sleep 120\n',
    );
    const out = join(dir, 'out');
    const t0 = Date.now();
    const r = await runCli(['run', '--workers', '1', '--out', out, '--plain'], {
      cwd: root,
      env: daemon.env,
    });
    expect(r.code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(60_000);
    const app = report(out).invocations.find((i) => i.unit === 'app')!;
    expect(app.status).toBe('failed');
    expect(app.reason).toMatch(/timed out after 3s/);
  }, 120_000);

  test('without a usable Docker the workers say why and the docker invocations are not placed', async () => {
    const out = join(dir, 'out');
    const r = await runCli(['run', '--workers', '1', '--out', out, '--plain'], {
      cwd: root,
      env: { ...daemon.env, DIST_BUILD_DOCKER: join(dir, 'no-such-docker') },
    });
    expect(r.code).not.toBe(0);
    const text = r.stdout + r.stderr;
    // Placement names the worker and why it has no Docker.
    expect(text).toMatch(
      /no worker can take "app" \(.*a worker with docker\); workers: worker-1 \(.*executors \[command\], docker: none: .*no-such-docker: cannot run it \(ENOENT\)\)/,
    );
  }, 120_000);

  test('pool: a worker whose daemon never built the base image loads it from the cache and builds FROM it', async () => {
    await explained(async () => {
      // Two machines: each worker has its own daemon, tree and cache; base must go to A, app to B.
      const b = await startDockerd();
      try {
        await b.importBusybox();
        const pinned = CONFIG.replace(
          '  base:\n    docker:',
          '  base:\n    labels: [a]\n    docker:',
        ).replace('  app:\n    needs: [base]', '  app:\n    labels: [b]\n    needs: [base]');
        const trees = ['m', 'a', 'b'].map((n) => {
          const t = makeTree(join(dir, n));
          writeFileSync(join(t, 'dist-build.yml'), pinned);
          return t;
        });
        const sock = `unix://${join(dir, 'master.sock')}`;
        const out = join(dir, 'out');
        const master = startCli(
          ['master', '--listen', sock, '--workers', '2', '--out', out, '--plain', '--wait', '60s'],
          { cwd: trees[0] },
        );
        await master.waitFor(/listening/i);
        const worker = (name: string, tree: string, d: DockerDaemon) =>
          startCli(
            [
              'worker',
              '--join',
              sock,
              '--id',
              name,
              '--label',
              name,
              '--cache-dir',
              join(dir, `cache-${name}`),
            ],
            { cwd: tree, env: d.env },
          );
        worker('a', trees[1]!, daemon);
        worker('b', trees[2]!, b);
        const exit = await master.exited;
        expect({ code: exit.code, out: master.output.slice(-3000) }).toMatchObject({ code: 0 });
        const r = report(out);
        expect(statuses(r)).toEqual({ base: 'built', app: 'built', notes: 'built' });
        const by = Object.fromEntries(r.invocations.map((i) => [i.unit, i.worker]));
        expect(by).toMatchObject({ base: 'a', app: 'b' });
        // B's daemon has base now: loaded from the archive A built, not built there.
        expect(await b.imageId('dist-build-test/base:1')).toBe(
          await daemon.imageId('dist-build-test/base:1'),
        );
        expect(await copyTxt(b)).toBe('base image\nhi\nhello\n');
      } finally {
        await stopAll();
        await b.stop();
      }
    });
  }, 240_000);
});
