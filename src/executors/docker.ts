/**
 * The docker executor: how a worker builds a `docker:` invocation (an image build with the
 * Docker CLI and BuildKit), and how it finds a Docker it can use.
 *
 * A docker job is the Docker CLI run by the command executor's process machinery (its own process
 * group, the invocation's timeout, `StopJob`, the job log): `dockerJobSpec` turns the invocation
 * into a short `sh` script, so stopping the job stops the CLI, which cancels the build in the
 * daemon. The script, in the config's root:
 * 1. `docker load -i` the image archive of each docker invocation it `needs` (restored into the
 *    tree like any dependency output; `imagesToLoad`), so that `FROM <their tag>` finds the image
 *    this run built or found cached, whichever worker built it;
 * 2. `docker build` (BuildKit: `DOCKER_BUILDKIT=1`, `--progress=plain`) with the context,
 *    Dockerfile, target, platform (the unit's), network, build args and tags of the config, with
 *    inline cache (`BUILDKIT_INLINE_CACHE=1`) and `--cache-from` the images the worker chose
 *    (its previous image of the unit, loaded from the stores when its daemon has none: see
 *    `dockerCacheSource` in src/cluster/worker.ts);
 * 3. `docker save` of the image (by its tags, so a later `docker load` tags it again; by id when it
 *    has none) to the unit's image archive, `.dist-build/images/<unit>.tar` (`imageArchivePath`).
 *
 * That archive is the unit's output (a docker invocation declares no other): stored, found by
 * later runs under the unit's cache key, restored for dependents, exported (`--out` gets
 * `images/<unit>.tar`, which `docker load -i` takes) and pushed (`docker.push`: `pushImage`, by
 * the worker that holds it). The daemon's own build cache is what
 * consistent hashing keeps warm: the same unit goes back to the same worker, and so to the same
 * daemon, run after run.
 *
 * `findDocker` picks the client: `--docker PATH` / `DIST_BUILD_DOCKER` when given, else the first
 * `docker` on `PATH` that reaches a daemon and can build with BuildKit (clients 23 and later need
 * the buildx plugin for that; 20.10 has it built in).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants as fsConstants, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { InvocationConfig } from '../config/types.js';
import { IMAGES_DIR, imageArchivePath, isImageArchive, unitFile } from '../plan/units.js';
import type { JobSpec } from './types.js';

/** Variables of the worker's environment that tell the Docker CLI which daemon to use and how. */
export const DOCKER_ENV: readonly string[] = [
  'DOCKER_HOST',
  'DOCKER_CONTEXT',
  'DOCKER_CONFIG',
  'DOCKER_CERT_PATH',
  'DOCKER_TLS_VERIFY',
  'DOCKER_API_VERSION',
  // A daemon reached over ssh (DOCKER_HOST=ssh://...) needs the agent; a rootless one its dir.
  'SSH_AUTH_SOCK',
  'XDG_RUNTIME_DIR',
];

/** Single-quoted for `sh`. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface DockerJobOptions {
  id: string;
  /** The config's root: the job's working directory; context and file are relative to it. */
  cwd: string;
  /** The unit (its id names the archive). */
  unit: string;
  /** The unit's platform (`--platform`), when the invocation names platforms. */
  platform?: string;
  /** The Docker CLI to run. */
  docker: string;
  /** Image archives (root-relative) to load first: those of the docker invocations it needs. */
  load: readonly string[];
  /** The worker's environment, for `DOCKER_ENV`. */
  parentEnv?: NodeJS.ProcessEnv;
  /** Images in the daemon to take cached layers from (`--cache-from`). */
  cacheFrom?: readonly string[];
}

