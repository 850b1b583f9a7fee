/**
 * The validated, normalized form of a dist-build.yml file. Everything downstream (keys, plan,
 * cluster) reads these types, never the raw YAML.
 */

export interface WorkersRule {
  /** Smallest matrix size. */
  min: number;
  /** Largest matrix size. */
  max: number;
  /** Invocations one worker is expected to take: matrix size = clamp(ceil(n / maxPerWorker), min, max). */
  maxPerWorker: number;
}

export interface PlacementRule {
  /** Capacity factor c: a worker takes at most c * max(total / workers, longest) seconds of work. */
  balance: number;
  /** Expected duration (seconds) of an invocation with neither history nor `estimate`. */
  defaultDuration: number;
}

export interface DockerSpec {
  /** Build context, relative to the config's root. */
  context: string;
  /** Dockerfile, relative to the config's root (default: `<context>/Dockerfile`). */
  file: string;
  target?: string;
  /** Target platforms such as `linux/amd64`; each platform is placed as its own unit. */
  platforms: string[];
  tags: string[];
  buildArgs: Record<string, string>;
  /** `docker build --network` for RUN steps: `default`, `host` or `none` (not in the cache key). */
  network?: string;
  /** Push the image to its tags at the end of a run (not in the cache key). */
  push?: boolean;
}

export interface InvocationConfig {
  /** Name from the `invocations` map; safe as a cache key part and as a file name. */
  name: string;
  /** Shell command (exactly one of `run` and `docker` is set). */
  run?: string;
  docker?: DockerSpec;
  /** Globs (relative to root) whose contents make up the cache key. */
  inputs: string[];
  /** Files/dirs (relative to root) saved to the cache and exported. */
  outputs: string[];
  /** Names of invocations whose outputs this one needs. */
  needs: string[];
  /** A final artifact, exported at the end of a run. */
  export: boolean;
  /** Declared environment: the config's `env` merged with the invocation's own. */
  env: Record<string, string>;
  /** Platform constraint (`os/arch`), for `run:` invocations that need a given machine. */
  platform?: string;
  /** Worker labels that all must be present on the worker that takes this invocation. */
  labels: string[];
  /** Seconds before the command is stopped. */
  timeout: number;
  /** Expected duration in seconds, a hint used until history exists. */
  estimate?: number;
}

/**
 * One cache store as written in `cache.stores` (options keep their YAML names, e.g. `max-size`);
 * the backend factory (src/store/open.ts) checks and interprets the options.
 */
export interface StoreConfig {
  /** `local`, `gha` or `registry`. */
  type: string;
  [option: string]: unknown;
}

export interface SignConfig {
  /** Environment variable holding the HMAC secret (default `DIST_BUILD_CACHE_SECRET`). */
  secretEnv: string;
  /** Fail instead of running unsigned when the variable is not set. */
  required: boolean;
}

export interface CacheConfig {
  /** Layered in this order, fastest first (default: one local store). */
  stores: StoreConfig[];
  /** Result signing; absent when the config has no `cache.sign`. */
  sign?: SignConfig;
  /**
   * Where each store (and each of its options) is written in the file, for error messages about
   * options that only the backend checks. Not enumerable: it never reaches digests or JSON.
   */
  readonly locations?: StoreLocation[];
}

export interface FilePosition {
  line: number;
  col: number;
}

export interface StoreLocation extends FilePosition {
  /** The config file as its problems name it: the path the user gave, like the loader's own. */
  file: string;
  options: Record<string, FilePosition>;
}

export interface Config {
  /** Absolute path of the config file. */
  file: string;
  /** Absolute path of the directory that input/output paths are relative to (the file's directory). */
  root: string;
  version: 1;
  workers: WorkersRule;
  placement: PlacementRule;
  /** Global environment shared by every invocation (already merged into each invocation's env). */
  env: Record<string, string>;
  /** Invocations in file order. */
  invocations: InvocationConfig[];
  /** Cache stores (the loader always sets it; absent means one local store). */
  cache?: CacheConfig;
}

/** Environment variables the worker sets for each command (see src/cluster/worker.ts). */
export const WORKER_ENV: readonly string[] = [
  'DIST_BUILD_WORKER',
  'DIST_BUILD_UNIT',
  'DIST_BUILD_CACHE_KEY',
];

/**
 * A label as workers carry them: labels travel joined by commas (the `labels` annotation), so one
 * with a comma or a space (or an empty one) can never match.
 */
export const LABEL = /^[^\s,]+$/;