/** The `JobSpec` for a `docker:` invocation (see the module comment). */
export function dockerJobSpec(inv: InvocationConfig, opts: DockerJobOptions): JobSpec {
  const d = inv.docker;
  if (!d) throw new TypeError(`invocation ${inv.name} has no docker: build`);
  const docker = shellQuote(opts.docker);
  const archive = imageArchivePath(opts.unit);
  const iid = `${IMAGES_DIR}/${unitFile(opts.unit)}.iid`;
  const partial = `${archive}.partial`;
  const build = ['build', '--progress=plain', '-f', d.file];
  if (d.target) build.push('--target', d.target);
  if (opts.platform) build.push('--platform', opts.platform);
  if (d.network) build.push('--network', d.network);
  for (const [k, v] of Object.entries(d.buildArgs).sort(([a], [b]) => (a < b ? -1 : 1)))
    build.push('--build-arg', `${k}=${v}`);
  for (const t of d.tags) build.push('-t', t);
  // The image carries its layers' cache keys (inline cache), so that a daemon that never built it
  // can take its layers as a cache (--cache-from) once it has the image (loaded from the store).
  build.push('--build-arg', 'BUILDKIT_INLINE_CACHE=1');
  // BuildKit takes a cache source by name only (an image id, the previous image of a build
  // without tags, is looked up on Docker Hub): such an image is named for the build, and the name
  // goes when the script ends (with the image, unless the build made that very image).
  const ids = (opts.cacheFrom ?? []).filter((c) => /^sha256:[0-9a-f]{64}$/.test(c));
  const nameOf = (c: string) => (ids.includes(c) ? `dist-build-cache-from:${c.slice(7)}` : c);
  for (const c of opts.cacheFrom ?? []) build.push('--cache-from', nameOf(c));
  const untag = ids.map((c) => `[ "$built" = ${c} ] || ${docker} rmi ${nameOf(c)};`);
  const naming = ids.length
    ? [
        `trap ${shellQuote(`{ ${untag.join(' ')} } >/dev/null 2>&1 || true`)} EXIT`,
        ...ids.map((c) => `${docker} tag ${c} ${nameOf(c)}`),
      ]
    : [];
  build.push('--iidfile', iid, d.context);
  const lines = [
    'set -e',
    `mkdir -p ${shellQuote(IMAGES_DIR)}`,
    `rm -f ${shellQuote(iid)} ${shellQuote(partial)}`,
    ...opts.load.map((a) => `${docker} load -i ${shellQuote(a)}`),
    ...naming,
    `${docker} ${build.map(shellQuote).join(' ')}`,
    ...(naming.length ? [`built="$(cat ${shellQuote(iid)})"`] : []),
    // By its tags, so that loading the archive tags the image again; by id when it has none.
    d.tags.length
      ? `${docker} save -o ${shellQuote(partial)} ${d.tags.map(shellQuote).join(' ')}`
      : `${docker} save -o ${shellQuote(partial)} "$(cat ${shellQuote(iid)})"`,
    `mv -f ${shellQuote(partial)} ${shellQuote(archive)}`,
    `rm -f ${shellQuote(iid)}`,
  ];
  const env: Record<string, string> = {};
  const parent = opts.parentEnv ?? process.env;
  for (const k of DOCKER_ENV) if (parent[k] !== undefined) env[k] = parent[k]!;
  return {
    id: opts.id,
    invocation: inv.name,
    command: lines.join('\n'),
    cwd: opts.cwd,
    env: { ...env, ...inv.env, DOCKER_BUILDKIT: '1' },
    timeoutSeconds: inv.timeout,
  };
}

/** A Docker CLI that reaches a daemon and builds with BuildKit. */
export interface DockerInfo {
  /** The CLI's path. */
  path: string;
  /** Client version. */
  client: string;
  /** Daemon version. */
  server: string;
  /** The daemon's platform, `os/arch`. */
  platform: string;
}

export interface DockerProbe {
  docker?: DockerInfo;
  /** Why each candidate was not taken (empty when the first one was). */
  problems: string[];
}

export interface FindDockerOptions {
  /** The CLI to use (`--docker`, `DIST_BUILD_DOCKER`); else every `docker` on `PATH` is tried. */
  docker?: string;
  env?: NodeJS.ProcessEnv;
  /** Per command (default 15 s: a daemon that is starting may be slow to answer). */
  timeoutMs?: number;
}

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ ok: boolean; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    const opts = { env, timeout: timeoutMs, maxBuffer: 1 << 20, ...(signal ? { signal } : {}) };
    execFile(file, args, opts, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean }) | null;
      resolve({
        ok: !e,
        stdout: String(stdout),
        stderr: String(stderr),
        ...(e
          ? {
              error: signal?.aborted
                ? 'stopped'
                : e.killed
                  ? `no answer in ${timeoutMs / 1000}s`
                  : e.code === 'ENOENT' || e.code === 'EACCES'
                    ? `cannot run it (${e.code})`
                    : (String(stderr).trim().split('\n')[0] ?? '') || e.message,
            }
          : {}),
      });
    });
  });
}

/** Every `docker` on PATH, in order, each file once. */
function onPath(env: NodeJS.ProcessEnv): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, 'docker');
    try {
      accessSync(file, fsConstants.X_OK);
      const real = realpathSync(file);
      if (seen.has(real)) continue;
      seen.add(real);
      out.push(file);
    } catch {
      // not there
    }
  }
  return out;
}

/** Finds a Docker CLI this worker can build with (see the module comment). */
export async function findDocker(opts: FindDockerOptions = {}): Promise<DockerProbe> {
  const env = opts.env ?? process.env;
  const timeout = opts.timeoutMs ?? 15_000;
  const candidates = opts.docker ? [opts.docker] : onPath(env);
  const problems: string[] = [];
  if (candidates.length === 0) problems.push('no docker command on PATH');
  for (const path of candidates) {
    const v = await run(path, ['version', '--format', '{{json .}}'], env, timeout);
    let info: {
      Client?: { Version?: string };
      Server?: { Version?: string; Os?: string; Arch?: string } | null;
    } = {};
    try {
      info = JSON.parse(v.stdout.trim().split('\n')[0] || '{}') as typeof info;
    } catch {
      // an old client, or not docker at all
    }
    const client = info.Client?.Version;
    if (!client) {
      problems.push(`${path}: ${v.error ?? 'not a Docker CLI (no client version)'}`);
      continue;
    }
    const server = info.Server;
    if (!server?.Version) {
      problems.push(`${path}: cannot reach a Docker daemon (${v.error ?? 'no server version'})`);
      continue;
    }
    if (Number(client.split('.')[0]) >= 23) {
      const bx = await run(path, ['buildx', 'version'], env, timeout);
      if (!bx.ok) {
        problems.push(
          `${path}: client ${client} builds with BuildKit only through the buildx plugin, which it does not have`,
        );
        continue;
      }
    }
    return {
      docker: {
        path,
        client,
        server: server.Version,
        platform: `${server.Os ?? 'linux'}/${server.Arch ?? ''}`,
      },
      problems,
    };
  }
  return { problems };
}

/** A reference pushed, and the manifest digest the registry answered. */
export interface PushedImage {
  ref: string;
  digest: string;
}

/**
 * Loads an image archive into the daemon (`docker load`: it is tagged as saved) and pushes each
 * of `tags`, one after the other. Throws with the CLI's own message when a step fails (a
 * registry that refuses the credentials, a name it does not take), naming the tags pushed before.
 */
export async function pushImage(
  docker: DockerInfo,
  archive: string,
  tags: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs: number; signal?: AbortSignal },
): Promise<PushedImage[]> {
  const env = { ...(opts.env ?? process.env), DOCKER_BUILDKIT: '1' };
  await loadImage(docker, archive, env, opts.timeoutMs, opts.signal);
  const pushed: PushedImage[] = [];
  for (const ref of tags) {
    const out = await step(docker, ['push', ref], env, opts.timeoutMs, opts.signal).catch(
      (err: Error) => {
        // The tags pushed before it name this run's image already: said, as the report lists none.
        if (pushed.length)
          err.message += ` (pushed before it: ${pushed.map((p) => `${p.ref} ${p.digest}`).join(', ')})`;
        throw err;
      },
    );
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1] ?? '';
    pushed.push({ ref, digest });
  }
  return pushed;
}

/**
 * The image archives a docker build loads before it builds: those of the docker units it needs.
 * Of a multi-platform dependency (`base@linux/amd64`, `base@linux/arm64`, which share tags) only
 * the unit of the build's own platform (`platform`: the unit's, else the daemon's), when there is
 * one: loaded after it, another platform's image would take the tags its FROM names.
 */
export function imagesToLoad(
  deps: readonly { unit: string; paths: readonly string[] }[],
  platform: string,
): string[] {
  const platformOf = (unit: string) => unit.slice(unit.indexOf('@') + 1).toLowerCase();
  const byInvocation = new Map<string, { unit: string; paths: readonly string[] }[]>();
  for (const d of deps) {
    const name = d.unit.includes('@') ? d.unit.slice(0, d.unit.indexOf('@')) : d.unit;
    byInvocation.set(name, [...(byInvocation.get(name) ?? []), d]);
  }
  const out: string[] = [];
  for (const units of byInvocation.values()) {
    const own = units.filter((d) => d.unit.includes('@') && platformOf(d.unit) === platform);
    for (const d of own.length ? own : units) out.push(...d.paths.filter(isImageArchive));
  }
  return out;
}

/** Whether the daemon has an image `ref`. */
export async function hasImage(
  docker: DockerInfo,
  ref: string,
  env: NodeJS.ProcessEnv,
): Promise<boolean> {
  return (await run(docker.path, ['image', 'inspect', '--format', '{{.Id}}', ref], env, 30_000)).ok;
}

/**
 * `docker load -i archive`; the references it loaded (its tags, or the image id of an untagged
 * image), as `docker load` names them.
 */
export async function loadImage(
  docker: DockerInfo,
  archive: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<string[]> {
  const out = await step(docker, ['load', '-i', archive], env, timeoutMs, signal);
  return [...out.matchAll(/^Loaded image(?: ID)?: (\S+)$/gm)].map((m) => m[1]!);
}

/**
 * Runs the Docker CLI; its stdout, or an error with the CLI's last lines (`docker push REF: ...`,
 * blank lines left out).
 */
async function step(
  docker: DockerInfo,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<string> {
  const r = await run(docker.path, args, env, timeoutMs, signal);
  if (!r.ok) {
    const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.trim());
    throw new Error(`docker ${args[0]} ${args.at(-1)}: ${lines.slice(-3).join(' / ') || r.error}`);
  }
  return r.stdout;
}
